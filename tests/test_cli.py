import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_nanoml.cli import main
from hyperspy_nanoml.data.textures import make_textured_image


@pytest.mark.slow
def test_demo_writes_every_output(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "components found: 4 (truth: 4)" in out
    for name in (
        "demo_local_fft.pdf",
        "demo_local_fft_loadings.tif",
        "demo_local_fft_factors.tif",
        "demo_local_fft.hspy",
    ):
        assert (tmp_path / "demo" / name).stat().st_size > 0
        assert str((tmp_path / "demo" / name).resolve()) in out


def test_local_fft_on_files(tmp_path, capsys):
    data, _ = make_textured_image(
        (640, 640), ("vertical_lines", "particles"), random_state=0
    )
    s = hs.signals.Signal2D(data)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = 3.0, "nm"
    s.save(tmp_path / "a.hspy")
    hs.signals.Signal2D(np.stack([data, data])).save(tmp_path / "stack.hspy")
    out = tmp_path / "out"
    code = main(
        [
            "local-fft",
            str(tmp_path / "a.hspy"),
            str(tmp_path / "stack.hspy"),
            "--out",
            str(out),
            "--window",
            "64",
            "--step",
            "32",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "a.hspy: 2 components" in printed
    for stem in ("a", "stack_0", "stack_1"):
        assert (out / f"{stem}_local_fft.pdf").is_file()
        assert (out / f"{stem}_local_fft_loadings.tif").is_file()
        back = hs.load(out / f"{stem}_local_fft.hspy")
        assert back.metadata.LocalFFT.window == 64
    back = hs.load(out / "a_local_fft.hspy")
    assert back.axes_manager.navigation_axes[0].units == "nm"


def test_missing_file_and_bad_option(tmp_path, capsys):
    assert main(["local-fft", str(tmp_path / "nope.tif")]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--n-components"):
        data, _ = make_textured_image((300, 300), random_state=0)
        hs.signals.Signal2D(data).save(tmp_path / "b.hspy")
        main(["local-fft", str(tmp_path / "b.hspy"), "--n-components", "lots"])
