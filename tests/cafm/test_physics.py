"""Diode physics of C-AFM I-V curves against ground truth (generated curves, exact limits)."""

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from hyperspy_nanoml.cafm.physics import (
    ELEMENTARY_CHARGE,
    VACUUM_PERMITTIVITY,
    barrier_from_saturation_current,
    cheung_estimate,
    estimate_current_noise,
    fit_diode,
    norde_estimate,
    onset_voltage,
    rectification_ratio,
    saturation_current_from_barrier,
    schottky_emission_fit,
    thermal_voltage,
    thermionic_current,
    zero_bias_conductance,
)

VT = thermal_voltage(300.0)
AREA, RICHARDSON = 1e-14, 9.6e4
BIAS = np.linspace(-2.0, 2.0, 201)


def _implicit_residual(v, i, i_s, n, r_s, r_sh, t=300.0):
    a = n * thermal_voltage(t)
    vd = v - i * r_s
    return i - (i_s * np.expm1(vd / a) + vd / r_sh)


# ------------------------------------------------------------- thermionic_current


@pytest.mark.parametrize(
    "r_s, r_sh", [(1e7, np.inf), (1e-3, np.inf), (1e-9, np.inf), (1e6, 1e9), (10.0, 1e3)]
)
@pytest.mark.parametrize("i_s, n", [(5e-12, 1.15), (1e-20, 1.0), (1e-6, 2.5)])
def test_lambert_w_satisfies_the_implicit_equation_and_never_overflows(i_s, n, r_s, r_sh):
    v = np.linspace(-5.0, 10.0, 3001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid warnings either
        i = thermionic_current(v, i_s, n, r_s, r_sh)
    assert np.all(np.isfinite(i))
    # |residual| at the rounding level of the largest terms of the equation
    scale = np.abs(i) + i_s + np.abs(v) / r_sh
    assert np.max(np.abs(_implicit_residual(v, i, i_s, n, r_s, r_sh)) / scale) < 1e-11
    # non-decreasing current (a diode in series with resistors; flat at -Is in reverse)
    assert np.all(np.diff(i) >= 0)


def test_limits_ideal_diode_resistor_and_series_resistance_asymptote():
    v = np.linspace(-1.0, 0.6, 81)
    ideal = 1e-12 * np.expm1(v / (1.1 * VT))
    np.testing.assert_allclose(thermionic_current(v, 1e-12, 1.1, 0.0), ideal, rtol=1e-13)
    # a vanishing series resistance tends to the ideal diode (relative change ~ I Rs / n Vt)
    np.testing.assert_allclose(
        thermionic_current(v, 1e-12, 1.1, 1e-6), ideal, rtol=1e-7, atol=1e-24
    )
    # no diode current: Ohm's law through Rs + Rsh
    np.testing.assert_allclose(thermionic_current(v, 0.0, 1.0, 1e3, 1e6), v / (1e3 + 1e6))
    # reverse bias: -Is - |V|/Rsh
    np.testing.assert_allclose(
        thermionic_current(-3.0, 1e-12, 1.2, 1e5, 1e10),
        -1e-12 - 3.0 / (1e10 + 1e5),
        rtol=1e-6,
    )
    # far forward: I Rs + n Vt ln(I / Is) = V (series-resistance limited)
    i = thermionic_current(10.0, 1e-12, 1.2, 1e6)
    assert i * 1e6 + 1.2 * VT * math.log(i / 1e-12 + 1) == pytest.approx(10.0, rel=1e-12)


def test_thermionic_current_broadcasts_parameters():
    i_s = np.array([1e-12, 1e-10, 1e-8])[:, None]
    r_s = np.array([1e5, 1e6, 1e7])[:, None]
    out = thermionic_current(BIAS, i_s, 1.2, r_s)
    assert out.shape == (3, BIAS.size)
    for k in range(3):
        np.testing.assert_array_equal(
            out[k], thermionic_current(BIAS, i_s[k, 0], 1.2, r_s[k, 0])
        )


def test_thermionic_current_rejects_unphysical_parameters():
    with pytest.raises(ValueError, match="ideality > 0"):
        thermionic_current(BIAS, 1e-12, -1.0, 1e6)
    with pytest.raises(ValueError, match="temperature"):
        thermionic_current(BIAS, 1e-12, 1.0, 1e6, temperature=0)


def test_barrier_and_saturation_current_are_inverse_and_area_shifts_595_mev():
    i_s = saturation_current_from_barrier(0.43, AREA, RICHARDSON)
    assert float(barrier_from_saturation_current(i_s, AREA, RICHARDSON)) == pytest.approx(
        0.43
    )
    shift = barrier_from_saturation_current(i_s, 10 * AREA, RICHARDSON) - 0.43
    assert float(shift) * 1e3 == pytest.approx(59.52, abs=0.01)


# ------------------------------------------------------------ start estimates


def test_cheung_and_norde_recover_noiseless_parameters():
    i_s = float(saturation_current_from_barrier(0.45, AREA, RICHARDSON))
    i = thermionic_current(BIAS, i_s, 1.2, 5e6)
    ch = cheung_estimate(BIAS, i, area=AREA, richardson=RICHARDSON, min_current=1e-10)
    assert ch.ideality == pytest.approx(1.2, rel=0.01)
    assert ch.series_resistance == pytest.approx(5e6, rel=0.01)
    assert ch.barrier_height == pytest.approx(0.45, abs=0.003)
    # Bohlin's gamma > n with the known ideality; Norde's grid resolution limits it
    nd = norde_estimate(
        BIAS,
        i,
        area=AREA,
        richardson=RICHARDSON,
        gamma=2.2,
        ideality=1.2,
        min_current=1e-10,
    )
    assert nd.barrier_height == pytest.approx(0.45, abs=0.003)
    assert nd.series_resistance == pytest.approx(5e6, rel=0.05)
    with pytest.raises(ValueError, match="gamma"):
        norde_estimate(BIAS, i, area=AREA, richardson=RICHARDSON, gamma=1.1, ideality=1.2)


def test_noise_estimate_recovers_white_noise_on_a_diode_curve():
    rng = np.random.default_rng(5)
    i = thermionic_current(BIAS, 5e-12, 1.15, 1e7) + rng.normal(0, 30e-12, (200, BIAS.size))
    sigma = estimate_current_noise(i)
    assert sigma.shape == (200,)
    assert np.median(sigma) == pytest.approx(30e-12, rel=0.1)


# ---------------------------------------------------------------- fit_diode

CASES = [
    # barrier (eV), ideality, Rs (ohm), Rsh (ohm)
    (0.43, 1.15, 1e7, np.inf),
    (0.55, 1.05, 2e6, np.inf),
    (0.40, 1.6, 3e7, np.inf),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("barrier, n, r_s, r_sh", CASES)
def test_fit_diode_recovers_parameters_within_uncertainties(barrier, n, r_s, r_sh, seed):
    i_s = float(saturation_current_from_barrier(barrier, AREA, RICHARDSON))
    rng = np.random.default_rng(seed)
    i = thermionic_current(BIAS, i_s, n, r_s, r_sh) + rng.normal(0, 30e-12, BIAS.size)
    fit = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON)
    assert fit.success and fit.polarity == "positive"
    for value, std, true, rel in [
        (fit.barrier_height, fit.barrier_height_std, barrier, 0.02),
        (fit.ideality, fit.ideality_std, n, 0.05),
        (fit.series_resistance, fit.series_resistance_std, r_s, 0.03),
        (fit.saturation_current, fit.saturation_current_std, i_s, 0.5),
    ]:
        assert 0 < std < rel * true
        assert abs(value - true) < 3 * std
        assert abs(value - true) < rel * true
    assert fit.noise == pytest.approx(30e-12, rel=0.25)
    assert "1e-14 m^2" in fit.note and "59.5 meV" in fit.note
    # the model of the fit reproduces the noiseless curve to a few noise levels
    clean = thermionic_current(BIAS, i_s, n, r_s, r_sh)
    assert (
        np.max(np.abs(fit.current(BIAS) - clean)) < 10 * 30e-12 + 0.01 * np.abs(clean).max()
    )


def test_fit_diode_uncertainties_are_calibrated():
    """Over repeated noise draws the errors scatter like the stated 1-sigma."""
    i_s = float(saturation_current_from_barrier(0.43, AREA, RICHARDSON))
    clean = thermionic_current(BIAS, i_s, 1.15, 1e7)
    rng = np.random.default_rng(11)
    z = []
    for _ in range(40):
        fit = fit_diode(BIAS, clean + rng.normal(0, 30e-12, BIAS.size), area=AREA,
                        richardson=RICHARDSON)  # fmt: skip
        z.append(
            [
                (fit.barrier_height - 0.43) / fit.barrier_height_std,
                (fit.ideality - 1.15) / fit.ideality_std,
                (fit.series_resistance - 1e7) / fit.series_resistance_std,
            ]
        )
    z = np.asarray(z)
    assert np.all(np.abs(z.mean(axis=0)) < 0.6)
    assert np.all(z.std(axis=0) < 1.5)  # never over-confident by more than 50 %
    assert np.all(z.std(axis=0) > 0.4)  # nor uninformative


def test_fit_diode_with_shunt():
    i_s = float(saturation_current_from_barrier(0.45, AREA, RICHARDSON))
    rng = np.random.default_rng(3)
    i = thermionic_current(BIAS, i_s, 1.1, 5e6, 1e10) + rng.normal(0, 30e-12, BIAS.size)
    fit = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON, fit_shunt=True)
    assert abs(fit.shunt_resistance - 1e10) < 3 * fit.shunt_resistance_std
    assert fit.shunt_resistance_std < 0.3e10
    assert abs(fit.barrier_height - 0.45) < 3 * fit.barrier_height_std
    assert abs(fit.ideality - 1.1) < 3 * fit.ideality_std
    no_shunt = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON)
    assert no_shunt.shunt_resistance == np.inf


def test_fit_diode_negative_polarity_decreasing_sweep_and_nan_points():
    i_s = float(saturation_current_from_barrier(0.43, AREA, RICHARDSON))
    rng = np.random.default_rng(4)
    i = thermionic_current(BIAS, i_s, 1.15, 1e7) + rng.normal(0, 30e-12, BIAS.size)
    ref = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON)
    flipped = fit_diode(-BIAS, -i, area=AREA, richardson=RICHARDSON)  # decreasing bias
    assert flipped.polarity == "negative"
    assert flipped.ideality == pytest.approx(ref.ideality, rel=1e-6)
    np.testing.assert_allclose(flipped.current(-BIAS), -ref.current(BIAS), rtol=1e-6)
    i_nan = i.copy()
    i_nan[::10] = np.nan
    i_in = i_nan.copy()
    with_nan = fit_diode(BIAS, i_nan, area=AREA, richardson=RICHARDSON)
    np.testing.assert_array_equal(i_nan, i_in)  # input untouched
    assert with_nan.excluded["nan"] == 21
    assert abs(with_nan.ideality - 1.15) < 3 * with_nan.ideality_std


def test_fit_diode_excludes_saturated_points():
    i_s = float(saturation_current_from_barrier(0.43, AREA, RICHARDSON))
    rng = np.random.default_rng(6)
    i = thermionic_current(BIAS, i_s, 1.15, 1e7) + rng.normal(0, 30e-12, BIAS.size)
    clipped = np.clip(i, None, 5e-8)
    fit = fit_diode(BIAS, clipped, area=AREA, richardson=RICHARDSON)
    assert fit.excluded["saturated"] == np.count_nonzero(i >= 5e-8)
    assert abs(fit.barrier_height - 0.43) < 3 * fit.barrier_height_std
    assert abs(fit.series_resistance - 1e7) < 3 * fit.series_resistance_std
    given = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON, saturation=5e-8)
    assert given.excluded["saturated"] == fit.excluded["saturated"]


def test_fit_diode_area_assumption_moves_barrier_by_kt_ln10():
    i_s = float(saturation_current_from_barrier(0.43, AREA, RICHARDSON))
    i = thermionic_current(BIAS, i_s, 1.15, 1e7) + np.random.default_rng(7).normal(
        0, 30e-12, BIAS.size
    )
    a = fit_diode(BIAS, i, area=AREA, richardson=RICHARDSON)
    b = fit_diode(BIAS, i, area=10 * AREA, richardson=RICHARDSON)
    assert (b.barrier_height - a.barrier_height) == pytest.approx(
        VT * math.log(10), rel=1e-6
    )
    none = fit_diode(BIAS, i, area=None, richardson=None)
    assert math.isnan(none.barrier_height) and "not computed" in none.note
    assert none.ideality == pytest.approx(a.ideality, rel=1e-6)


def test_fit_diode_bad_input_gets_clear_errors():
    i = thermionic_current(BIAS, 5e-12, 1.15, 1e7)
    kw = dict(area=AREA, richardson=RICHARDSON)
    with pytest.raises(ValueError, match="all NaN"):
        fit_diode(BIAS, np.full(BIAS.size, np.nan), **kw)
    back_and_forth = np.concatenate([BIAS[:100], BIAS[100:][::-1]])
    with pytest.raises(ValueError, match="not strictly monotonic"):
        fit_diode(back_and_forth, i, **kw)
    with pytest.raises(ValueError, match="too few forward points"):
        fit_diode(BIAS, BIAS / 1e12 + np.random.default_rng(0).normal(0, 3e-11, 201), **kw)
    with pytest.raises(ValueError, match="saturated"):
        fit_diode(BIAS, np.sign(BIAS) * 1e-8, **kw)
    with pytest.raises(ValueError, match="one curve"):
        fit_diode(BIAS, np.stack([i, i]), **kw)
    with pytest.raises(ValueError, match="100 points but the curves have 201"):
        fit_diode(BIAS[:100], i, **kw)
    with pytest.raises(ValueError, match="area"):
        fit_diode(BIAS, i, area=-1.0, richardson=RICHARDSON)


# ---------------------------------------------------- per-curve maps (vectorised)


def _map(shape=(6, 7), seed=0):
    """Curves with known parameters: Schottky and ohmic pixels mixed."""
    rng = np.random.default_rng(seed)
    i_s = 10 ** rng.uniform(-13, -10, shape)
    n = rng.uniform(1.0, 1.8, shape)
    r_s = 10 ** rng.uniform(5, 7.5, shape)
    cur = thermionic_current(BIAS, i_s[..., None], n[..., None], r_s[..., None])
    ohmic = rng.random(shape) < 0.3
    r = 10 ** rng.uniform(5, 8, shape)
    cur[ohmic] = BIAS / r[ohmic][:, None]
    return cur, dict(i_s=i_s, n=n, r_s=r_s, ohmic=ohmic, r=r)


def test_zero_bias_conductance_ohmic_exact_offset_free_and_vectorised():
    r = np.array([[1e6, 2e6], [5e7, 1e9]])
    cur = BIAS / r[..., None] + 3e-10  # a constant offset current does not matter
    np.testing.assert_allclose(zero_bias_conductance(BIAS, cur), 1 / r, rtol=1e-10)
    cur, _ = _map()
    g = zero_bias_conductance(BIAS, cur)
    per_curve = [zero_bias_conductance(BIAS, c) for c in cur.reshape(-1, BIAS.size)]
    np.testing.assert_array_equal(g.ravel(), per_curve)
    # an ideal diode on 3 points +-h: the least-squares slope is the secant,
    # G0 sinh(h / Vt) / (h / Vt) with G0 = Is / Vt
    i = thermionic_current(BIAS, 1e-9, 1.0, 0.0)
    h = 0.02
    expected = 1e-9 / VT * math.sinh(h / VT) / (h / VT)
    assert zero_bias_conductance(BIAS, i, window=0.0201) == pytest.approx(
        expected, rel=1e-9
    )


def test_zero_bias_conductance_nan_and_errors():
    cur = np.stack([BIAS / 1e6, np.full(BIAS.size, np.nan), BIAS / 1e6])
    cur[2, 100] = np.nan  # one NaN inside the window: left out of the fit
    g = zero_bias_conductance(BIAS, cur)
    assert g[0] == pytest.approx(1e-6) and np.isnan(g[1]) and g[2] == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="does not span 0 V"):
        zero_bias_conductance(np.linspace(0.1, 2, 50), np.zeros(50))
    with pytest.raises(ValueError, match="all NaN"):
        zero_bias_conductance(BIAS, np.full((2, BIAS.size), np.nan))
    with pytest.raises(ValueError, match="not strictly monotonic"):
        zero_bias_conductance(np.abs(BIAS), np.zeros(BIAS.size))


def test_rectification_ratio_against_the_model_and_vectorised():
    cur, p = _map()
    r = rectification_ratio(BIAS, cur)
    assert r.shape == (6, 7)
    diode = ~p["ohmic"]
    expected = np.abs(
        thermionic_current(2.0, p["i_s"], p["n"], p["r_s"])
        / thermionic_current(-2.0, p["i_s"], p["n"], p["r_s"])
    )
    np.testing.assert_allclose(r[diode], expected[diode], rtol=1e-9)
    np.testing.assert_allclose(r[p["ohmic"]], 1.0, rtol=1e-12)
    # decreasing sweep and an interpolated voltage
    at = 1.234
    r1 = rectification_ratio(BIAS[::-1], cur[..., ::-1], at=at)
    np.testing.assert_allclose(r1, rectification_ratio(BIAS, cur, at=at))
    single = rectification_ratio(BIAS, cur[2, 3], at=at)
    assert single == pytest.approx(r1[2, 3])
    with pytest.raises(ValueError, match="both polarities"):
        rectification_ratio(np.linspace(0, 2, 20), np.ones(20))
    with pytest.raises(ValueError, match="at must be"):
        rectification_ratio(BIAS, cur, at=3.0)


def test_onset_voltage_against_the_model():
    cur, p = _map(seed=2)
    thr = 1e-9
    onset = onset_voltage(BIAS, cur, threshold=thr)
    for idx in np.ndindex(cur.shape[:-1]):
        if p["ohmic"][idx]:
            true = thr * p["r"][idx]
        else:
            args = (p["i_s"][idx], p["n"][idx], p["r_s"][idx])

            def f(v, args=args):
                return thermionic_current(v, *args) - thr

            true = brentq(f, 0, 2) if f(2.0) > 0 else np.nan
        if np.isnan(true):
            assert np.isnan(onset[idx])
        else:
            # linear interpolation between 20 mV steps of a convex curve
            assert onset[idx] == pytest.approx(true, abs=0.02)
            assert onset[idx] == onset_voltage(BIAS, cur[idx], threshold=thr)
    # a noise spike before the turn-on does not count; negative side is symmetric
    i = BIAS / 1e9
    i[120] = 5e-9
    assert onset_voltage(BIAS, i) == pytest.approx(1.0)
    assert onset_voltage(BIAS, i, polarity="negative") == pytest.approx(-1.0)


# ------------------------------------------------------------ Schottky emission


def _schottky_line(sqrt_e, eps_r, phi, t=300.0, a_star=1.20173e6):
    vt = thermal_voltage(t)
    beta = np.sqrt(ELEMENTARY_CHARGE / (4 * math.pi * VACUUM_PERMITTIVITY * eps_r)) / vt
    return math.log(a_star * t**2) - phi / vt + beta * sqrt_e


def test_schottky_emission_fit_recovers_permittivity_and_barrier():
    x = np.linspace(8.6e3, 1.12e4, 53)
    rng = np.random.default_rng(8)
    eps = np.array([4.0, 6.5, 9.0])[:, None]
    phi = np.array([0.55, 0.7, 0.8])[:, None]
    ln_j = _schottky_line(x, eps, phi) + rng.normal(0, 0.02, (3, x.size))
    fit = schottky_emission_fit(x, ln_j)
    for k in range(3):
        assert abs(fit.permittivity[k] - eps[k, 0]) < 3 * fit.permittivity_std[k]
        assert abs(fit.barrier_height[k] - phi[k, 0]) < 3 * fit.barrier_height_std[k]
        single = schottky_emission_fit(x, ln_j[k])
        assert single.permittivity == pytest.approx(fit.permittivity[k], rel=1e-9)
    assert np.all(fit.r_squared > 0.99) and np.all(fit.n_points == 53)
    # invalid points (NaN) are left out; a falling line is not Schottky emission
    ln_j[0, :5] = np.nan
    assert schottky_emission_fit(x, ln_j).n_points[0] == 48
    assert np.isnan(schottky_emission_fit(x, -ln_j[1]).permittivity)
    with pytest.raises(ValueError, match="no finite"):
        schottky_emission_fit(x, np.full(x.size, np.nan))


@pytest.mark.shared_data
def test_schottky_emission_on_the_shared_bfo_map(shared_data):
    h5py = pytest.importorskip("h5py")
    path = shared_data / "cafm" / "bfo_cafm_iv_50x50.hf5"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with h5py.File(path, "r") as f:
        group = f["Measurement_000/Channel_000/IV_BFO"]
        ln_j = group["IV_BFO"][()]
        sqrt_e = group[[k for k in group if "sqrt" in k][0]][()]
    ln_j = np.where(ln_j == 0, np.nan, ln_j)  # 0 marks invalid logs
    fit = schottky_emission_fit(sqrt_e, ln_j)
    assert fit.permittivity.shape == (50, 50)
    # BiFeO3: optical permittivity n^2 ~ 6.5; Schottky fits of films give 3-8
    mean = schottky_emission_fit(sqrt_e, np.nanmean(ln_j, axis=(0, 1)))
    assert 2.0 < mean.permittivity < 10.0 and mean.r_squared > 0.95
    assert 0.9 * np.nanmedian(fit.permittivity) < mean.permittivity
