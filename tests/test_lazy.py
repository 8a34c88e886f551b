"""Out-of-core decomposition: streamed dask chunks, compression, distributed workers, memory."""

import tracemalloc
import warnings

import dask
import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

from stemnmf_hs import ConstrainedNMF
from stemnmf_hs.data import simulated_precipitates

# init_iter pinned to max_iter (what "auto" gave before it scaled with max_iter): after only
# 10 ALS iterations the 30 monotone ones are still moving fast, and their choice among the
# candidate rows flips with float32 summation order (lazy vs in-memory factors then differ
# by 3 %; 5e-6 from 30 ALS iterations).
FIT = dict(output_dimension=4, n_restarts=2, max_iter=30, tol=0, random_state=0,
           print_info=False, init_iter=30)


@pytest.fixture(scope="module")
def scan():
    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(64, 64))
    return s


def _lazy(s, chunks=(8, 8, 64, 64)):
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk(chunks)
    return lazy


def _results(s):
    return (np.asarray(s.learning_results.factors), np.asarray(s.learning_results.loadings),
            s.metadata.Signal.ConstrainedNMF.reconstruction_error)


@pytest.mark.parametrize("compression", [None, "auto"])
def test_lazy_equals_in_memory(scan, compression):
    nav_mask = np.zeros((24, 24), bool)
    nav_mask[0, :4] = True
    sig_mask = np.zeros((64, 64), bool)
    sig_mask[30:34, 30:34] = True
    kw = dict(FIT, compression=compression, navigation_mask=nav_mask, signal_mask=sig_mask)
    mem = scan.deepcopy()
    mem.decomposition(algorithm="constrained_nmf", **kw)
    lazy = _lazy(scan)
    lazy.decomposition(algorithm="constrained_nmf", **kw)
    assert lazy._lazy and isinstance(lazy.data, da.Array)
    f0, l0, e0 = _results(mem)
    f1, l1, e1 = _results(lazy)
    # Masked pixels / positions read nan in both, the rest agree to float32 summation order.
    np.testing.assert_array_equal(np.isnan(f0), np.isnan(f1))
    np.testing.assert_array_equal(np.isnan(l0), np.isnan(l1))
    assert np.isnan(l1).sum() == 4 * 4 and np.isnan(f1).sum() == 16 * 4
    np.testing.assert_allclose(np.nan_to_num(f1), np.nan_to_num(f0), atol=1e-4 * np.nanmax(f0))
    np.testing.assert_allclose(np.nan_to_num(l1), np.nan_to_num(l0), atol=1e-3 * np.nanmax(l0))
    assert e1 == pytest.approx(e0, rel=1e-5)
    # HyperSpy's own accessors work on the lazy result, with the scan axes.
    loadings = lazy.get_decomposition_loadings()
    assert loadings.axes_manager.signal_shape == (24, 24)
    assert loadings.axes_manager.signal_axes[0].units == scan.axes_manager[0].units


def test_compressed_error_within_one_percent_of_exact(scan):
    errs = {}
    for compression in (None, "auto"):
        s = scan.deepcopy()
        s.decomposition(algorithm="constrained_nmf", compression=compression,
                        **dict(FIT, max_iter=60))
        errs[compression] = s.metadata.Signal.ConstrainedNMF.reconstruction_error
    assert errs["auto"] <= 1.01 * errs[None]


def test_lazy_refuses_hyperspy_options_it_cannot_stream(scan):
    with pytest.raises(ValueError, match="reproject"):
        _lazy(scan).decomposition(algorithm="constrained_nmf", reproject="navigation", **FIT)


def test_distributed_client_runs_the_chunks_on_its_workers(scan):
    distributed = pytest.importorskip("distributed")
    mem = scan.deepcopy()
    mem.decomposition(algorithm="constrained_nmf", compression="auto", **FIT)
    lazy = _lazy(scan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's "large graph" notes
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            with distributed.get_task_stream(client) as ts:
                lazy.decomposition(algorithm="constrained_nmf", compression="auto", **FIT)
            addresses = set(client.scheduler_info()["workers"])
    # The products with the data ran as tasks on the cluster's worker processes.
    chunk_tasks = [t for t in ts.data if "chunk_times" in t["key"][0]
                   or "matmul" in t["key"][0]]
    assert chunk_tasks
    assert {t["worker"] for t in chunk_tasks} <= addresses
    f0, l0, e0 = _results(mem)
    f1, l1, e1 = _results(lazy)
    # The workers' tree reduction sums in another order than one in-memory product; over the
    # sketch, the iterations and the refinement that moves single pixels by up to ~1e-3 of the
    # largest one (measured 1e-3).
    np.testing.assert_allclose(f1, f0, atol=3e-3 * f0.max())
    assert e1 == pytest.approx(e0, rel=1e-5)


def _generated_scan(ny=64, nx=64, py=64, px=64):
    """A dask scan generated chunk by chunk (one scan row per chunk), never held whole."""
    rng0 = np.random.default_rng(0)
    diffs = rng0.random((3, py * px)).astype(np.float32)

    def row(block_id=None):
        i = block_id[0]
        rng = np.random.default_rng(1000 + i)
        maps = rng.random((nx, 3)).astype(np.float32) * 50
        return rng.poisson(maps @ diffs).astype(np.float32).reshape(1, nx, py, px)

    return da.map_blocks(row, chunks=((1,) * ny, (nx,), (py,), (px,)), dtype=np.float32)


@pytest.mark.parametrize("compression", [None, "auto"])
def test_scan_larger_than_the_memory_limit_is_streamed(compression):
    data = _generated_scan()
    limit = data.nbytes // 2  # 32 MiB for a 64 MiB float32 scan
    s = hs.signals.Signal2D(data).as_lazy()
    s.set_signal_type("nmf_diffraction")
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="threads"):
            s.decomposition(algorithm="constrained_nmf", output_dimension=3,
                            diffraction_constraint=None, n_restarts=2, max_iter=4, tol=0,
                            compression=compression, center=(32, 32), random_state=0,
                            print_info=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak / 2**20:.1f} MiB >= limit {limit / 2**20:.0f} MiB"
    assert s.learning_results.loadings.shape == (64 * 64, 3)


def test_estimator_streams_a_dask_matrix_and_checks_it():
    X = da.from_array(np.abs(np.random.default_rng(0).normal(size=(60, 40))).astype(np.float32),
                      chunks=(15, 40))
    est = ConstrainedNMF(3, diffraction_constraint=None, map_constraint=None, n_restarts=2,
                         max_iter=20, random_state=0)
    maps = est.fit_transform(X)
    ref = ConstrainedNMF(3, diffraction_constraint=None, map_constraint=None, n_restarts=2,
                         max_iter=20, random_state=0).fit(X.compute())
    np.testing.assert_allclose(est.components_, ref.components_, atol=1e-4)
    lazy_maps = est.transform(X)
    assert isinstance(lazy_maps, da.Array)
    np.testing.assert_allclose(lazy_maps.compute(), maps, atol=1e-2 * maps.max())
    with pytest.raises(ValueError, match="Negative"):
        est.fit(X - 1.0)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(da.where(X > 1.0, np.nan, X))


@pytest.mark.parametrize("dtype, masked, budget", [
    (np.float32, False, 0.25),  # unfolding a float32 scan is a view: no copy at all
    (np.uint16, True, 1.25),    # integers + masks: one float32 copy, nothing else scan-sized
])
def test_in_memory_fit_holds_at_most_one_float32_copy(dtype, masked, budget):
    rng = np.random.default_rng(0)
    data = rng.poisson(2.0, size=(64, 64, 64, 64)).astype(dtype)
    s = hs.signals.Signal2D(data)
    s.set_signal_type("nmf_diffraction")
    kw = {}
    if masked:
        sig_mask = np.zeros((64, 64), bool)
        sig_mask[:2] = True
        nav_mask = np.zeros((64, 64), bool)
        nav_mask[0, 0] = True
        kw = dict(signal_mask=sig_mask, navigation_mask=nav_mask)
    float32_size = data.size * 4
    tracemalloc.start()
    try:
        s.decomposition(algorithm="constrained_nmf", output_dimension=3, n_restarts=2,
                        max_iter=2, tol=0, diffraction_constraint=None, center=(32, 32),
                        random_state=0, print_info=False, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < budget * float32_size, f"peak {peak / float32_size:.2f} x the float32 scan"
