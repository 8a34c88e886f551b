#!/usr/bin/env python
"""Benchmark of ``stemnmf_hs.ConstrainedNMF`` against scikit-learn and HyperSpy NMF.

Reproduces the protocol of Kimoto et al., Sci. Rep. 15, 39143 (2025) -- k = 30 components,
500 iterations, 10 random restarts, both domain constraints -- on a simulated 58 x 58 scan of
128 x 128 diffraction patterns, and times it against

* ``sklearn.decomposition.NMF`` (``solver="cd"`` and ``solver="mu"``, ``init="random"``,
  ``tol=0``), one fit per restart, so that the *total* iteration count (restarts x
  iterations) is the same;
* HyperSpy's ``s.decomposition(algorithm="NMF", ...)`` (scikit-learn's cd solver behind
  HyperSpy's unfolding), one decomposition;
* a matrix-multiplication bound: the time the two data products of an iteration
  (``maps^T X`` and ``X diffractions^T``, 2 x 2 N F (R k) FLOPs) take at the sgemm rate this
  machine achieves on exactly those shapes.

Every row runs in its own Python subprocess (the data are loaded from a temporary ``.npy``),
so ``ru_maxrss`` gives an honest per-row peak resident memory.

This is a script, not a test::

    python benchmarks/bench_constrained_nmf.py --quick          # smoke run, < 2 min
    python benchmarks/bench_constrained_nmf.py                  # full protocol (long)
    python benchmarks/bench_constrained_nmf.py --sklearn-iterations 50   # sklearn extrapolated

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


# ----------------------------------------------------------------------------- data
def simulate_dataset(scan, n_crystals=29, electrons=1e4, seed=0):
    """Amorphous matrix plus ``n_crystals`` spot patterns with smooth blob maps.

    Returns ``X`` ``(scan*scan, 128*128)`` float32 Poisson counts and the noiseless
    expectation (float32, same shape) and a short description.
    """
    from stemnmf_hs.data._simulate import amorphous_pattern, spot_pattern

    rng = np.random.default_rng(seed)
    F = PATTERN_SHAPE[0] * PATTERN_SHAPE[1]
    K = n_crystals + 1
    diffs = np.empty((K, F), dtype=np.float64)
    diffs[0] = amorphous_pattern(PATTERN_SHAPE, dtype=np.float64).ravel()
    for j in range(n_crystals):
        # Random 2D reciprocal lattice: |g1|, |g2| in 14-34 px, 55-125 deg apart, random
        # in-plane rotation; spots up to 60 px from the centre.
        a1 = rng.uniform(0.0, 360.0)
        a2 = a1 + rng.uniform(55.0, 125.0)
        l1, l2 = rng.uniform(14.0, 34.0, size=2)
        g1 = (l1 * np.cos(np.deg2rad(a1)), l1 * np.sin(np.deg2rad(a1)))
        g2 = (l2 * np.cos(np.deg2rad(a2)), l2 * np.sin(np.deg2rad(a2)))
        diffs[j + 1] = spot_pattern(
            PATTERN_SHAPE, g1, g2, spot_sigma=rng.uniform(1.0, 1.6), max_radius=60.0,
            dtype=np.float64,
        ).ravel()

    # Smooth random blob maps (crystalline fractions), 1-3 Gaussian blobs per crystal.
    yy, xx = np.mgrid[0:scan, 0:scan].astype(np.float64)
    frac = np.zeros((n_crystals, scan, scan))
    for j in range(n_crystals):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, scan, size=2)
            sigma = rng.uniform(0.05, 0.15) * scan
            amp = rng.uniform(0.1, 0.5)
            frac[j] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    total = frac.sum(axis=0)
    cap = 0.8
    frac *= np.where(total > cap, cap / np.maximum(total, 1e-300), 1.0)[None]
    maps = np.empty((K, scan * scan))
    maps[1:] = electrons * frac.reshape(n_crystals, -1)
    maps[0] = electrons * (1.0 - frac.sum(axis=0)).ravel()

    expectation = (maps.T.astype(np.float32) @ diffs.astype(np.float32))  # (N, F)
    np.maximum(expectation, 0, out=expectation)
    X = rng.poisson(expectation).astype(np.float32)
    desc = (
        f"{scan}x{scan} scan of {PATTERN_SHAPE[0]}x{PATTERN_SHAPE[1]} patterns: amorphous matrix "
        f"+ {n_crystals} random-lattice spot patterns ({K} true components), smooth blob maps, "
        f"Poisson noise at {electrons:.0e} e-/pattern, float32, seed {seed}"
    )
    return X, expectation, desc


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


def run_worker(spec):
    import warnings

    warnings.filterwarnings("ignore")
    X = np.load(spec["data"])
    x_norm = float(np.sqrt(np.einsum("ij,ij->", X, X, dtype=np.float64)))
    kind = spec["kind"]
    k, iters, fits = spec["k"], spec["iters"], spec["fits"]
    out = {"kind": kind}

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
            random_state=0,
        )
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
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["wall"] = wall
        out["n_iter"] = int(est.n_iter_)
        out["err"] = _rel_error(X, maps, est.components_, x_norm)
        out["err_est"] = float(est.reconstruction_err_) / x_norm
        if prof is not None:
            import io
            import pstats

            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf)
            st.sort_stats("tottime").print_stats(22)
            out["profile"] = buf.getvalue()
        return out

    if kind == "sklearn":
        from sklearn.decomposition import NMF

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


# ----------------------------------------------------------------------------- driver side
def _launch(spec, verbose=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if verbose and proc.stderr:
        sys.stderr.write(proc.stderr)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
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
        "scikit-learn / HyperSpy NMF and a matrix-multiplication bound.",
    )
    p.add_argument("--iterations", type=int, default=None,
                   help="iterations per restart (default 500; --quick: 50)")
    p.add_argument("--restarts", type=int, default=None,
                   help="random restarts (default 10; --quick: 2)")
    p.add_argument("--components", type=int, default=30, help="k (default 30)")
    p.add_argument("--scan", type=int, default=58, help="scan side in probe positions (default 58)")
    p.add_argument("--crystals", type=int, default=29,
                   help="spot patterns in the simulated data (default 29, + 1 amorphous)")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 50 iterations, 2 restarts unless given explicitly")
    p.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn rows")
    p.add_argument("--skip-hyperspy", action="store_true", help="no HyperSpy row")
    p.add_argument("--no-variants", action="store_true",
                   help="only the paper-protocol ConstrainedNMF row (no unconstrained/mu rows)")
    p.add_argument("--sklearn-iterations", type=int, default=None,
                   help="time scikit-learn/HyperSpy on this many iterations per fit and "
                   "extrapolate per-iteration time to restarts x iterations (default: all "
                   "iterations, measured)")
    p.add_argument("--sklearn-fits", type=int, default=None,
                   help="number of scikit-learn fits (default: --restarts when measuring in "
                   "full, 1 when extrapolating); HyperSpy always runs 1 decomposition")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every row (and the sgemm timing) this many times and keep the "
                   "fastest run (default 1); useful on a shared machine")
    p.add_argument("--profile", action="store_true",
                   help="also run the paper-protocol row under cProfile and print the top "
                   "functions by own time (separate run; not used for the table)")
    p.add_argument("--verbose", action="store_true", help="pass worker stderr through")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = 50 if args.quick else 500
    if args.restarts is None:
        args.restarts = 2 if args.quick else 10
    return args


def _bound_merge(a, b):
    """The faster of two sgemm timings (the bound should be what the machine can do)."""
    if b is None or (a is not None and a["gflops"] >= b["gflops"]):
        return a
    return b


def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        res = run_worker(json.loads(args._worker))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    it, R, k, scan = args.iterations, args.restarts, args.components, args.scan
    sk_it = args.sklearn_iterations if args.sklearn_iterations is not None else it
    sk_it = max(1, min(sk_it, it))
    if args.sklearn_fits is not None:
        sk_fits = args.sklearn_fits
    else:
        sk_fits = R if sk_it == it else 1

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    t_start = time.perf_counter()
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
        log(f"data: {desc} ({time.perf_counter() - t0:.1f} s)")

        base = {"data": path, "k": k, "scan": scan}
        bound_spec = {**base, "kind": "bound", "rk": R * k, "iters": 0, "fits": 0}
        log(f"timing sgemm of the data products (R*k = {R * k}) ...")
        bound = None
        for _ in range(args.repeat):
            bound = _bound_merge(bound, _launch(bound_spec, args.verbose))

        rows = []
        rows.append(("ConstrainedNMF als +cont +smooth (paper)",
                     {"kind": "cnmf", "solver": "als", "dc": "continuity", "mc": "smooth",
                      "iters": it, "fits": R}))
        if not args.no_variants:
            rows.append(("ConstrainedNMF als, no constraints",
                         {"kind": "cnmf", "solver": "als", "dc": None, "mc": None,
                          "iters": it, "fits": R}))
            rows.append(("ConstrainedNMF mu +cont +smooth",
                         {"kind": "cnmf", "solver": "mu", "dc": "continuity", "mc": "smooth",
                          "iters": it, "fits": R}))
        if not args.skip_sklearn:
            rows.append(("sklearn NMF cd, 1 fit per restart",
                         {"kind": "sklearn", "solver": "cd", "iters": sk_it, "fits": sk_fits}))
            rows.append(("sklearn NMF mu, 1 fit per restart",
                         {"kind": "sklearn", "solver": "mu", "iters": sk_it, "fits": sk_fits}))
        if not args.skip_sklearn and not args.skip_hyperspy:
            rows.append(("HyperSpy decomposition NMF (sklearn cd)",
                         {"kind": "hyperspy", "iters": sk_it, "fits": 1}))

        results = []
        for label, spec in rows:
            best = None
            for rep in range(args.repeat):
                log(f"running {label}: {spec['fits']} x {spec['iters']} iterations "
                    f"(run {rep + 1}/{args.repeat}) ...")
                res = _launch({**base, **spec}, args.verbose)
                if res is None:
                    continue
                log(f"  {res['wall']:.1f} s (cpu/wall {res['cpu'] / res['wall']:.2f})")
                if best is None or res["wall"] < best["wall"]:
                    best = res
            results.append((label, spec, best))

        log("timing sgemm again ...")
        bound = _bound_merge(bound, _launch(bound_spec, args.verbose))
        if bound is None:
            raise SystemExit("the sgemm timing failed")

        profile_text = profile_wall = None
        if args.profile:
            log("profiling the paper-protocol row (cProfile) ...")
            pres = _launch({**base, **rows[0][1], "profile": True}, args.verbose)
            if pres is not None:
                profile_text, profile_wall = pres.get("profile"), pres["wall"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - t_start

    print(format_report(
        args=args, N=N, F=F, desc=desc, floor=floor, bound=bound, results=results,
        load=(load_before, load_after), elapsed=elapsed,
    ))
    if profile_text:
        print()
        print(f"cProfile of the paper-protocol row ({profile_wall:.1f} s under the profiler; "
              "not used in the table), top functions by own time:")
        print(profile_text)
    return 0


def format_report(*, args, N, F, desc, floor, bound, results, load, elapsed):
    it, R, k = args.iterations, args.restarts, args.components
    total_it = R * it
    flops_per_iter = 2 * 2.0 * N * F * (R * k)
    bound_s = flops_per_iter * it / (bound["gflops"] * 1e9)

    table = []
    cd_wall = None
    for label, spec, res in results:
        if res is None:
            table.append((label, spec, None))
            continue
        done = spec["fits"] * spec["iters"]
        per_it = res["wall"] / done
        wall = per_it * total_it
        res = dict(res, per_it=per_it, extrap=done != total_it, wall_total=wall, done=done)
        if spec["kind"] == "sklearn" and spec["solver"] == "cd":
            cd_wall = wall
        table.append((label, spec, res))

    cols = (f"{'row':<41} {'R x it':>9} {'wall s':>9} {'s/(R*it)':>9} {'x cd':>6} "
            f"{'x bound':>7} {'rel.err':>8} {'peak MiB':>8} {'fit MiB':>7} {'cpu/wall':>8}")
    L = []
    L.append(f"stemnmf_hs ConstrainedNMF benchmark  ({_dt.date.today().isoformat()}, "
             f"{elapsed / 60:.1f} min)")
    L.append(f"machine : {_cpu_model()}, {os.cpu_count()} logical CPUs, Python "
             f"{platform.python_version()}, numpy {np.__version__}; load average "
             f"{load[0][0]:.2f} before, {load[1][0]:.2f} after")
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
    L.append(f"{'matmul bound (2 data sgemms/iteration)':<41} {total_it:>9d} {bound_s:>9.1f} "
             f"{bound_s / total_it:>9.4f} "
             f"{_fmt(bound_s / cd_wall if cd_wall else None, '6.2f'):>6} {1.0:>7.2f} "
             f"{'-':>8} {bound['rss_peak']:>8.0f} {'-':>7} {'-':>8}")
    notes = []
    for label, spec, res in table:
        if res is None:
            L.append(f"{label:<41}  FAILED (see stderr)")
            continue
        mark = "*" if res["extrap"] else " "
        util = res["cpu"] / res["wall"] if res.get("cpu") is not None else None
        L.append(
            f"{label:<41} {total_it:>8d}{mark} {res['wall_total']:>9.1f} {res['per_it']:>9.4f} "
            f"{_fmt(res['wall_total'] / cd_wall if cd_wall else None, '6.2f'):>6} "
            f"{res['wall_total'] / bound_s:>7.2f} {res['err']:>7.4f}{mark} "
            f"{res['rss_peak']:>8.0f} {res['rss_peak'] - res['rss_base']:>7.0f} "
            f"{_fmt(util, '8.2f'):>8}"
        )
        if res["extrap"]:
            notes.append(f"  * {label}: EXTRAPOLATED -- measured {spec['fits']} fit(s) x "
                         f"{spec['iters']} iterations in {res['wall']:.1f} s, scaled linearly "
                         f"to {total_it} restart-iterations; its rel.err is after "
                         f"{spec['iters']} iterations.")
        if util is not None and util < 0.6 * (os.cpu_count() or 1):
            notes.append(f"  ! {label}: low CPU utilisation (cpu/wall {util:.2f}): other "
                         "processes probably shared the cores; rerun, e.g. with --repeat 3.")
        if res["n_iter"] != spec["iters"]:
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
    if args.repeat > 1:
        L.append(f"every row: fastest of {args.repeat} runs")
    L.extend(notes)
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
