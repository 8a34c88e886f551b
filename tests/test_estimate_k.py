"""s.estimate_number_of_components on simulated scans with a known number of diffractions."""

import numpy as np
import pytest

from stemnmf_hs.data import simulated_precipitates
from stemnmf_hs.decomposition import ConstrainedNMF
from stemnmf_hs.decomposition import InMemoryOperator as InMemoryData
from stemnmf_hs.decomposition._sweep import sweep_n_components

SWEEP = dict(n_restarts=2, max_iter=60, random_state=0, show_progressbar=False)


@pytest.fixture(scope="module")
def small_scan():
    # Four distinct diffractions: the amorphous matrix and three crystals (Kimoto et al.).
    s, truth = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(64, 64))
    return s, truth


@pytest.fixture(scope="module")
def estimate(small_scan):
    s, _ = small_scan
    return s.estimate_number_of_components(range(2, 10), **SWEEP)


def test_suggested_k_is_the_number_of_distinct_diffractions(estimate):
    assert abs(estimate.suggested_k - 4) <= 1
    assert abs(estimate.knee - 4) <= 1
    lo, hi = estimate.range_of_interest
    assert lo <= estimate.suggested_k <= hi
    # Fits beyond the truth hold a near-duplicate pair; fits up to it do not.
    roi = list(estimate.roi_k_values)
    distinct = dict(zip(roi, estimate.criteria["distinct"]))
    assert distinct[4]
    assert not any(distinct[k] for k in roi if k >= 6)


def test_result_holds_signals_and_every_number(estimate):
    import hyperspy.api as hs

    assert isinstance(estimate.loss, hs.signals.Signal1D)
    assert estimate.loss.axes_manager[-1].name == "number of components"
    assert estimate.loss.data.shape == (8,)
    np.testing.assert_allclose(estimate.loss.data, estimate.sweep["loss"])
    k = estimate.suggested_k
    for metric in ("ssim", "psnr", "gmsd", "mdsi"):
        sig = estimate.iqa[k][metric]
        assert isinstance(sig, hs.signals.Signal2D)
        assert sig.data.shape == (k, k)
        np.testing.assert_allclose(sig.data, sig.data.T)
    fig = estimate.plot()
    assert fig.axes


def test_sweep_loss_is_the_mean_absolute_residual_and_warm_starts_help(small_scan):
    s, _ = small_scan
    X = s.data.reshape(576, -1).astype(np.float32)
    # init_iter=50, as written for (with "auto"'s 15 ALS iterations the warm fit of k = 4
    # took 17 monotone iterations to reach tol and the cold one 11)
    est = ConstrainedNMF(2, signal_shape=(64, 64), navigation_shape=(24, 24), n_restarts=1,
                         max_iter=60, tol=1e-3, random_state=0, init_iter=50)
    warm = sweep_n_components(est, InMemoryData(X), [2, 3, 4])
    cold = sweep_n_components(est, InMemoryData(X), [2, 3, 4], warm_start=False)
    for i, k in enumerate([2, 3, 4]):
        recon = warm["maps"][i] @ warm["components"][i]
        assert warm["loss"][i] == pytest.approx(np.abs(X - recon).mean(), rel=1e-5)
        assert warm["components"][i].shape == (k, 64 * 64)
    # The warm-started fit of k = 4 needs fewer iterations than a cold one.
    assert warm["n_iter"][-1] <= cold["n_iter"][-1]


def test_lazy_scan_gives_the_same_estimate(small_scan, estimate):
    s, _ = small_scan
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk((8, 8, 64, 64))
    res = lazy.estimate_number_of_components(range(2, 10), **SWEEP)
    np.testing.assert_allclose(res.sweep["loss"], estimate.sweep["loss"], rtol=1e-4)
    assert res.suggested_k == estimate.suggested_k


@pytest.mark.parametrize(
    "k_range, match",
    [(range(2, 4), "at least 3"), (range(2, 5000), "impossible")],
)
def test_bad_k_range_is_refused_before_fitting(small_scan, k_range, match):
    s, _ = small_scan
    with pytest.raises(ValueError, match=match):
        s.estimate_number_of_components(k_range, **SWEEP)


def test_unknown_keyword_is_refused(small_scan):
    s, _ = small_scan
    with pytest.raises(TypeError, match="n_component"):
        s.estimate_number_of_components(range(2, 6), n_component=3, **SWEEP)


@pytest.mark.parametrize("n_crystals, seed", [(2, 1), (5, 2)])
def test_suggested_k_on_crystal_mixtures_with_a_known_k(n_crystals, seed):
    from stemnmf_hs.data import simulated_crystal_mixture

    s, truth = simulated_crystal_mixture(n_crystals, seed=seed, scan_shape=(30, 30),
                                         pattern_shape=(64, 64))
    est = s.estimate_number_of_components(range(2, 11), random_state=0,
                                          show_progressbar=False)
    assert abs(est.suggested_k - truth.n_components) <= 1, est.summary()


def test_a_fit_that_does_not_lower_the_loss_adds_no_diffraction():
    from stemnmf_hs.model_selection import suggest_k

    distinct = {k: {"ssim": np.eye(k) * 0.5 + 0.1, "gmsd": 0.2 * (1 - np.eye(k))}
                for k in (2, 3, 4, 5)}
    ks = [2, 3, 4, 5]
    # All fits distinct: without the loss the largest k wins; with a loss that rises at
    # k = 4, the suggestion is 3 and the criteria say why.
    assert suggest_k(ks, distinct)["suggested_k"] == 5
    res = suggest_k(ks, distinct, loss_k_values=ks, loss=[1.0, 0.9, 0.95, 0.85])
    assert res["suggested_k"] == 3
    np.testing.assert_array_equal(res["lowers_loss"], [True, True, False, True])
    assert "does not lower the loss" in res["reason"]
