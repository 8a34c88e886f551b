"""ConstrainedNMF as a scikit-learn estimator."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from stemnmf_hs import ConstrainedNMF
from stemnmf_hs.data import simulated_precipitates


def _toy(n_nav=(8, 9), n_sig=(12, 12), k=3, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.random((n_nav[0] * n_nav[1], k))
    H = rng.random((k, n_sig[0] * n_sig[1]))
    return (W @ H).astype(np.float32)


def test_check_estimator_unconstrained():
    est = ConstrainedNMF(
        n_restarts=2, max_iter=100, diffraction_constraint=None, map_constraint=None
    )
    results = check_estimator(est, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed


def test_fit_attributes_sorting_and_history():
    X = _toy()
    est = ConstrainedNMF(3, solver="als", signal_shape=(12, 12), navigation_shape=(8, 9),
                         n_restarts=3, max_iter=60, tol=0, random_state=0)
    maps = est.fit_transform(X)
    assert maps.shape == (72, 3) and maps.dtype == np.float32
    assert est.components_.shape == (3, 144) and est.components_.dtype == np.float32
    assert est.n_components_ == 3 and est.n_iter_ == 60
    np.testing.assert_allclose(est.components_.sum(axis=1), 1.0, rtol=1e-5)
    norms = np.linalg.norm(maps, axis=0)
    assert (np.diff(norms) <= 0).all()  # paper step 9
    for key in ("mse", "w_change", "h_change"):
        assert est.history_[key].shape == (60,)
    assert np.isnan(est.history_["w_change"][0])
    assert est.history_["w_change"][-1] < est.history_["w_change"][1]
    assert est.restart_errors_.shape == (3,)
    assert est.reconstruction_err_ == pytest.approx(est.restart_errors_.min(), rel=1e-5)
    direct = np.linalg.norm(X - maps @ est.components_)
    assert est.reconstruction_err_ == pytest.approx(direct, rel=1e-3)
    assert est.history_["mse"][-1] == pytest.approx(direct**2 / X.size, rel=1e-3)


def test_random_state_reproducible_and_restarts_matter():
    X = _toy(seed=3)
    kw = dict(signal_shape=(12, 12), navigation_shape=(8, 9), max_iter=30)
    a = ConstrainedNMF(3, random_state=1, **kw).fit(X).components_
    b = ConstrainedNMF(3, random_state=1, **kw).fit(X).components_
    c = ConstrainedNMF(3, random_state=2, **kw).fit(X).components_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_best_restart_kept():
    X = _toy(seed=5)
    kw = dict(diffraction_constraint=None, map_constraint=None, max_iter=5, tol=0,
              random_state=0)
    many = ConstrainedNMF(3, n_restarts=8, **kw).fit(X)
    assert many.reconstruction_err_ == pytest.approx(many.restart_errors_.min(), rel=1e-5)
    assert many.restart_errors_.max() > many.restart_errors_.min()


def test_tol_stops_early_and_zero_runs_all():
    X = _toy()
    kw = dict(signal_shape=(12, 12), map_constraint=None, max_iter=400, random_state=0)
    early = ConstrainedNMF(3, tol=1e-3, **kw).fit(X)
    full = ConstrainedNMF(3, tol=0, **kw).fit(X)
    assert early.n_iter_ < 400 and full.n_iter_ == 400


@pytest.mark.parametrize("solver", ["als", "mu"])
def test_solvers_fit_exact_low_rank_data(solver):
    X = _toy()
    est = ConstrainedNMF(3, solver=solver, diffraction_constraint=None, map_constraint=None,
                         n_restarts=4, max_iter=400, tol=0, random_state=0).fit(X)
    assert est.reconstruction_err_ / np.linalg.norm(X) < 0.05


def test_mu_with_constraints_runs():
    X = _toy()
    est = ConstrainedNMF(3, solver="mu", signal_shape=(12, 12), navigation_shape=(8, 9),
                         n_restarts=2, max_iter=100, random_state=0).fit(X)
    assert np.isfinite(est.components_).all() and (est.components_ >= 0).all()
    assert est.reconstruction_err_ / np.linalg.norm(X) < 0.3


def test_transform_and_inverse_transform():
    X = _toy()
    est = ConstrainedNMF(3, diffraction_constraint=None, map_constraint=None, n_restarts=2,
                         max_iter=200, random_state=0).fit(X)
    maps = est.transform(X[:5])
    assert maps.shape == (5, 3) and (maps >= 0).all()
    rec = est.inverse_transform(maps)
    assert rec.shape == (5, 144)
    assert np.linalg.norm(rec - X[:5]) / np.linalg.norm(X[:5]) < 0.05


def test_all_zero_patterns_give_no_nan():
    X = _toy()
    X[:10] = 0
    est = ConstrainedNMF(3, signal_shape=(12, 12), navigation_shape=(8, 9), n_restarts=2,
                         max_iter=30, random_state=0)
    maps = est.fit_transform(X)
    assert np.isfinite(maps).all() and np.isfinite(est.components_).all()
    unsmoothed = ConstrainedNMF(3, signal_shape=(12, 12), map_constraint=None, n_restarts=2,
                                max_iter=30, random_state=0).fit_transform(X)
    assert np.allclose(unsmoothed[:10], 0, atol=1e-3 * unsmoothed.max())
    zero = ConstrainedNMF(2, signal_shape=(12, 12), navigation_shape=(8, 9), max_iter=5)
    assert np.isfinite(zero.fit_transform(np.zeros_like(X))).all()


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        (dict(n_components=100), None, "larger than the data allow"),
        (dict(n_components=2, signal_shape=None), None, "needs the pattern geometry"),
        (dict(n_components=2, navigation_shape=None), None, "needs the scan geometry"),
        (dict(n_components=2, signal_shape=(10, 10)), None, "X has 144 features"),
        (dict(n_components=2, navigation_shape=(9, 9)), None, "X has 72 samples"),
        (dict(n_components=2, navigation_mask=np.zeros((3, 3), bool)), None,
         "navigation_mask has shape"),
        (dict(n_components=2), -np.ones((72, 144)), "Negative values"),
        (dict(n_components=2), np.full((72, 144), np.nan), "NaN"),
    ],
)
def test_bad_input_raises(kwargs, X, match):
    base = dict(signal_shape=(12, 12), navigation_shape=(8, 9), max_iter=5)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ConstrainedNMF(**base).fit(_toy() if X is None else X)


def test_signal_mask_reduces_features():
    X = _toy()
    mask = np.zeros((12, 12), bool)
    mask[5:7, 5:7] = True
    est = ConstrainedNMF(2, signal_shape=(12, 12), navigation_shape=(8, 9),
                         signal_mask=mask, max_iter=10, random_state=0)
    est.fit(X[:, ~mask.ravel()])
    assert est.components_.shape == (2, 140)


def test_compressed_restarts_split_over_threads_give_the_same_fit(monkeypatch):
    """The compressed ALS runs restart groups in threads: same result as one group."""
    from stemnmf_hs.decomposition import _solver as _nmf  # the restart threads live there

    s, _ = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(32, 32))
    X = s.data.reshape(576, -1).astype(np.float32)
    kw = dict(solver="als", signal_shape=(32, 32), navigation_shape=(24, 24), n_restarts=3,
              max_iter=25, tol=0, compression="auto", random_state=0)
    fits = []
    for groups in (1, 2, 3):
        monkeypatch.setattr(_nmf, "_blas_threads", lambda g=groups: g)
        est = ConstrainedNMF(4, **kw)
        maps = est.fit_transform(X)
        fits.append((maps, est))
    for maps, est in fits[1:]:
        np.testing.assert_allclose(est.components_, fits[0][1].components_, rtol=1e-3,
                                   atol=1e-6)
        np.testing.assert_allclose(est.restart_errors_, fits[0][1].restart_errors_, rtol=1e-4)
    # Every restart error is measured against the data; the kept one is the smallest and is
    # the error of the returned factors.
    maps, est = fits[0]
    assert est.reconstruction_err_ in est.restart_errors_
    assert est.reconstruction_err_ <= est.restart_errors_.min() * 1.001
    direct = np.linalg.norm(X - maps @ est.components_)
    assert est.reconstruction_err_ == pytest.approx(direct, rel=1e-4)
    assert len(est.history_["mse"]) == est.n_iter_ == 25 + est.refine_iter_
    # The exact refinement's last MSE is the reported error.
    assert est.history_["mse"][-1] == pytest.approx(est.reconstruction_err_**2 / X.size,
                                                    rel=1e-3)
    # A crude sketch (rank k, no power iteration) biases the fit; the exact refinement
    # iterations remove most of that bias.
    crude = dict(kw, compression=4, power_iterations=0)
    raw = ConstrainedNMF(4, refine_iter=0, **crude).fit(X)
    refined = ConstrainedNMF(4, refine_iter=5, **crude).fit(X)
    assert raw.n_iter_ == 25 and refined.n_iter_ == 30
    exact = ConstrainedNMF(4, **dict(kw, compression=None)).fit(X).reconstruction_err_
    assert raw.reconstruction_err_ - exact > 4 * (refined.reconstruction_err_ - exact)
