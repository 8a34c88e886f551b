#!/usr/bin/env python
"""Benchmark of ``stemnmf_hs.ConstrainedNMF``: the paper's protocol and an out-of-core scan.

One run prints two tables.

**Dataset A** -- the protocol of Kimoto et al., Sci. Rep. 15, 39143 (2025): k = 30
components, 500 iterations, 10 random restarts, both domain constraints, on a simulated
58 x 58 scan of 128 x 128 diffraction patterns (the size of the paper's ZrCuAl experiment;
:func:`stemnmf_hs.data.simulate_crystal_mixture` with 29 crystals).  Rows:

* ``ConstrainedNMF`` in exact mode (the paper row) and in compressed mode
  (``compression="auto"``: the iterations run on a randomized sketch of rank k + 10),
  the package's default monotone solver (``solver="hals"``) in both modes,
  plus two variants (no constraints; the multiplicative-update solver);
* ``sklearn.decomposition.NMF`` (``solver="cd"`` and ``"mu"``, ``init="random"``,
  ``tol=0``), one fit per restart, so the *total* iteration count (restarts x iterations)
  is the same;
* HyperSpy's ``s.decomposition(algorithm="NMF", ...)`` (scikit-learn's cd solver behind
  HyperSpy's unfolding);
* a matrix-multiplication bound: the time the two data products of an iteration
  (``maps^T X`` and ``X diffractions^T``, 2 x 2 N F (R k) FLOPs) take at the sgemm rate this
  machine achieves on exactly those shapes, measured in the same run.

**Dataset B** -- out of core: a 256 x 256 scan of 128 x 128 uint16 patterns (2 GiB) written
to a zarr array chunk by chunk (the generator never holds the scan), loaded lazily
(``dask.array.from_zarr`` -> HyperSpy ``Signal2D`` -> ``as_lazy()`` ->
``set_signal_type("nmf_diffraction")``) and decomposed with ``compression="auto"``; the
chunks are streamed, so peak memory stays far below the data size.

Every row runs in its own Python subprocess, and its peak resident memory is the ``VmHWM``
of that process.  The footer says whether each target of the project's "scale and speed"
issue is met.

This is a script, not a test::

    python benchmarks/bench_constrained_nmf.py --quick                   # smoke run, ~1 min
    python benchmarks/bench_constrained_nmf.py --sklearn-iterations 50   # full protocol
    python benchmarks/bench_constrained_nmf.py --skip-ooc                # dataset A only
    python benchmarks/bench_constrained_nmf.py --ooc-only                # dataset B only

See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

PATTERN_SHAPE = (128, 128)
RESULT_TAG = "@@BENCH_RESULT@@"
ELECTRONS = 1e4
#: Bumped whenever the zarr content of dataset B changes (an old store is then rebuilt).
OOC_FORMAT = 1

# Targets of the "scale and speed" issue (1.5x), tightened by issue 17 (1.15x; the
# compressed mode >= 50x cd at the protocol's 500 iterations and >= 40x at 50, at equal
# error +-1 %), which holds them for the package's default solver too.
TARGET_EXACT_X_BOUND = 1.15
TARGET_COMPRESSED_SPEEDUP = 50.0
TARGET_COMPRESSED_SPEEDUP_SHORT = 40.0  # at <= 50 iterations
TARGET_COMPRESSED_ERR = 0.01
TARGET_OOC_PEAK_MIB = 3 * 1024


# ----------------------------------------------------------------------------- data
def _expectation(maps, diffractions, rows=slice(None)):
    """Noiseless ``(n_rows, F)`` float32 expectation of the positions ``rows``."""
    K = maps.shape[0]
    m = np.ascontiguousarray(maps.reshape(K, -1)[:, rows].T, dtype=np.float32)
    E = m @ diffractions.reshape(K, -1).astype(np.float32)
    np.maximum(E, 0, out=E)
    return E


def simulate_dataset(scan, n_crystals=29, electrons=ELECTRONS, seed=0):
    """Dataset A from :func:`stemnmf_hs.data.simulate_crystal_mixture`.

    Returns ``X`` ``(scan*scan, 128*128)`` float32 Poisson counts, the noiseless expectation
    (float32, same shape) and a short description.
    """
    from stemnmf_hs.data import simulate_crystal_mixture

    truth = simulate_crystal_mixture(
        scan_shape=(scan, scan), pattern_shape=PATTERN_SHAPE, n_crystals=n_crystals,
        electrons_per_pattern=electrons, seed=seed, noise=True, dtype=np.float32,
    )
    N, F = scan * scan, PATTERN_SHAPE[0] * PATTERN_SHAPE[1]
    X = np.ascontiguousarray(truth.data.reshape(N, F))
    E = _expectation(truth.maps, truth.diffractions)
    desc = (
        f"{scan}x{scan} scan of {PATTERN_SHAPE[0]}x{PATTERN_SHAPE[1]} patterns "
        f"(stemnmf_hs.data.simulate_crystal_mixture): amorphous matrix + {n_crystals} "
        f"random-lattice spot patterns ({n_crystals + 1} true components), smooth blob maps, "
        f"Poisson noise at {electrons:.0e} e-/pattern, float32, seed {seed}"
    )
    return X, E, desc


def _ooc_params(args):
    return {
        "format": OOC_FORMAT,
        "scan": int(args.ooc_scan),
        "pattern": list(PATTERN_SHAPE),
        "n_crystals": int(args.crystals),
        "electrons": ELECTRONS,
        "seed": int(args.seed),
        "chunk_rows": int(args.ooc_chunk_rows),
    }


def _open_complete_zarr(path, params):
    """The zarr array at ``path`` if it is a complete store made with ``params``, else None."""
    import zarr

    if not os.path.isdir(path):
        return None
    try:
        z = zarr.open_array(path, mode="r")
    except (OSError, ValueError, KeyError):  # not a (readable) zarr array
        return None
    attrs = z.attrs.asdict()
    if attrs.get("complete") and attrs.get("params") == params:
        return z
    return None


def build_ooc_zarr(path, params):
    """Write dataset B into a zarr array, one chunk (``chunk_rows`` scan rows) at a time.

    The same generator as dataset A (``simulate_crystal_mixture``: amorphous matrix + random
    lattices with smooth blob maps), at ``scan x scan`` probe positions.  The full-size
    expectation is never formed: ``simulate_crystal_mixture`` draws the lattices first and the
    blobs second, and rendering consumes no random numbers, so the diffractions of a
    ``(2, 2)`` scan and the maps of a ``(scan, scan)`` scan of minimal ``(32, 32)`` patterns
    with the same seed are exactly those of the full-size call.  Each block of one scan row
    then gets its expectation ``maps[:, rows]^T @ diffractions``, Poisson noise from its own
    seeded generator (``default_rng([seed, row])``) and is stored as uint16.

    Returns the store's attributes (including ``sum_sq`` = ||X||_F^2 and ``noise_sq`` =
    ||X - E[X]||_F^2, accumulated block by block).
    """
    import zarr

    from stemnmf_hs.data import simulate_crystal_mixture

    scan, (py, px) = params["scan"], params["pattern"]
    n, seed, e = params["n_crystals"], params["seed"], params["electrons"]
    rows = params["chunk_rows"]
    diffs = simulate_crystal_mixture(
        scan_shape=(2, 2), pattern_shape=(py, px), n_crystals=n, electrons_per_pattern=e,
        seed=seed, noise=False,
    ).diffractions
    maps = simulate_crystal_mixture(
        scan_shape=(scan, scan), pattern_shape=(32, 32), n_crystals=n,
        electrons_per_pattern=e, seed=seed, noise=False,
    ).maps
    if os.path.exists(path):
        shutil.rmtree(path)
    z = zarr.open_array(path, mode="w", shape=(scan, scan, py, px),
                        chunks=(rows, scan, py, px), dtype="u2")
    sum_sq = noise_sq = 0.0
    vmax = 0
    n_clipped = 0
    for c0 in range(0, scan, rows):
        c1 = min(scan, c0 + rows)
        chunk = np.empty((c1 - c0, scan, py, px), dtype=np.uint16)
        for r in range(c0, c1):
            E = _expectation(maps, diffs, slice(r * scan, (r + 1) * scan))   # (scan, F)
            counts = np.random.default_rng([seed, r]).poisson(E)             # int64
            sum_sq += float(np.einsum("ij,ij->", counts, counts, dtype=np.float64))
            diff = counts - E.astype(np.float64)
            noise_sq += float(np.einsum("ij,ij->", diff, diff))
            vmax = max(vmax, int(counts.max()))
            n_clipped += int((counts > 65535).sum())
            chunk[r - c0] = np.minimum(counts, 65535).reshape(scan, py, px)
        z[c0:c1] = chunk
    attrs = {"params": params, "sum_sq": sum_sq, "noise_sq": noise_sq, "max_count": vmax,
             "n_clipped": n_clipped, "center": [float(px // 2), float(py // 2)],
             "complete": True}
    z.attrs.update(attrs)
    return attrs


# ----------------------------------------------------------------------------- worker side
def _rss_peak_mib():
    """Peak resident memory of this process so far, MiB.

    ``VmHWM`` of ``/proc/self/status`` (Linux) belongs to the process image and restarts at
    ``exec``; ``ru_maxrss`` would also count the parent's peak inherited through ``fork``
    (it is only the fallback).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rel_error(X, W, H, x_norm):
    """``||X - W H||_F / ||X||_F`` in float64, chunked over rows."""
    W = np.asarray(W, dtype=np.float32)
    H = np.asarray(H, dtype=np.float32)
    s = 0.0
    for i in range(0, X.shape[0], 512):
        r = X[i:i + 512] - W[i:i + 512] @ H
        s += float(np.einsum("ij,ij->", r, r, dtype=np.float64))
    return float(np.sqrt(s) / x_norm)


def _time_gemms(X, rk, repeats=3):
    """Best-of-``repeats`` time of the estimator's two data products with ``R*k = rk``."""
    N, F = X.shape
    rng = np.random.default_rng(1)
    D = rng.random((rk, F), dtype=np.float32)    # stacked diffractions (R*k, F)
    Mt = rng.random((rk, N), dtype=np.float32)   # stacked maps, transposed (R*k, N)
    X @ D.T  # warm-up
    best_a = best_b = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        X @ D.T                                  # (N, F) @ (F, R k)   = X D^T
        best_a = min(best_a, time.perf_counter() - t0)
        t0 = time.perf_counter()
        Mt @ X                                   # (R k, N) @ (N, F)   = M^T X
        best_b = min(best_b, time.perf_counter() - t0)
    flops = 2.0 * N * F * rk
    return {"t_xdt": best_a, "t_mtx": best_b, "gflops_xdt": flops / best_a / 1e9,
            "gflops_mtx": flops / best_b / 1e9,
            "gflops": 2 * flops / (best_a + best_b) / 1e9}


def _stage_times(est):
    """Seconds of the sketch and of the iterations of a fit, from ``est.timings_``.

    The estimator records the wall time of its stages itself (``ConstrainedNMF.timings_``);
    the rest of the fit (``wall - sketch - iterations``) is the final exact stage: the data
    statistics, one pass ``X D^T`` for every restart (exact map update, exact error, choice of
    the kept restart) and the ``refine_iter`` exact iterations of the kept restart.
    """
    return est.timings_["sketch"], est.timings_["iterations"]


def _profile_text(prof, n=24):
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(n)
    return buf.getvalue()


def run_worker(spec):
    import warnings

    warnings.filterwarnings("ignore")
    kind = spec["kind"]
    out = {"kind": kind}

    if kind == "ooc_gen":
        params = spec["params"]
        t0 = time.perf_counter()
        c0 = _cpu_seconds()
        z = _open_complete_zarr(spec["path"], params)
        if z is not None:
            attrs = z.attrs.asdict()
            out["reused"] = True
        else:
            attrs = build_ooc_zarr(spec["path"], params)
            out["reused"] = False
            import zarr

            z = zarr.open_array(spec["path"], mode="r")
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        out["rss_peak"] = out["rss_base"] = _rss_peak_mib()
        out["attrs"] = attrs
        out["shape"], out["chunks"] = list(z.shape), list(z.chunks)
        out["nbytes"], out["nbytes_stored"] = int(z.nbytes), int(z.nbytes_stored)
        out["compressor"] = repr(z.compressor)
        return out

    if kind == "ooc_fit":
        return _run_ooc_fit(spec, out)

    X = np.load(spec["data"])
    x_norm = float(np.sqrt(np.einsum("ij,ij->", X, X, dtype=np.float64)))
    k, iters, fits = spec["k"], spec["iters"], spec["fits"]

    if kind == "bound":
        try:
            from threadpoolctl import threadpool_info

            out["blas"] = [
                f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, "
                f"{d.get('num_threads')} threads)"
                for d in threadpool_info() if d.get("user_api") == "blas"
            ]
        except Exception:  # pragma: no cover - informational only
            out["blas"] = []
        out.update(_time_gemms(X, spec["rk"]))
        out["rss_base"] = out["rss_peak"] = _rss_peak_mib()
        return out

    if kind == "cnmf":
        from sklearn.base import clone

        from stemnmf_hs import ConstrainedNMF

        est = ConstrainedNMF(
            k,
            solver=spec["solver"],
            diffraction_constraint=spec["dc"],
            map_constraint=spec["mc"],
            signal_shape=PATTERN_SHAPE,
            navigation_shape=(spec["scan"], spec["scan"]),
            n_restarts=fits,
            max_iter=iters,
            tol=0,
            compression=spec.get("compression"),
            random_state=0,
        )
        if spec.get("warmup", True):  # load the compiled kernels (numba cache), warm BLAS
            side = min(16, spec["scan"])
            small = X.reshape(spec["scan"], spec["scan"], -1)[:side, :side]
            small = small.reshape(side * side, -1)
            clone(est).set_params(n_components=min(k, 4), navigation_shape=(side, side),
                                  n_restarts=2, max_iter=3).fit_transform(small)
        rss_base = _rss_peak_mib()
        prof = None
        if spec.get("profile"):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        c0, t0 = _cpu_seconds(), time.perf_counter()
        maps = est.fit_transform(X)
        wall = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        if prof is not None:
            prof.disable()
        if spec.get("compression") is not None:
            out["sketch_s"], out["iter_s"] = _stage_times(est)
            out["sketch_rank"], out["refine_iter"] = est.sketch_rank_, est.refine_iter_
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["wall"] = wall
        out["n_iter"] = int(est.n_iter_)
        out["err"] = _rel_error(X, maps, est.components_, x_norm)
        out["err_est"] = float(est.reconstruction_err_) / x_norm
        if prof is not None:
            out["profile"] = _profile_text(prof)
        return out

    if kind == "sklearn":
        from sklearn.decomposition import NMF

        if spec.get("warmup", True):
            NMF(min(k, 4), solver=spec["solver"], init="random", max_iter=3,
                random_state=0).fit_transform(X[:256])
        rss_base = _rss_peak_mib()
        best = None
        n_iter = []
        c0, t0 = _cpu_seconds(), time.perf_counter()
        for r in range(fits):
            est = NMF(k, solver=spec["solver"], init="random", tol=0.0, max_iter=iters,
                      random_state=r)
            W = est.fit_transform(X)
            n_iter.append(int(est.n_iter_))
            if best is None or est.reconstruction_err_ < best[0]:
                best = (est.reconstruction_err_, W, est.components_)
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["n_iter"] = int(min(n_iter))
        out["err"] = _rel_error(X, best[1], best[2], x_norm)
        return out

    if kind == "hyperspy":
        import hyperspy.api as hs

        s = hs.signals.Signal2D(X.reshape(spec["scan"], spec["scan"], *PATTERN_SHAPE))
        rss_base = _rss_peak_mib()
        c0, t0 = _cpu_seconds(), time.perf_counter()
        for r in range(fits):
            s.decomposition(algorithm="NMF", output_dimension=k, max_iter=iters, tol=0,
                            init="random", random_state=r, print_info=False)
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["n_iter"] = iters
        lr = s.learning_results
        out["err"] = _rel_error(X, lr.loadings, np.asarray(lr.factors).T, x_norm)
        return out

    raise ValueError(f"unknown worker kind {kind!r}")


def _run_ooc_fit(spec, out):
    """Dataset B: lazy load from zarr, streamed decomposition in compressed mode."""
    import dask.array as da
    import hyperspy.api as hs
    import zarr

    attrs = zarr.open_array(spec["path"], mode="r").attrs.asdict()
    client = cluster = None
    if spec.get("distributed"):
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=spec["dist_workers"],
                               threads_per_worker=spec["dist_threads"], processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        arr = da.from_zarr(spec["path"])
        s = hs.signals.Signal2D(arr).as_lazy()
        if spec.get("hyperspy_nmf"):
            return _run_ooc_hyperspy_nmf(spec, s, arr, attrs, out)
        s.set_signal_type("nmf_diffraction")
        rss_base = _rss_peak_mib()
        c0, t0 = _cpu_seconds(), time.perf_counter()
        est = s.decomposition(
            algorithm="constrained_nmf", output_dimension=spec["k"],
            compression=spec["compression"], n_restarts=spec["fits"],
            max_iter=spec["iters"], tol=0, random_state=0,
            center=tuple(attrs["center"]), print_info=False, return_info=True,
        )
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        out["sketch_s"], out["iter_s"] = _stage_times(est)
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["n_iter"] = int(est.n_iter_)
        out["sketch_rank"], out["refine_iter"] = est.sketch_rank_, est.refine_iter_
        out["err"] = float(est.reconstruction_err_) / float(np.sqrt(attrs["sum_sq"]))
        out["floor"] = float(np.sqrt(attrs["noise_sq"] / attrs["sum_sq"]))
        out["loadings_shape"] = list(np.shape(s.learning_results.loadings))
        if client is not None:
            workers = client.run(_rss_peak_mib)
            out["worker_rss"] = sorted(float(v) for v in workers.values())
            out["worker_cpu"] = float(sum(client.run(_cpu_seconds).values()))
            # The client process's own peak plus every worker's.
            out["rss_peak_total"] = out["rss_peak"] + sum(out["worker_rss"])
    finally:
        if client is not None:
            client.close()
            cluster.close()
    return out


def _run_ooc_hyperspy_nmf(spec, s, arr, attrs, out):
    """Dataset B's peer: HyperSpy's lazy ``decomposition(algorithm="NMF")`` (scikit-learn's
    ``MiniBatchNMF``, one ``partial_fit`` per chunk: one epoch), then its error in one
    streamed pass (``k_component_loss(..., return_error=True)``, not timed)."""
    from stemnmf_hs.decomposition import k_component_loss

    rss_base = _rss_peak_mib()
    c0, t0 = _cpu_seconds(), time.perf_counter()
    s.change_dtype("float32")  # HyperSpy decomposes floating-point data only (lazy: per chunk)
    s.decomposition(algorithm="NMF", output_dimension=spec["k"], print_info=False)
    factors = np.asarray(s.learning_results.factors, dtype=np.float32)    # (F, k)
    loadings = np.asarray(s.learning_results.loadings, dtype=np.float32)  # (N, k)
    out["wall"] = time.perf_counter() - t0
    out["cpu"] = _cpu_seconds() - c0
    out["rss_peak"], out["rss_base"] = _rss_peak_mib(), rss_base
    X = arr.reshape(loadings.shape[0], factors.shape[0])
    _, err = k_component_loss(X, (loadings, factors.T), return_error=True)
    out["err"] = float(err) / float(np.sqrt(attrs["sum_sq"]))
    out["n_iter"] = 1
    out["peer"] = True
    return out


# ----------------------------------------------------------------------------- driver side
def _busy_jiffies():
    """Busy CPU time of the whole machine so far (``/proc/stat``), clock ticks; or None."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f[:8]) - idle


def _launch(spec, verbose=False):
    """Run one row in a fresh interpreter; adds ``others``: other processes' busy cores."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    j0, ru0, t0 = _busy_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN), \
        time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    j1, ru1 = _busy_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if verbose and proc.stderr:
        sys.stderr.write(proc.stderr)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            if j0 is not None and j1 is not None and wall > 0:
                machine = (j1 - j0) / os.sysconf("SC_CLK_TCK")
                own = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
                res["others"] = max(0.0, (machine - own) / wall)
            return res
    sys.stderr.write(f"  worker failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}\n")
    return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(v, spec):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return format(v, spec)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark ConstrainedNMF (Kimoto et al. 2025 protocol) against "
        "scikit-learn / HyperSpy NMF and a matrix-multiplication bound (dataset A), and an "
        "out-of-core zarr scan in compressed mode (dataset B).",
    )
    p.add_argument("--iterations", type=int, default=None,
                   help="iterations per restart (default 500; --quick: 50)")
    p.add_argument("--restarts", type=int, default=None,
                   help="random restarts (default 10; --quick: 2)")
    p.add_argument("--components", type=int, default=30, help="k (default 30)")
    p.add_argument("--scan", type=int, default=58,
                   help="dataset A scan side in probe positions (default 58)")
    p.add_argument("--crystals", type=int, default=29,
                   help="spot patterns in the simulated data (default 29, + 1 amorphous)")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 50 iterations, 2 restarts unless given explicitly; "
                   "dataset B on a 64 x 64 scan")
    p.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn rows")
    p.add_argument("--skip-hyperspy", action="store_true", help="no HyperSpy row")
    p.add_argument("--no-variants", action="store_true",
                   help="only the exact and compressed paper-protocol ConstrainedNMF rows (no "
                   "unconstrained/mu rows)")
    p.add_argument("--sklearn-iterations", type=int, default=None,
                   help="time scikit-learn/HyperSpy on this many iterations per fit and "
                   "extrapolate per-iteration time to restarts x iterations (default: all "
                   "iterations, measured)")
    p.add_argument("--sklearn-fits", type=int, default=None,
                   help="number of scikit-learn fits (default: --restarts when measuring in "
                   "full, 1 when extrapolating); HyperSpy always runs 1 decomposition")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every dataset A row (and the sgemm timing) this many times and "
                   "keep the fastest run (default 1); useful on a shared machine")
    p.add_argument("--profile", action="store_true",
                   help="also run the exact and the compressed paper rows under cProfile "
                   "and print the top functions by own time (separate runs, not in the "
                   "table)")
    p.add_argument("--profile-iterations", type=int, default=None,
                   help="iterations of the profiled runs (default min(50, --iterations))")
    g = p.add_argument_group("dataset B (out of core)")
    g.add_argument("--skip-ooc", action="store_true", help="leave out dataset B")
    g.add_argument("--ooc-only", action="store_true", help="only dataset B")
    g.add_argument("--ooc-scan", type=int, default=None,
                   help="dataset B scan side (default 256; --quick: 64)")
    g.add_argument("--ooc-chunk-rows", type=int, default=8,
                   help="scan rows per zarr chunk (default 8: chunks of 8 x 256 patterns, "
                   "64 MiB of uint16)")
    g.add_argument("--ooc-iterations", type=int, default=None,
                   help="iterations per restart on dataset B (default: --iterations)")
    g.add_argument("--ooc-restarts", type=int, default=None,
                   help="restarts on dataset B (default: --restarts)")
    g.add_argument("--workdir", default=None,
                   help="folder for the dataset B zarr store, kept and reused by later runs "
                   "(default: <tmp>/stemnmf_hs_bench)")
    g.add_argument("--clean", action="store_true",
                   help="delete the dataset B store at the end of the run")
    g.add_argument("--distributed", action="store_true",
                   help="also decompose dataset B on a dask.distributed LocalCluster "
                   "(worker processes; peak memory = client + workers)")
    g.add_argument("--dist-workers", type=int, default=1,
                   help="LocalCluster worker processes (default 1)")
    g.add_argument("--dist-threads", type=int, default=None,
                   help="threads per LocalCluster worker (default: cores / workers)")
    p.add_argument("--verbose", action="store_true", help="pass worker stderr through")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = 50 if args.quick else 500
    if args.restarts is None:
        args.restarts = 2 if args.quick else 10
    if args.ooc_scan is None:
        args.ooc_scan = 64 if args.quick else 256
    if args.ooc_iterations is None:
        args.ooc_iterations = args.iterations
    if args.ooc_restarts is None:
        args.ooc_restarts = args.restarts
    if args.dist_threads is None:
        args.dist_threads = max(1, (os.cpu_count() or 1) // args.dist_workers)
    if args.profile_iterations is None:
        args.profile_iterations = min(50, args.iterations)
    if args.skip_ooc and args.ooc_only:
        p.error("--skip-ooc and --ooc-only exclude each other")
    return args


def _bound_merge(a, b):
    """The faster of two sgemm timings (the bound should be what the machine can do)."""
    if b is None or (a is not None and a["gflops"] >= b["gflops"]):
        return a
    return b


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_dataset_a(args):
    it, R, k, scan = args.iterations, args.restarts, args.components, args.scan
    sk_it = args.sklearn_iterations if args.sklearn_iterations is not None else it
    sk_it = max(1, min(sk_it, it))
    if args.sklearn_fits is not None:
        sk_fits = args.sklearn_fits
    else:
        sk_fits = R if sk_it == it else 1

    tmp = tempfile.mkdtemp(prefix="bench_cnmf_")
    try:
        t0 = time.perf_counter()
        X, E, desc = simulate_dataset(scan, n_crystals=args.crystals, seed=args.seed)
        N, F = X.shape
        x_norm = float(np.sqrt(np.einsum("ij,ij->", X, X, dtype=np.float64)))
        diff = X - E
        floor = float(np.sqrt(np.einsum("ij,ij->", diff, diff, dtype=np.float64))) / x_norm
        del diff, E
        path = os.path.join(tmp, "X.npy")
        np.save(path, X)
        del X
        _log(f"dataset A: {desc} ({time.perf_counter() - t0:.1f} s)")

        base = {"data": path, "k": k, "scan": scan}
        bound_spec = {**base, "kind": "bound", "rk": R * k, "iters": 0, "fits": 0}
        _log(f"timing sgemm of the data products (R*k = {R * k}) ...")
        bound = None
        for _ in range(args.repeat):
            bound = _bound_merge(bound, _launch(bound_spec, args.verbose))

        paper = {"kind": "cnmf", "solver": "als", "dc": "continuity", "mc": "smooth",
                 "iters": it, "fits": R}
        rows = [("ConstrainedNMF exact (paper: als+cont+smooth)", "exact", paper),
                ("ConstrainedNMF compressed ('auto')", "compressed",
                 {**paper, "compression": "auto"})]
        # The package's default solver (monotone, issue 13) beside the paper's protocol.
        rows.append(("ConstrainedNMF exact, default (hals, monotone)", "default_exact",
                     {**paper, "solver": "hals"}))
        rows.append(("ConstrainedNMF compressed, default (hals)", "default_compressed",
                     {**paper, "solver": "hals", "compression": "auto"}))
        if not args.no_variants:
            rows.append(("ConstrainedNMF exact, no constraints", "variant",
                         {**paper, "dc": None, "mc": None}))
            rows.append(("ConstrainedNMF exact, mu solver", "variant",
                         {**paper, "solver": "mu"}))
        if not args.skip_sklearn:
            rows.append(("sklearn NMF cd, 1 fit per restart", "cd",
                         {"kind": "sklearn", "solver": "cd", "iters": sk_it, "fits": sk_fits}))
            rows.append(("sklearn NMF mu, 1 fit per restart", "sklearn",
                         {"kind": "sklearn", "solver": "mu", "iters": sk_it, "fits": sk_fits}))
        if not args.skip_sklearn and not args.skip_hyperspy:
            rows.append(("HyperSpy decomposition NMF (sklearn cd)", "hyperspy",
                         {"kind": "hyperspy", "iters": sk_it, "fits": 1}))

        results = []
        for label, role, spec in rows:
            best = None
            for rep in range(args.repeat):
                _log(f"running {label}: {spec['fits']} x {spec['iters']} iterations "
                     f"(run {rep + 1}/{args.repeat}) ...")
                res = _launch({**base, **spec}, args.verbose)
                if res is None:
                    continue
                _log(f"  {res['wall']:.1f} s (cpu/wall {res['cpu'] / res['wall']:.2f}, "
                     f"other processes {res.get('others', float('nan')):.2f} cores)")
                if best is None or res["wall"] < best["wall"]:
                    best = res
            results.append((label, role, spec, best))

        _log("timing sgemm again ...")
        bound = _bound_merge(bound, _launch(bound_spec, args.verbose))
        if bound is None:
            raise SystemExit("the sgemm timing failed")

        profiles = []
        if args.profile:
            for label, spec in (("exact", rows[0][2]), ("compressed", rows[1][2])):
                pit = args.profile_iterations
                _log(f"profiling the {label} paper row, {R} x {pit} iterations (cProfile) ...")
                pres = _launch({**base, **spec, "iters": pit, "profile": True}, args.verbose)
                if pres is not None:
                    profiles.append((label, pit, pres))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return format_report_a(args=args, N=N, F=F, desc=desc, floor=floor, bound=bound,
                           results=results, sk_it=sk_it), profiles


def run_dataset_b(args):
    workdir = args.workdir or os.path.join(tempfile.gettempdir(), "stemnmf_hs_bench")
    os.makedirs(workdir, exist_ok=True)
    params = _ooc_params(args)
    path = os.path.join(workdir, f"ooc_scan{params['scan']}_seed{params['seed']}"
                        f"_rows{params['chunk_rows']}.zarr")
    _log(f"dataset B: zarr store {path} (generated chunk by chunk unless complete) ...")
    gen = _launch({"kind": "ooc_gen", "path": path, "params": params}, args.verbose)
    if gen is None:
        raise SystemExit("generating dataset B failed")
    _log(f"  {'reused' if gen['reused'] else 'generated'} in {gen['wall']:.1f} s, "
         f"peak {gen['rss_peak']:.0f} MiB")
    base = {"kind": "ooc_fit", "path": path, "k": args.components, "iters": args.ooc_iterations,
            "fits": args.ooc_restarts, "compression": "auto"}
    fits = []
    variants = [("lazy decomposition, compression='auto'", {})]
    if not args.skip_hyperspy:
        variants.append(("HyperSpy lazy NMF (MiniBatchNMF, 1 epoch)", {"hyperspy_nmf": True}))
    if args.distributed:
        label = f"  same on LocalCluster ({args.dist_workers} x {args.dist_threads} threads)"
        variants.append((label, {"distributed": True, "dist_workers": args.dist_workers,
                                 "dist_threads": args.dist_threads}))
    for label, extra in variants:
        what = ("one epoch" if extra.get("hyperspy_nmf")
                else f"{base['fits']} x {base['iters']} iterations")
        _log(f"running {label.strip()}: {what} ...")
        res = _launch({**base, **extra}, args.verbose)
        if res is not None:
            _log(f"  {res['wall']:.1f} s, peak {res.get('rss_peak_total', res['rss_peak']):.0f}"
                 f" MiB (other processes {res.get('others', float('nan')):.2f} cores)")
        fits.append((label, extra, res))
    if args.clean:
        shutil.rmtree(path, ignore_errors=True)
    return format_report_b(args=args, path=path, gen=gen, fits=fits)


def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        res = run_worker(json.loads(args._worker))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    text_a = profiles = text_b = None
    if not args.ooc_only:
        text_a, profiles = run_dataset_a(args)
    if not args.skip_ooc:
        text_b = run_dataset_b(args)
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - t_start

    print(f"stemnmf_hs ConstrainedNMF benchmark ({_dt.date.today().isoformat()}, "
          f"{elapsed / 60:.1f} min)")
    print(f"machine : {_cpu_model()}, {os.cpu_count()} logical CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, numpy {np.__version__}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for text in (text_a, text_b):
        if text:
            print()
            print(text)
    for label, pit, pres in profiles or ():
        print()
        print(f"cProfile of the {label} paper row, {args.restarts} x {pit} iterations "
              f"({pres['wall']:.1f} s under the profiler; not used in the table), top "
              "functions by own time:")
        print(pres.get("profile", ""))
    return 0


def _verdict(ok):
    return "met" if ok else "MISSED"


def format_report_a(*, args, N, F, desc, floor, bound, results, sk_it):
    it, R, k = args.iterations, args.restarts, args.components
    total_it = R * it
    flops_per_iter = 2 * 2.0 * N * F * (R * k)
    bound_s = flops_per_iter * it / (bound["gflops"] * 1e9)

    table = []
    cd_wall = None
    for label, role, spec, res in results:
        if res is None:
            table.append((label, role, spec, None))
            continue
        done = spec["fits"] * spec["iters"]
        per_it = res["wall"] / done
        wall = per_it * total_it
        res = dict(res, per_it=per_it, extrap=done != total_it, wall_total=wall, done=done)
        if role == "cd":
            cd_wall = wall
        table.append((label, role, spec, res))

    cols = (f"{'row':<46} {'R x it':>7} {'wall s':>8} {'s/(R*it)':>8} {'x cd':>6} "
            f"{'x bound':>7} {'rel.err':>8} {'peak MiB':>8} {'fit MiB':>7} {'cpu/wall':>8} "
            f"{'others':>6}")
    L = []
    L.append("DATASET A: the paper's protocol, in memory")
    if bound.get("blas"):
        L.append(f"BLAS    : {'; '.join(bound['blas'])}")
    L.append(f"data    : {desc}")
    L.append(f"          X = ({N}, {F}) float32; Poisson noise floor ||X - E[X]||_F/||X||_F = "
             f"{floor:.4f}")
    L.append(f"protocol: k = {k}, {it} iterations x {R} restarts = {total_it} "
             "restart-iterations, tol = 0 (fixed iteration count)")
    L.append(f"sgemm   : X @ D^T ({N}x{F} @ {F}x{R * k}) {bound['t_xdt']:.3f} s = "
             f"{bound['gflops_xdt']:.0f} GFLOP/s; M^T @ X ({R * k}x{N} @ {N}x{F}) "
             f"{bound['t_mtx']:.3f} s = {bound['gflops_mtx']:.0f} GFLOP/s "
             f"(best of {3 * (args.repeat + 1)})")
    L.append(f"bound   : 2 x 2*N*F*(R*k) = {flops_per_iter / 1e9:.1f} GFLOP/iteration x {it} "
             f"at {bound['gflops']:.0f} GFLOP/s = {bound_s:.1f} s")
    L.append("")
    L.append(cols)
    L.append("-" * len(cols))
    L.append(f"{'matmul bound (2 data sgemms/iteration)':<46} {total_it:>7d} {bound_s:>8.1f} "
             f"{bound_s / total_it:>8.4f} "
             f"{_fmt(bound_s / cd_wall if cd_wall else None, '6.3f'):>6} {1.0:>7.2f} "
             f"{'-':>8} {bound['rss_peak']:>8.0f} {'-':>7} {'-':>8} "
             f"{_fmt(bound.get('others'), '6.2f'):>6}")
    notes = []
    by_role = {}
    for label, role, spec, res in table:
        if res is None:
            L.append(f"{label:<46}  FAILED (see stderr)")
            continue
        by_role.setdefault(role, res)
        mark = "*" if res["extrap"] else " "
        util = res["cpu"] / res["wall"] if res.get("cpu") is not None else None
        L.append(
            f"{label:<46} {total_it:>6d}{mark} {res['wall_total']:>8.1f} {res['per_it']:>8.4f} "
            f"{_fmt(res['wall_total'] / cd_wall if cd_wall else None, '6.3f'):>6} "
            f"{res['wall_total'] / bound_s:>7.2f} {res['err']:>7.4f}{mark} "
            f"{res['rss_peak']:>8.0f} {res['rss_peak'] - res['rss_base']:>7.0f} "
            f"{_fmt(util, '8.2f'):>8} {_fmt(res.get('others'), '6.2f'):>6}"
        )
        if role == "compressed" and "sketch_s" in res:
            iters_s = res["iter_s"]
            final_s = res["wall"] - res["sketch_s"] - iters_s
            notes.append(
                f"  compressed: sketch rank l = {res['sketch_rank']}, sketch "
                f"{res['sketch_s']:.1f} s (6 passes over X), {spec['fits']} x {spec['iters']} "
                f"iterations on Q B {iters_s:.1f} s ({iters_s / res['done'] * 1e3:.2f} ms per "
                f"restart-iteration), exact stage {final_s:.1f} s (1 pass X D^T for all "
                f"restarts + {res.get('refine_iter', 5)} exact iterations of the kept one)")
        if res["extrap"]:
            notes.append(f"  * {label}: EXTRAPOLATED -- measured {spec['fits']} fit(s) x "
                         f"{spec['iters']} iterations in {res['wall']:.1f} s, scaled linearly "
                         f"to {total_it} restart-iterations; its rel.err is after "
                         f"{spec['iters']} iterations.")
        if util is not None and util < 0.6 * (os.cpu_count() or 1):
            notes.append(f"  ! {label}: low CPU utilisation (cpu/wall {util:.2f}): other "
                         "processes probably shared the cores; rerun, e.g. with --repeat 3.")
        if res["n_iter"] != spec["iters"] + res.get("refine_iter", 0):
            notes.append(f"  ! {label}: a fit stopped after {res['n_iter']} iterations, not "
                         f"{spec['iters']}.")
    L.append("")
    L.append("R x it   restarts x iterations (sklearn/HyperSpy: fits x iterations per fit)")
    L.append("x cd     wall / wall of sklearn cd at the same restart-iteration count")
    L.append("x bound  wall / matmul bound (the same FLOPs for every row)")
    L.append("rel.err  ||X - W H||_F / ||X||_F, recomputed from the returned factors (best "
             "restart)")
    L.append("peak MiB peak resident memory (VmHWM) of the row's own process: data + imports "
             "+ fit")
    L.append("fit MiB  peak minus the peak before the fit started (the fit's working memory)")
    L.append(f"cpu/wall process CPU seconds / wall seconds of the fit ({os.cpu_count()}.00 = all "
             "cores busy with this fit)")
    L.append("others   cores kept busy by OTHER processes while the row ran (/proc/stat minus "
             "the row's own CPU); > 0.2 means the row was disturbed")
    if args.repeat > 1:
        L.append(f"every row: fastest of {args.repeat} runs")
    L.extend(notes)

    L.append("")
    L.append("targets (dataset A):")
    target_sp = TARGET_COMPRESSED_SPEEDUP if it > 50 else TARGET_COMPRESSED_SPEEDUP_SHORT
    ex, co, cd = by_role.get("exact"), by_role.get("compressed"), by_role.get("cd")
    # The paper's protocol, then the package's default solver (issue 17 holds both to them).
    for name, exact, comp in (("paper's ALS", ex, co),
                              ("default solver", by_role.get("default_exact"),
                               by_role.get("default_compressed"))):
        if exact is not None:
            xb = exact["wall_total"] / bound_s
            L.append(f"  {name}, exact, within {TARGET_EXACT_X_BOUND:.2f}x of the matmul "
                     f"bound: {xb:.2f}x -> {_verdict(xb <= TARGET_EXACT_X_BOUND)}")
        if comp is not None and cd is not None:
            sp = cd["wall_total"] / comp["wall_total"]
            rel = comp["err"] / cd["err"] - 1.0
            L.append(f"  {name}, compressed, >= {target_sp:.0f}x faster than sklearn cd at "
                     f"{it} iterations: {sp:.1f}x"
                     f"{' (cd extrapolated)' if cd['extrap'] else ''} -> "
                     f"{_verdict(sp >= target_sp)}; rel.err {comp['err']:.4f} vs cd "
                     f"{cd['err']:.4f} ({rel:+.2%}; equal within {TARGET_COMPRESSED_ERR:.0%}: "
                     f"{_verdict(abs(rel) <= TARGET_COMPRESSED_ERR)})")
    if co is not None and ex is not None:
        rel = co["err"] / ex["err"] - 1.0
        L.append(f"  compressed rel.err within {TARGET_COMPRESSED_ERR:.0%} of exact (at most "
                 f"{TARGET_COMPRESSED_ERR:.0%} above it; lower is better): "
                 f"{co['err']:.4f} vs {ex['err']:.4f} ({rel:+.2%}) -> "
                 f"{_verdict(rel <= TARGET_COMPRESSED_ERR)}")
    return "\n".join(L)


def format_report_b(*, args, path, gen, fits):
    a = gen["attrs"]
    scan = a["params"]["scan"]
    shape, chunks = gen["shape"], gen["chunks"]
    n_chunks = int(np.prod([-(-s // c) for s, c in zip(shape, chunks)]))
    chunk_mib = int(np.prod(chunks)) * 2 / 2**20
    clipped = f", {a['n_clipped']} clipped" if a["n_clipped"] else ""
    L = []
    L.append("DATASET B: out of core (zarr on disk -> lazy HyperSpy signal -> streamed "
             "decomposition)")
    L.append(f"data    : {scan}x{scan} scan of {shape[2]}x{shape[3]} uint16 patterns, same "
             f"generator as A ({a['params']['n_crystals']} crystals, seed "
             f"{a['params']['seed']}, {ELECTRONS:.0e} e-/pattern, max count {a['max_count']}"
             f"{clipped})")
    L.append(f"          {gen['nbytes'] / 2**30:.2f} GiB uncompressed "
             f"({gen['nbytes'] * 2 / 2**30:.1f} GiB as float32), "
             f"{gen['nbytes_stored'] / 2**30:.2f} GiB on disk; chunks "
             f"{tuple(chunks)} = {n_chunks} chunks of {chunk_mib:.0f} MiB; "
             f"{gen['compressor']}")
    L.append(f"          {path}")
    L.append(f"          Poisson noise floor ||X - E[X]||_F/||X||_F = "
             f"{np.sqrt(a['noise_sq'] / a['sum_sq']):.4f}")
    L.append(f"protocol: dask.array.from_zarr -> hs.signals.Signal2D(...).as_lazy() -> "
             f"set_signal_type('nmf_diffraction') -> decomposition(algorithm="
             f"'constrained_nmf', output_dimension={args.components}, compression='auto', "
             f"n_restarts={args.ooc_restarts}, max_iter={args.ooc_iterations}, tol=0), "
             "both constraints")
    L.append("")
    cols = (f"{'row':<46} {'R x it':>7} {'wall s':>8} {'s/(R*it)':>8} {'rel.err':>8} "
            f"{'peak MiB':>8} {'fit MiB':>7} {'cpu/wall':>8} {'others':>6}")
    L.append(cols)
    L.append("-" * len(cols))
    gen_label = "zarr written chunk by chunk" + (" (reused)" if gen["reused"] else "")
    L.append(f"{gen_label:<46} {'-':>7} {gen['wall']:>8.1f} {'-':>8} {'-':>8} "
             f"{gen['rss_peak']:>8.0f} {'-':>7} {gen['cpu'] / max(gen['wall'], 1e-9):>8.2f} "
             f"{_fmt(gen.get('others'), '6.2f'):>6}")
    notes = []
    peak_ok = []
    total_it = args.ooc_restarts * args.ooc_iterations
    ours = next((res["wall"] for _, extra, res in fits if res and not extra), None)
    for label, extra, res in fits:
        if res is None:
            L.append(f"{label:<46}  FAILED (see stderr)")
            continue
        peak = res.get("rss_peak_total", res["rss_peak"])
        cpu = res["cpu"] + res.get("worker_cpu", 0.0)
        if res.get("peer"):
            L.append(f"{label:<46} {'1 ep':>7} {res['wall']:>8.1f} {'-':>8} "
                     f"{res['err']:>8.4f} {peak:>8.0f} {peak - res['rss_base']:>7.0f} "
                     f"{cpu / res['wall']:>8.2f} {_fmt(res.get('others'), '6.2f'):>6}")
            if ours:
                notes.append(f"  {label}: {res['wall'] / ours:.2f}x the wall time of the "
                             f"package's lazy decomposition, rel.err {res['err']:.4f} "
                             "(unconstrained, one pass of mini-batches; its error computed "
                             "afterwards in one streamed pass, not timed)")
            continue
        L.append(f"{label:<46} {total_it:>7d} {res['wall']:>8.1f} "
                 f"{res['wall'] / total_it:>8.4f} {res['err']:>8.4f} {peak:>8.0f} "
                 f"{peak - res['rss_base']:>7.0f} {cpu / res['wall']:>8.2f} "
                 f"{_fmt(res.get('others'), '6.2f'):>6}")
        iters_s = res["iter_s"]
        final_s = res["wall"] - res["sketch_s"] - iters_s
        notes.append(f"  {label.strip()}: sketch rank l = {res['sketch_rank']}; sketch "
                     f"{res['sketch_s']:.1f} s (6 streamed passes, the first also gathering "
                     f"||X||), iterations on Q B {iters_s:.1f} s "
                     f"({iters_s / total_it * 1e3:.1f} ms per restart-iteration), exact stage "
                     f"{final_s:.1f} s (1 streamed pass X D^T for all restarts + "
                     f"{res.get('refine_iter', 5)} exact iterations = "
                     f"{2 * res.get('refine_iter', 5)} streamed passes)")
        if "worker_rss" in res:
            notes.append(f"  {label.strip()}: peak = client {res['rss_peak']:.0f} MiB + workers "
                         f"{', '.join(f'{v:.0f}' for v in res['worker_rss'])} MiB; cpu/wall "
                         "counts the workers' CPU too")
        if res["n_iter"] != args.ooc_iterations + res.get("refine_iter", 0):
            notes.append(f"  ! {label.strip()}: stopped after {res['n_iter']} iterations")
        peak_ok.append((label.strip(), peak))
    L.append("")
    L.append("peak MiB: VmHWM of the decomposing process (dask's threads included; with "
             "--distributed plus every worker's VmHWM)")
    L.append("fit MiB : peak minus the process's peak before decomposition() (imports, "
             "graph set-up)")
    L.extend(notes)
    L.append("")
    L.append("targets (dataset B):")
    for label, peak in peak_ok:
        L.append(f"  peak resident memory < {TARGET_OOC_PEAK_MIB / 1024:.0f} GiB ({label}): "
                 f"{peak / 1024:.2f} GiB -> {_verdict(peak < TARGET_OOC_PEAK_MIB)}")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
