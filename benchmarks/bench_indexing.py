"""Orientation mapping: per-pattern template matching against decomposition + index_components.

A script, not a test (issue 16's benchmark).  On one simulated scan
(``stemnmf_hs.data.simulated_crystal_scan``: four Cu grains in known orientations, two of them
overlapping in a band, an amorphous matrix, Poisson noise; 64 x 64 positions of 64 x 64
patterns by default) and with one template set (Cu, 1° grid, simulated once and excluded from
both timings):

(a) pyxem per-pattern template matching: ``get_azimuthal_integral2d`` of every pattern
    (0.5 px radial bins, 1° azimuthal), the ring means removed as for (b) (:func:`stemnmf_hs.orientation.prepare_polar`), then
    ``get_orientation`` (pyxem's defaults: ``frac_keep=0.1``, ``n_best=1``; ``--frac-keep 1``
    correlates every template fully, as (b) does for its k diffractions);
(b) ``s.decomposition(algorithm="constrained_nmf", output_dimension=k)`` then
    ``s.index_components`` and ``get_orientation_map()``.

Prints the wall time of each, their ratio, and the angular error against the truth (symmetry
applied) per grain (median and share within 2° over the grain's positions outside the overlap
band) and in the overlap band (whether each true orientation is reported within 2°: pyxem
gives one orientation per pattern, the decomposition both).

    python benchmarks/bench_indexing.py                 # 64 x 64 positions
    python benchmarks/bench_indexing.py --scan 32       # quicker
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

#: Seconds of (a)'s azimuthal integration, filled by :func:`per_pattern`.
TIMES = {}
#: Radial bin of pyxem's azimuthal integration in (a), pixels (its README check used 0.43).
PYXEM_RADIAL_STEP_PX = 0.5


def _errors(truth, q, sym, grain):
    from orix.quaternion import Orientation

    from stemnmf_hs.orientation import disorientation

    return disorientation(truth.orientation(grain), Orientation(q.reshape(-1, 4), symmetry=sym))


def per_pattern(s, library, radial_range, frac_keep=0.1):
    """(a): pyxem's azimuthal integration and template matching of every pattern."""
    from stemnmf_hs.orientation import prepare_polar

    scale = s.axes_manager.signal_axes[0].scale
    npt = round((radial_range[1] - radial_range[0]) / (PYXEM_RADIAL_STEP_PX * scale))
    t = time.perf_counter()
    polar = s.get_azimuthal_integral2d(npt=npt, npt_azim=360, radial_range=radial_range,
                                       mean=True, show_progressbar=False)
    polar.data = prepare_polar(polar.data)
    TIMES["polar"] = time.perf_counter() - t
    res = polar.get_orientation(library.simulation, n_best=1, frac_keep=frac_keep,
                                show_progressbar=False)
    ori = res.to_single_phase_orientations(show_progressbar=False)
    q = np.asarray(ori.data).reshape(s.axes_manager.navigation_shape[::-1] + (4,))
    score = np.asarray(res.data)[..., 0, 1]
    return q, score


def main(argv=None):
    """Simulate, run (a) and (b), print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scan", type=int, default=64, help="scan side, positions (default 64)")
    p.add_argument("--resolution", type=float, default=1.0, help="grid, degrees (default 1)")
    p.add_argument("--restarts", type=int, default=1, help="NMF restarts (default 1)")
    p.add_argument("--max-iter", type=int, default=60, help="NMF iterations (default 60)")
    p.add_argument("--compression", default="auto",
                   help="ConstrainedNMF compression: 'auto' (sketched, default) or 'none'")
    p.add_argument("--frac-keep", type=float, default=0.1,
                   help="share of the templates pyxem fully correlates in (a) after its "
                        "azimuthally integrated prefilter (pyxem's default 0.1; 1: all, as "
                        "index_components does for the k diffractions)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from stemnmf_hs import orientation
    from stemnmf_hs.data import simulated_crystal_scan
    from stemnmf_hs.signals._indexing import DEFAULT_MIN_CORRELATION

    n = args.scan
    s, truth = simulated_crystal_scan(scan_shape=(n, n), pattern_shape=(64, 64),
                                      seed=args.seed)
    cu = truth.phases["Cu"]
    sym = cu.point_group
    radial_range = (0.15, 1.5)
    t = time.perf_counter()
    library = orientation.template_library(cu, args.resolution, 200.0, radial_range[1])
    t_lib = time.perf_counter() - t
    # warm both paths' numba functions on a 2 x 2 crop, outside the timings
    small = s.inav[:2, :2]
    per_pattern(small, library, radial_range)

    t = time.perf_counter()
    q_a, score_a = per_pattern(s, library, radial_range, args.frac_keep)
    t_a = time.perf_counter() - t

    t = time.perf_counter()
    s.decomposition(algorithm="constrained_nmf", output_dimension=truth.n_grains + 1,
                    n_restarts=args.restarts, max_iter=args.max_iter, random_state=0,
                    compression=None if args.compression == "none" else args.compression,
                    print_info=False, show_progressbar=False)
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    res = s.index_components(cu, resolution=args.resolution, radial_range=radial_range,
                             show_progressbar=False)
    xmap = res.get_orientation_map()
    t_idx = time.perf_counter() - t
    t_b = t_fit + t_idx
    q_b = xmap.rotations.data.reshape((n, n, 2, 4))
    indexed_b = xmap.phase_id.reshape(n, n) >= 0
    indexed_a = score_a >= DEFAULT_MIN_CORRELATION

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"orientation mapping, {n}x{n} scan x 64x64 patterns, {library.n_templates} Cu "
          f"templates ({args.resolution:g} deg grid, simulated in {t_lib:.1f} s, not timed); "
          f"{os.cpu_count()} CPUs, load {load:.2f}")
    print(f"(a) pyxem per pattern, frac_keep={args.frac_keep:g}")
    print(f"                           {t_a:8.1f} s  ({1e3 * t_a / n**2:.1f} ms per pattern; "
          f"azimuthal integration {TIMES['polar']:.1f} s, matching "
          f"{t_a - TIMES['polar']:.1f} s)")
    print(f"(b) decomposition + index  {t_b:8.1f} s  (fit {t_fit:.1f} s, "
          f"{args.restarts} restart(s) x {args.max_iter} it, compression={args.compression}; "
          f"index + map {t_idx:.2f} s)")
    print(f"speed-up (a) / (b)         {t_a / t_b:8.1f} x")
    print()
    print(f"{'grain':22s} {'positions':>9s} | {'(a) median':>10s} {'<=2 deg':>8s} | "
          f"{'(b) median':>10s} {'<=2 deg':>8s}")
    for g in range(truth.n_grains):
        inside = (truth.grain_map == g) & ~truth.overlap
        ea = _errors(truth, q_a[inside], sym, g)
        eb = _errors(truth, q_b[inside][:, 0], sym, g)
        ea = np.where(indexed_a[inside], ea, np.inf)
        eb = np.where(indexed_b[inside], eb, np.inf)
        print(f"{truth.labels[g + 1]:22s} {inside.sum():9d} | {np.median(ea):10.2f} "
              f"{np.mean(ea <= 2):8.0%} | {np.median(eb):10.2f} {np.mean(eb <= 2):8.0%}")
    band = truth.overlap
    found_a, found_b = [], []
    for g in (0, 1):
        ea = _errors(truth, q_a[band], sym, g)
        eb = np.minimum(_errors(truth, q_b[band][:, 0], sym, g),
                        _errors(truth, q_b[band][:, 1], sym, g))
        found_a.append(ea <= 2)
        found_b.append(eb <= 2)
    both_a = np.mean(found_a[0] & found_a[1])
    both_b = np.mean(found_b[0] & found_b[1])
    print(f"{'overlap band (A + B)':22s} {band.sum():9d} | A {np.mean(found_a[0]):4.0%} "
          f"B {np.mean(found_a[1]):4.0%} both {both_a:4.0%} | A {np.mean(found_b[0]):4.0%} "
          f"B {np.mean(found_b[1]):4.0%} both {both_b:4.0%}")
    matrix = truth.maps[1:].sum(axis=0) == 0
    print(f"{'matrix (not indexed)':22s} {matrix.sum():9d} | {np.mean(~indexed_a[matrix]):>19.0%} | "
          f"{np.mean(~indexed_b[matrix]):>19.0%}")


if __name__ == "__main__":
    main()
