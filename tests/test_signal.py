"""The nmf_diffraction signal type: registration, decomposition results, errors, no mutation."""

import io
from contextlib import nullcontext, redirect_stdout

import hyperspy.api as hs
import numpy as np
import pytest

import stemnmf_hs
from stemnmf_hs import ConstrainedNMF
from stemnmf_hs.data import simulated_precipitates
from stemnmf_hs.signals import LazyNMFDiffraction2D, NMFDiffraction2D

FAST = dict(n_restarts=2, max_iter=40, random_state=0, print_info=False,
            show_progressbar=False)


@pytest.fixture
def small():
    """A small non-square simulated scan (15 x 18 positions of 32 x 40 patterns)."""
    s, truth = simulated_precipitates(scan_shape=(15, 18), pattern_shape=(32, 40), area_size=3)
    return s, truth


def test_version_and_signal_type_registered():
    assert isinstance(stemnmf_hs.__version__, str) and stemnmf_hs.__version__
    buf = io.StringIO()
    with redirect_stdout(buf):
        hs.print_known_signal_types()
    assert "nmf_diffraction" in buf.getvalue()


@pytest.mark.parametrize("start", ["diffraction", "electron_diffraction"])
def test_set_signal_type_and_lazy_types(start, tmp_path):
    s = hs.signals.Signal2D(np.ones((3, 4, 8, 8), np.float32))
    s.set_signal_type(start)
    s.set_signal_type("nmf_diffraction")
    assert isinstance(s, NMFDiffraction2D)
    assert isinstance(s.as_lazy(), LazyNMFDiffraction2D)
    s.save(tmp_path / "scan.hspy")
    assert isinstance(hs.load(tmp_path / "scan.hspy", lazy=True), LazyNMFDiffraction2D)
    assert isinstance(hs.load(tmp_path / "scan.hspy"), NMFDiffraction2D)


def test_decomposition_fills_learning_results_with_calibrated_axes(small, tmp_path):
    s, _ = small
    before = s.data.copy()
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=4, return_info=True,
                          **FAST)
    assert isinstance(est, ConstrainedNMF) and est.n_components_ == 4
    np.testing.assert_array_equal(s.data, before)
    assert s.learning_results.decomposition_algorithm == "constrained_nmf"
    factors = s.get_decomposition_factors()
    loadings = s.get_decomposition_loadings()
    assert factors.axes_manager.navigation_shape == (4,)
    assert factors.axes_manager.signal_shape == (40, 32)
    for got, want in zip(factors.axes_manager.signal_axes, s.axes_manager.signal_axes):
        assert (got.scale, got.offset, got.units) == (want.scale, want.offset, want.units)
    assert loadings.axes_manager.signal_shape == (18, 15)
    for got, want in zip(loadings.axes_manager.signal_axes, s.axes_manager.navigation_axes):
        assert (got.scale, got.offset, got.units) == (want.scale, want.offset, want.units)
    model = s.get_decomposition_model()
    rel = np.linalg.norm(model.data - s.data) / np.linalg.norm(s.data)
    assert rel < 0.5
    s.plot_decomposition_results()
    # Convergence curves and parameters are in the metadata and survive saving.
    hist = s.metadata.Signal.ConstrainedNMF.history
    assert len(hist.mse) == est.n_iter_
    s.save(tmp_path / "fit.hspy")
    back = hs.load(tmp_path / "fit.hspy")
    assert isinstance(back, NMFDiffraction2D)
    np.testing.assert_allclose(back.learning_results.factors, s.learning_results.factors)
    np.testing.assert_allclose(back.get_decomposition_loadings().data, loadings.data)
    assert back.learning_results.decomposition_algorithm == "constrained_nmf"
    assert len(back.metadata.Signal.ConstrainedNMF.history.mse) == est.n_iter_


def test_centre_taken_from_calibration(small):
    s, truth = small
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=2, return_info=True,
                          **FAST)
    assert est.center == pytest.approx(truth.center)
    s.calibration.center = (5.0, 7.0)
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=2, return_info=True,
                          **FAST)
    assert est.center == pytest.approx((5.0, 7.0))
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=2, return_info=True,
                          center=(10.0, 11.0), **FAST)
    assert est.center == pytest.approx((10.0, 11.0))


def test_uncalibrated_axes_fall_back_to_geometric_centre_with_warning():
    s = NMFDiffraction2D(np.random.default_rng(0).random((4, 5, 10, 12)).astype(np.float32))
    with pytest.warns(UserWarning, match="not calibrated"):
        est = s.decomposition(algorithm="constrained_nmf", output_dimension=2,
                              return_info=True, **FAST)
    assert est.center == pytest.approx((5.5, 4.5))


def test_masks_honoured(small):
    s, _ = small
    sig_mask = np.zeros((32, 40), bool)
    sig_mask[14:19, 18:23] = True  # direct-beam disc region (array order)
    nav_mask = np.zeros((15, 18), bool)
    nav_mask[0, :4] = True
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=3, return_info=True,
                          signal_mask=sig_mask, navigation_mask=nav_mask, **FAST)
    assert est.components_.shape == (3, 32 * 40 - sig_mask.sum())
    factors = s.get_decomposition_factors().data
    assert np.isnan(factors[:, sig_mask]).all() and np.isfinite(factors[:, ~sig_mask]).all()
    loadings = s.get_decomposition_loadings().data
    assert np.isnan(loadings[:, nav_mask]).all()
    assert np.isfinite(loadings[:, ~nav_mask]).all()
    # HyperSpy's own (x, y) order for a navigation mask is accepted too.
    s.decomposition(algorithm="constrained_nmf", output_dimension=3,
                    navigation_mask=nav_mask.T, **FAST)
    assert np.isnan(s.get_decomposition_loadings().data[:, nav_mask]).all()


def test_integer_data_not_changed(small):
    s, _ = small
    s.data = s.data.astype(np.uint16)
    before = s.data.copy()
    s.decomposition(algorithm="constrained_nmf", output_dimension=3, **FAST)
    assert s.data.dtype == np.uint16
    np.testing.assert_array_equal(s.data, before)
    assert np.isfinite(s.learning_results.factors).all()


def test_all_zero_patterns_produce_no_nan(small):
    s, _ = small
    s.data[:3] = 0
    s.decomposition(algorithm="constrained_nmf", output_dimension=3, **FAST)
    assert np.isfinite(s.learning_results.factors).all()
    assert np.isfinite(s.learning_results.loadings).all()


def test_lazy_matches_in_memory(small):
    s, _ = small
    lazy = s.as_lazy()
    lazy.decomposition(algorithm="constrained_nmf", output_dimension=3, **FAST)
    s.decomposition(algorithm="constrained_nmf", output_dimension=3, **FAST)
    # float32 sums in another order (dask chunks on one BLAS thread, the in-memory products
    # threaded): 2 of 3840 values differed by 1.6e-7 (factors' mean 7.8e-4)
    np.testing.assert_allclose(lazy.learning_results.factors, s.learning_results.factors,
                               rtol=1e-4, atol=1e-6)
    assert lazy._lazy


def test_kernel_from_probe_fwhm_uses_scan_step(small):
    s, _ = small
    est = s.decomposition(algorithm="constrained_nmf", output_dimension=2, probe_fwhm=3.0,
                          return_info=True, **FAST)
    assert est.scan_step == (1.0, 1.0) and est.probe_fwhm == 3.0


def test_other_algorithms_go_to_hyperspy_unchanged(small):
    s, _ = small
    plain = hs.signals.Signal2D(s.data.copy())
    s.decomposition(algorithm="SVD", output_dimension=3, svd_solver="full", print_info=False)
    plain.decomposition(algorithm="SVD", output_dimension=3, svd_solver="full",
                        print_info=False)
    assert s.learning_results.decomposition_algorithm == "SVD"
    np.testing.assert_allclose(np.abs(s.learning_results.factors[:, :3]),
                               np.abs(plain.learning_results.factors[:, :3]), atol=1e-3)
    s.decomposition(False, "NMF", 2, print_info=False, max_iter=50)
    assert s.learning_results.factors.shape[1] == 2


def test_estimator_object_on_any_signal(small):
    s, _ = small
    plain = hs.signals.Signal2D(s.data.copy())
    est = ConstrainedNMF(3, signal_shape=(32, 40), navigation_shape=(15, 18), n_restarts=2,
                         max_iter=30, random_state=0)
    plain.decomposition(algorithm=est, output_dimension=3, print_info=False)
    assert plain.get_decomposition_factors().data.shape == (3, 32, 40)
    # On our signal, an estimator without geometry gets it from the axes.
    bare = ConstrainedNMF(3, n_restarts=2, max_iter=30, random_state=0)
    out = s.decomposition(algorithm=bare, return_info=True, print_info=False,
                          show_progressbar=False)
    assert out.signal_shape == (32, 40) and out.navigation_shape == (15, 18)
    assert bare.get_params()["signal_shape"] is None  # the user's object is not modified


def _decompose(s, **kw):
    opts = dict(FAST)
    opts.update(kw)
    return s.decomposition(algorithm="constrained_nmf", **opts)


@pytest.mark.parametrize(
    "prepare, kwargs, error, match",
    [
        (lambda s: s, dict(), ValueError, "output_dimension .* is required"),
        (lambda s: s, dict(output_dimension=0), ValueError, "impossible"),
        (lambda s: s, dict(output_dimension=271), ValueError, "min\\(270, 1280\\)"),
        (lambda s: s, dict(output_dimension=2.5), ValueError, "impossible"),
        (lambda s: s, dict(output_dimension=2, signal_mask=np.zeros((40, 32), bool)),
         ValueError, "signal_mask has shape \\(40, 32\\)"),
        (lambda s: s, dict(output_dimension=2, navigation_mask=np.zeros((3, 3), bool)),
         ValueError, "navigation_mask has shape"),
        (lambda s: s, dict(output_dimension=2, signal_mask=np.ones((32, 40), bool)),
         ValueError, "leave no data"),
        (lambda s: s, dict(output_dimension=2, navigation_mask=np.zeros((15, 18))),
         ValueError, "must be boolean"),
        (lambda s: s, dict(output_dimension=2, bogus=1), TypeError, "bogus"),
        (lambda s: s, dict(output_dimension=2, signal_shape=(3, 3)), TypeError,
         "read from the signal"),
        (lambda s: s, dict(output_dimension=2, normalize_poissonian_noise=True), ValueError,
         "normalize_poissonian_noise"),
    ],
)
def test_bad_arguments(small, prepare, kwargs, error, match):
    s, _ = small
    before = s.data.copy()
    with pytest.raises(error, match=match):
        _decompose(prepare(s), **kwargs)
    np.testing.assert_array_equal(s.data, before)


def test_negative_values_refused_then_clipped_in_a_copy(small):
    s, _ = small
    s.data[0, 0, :2, :3] = -4.0
    before = s.data.copy()
    with pytest.raises(ValueError, match=r"6 negative value\(s\) \(minimum -4\).*clip_negative"):
        _decompose(s, output_dimension=2)
    _decompose(s, output_dimension=2, clip_negative=True)
    np.testing.assert_array_equal(s.data, before)
    assert np.isfinite(s.learning_results.factors).all()
    with pytest.raises(ValueError, match="negative"):
        _decompose(s.as_lazy(), output_dimension=2)


def test_non_finite_values_refused(small):
    s, _ = small
    s.data[1, 2, 3, 4] = np.nan
    s.data[1, 2, 3, 5] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN or infinite"):
        _decompose(s, output_dimension=2)


@pytest.mark.parametrize("shape", [(5, 8, 8), (2, 3, 4, 8, 8), (8, 8)])
def test_wrong_dimensionality_refused(shape):
    s = NMFDiffraction2D(np.ones(shape, np.float32))
    with pytest.raises(ValueError, match="2 navigation and 2 signal"):
        _decompose(s, output_dimension=1)


def test_real_files_load_and_decompose(realdata):
    for name in ("astar_sped_test1.blo", "001_4x2_6bit.mib", "002_4x2_6bit_roi128.mib",
                 "gphase_steel_nbed_subset_2x2.hspy"):
        s = hs.load(realdata / name)
        before = s.data.copy()
        s.set_signal_type("nmf_diffraction")
        assert isinstance(s, NMFDiffraction2D), name
        with pytest.warns(UserWarning) if name.endswith(("mib", "blo")) else nullcontext():
            s.decomposition(algorithm="constrained_nmf", output_dimension=2, **FAST)
        np.testing.assert_array_equal(s.data, before)
        f = s.get_decomposition_factors()
        assert f.axes_manager.signal_shape == s.axes_manager.signal_shape
        assert np.isfinite(f.data).all(), name

