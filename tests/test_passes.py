"""Pass budget of the solver (issue 17): how many times each stage reads the whole data.

The operators count every read of the data (``_passes.py``); these tests pin the budget of
known configurations to the numbers the algorithms imply, so that a change that adds a pass
(or fuses one away) shows up here.  Small matrices: a few seconds in all.
"""

import threading

import dask
import dask.array as da
import numpy as np
import pytest

from stemnmf_hs import ConstrainedNMF
from stemnmf_hs.decomposition import as_operator, sketch, sweep_n_components
from stemnmf_hs.decomposition._passes import count_passes, mark_stage

NAV, SIG = (8, 8), (10, 10)


@pytest.fixture(scope="module")
def counts():
    """``(64, 100)`` uint16 counts of rank 3."""
    rng = np.random.default_rng(0)
    return (rng.random((64, 3)) @ rng.random((3, 100)) * 50).astype(np.uint16)


def _data(counts, kind):
    if kind == "dask":
        return da.from_array(counts, chunks=(16, 100))
    return counts if kind == "uint16" else counts.astype(np.float32)


def _est(**params):
    base = {"n_components": 3, "signal_shape": SIG, "navigation_shape": NAV,
            "n_restarts": 2, "max_iter": 4, "tol": 0, "random_state": 0}
    return ConstrainedNMF(**{**base, **params})


@pytest.mark.parametrize("kind", ["uint16", "float32", "dask"])
@pytest.mark.parametrize("power, refine", [(2, 3), (1, 0)])
def test_compressed_paper_budget(counts, kind, power, refine):
    """Compressed ALS: statistics 1, sketch 2 + 2 p, iterations 0, scoring 1, 2 per refinement."""
    est = _est(solver="als", compression="auto", power_iterations=power, refine_iter=refine)
    with count_passes() as passes:
        est.fit(_data(counts, kind))
    expected = {"init": 1, "sketch": 2 + 2 * power, "iterations": 0, "scoring": 1}
    if refine:
        expected["refinement"] = 2 * refine
    assert passes.by_stage == expected
    assert passes.total == sum(expected.values())
    assert passes.by_kind["stats"] == 1


@pytest.mark.parametrize("kind", ["uint16", "dask"])
def test_exact_paper_budget_follows_iterations(counts, kind):
    """Exact ALS: two passes per iteration run, also when ``tol`` stops it early."""
    est = _est(solver="als", compression=None, max_iter=30, tol=1e-2)
    with count_passes() as passes:
        est.fit(_data(counts, kind))
    assert 1 < est.n_iter_ < 30
    assert passes.by_stage == {"init": 1, "iterations": 2 * est.n_iter_}
    assert passes.by_kind == {"stats": 1, "matmat": est.n_iter_, "rmatmat": est.n_iter_}


@pytest.mark.parametrize("kind", ["uint16", "dask"])
def test_default_solver_compressed_budget(counts, kind):
    """Default solver, compressed: the sketch first (a dask scan's statistics ride on its
    first product), no scoring pass (the ALS start's restarts are ranked on the sketch), 2
    per refinement iteration, and one pass for the error when the uniqueness rule moved the
    factors."""
    est = _est(compression="auto", refine_iter=2)
    with count_passes() as passes:
        est.fit(_data(counts, kind))
    stages = passes.by_stage
    assert stages["sketch"] == 6
    assert stages["iterations"] == 0
    assert "scoring" not in stages
    assert stages["refinement"] == 4
    assert stages["init"] == (0 if kind == "dask" else 1)
    # the error pass after the uniqueness rule: "polish" once the solver laps after it
    moved = stages.get("other", 0) + stages.get("polish", 0)
    assert moved == (1 if est.uniqueness_change_ > 0 else 0)
    assert passes.total == sum(stages.values())


def test_operator_counts_its_own_passes(counts):
    op = as_operator(counts.astype(np.float32))
    op.stats()
    op.stats()  # cached: no second pass
    op.matmat(np.ones((100, 2), np.float32))
    sk = sketch(op, 4, 1, np.random.RandomState(0))
    assert op.passes == 1 + 1 + 4
    sk.matmat(np.ones((100, 2), np.float32))
    sk.rmatmat(np.ones((64, 2), np.float32))
    assert (sk.passes, op.passes) == (0, 6)  # products of the sketch read no data


def test_dask_statistics_ride_on_the_first_product(counts):
    op = as_operator(da.from_array(counts, chunks=(16, 100)))
    with count_passes() as passes:
        op.matmat(np.ones((100, 2), np.float32))
        op.stats()
    assert passes.by_kind == {"matmat": 1} and op.passes == 1


def test_sweep_shares_one_sketch(counts):
    """A compressed sweep sketches once; each k adds its scoring and refinement, and one
    pass after the last fit gives every k's loss."""
    ks = [2, 3, 4]
    est = _est(solver="als", compression="auto", power_iterations=1, refine_iter=1,
               n_restarts=1, max_iter=3)
    with count_passes() as passes:
        sweep_n_components(est, counts, ks)
    # "init": the statistics, read once (by the first fit) and cached on the data operator
    assert passes.by_stage == {"sketch": 4, "init": 1, "iterations": 0, "scoring": len(ks),
                               "refinement": 2 * len(ks), "loss": 1}


@pytest.mark.parametrize("kind", ["uint16", "dask"])
def test_default_sweep_reads_the_data_once_after_the_sketch(counts, kind):
    """The sweep's monotone fits (no refinement) rank their restarts and estimate the error
    after the uniqueness rule on their sketch; the exact error comes from the loss's pass:
    the sketch and one loss pass for all k, nothing else."""
    ks = [2, 3, 4]
    est = _est(compression="auto", power_iterations=1, refine_iter=0, init_iter=2)
    with count_passes() as passes:
        out = sweep_n_components(est, _data(counts, kind), ks)
    stages = {key: n for key, n in passes.by_stage.items() if n}
    assert stages == {"sketch": 4, "loss": 1,
                      **({} if kind == "dask" else {"init": 1})}
    X = counts.astype(np.float64)
    exact = [np.linalg.norm(X - m.astype(np.float64) @ c) for m, c in
             zip(out["maps"], out["components"])]
    np.testing.assert_allclose(out["error"], exact, rtol=1e-5)


def test_sketch_only_fit_reads_no_data_for_its_error(counts):
    """``refine_iter=0``: ``reconstruction_err_`` from the data's energy and the sketch's
    cross term, with no further pass over the data, close to the exact error."""
    # Poisson noise outside the sketch's range: the sketch's own error is 27 % too small
    noisy = np.random.default_rng(1).poisson(counts / 10.0).astype(np.uint16)
    est = _est(compression="auto", refine_iter=0, init_iter=2, random_state=1)
    with count_passes() as passes:
        maps = est.fit_transform(noisy)
    assert est.uniqueness_change_ > 0  # the rule moved the factors: their error is new
    assert passes.by_stage.get("polish", 0) == 0 and passes.by_stage.get("other", 0) == 0
    exact = np.linalg.norm(noisy - maps.astype(np.float64) @ est.components_)
    assert est.reconstruction_err_ == pytest.approx(exact, rel=0.01)
    in_sketch = np.sqrt(est.history_["mse"][-1] * noisy.size)
    assert in_sketch < 0.9 * exact


def test_counters_nest_and_stages_close(counts):
    op = as_operator(counts)
    with count_passes() as outer:
        op.rmatmat(np.ones((64, 1), np.float32))
        with count_passes() as inner:
            op.matmat(np.ones((100, 1), np.float32))
            mark_stage("a")
        mark_stage("b")
    assert inner.by_stage == {"a": 1}
    assert outer.by_stage == {"a": 2, "b": 0}
    assert (outer.total, inner.total) == (2, 1)


def test_uint16_chunks_convert_by_row_blocks(counts, monkeypatch):
    """A uint16 dask chunk is multiplied block by block through a reused float32 buffer
    (one block's bytes, not the chunk's), with the float32 result of a whole conversion."""
    from stemnmf_hs.decomposition import _chunks

    monkeypatch.setattr(_chunks, "_CONVERT_BYTES", 64 * 100 * 4)  # blocks of 64 rows
    monkeypatch.setattr(_chunks, "_BUFFERS", threading.local())
    big = np.tile(counts, (3, 1))[:150]  # chunks of 100 and 50 rows: blocks 64 + 36, 50
    op = as_operator(da.from_array(big, chunks=(100, 100)))
    assert op.X.dtype == np.float32 and op._raw.dtype == np.uint16
    rng = np.random.default_rng(1)
    B, Y = rng.random((100, 5), np.float32), rng.random((150, 5), np.float32)
    ref = big.astype(np.float64)
    np.testing.assert_allclose(op.matmat(B), ref @ B, rtol=2e-6)
    np.testing.assert_allclose(op.rmatmat(Y), ref.T @ Y, rtol=2e-6)
    assert op.stats() == pytest.approx((float((ref ** 2).sum()), float(ref.mean())))
    with dask.config.set(scheduler="synchronous"):
        op.matmat(B)
    assert _chunks._BUFFERS.convert.size == 64 * 100  # one 64-row block, reused


def test_dask_products_do_not_depend_on_the_blas_threads():
    """Every chunk product runs on single-threaded BLAS, as on a dask.distributed worker:
    the threaded scheduler then gives the numbers a cluster gives, bit for bit (OpenBLAS's
    two-thread sums differ in the last bits)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.poisson(0.6, (512, 8192)).astype(np.uint16)
    B, Y = rng.random((8192, 40), np.float32), rng.random((512, 40), np.float32)
    op = as_operator(da.from_array(x, chunks=(256, 8192)))
    with threadpool_limits(limits=1, user_api="blas"):
        parts = [x[i:i + 256].astype(np.float32) for i in (0, 256)]
        ref_a = np.concatenate([p @ B for p in parts])
        ref_b = Y[:256].T @ parts[0] + Y[256:].T @ parts[1]
    assert np.array_equal(op.matmat(B), ref_a)
    assert np.array_equal(op.rmatmat(Y), ref_b.T)


def test_estimator_reports_its_passes_by_stage():
    X = np.random.default_rng(0).random((20, 9)).astype(np.float32)
    est = ConstrainedNMF(2, solver="als", diffraction_constraint=None, map_constraint=None,
                         n_restarts=2, max_iter=3, tol=0, compression=4, power_iterations=1,
                         refine_iter=2, random_state=0).fit(X)
    # statistics 1, sketch 2 + 2 x 1, scoring 1, refinement 2 x 2, the polish's error 1
    assert est.passes_ == {"init": 1, "sketch": 4, "iterations": 0, "scoring": 1,
                           "refinement": 4, "polish": 1}
