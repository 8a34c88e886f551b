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
    # Linux: ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
        t0 = time.perf_counter()
        maps = est.fit_transform(X)
        wall = time.perf_counter() - t0
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
        t0 = time.perf_counter()
        for r in range(fits):
            est = NMF(k, solver=spec["solver"], init="random", tol=0.0, max_iter=iters,
                      random_state=r)
            W = est.fit_transform(X)
            n_iter.append(int(est.n_iter_))
            if best is None or est.reconstruction_err_ < best[0]:
                best = (est.reconstruction_err_, W, est.components_)
        out["wall"] = time.perf_counter() - t0
        out["rss_peak"] = _rss_peak_mib()
        out["rss_base"] = rss_base
        out["n_iter"] = int(min(n_iter))
        out["err"] = _rel_error(X, best[1], best[2], x_norm)
        return out

    if kind == "hyperspy":
        import hyperspy.api as hs

        s = hs.signals.Signal2D(X.reshape(spec["scan"], spec["scan"], *PATTERN_SHAPE))
        rss_base = _rss_peak_mib()
        t0 = time.perf_counter()
        for r in range(fits):
            s.decomposition(algorithm="NMF", output_dimension=k, max_iter=iters, tol=0,
                            init="random", random_state=r, print_info=False)
        out["wall"] = time.perf_counter() - t0
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


def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        res = run_worker(json.loads(args._worker))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    it, R, k, scan = args.iterations, args.restarts, args.components, args.scan
    sk_it = args.sklearn_iterations if args.sklearn_iterations is not None else it
    sk_it = min(sk_it, it)
    if args.sklearn_fits is not None:
        sk_fits = args.sklearn_fits
    else:
        sk_fits = R if sk_it == it else 1
    hs_fits = 1

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

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
        log(f"timing sgemm of the data products (R*k = {R * k}) ...")
        bound = _launch({**base, "kind": "bound", "rk": R * k, "iters": 0, "fits": 0},
                        args.verbose)
        if bound is None:
            raise SystemExit("the sgemm timing failed")
        flops_per_iter = 2 * 2.0 * N * F * (R * k)
        bound_s = flops_per_iter * it / (bound["gflops"] * 1e9)

        rows = []  # (label, spec, note)
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
            rows.append(("sklearn NMF cd (1 fit/restart)",
                         {"kind": "sklearn", "solver": "cd", "iters": sk_it, "fits": sk_fits}))
            rows.append(("sklearn NMF mu (1 fit/restart)",
                         {"kind": "sklearn", "solver": "mu", "iters": sk_it, "fits": sk_fits}))
            if not args.skip_hyperspy:
                rows.append(("HyperSpy decomposition NMF (cd)",
                             {"kind": "hyperspy", "iters": sk_it, "fits": hs_fits}))

        results = []
        for label, spec in rows:
            log(f"running {label}: {spec['fits']} x {spec['iters']} iterations ...")
            res = _launch({**base, **spec}, args.verbose)
            if res is not None:
                log(f"  {res['wall']:.1f} s")
            results.append((label, spec, res))

        profile_text = None
        if args.profile:
            log("profiling the paper-protocol row (cProfile) ...")
            pres = _launch({**base, **rows[0][1], "profile": True}, args.verbose)
            if pres is not None:
                profile_text = pres.get("profile")
                profile_wall = pres["wall"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ table
    total_it = R * it
    table = []
    cd_wall = None
    for label, spec, res in results:
        if res is None:
            table.append((label, None))
            continue
        done = spec["fits"] * spec["iters"]
        per_it = res["wall"] / done
        extrap = done != total_it
        wall = per_it * total_it
        res = dict(res, per_it=per_it, extrap=extrap, wall_total=wall, done=done)
        if spec["kind"] == "sklearn" and spec["solver"] == "cd":
            cd_wall = wall
        table.append((label, res))

    hdr = (f"{'row':<42} {'iters':>10} {'wall s':>9} {'s/(R*it)':>9} {'x cd':>6} "
           f"{'x bound':>8} {'rel.err':>8} {'peak MiB':>9} {'fit MiB':>8}")
    lines = []
    lines.append(f"stemnmf_hs ConstrainedNMF benchmark  ({_dt.date.today().isoformat()})")
    lines.append(f"machine : {_cpu_model()}, {os.cpu_count()} logical CPUs, "
                 f"Python {platform.python_version()}, numpy {np.__version__}")
    if bound.get("blas"):
        lines.append(f"BLAS    : {'; '.join(bound['blas'])}")
    lines.append(f"data    : {desc}")
    lines.append(f"          X = ({N}, {F}) float32; ||X - E[X]||/||X|| (Poisson noise floor) "
                 f"= {floor:.4f}")
    lines.append(f"protocol: k = {k}, {it} iterations x {R} restarts = {total_it} restart-"
                 "iterations, tol = 0")
    lines.append(f"sgemm   : X @ D^T ({N}x{F} @ {F}x{R * k}) {bound['t_xdt']:.3f} s "
                 f"({bound['gflops_xdt']:.0f} GFLOP/s); M^T @ X ({R * k}x{N} @ {N}x{F}) "
                 f"{bound['t_mtx']:.3f} s ({bound['gflops_mtx']:.0f} GFLOP/s)")
    lines.append(f"bound   : {flops_per_iter / 1e9:.1f} GFLOP/iteration x {it} at "
                 f"{bound['gflops']:.0f} GFLOP/s = {bound_s:.1f} s "
                 f"({bound_s / total_it:.4f} s per restart-iteration)")
    lines.append("")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    lines.append(f"{'matmul bound (2 data sgemms / iteration)':<42} {total_it:>10d} "
                 f"{bound_s:>9.1f} {bound_s / total_it:>9.4f} "
                 f"{_fmt(bound_s / cd_wall if cd_wall else None, '6.2f'):>6} {1.0:>8.2f} "
                 f"{'-':>8} {bound['rss_peak']:>9.0f} {'-':>8}")
    notes = []
    for label, res in table:
        if res is None:
            lines.append(f"{label:<42}  FAILED (see stderr)")
            continue
        mark = "*" if res["extrap"] else ""
        iters_s = f"{total_it}{mark}"
        lines.append(
            f"{label:<42} {iters_s:>10} {res['wall_total']:>9.1f} {res['per_it']:>9.4f} "
            f"{_fmt(res['wall_total'] / cd_wall if cd_wall else None, '6.2f'):>6} "
            f"{res['wall_total'] / bound_s:>8.2f} {res['err']:>8.4f}{mark if mark else ' '}"
            f"{res['rss_peak']:>8.0f} {res['rss_peak'] - res['rss_base']:>8.0f}"
        )
        if res["extrap"]:
            notes.append(f"  * {label}: measured {res['done']} restart-iterations "
                         f"({res['wall']:.1f} s) and extrapolated linearly to {total_it}; "
                         f"rel.err is after the measured {res['n_iter']} iterations of the "
                         "best fit.")
    lines.append("")
    lines.append("columns: iters = restarts x iterations; wall s = total fit time; x cd = wall "
                 "/ sklearn cd wall; x bound = wall / matmul bound;")
    lines.append("         rel.err = ||X - W H||_F / ||X||_F (recomputed from the returned "
                 "factors); peak MiB = ru_maxrss of the row's process")
    lines.append("         (data + imports + fit); fit MiB = peak minus the peak before the "
                 "fit started.")
    lines.extend(notes)
    for (label, res), (_, spec, _) in zip(table, results):
        if res is not None and res["n_iter"] != spec["iters"]:
            lines.append(f"  ! {label}: a fit stopped after {res['n_iter']} iterations, "
                         f"not {spec['iters']}")
    print("\n".join(lines))
    if profile_text:
        print()
        print(f"cProfile of the paper-protocol row ({profile_wall:.1f} s under the "
              "profiler), top functions by own time:")
        print(profile_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
