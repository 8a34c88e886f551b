"""Time ``s.estimate_number_of_components`` on the paper-size simulation (issue 3's bar).

A script, not a test.  The sweep k = 2..20 on ``simulated_precipitates()`` (36 x 36 scan of
128 x 128 patterns, 4 true diffractions) must finish in minutes on 2 cores.  Prints one table:
one row per configuration with wall seconds (best of ``--repeat``), the ratio to the sweep
before issue 14 where it is in the run (``--solvers``; issue 14's bar: 1.5x), the suggested k,
the knee and the range of interest, and the total iterations run.

    python benchmarks/bench_k_selection.py            # default sweep settings + exact mode
    python benchmarks/bench_k_selection.py --quick    # default settings only
    python benchmarks/bench_k_selection.py --solvers --repeat 3   # issue 14's ratio
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


_BEFORE = "before issue 14 (als, heldout=False)"


def main(argv=None):
    """Run the sweeps and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="only the default configuration")
    p.add_argument("--kmax", type=int, default=20, help="largest k of the sweep (default 20)")
    p.add_argument("--solvers", action="store_true",
                   help="the sweep's ALS beside the monotone HALS solver (60 iterations after "
                        "20 ALS ones)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per configuration, the fastest reported (default 1)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from stemnmf_hs.data import simulated_precipitates

    s, _ = simulated_precipitates(seed=0)
    configs = [("defaults (hals, 2 restarts, 10 ALS + 20 it, no refinement)", {})]
    if args.solvers:
        configs.append((_BEFORE,
                        {"solver": "als", "heldout": False}))
        configs.append(("solver='als'", {"solver": "als"}))
        configs.append(("solver='hals', max_iter=60, init_iter=20",
                        {"solver": "hals", "max_iter": 60, "init_iter": 20}))
    elif not args.quick:
        configs.append(("exact (compression=None)", {"compression": None}))
        configs.append(("mu solver", {"solver": "mu"}))
    rows = []
    for name, kw in configs:
        best = float("inf")
        for _ in range(max(args.repeat, 1)):
            t = time.perf_counter()
            est = s.estimate_number_of_components(range(2, args.kmax + 1), random_state=0,
                                                  show_progressbar=False, **kw)
            best = min(best, time.perf_counter() - t)
        rows.append((name, best, est.suggested_k, est.knee,
                     est.range_of_interest, int(est.sweep["n_iter"].sum())))
    ref = {name: sec for name, sec, *_ in rows}.get(_BEFORE)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"estimate_number_of_components, k = 2..{args.kmax}, 36x36 scan x 128x128 patterns"
          f" (truth 4); {os.cpu_count()} CPUs, load {load:.2f}")
    print(f"{'configuration':58s} {'wall s':>8s} {'ratio':>6s} {'k':>3s} {'knee':>5s} "
          f"{'range':>8s} {'iters':>6s}")
    for name, sec, k, knee, roi, it in rows:
        ratio = f"{sec / ref:5.2f}x" if ref else "     -"
        print(f"{name:58s} {sec:8.1f} {ratio:>6s} {k:3d} {knee:5d} {roi[0]:>3d}-{roi[1]:<4d} "
              f"{it:6d}")


if __name__ == "__main__":
    main()
