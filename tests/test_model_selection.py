"""Number of components: knee of the K-component loss, range of interest, suggested k.

The physics test fits NMF to a small simulated scan with four distinct diffractions
(amorphous + three crystals) for k = 2..7 and checks that the loss knee and the IQA rule both
land on the truth (+/- 1).
"""

import warnings

import numpy as np
import pytest

from stemnmf_hs import model_selection as ms
from stemnmf_hs.overlap import representative_diffractions

TRUE_K = 4


# ------------------------------------------------------------------------------ knee
def _piecewise(ks, knee, steep=1.0, flat=0.04):
    """Convex decreasing loss: slope -steep up to the knee, -flat after it."""
    ks = np.asarray(ks, dtype=float)
    return np.where(ks <= knee, steep * (knee - ks), 0.0) - flat * (ks - knee).clip(0) + 5.0


@pytest.mark.parametrize("knee", [4, 6, 9])
def test_knee_of_a_piecewise_curve_is_where_it_was_built(knee):
    ks = np.arange(2, 16)
    found, method = ms.find_knee(ks, _piecewise(ks, knee), return_method=True)
    assert (found, method) == (knee, "kneed")


def test_knee_survives_noise_and_an_exponential_floor():
    ks = np.arange(2, 17)
    rng = np.random.default_rng(0)
    # signal explained by 6 components, then a slow noise-fitting decline
    loss = 1.2 + 0.6 * np.exp(-(ks - 2) / 1.2) * (ks <= 6) + 0.6 * np.exp(-4 / 1.2) * (ks > 6)
    loss = loss - 0.002 * (ks - 6).clip(0) + 1e-4 * rng.standard_normal(ks.size)
    assert abs(ms.find_knee(ks, loss) - 6) <= 1


def test_knee_fallback_is_the_farthest_point_below_the_chord():
    ks = np.arange(2, 10)
    loss = _piecewise(ks, 5)
    found, method = ms.find_knee(ks, loss, sensitivity=100.0, return_method=True)
    assert method == "chord"  # kneed's threshold is never crossed at this sensitivity
    assert found == 5


def test_a_straight_line_has_no_knee():
    ks = np.arange(2, 10)
    with pytest.warns(UserWarning, match="no knee"):
        found, method = ms.find_knee(ks, 10.0 - ks, return_method=True)
    assert (found, method) == (2, "none")


@pytest.mark.parametrize(
    "ks, loss, match",
    [
        ([2, 3], [2.0, 1.0], "at least 3"),
        ([2, 3, 4], [2.0, np.nan, 1.0], "finite"),
        ([2, 4, 3], [3.0, 2.0, 1.0], "strictly increasing"),
        ([2, 3, 3], [3.0, 2.0, 1.0], "strictly increasing"),
        ([2, 3.5, 4], [3.0, 2.0, 1.0], "whole numbers"),
        ([2, 3, 4], [3.0, 2.0], "equal length"),
    ],
)
def test_knee_input_errors(ks, loss, match):
    with pytest.raises(ValueError, match=match):
        ms.find_knee(ks, loss)


def test_range_of_interest_is_knee_plus_minus_four_clipped():
    ks = np.arange(2, 16)
    np.testing.assert_array_equal(ms.range_of_interest(8, ks), np.arange(4, 13))
    np.testing.assert_array_equal(ms.range_of_interest(3, ks), np.arange(2, 8))
    np.testing.assert_array_equal(ms.range_of_interest(14, ks), np.arange(10, 16))
    np.testing.assert_array_equal(ms.range_of_interest(6, [2, 4, 6, 8, 10, 12]), [2, 4, 6, 8, 10])
    np.testing.assert_array_equal(ms.range_of_interest(6, ks, half_width=1), [5, 6, 7])
    with pytest.raises(ValueError, match="outside"):
        ms.range_of_interest(20, ks)
    with pytest.raises(ValueError, match="half_width"):
        ms.range_of_interest(6, ks, half_width=-1)


def test_k_component_loss_is_the_mean_absolute_error():
    v = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert ms.k_component_loss(v, v + np.array([[0.5, -0.5], [1.0, 0.0]])) == 0.5
    with pytest.raises(ValueError, match="shape"):
        ms.k_component_loss(v, v[:1])


# ------------------------------------------------------------------------- the rule
def _mats(k, duplicate=None, ssim_dup=0.5, gmsd_dup=0.01):
    """Synthetic IQA matrices of k components; one duplicate pair if given."""
    ssim = np.full((k, k), 0.4)
    gmsd = np.full((k, k), 0.2)
    if duplicate is not None:
        i, j = duplicate
        ssim[i, j] = ssim[j, i] = ssim_dup
        gmsd[i, j] = gmsd[j, i] = gmsd_dup
    np.fill_diagonal(ssim, 1.0)
    np.fill_diagonal(gmsd, 0.0)
    return {"ssim": ssim, "gmsd": gmsd}


def test_rule_picks_the_last_k_before_the_first_duplicate():
    ks = [2, 3, 4, 5, 6]
    by_k = {k: _mats(k, None if k <= 4 else (0, k - 1)) for k in ks}
    res = ms.suggest_k(ks, by_k)
    assert res["suggested_k"] == 4
    np.testing.assert_array_equal(res["distinct"], [True, True, True, False, False])
    np.testing.assert_array_equal(res["n_duplicate_pairs"], [0, 0, 0, 1, 1])
    np.testing.assert_allclose(res["min_gmsd"], [0.2, 0.2, 0.2, 0.01, 0.01])
    np.testing.assert_allclose(res["max_ssim"], [0.4, 0.4, 0.4, 0.5, 0.5])
    assert np.isnan(res["max_psnr"]).all()  # not given: reported as NaN
    assert res["thresholds"] == {"ssim": ms.DEFAULT_SSIM_THRESHOLD,
                                 "gmsd": ms.DEFAULT_GMSD_THRESHOLD}


def test_rule_variants_and_either_criterion_flags_a_duplicate():
    ks = [3, 4, 5, 6]
    # k = 4 has a pair with a high SSIM only; k = 6 is distinct again (noise components)
    by_k = {3: _mats(3), 4: _mats(4, (1, 2), ssim_dup=0.95, gmsd_dup=0.2), 5: _mats(5, (0, 1)),
            6: _mats(6)}
    assert ms.suggest_k(ks, by_k)["suggested_k"] == 3
    assert ms.suggest_k(ks, by_k, rule="largest_distinct")["suggested_k"] == 6
    assert ms.suggest_k(ks, by_k, ssim_threshold=None)["suggested_k"] == 4  # GMSD only
    np.testing.assert_array_equal(ms.duplicate_pairs(by_k[4]), [[1, 2]])
    assert ms.duplicate_pairs(by_k[4], ssim_threshold=None).shape == (0, 2)


def test_rule_edge_cases_say_why():
    ks = [2, 3, 4]
    res = ms.suggest_k(ks, {k: _mats(k, (0, 1)) for k in ks})
    assert res["suggested_k"] == 2 and "smaller" in res["reason"]
    res = ms.suggest_k(ks, {k: _mats(k) for k in ks})
    assert res["suggested_k"] == 4 and "larger" in res["reason"]
    res = ms.suggest_k([1, 2, 3], {1: _mats(1), 2: _mats(2), 3: _mats(3, (1, 2))})
    assert res["suggested_k"] == 2 and np.isnan(res["max_ssim"][0])
    with pytest.raises(ValueError, match="k = \\[3\\]"):
        ms.suggest_k([2, 3], {2: _mats(2)})
    with pytest.raises(ValueError, match="shape"):
        ms.suggest_k([2, 3], {2: _mats(2), 3: _mats(4)})
    with pytest.raises(ValueError, match="rule"):
        ms.suggest_k([2], {2: _mats(2)}, rule="median")
    with pytest.raises(ValueError, match="at least one"):
        ms.suggest_k([2], {2: _mats(2)}, ssim_threshold=None, gmsd_threshold=None)


# ------------------------------------------------------------------ physics (simulation)
@pytest.fixture(scope="module")
def sweep():
    """NMF for k = 2..7 of a 24 x 24 scan of 32 x 32 patterns with 4 true diffractions."""
    from stemnmf_hs import ConstrainedNMF
    from stemnmf_hs.data import simulate_precipitates

    sim = simulate_precipitates(scan_shape=(24, 24), pattern_shape=(64, 64), seed=0,
                                crystallinity=(0.2, 0.1, 0.05))
    data = sim.data.reshape(24, 24, 32, 2, 32, 2).sum(axis=(3, 5))  # bin 2 x 2
    X = data.reshape(24 * 24, -1)
    ks = np.arange(2, 8)
    loss, reps = [], {}
    for k in ks:
        est = ConstrainedNMF(int(k), diffraction_constraint=None, map_constraint=None,
                             n_restarts=2, max_iter=100, random_state=0)
        maps = est.fit_transform(X)
        loss.append(ms.k_component_loss(X, maps @ est.components_))
        reps[int(k)] = representative_diffractions(est.components_.reshape(k, 32, 32),
                                                   maps.T.reshape(k, 24, 24))
    return ks, np.array(loss), reps


def test_knee_and_suggested_k_recover_the_number_of_diffractions(sweep):
    ks, loss, reps = sweep
    assert np.all(np.diff(loss) < 0)
    knee = ms.find_knee(ks, loss)
    assert abs(knee - TRUE_K) <= 1
    roi = ms.range_of_interest(knee, ks)
    by_k = {int(k): ms.iqa_matrices(reps[int(k)]) for k in roi}
    res = ms.suggest_k(roi, by_k)
    assert abs(res["suggested_k"] - TRUE_K) <= 1, res
    # the split components past the truth are near-identical: GMSD collapses
    above = roi > TRUE_K
    below = roi <= TRUE_K
    assert np.all(res["min_gmsd"][above] < ms.DEFAULT_GMSD_THRESHOLD)
    assert np.all(res["min_gmsd"][below & (roi > 1)] > ms.DEFAULT_GMSD_THRESHOLD)


def test_result_object_wraps_the_sweep_in_signals(sweep):
    import matplotlib
    import matplotlib.pyplot as plt
    from hyperspy.signals import Signal1D, Signal2D

    from stemnmf_hs.signals import NumberOfComponentsEstimate

    matplotlib.use("Agg")
    ks, loss, reps = sweep
    est = NumberOfComponentsEstimate(ks, loss, reps, loss_units="electrons")
    assert abs(est.suggested_k - TRUE_K) <= 1
    assert est.knee in ks and est.knee_method in ("kneed", "chord")
    k0, k1 = est.range_of_interest
    np.testing.assert_array_equal(est.roi_k_values, np.arange(k0, k1 + 1))
    assert isinstance(est.loss, Signal1D)
    ax = est.loss.axes_manager.signal_axes[0]
    assert (ax.name, ax.scale, ax.offset, ax.size) == ("number of components", 1.0, 2.0, 6)
    np.testing.assert_allclose(est.loss.data, loss)
    assert "electrons" in est.loss.metadata.Signal.quantity
    assert set(est.iqa) == set(est.roi_k_values.tolist())
    for k, by_metric in est.iqa.items():
        assert set(by_metric) == {"ssim", "psnr", "gmsd", "mdsi"}
        for m, sig in by_metric.items():
            assert isinstance(sig, Signal2D)
            assert sig.data.shape == (k, k)
            assert all(a.name.startswith("component") for a in sig.axes_manager.signal_axes)
            np.testing.assert_array_equal(sig.data, est.iqa_arrays[k][m])
    assert est.criteria["distinct"].shape == est.roi_k_values.shape
    assert est.thresholds["gmsd"] == ms.DEFAULT_GMSD_THRESHOLD
    assert f"suggested k = {est.suggested_k}" in repr(est)
    assert str(est.suggested_k) in est.summary()
    fig = est.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len([a for a in fig.axes if a.images]) == 4  # the four IQA heatmaps
    plt.close(fig)
    with pytest.raises(ValueError, match="range of interest"):
        est.plot(k=int(ks[-1]) + 5)


def test_result_object_input_errors(sweep):
    from stemnmf_hs.signals import NumberOfComponentsEstimate

    ks, loss, reps = sweep
    partial = {k: v for k, v in reps.items() if k != 4}
    with pytest.raises(ValueError, match="lack the fits k = \\[4\\]"):
        NumberOfComponentsEstimate(ks, loss, partial, knee=4)
    with pytest.raises(ValueError, match="not one of the fitted"):
        NumberOfComponentsEstimate(ks, loss, reps, knee=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = NumberOfComponentsEstimate(ks[::2], loss[::2], reps, knee=4, half_width=2)
    ax = est.loss.axes_manager.signal_axes[0]
    assert (ax.scale, ax.offset) == (2.0, 2.0)
    np.testing.assert_array_equal(est.roi_k_values, [2, 4, 6])
