#!/usr/bin/env python
"""The whole workflow on a lazy zarr scan: time, peak memory and passes per stage (issue 17).

A uint16 scan is written to a zarr store chunk by chunk (dataset B's generator of
``bench_constrained_nmf.py``: amorphous matrix + random-lattice crystals with smooth maps,
Poisson noise; the scan is never held), opened lazily as a HyperSpy signal, and taken
through what a user runs:

1. ``s.estimate_number_of_components(range(2, 21))`` (the method's defaults: held-out score
   for counts, shared sketch, ALS, 2 restarts x 100 iterations);
2. ``s.decomposition(algorithm="constrained_nmf", output_dimension=30, compression="auto",
   n_restarts=10, max_iter=100)`` (the default solver; ``--iterations 500`` is the paper's
   protocol);
3. ``s.cluster_components()``;
4. the maps: ``get_weight_ratio_map``, ``get_overlap_map``, ``get_component_map`` and
   ``get_component_mean_patterns`` (the only one that reads the data again).

Every stage runs in its own Python process (the decomposition is handed on through
``s.learning_results.save``/``load``).  Per stage the table gives the wall time, the peak
resident memory (``VmHWM`` of the process, plus every worker's with ``--distributed``),
the passes over the store (chunks read from zarr / chunks in the store: every read of the
data, by the solver or not) and the solver's passes (``_passes.count_passes``: products,
statistics, losses of the data operators, by solver stage).

``--distributed`` runs the same stages again on ``dask.distributed.LocalCluster(n_workers=2,
threads_per_worker=1)`` and compares every result with the threaded scheduler's (same seed).

This is a script, not a test::

    python benchmarks/bench_workflow.py                          # 64 x 64 scan of 128 x 128
    python benchmarks/bench_workflow.py --scan 128 --distributed
    python benchmarks/bench_workflow.py --scan 256 --pattern 256 --clean   # 8 GiB target

See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_constrained_nmf import (  # the sibling script's helpers
    ELECTRONS,
    OOC_FORMAT,
    _busy_jiffies,
    _cpu_model,
    _cpu_seconds,
    _open_complete_zarr,
    _rss_peak_mib,
    build_ooc_zarr,
)

RESULT_TAG = "@@WORKFLOW_RESULT@@"
STAGES = ("estimate_k", "decomposition", "cluster", "maps")
# Targets of issue 17 for the 256 x 256 x 256 x 256 scan.
TARGET_WALL_S = 15 * 60
TARGET_PEAK_MIB = 3 * 1024


# ----------------------------------------------------------------------------- worker side
def _logged_chunk(block, log):
    """Identity on a chunk read from the store; appends its byte count to ``log``."""
    with open(log, "a") as fh:
        fh.write(f"{block.nbytes}\n")
    return block


def _store_bytes_read(log):
    try:
        with open(log) as fh:
            return sum(int(v) for v in fh)
    except FileNotFoundError:
        return 0


def _workers_cpu(client):
    """CPU seconds of every worker process so far (0 without a client)."""
    return 0.0 if client is None else float(sum(client.run(_cpu_seconds).values()))


def _open_signal(spec):
    """The store as a lazy ``nmf_diffraction`` signal whose every chunk read is logged."""
    import dask.array as da
    import hyperspy.api as hs

    arr = da.from_zarr(spec["path"])
    arr = arr.map_blocks(_logged_chunk, spec["log"], dtype=arr.dtype)
    s = hs.signals.Signal2D(arr).as_lazy()
    s.set_signal_type("nmf_diffraction")
    return s


def _stage_estimate_k(s, spec, center):
    est = s.estimate_number_of_components(range(2, spec["k_max"] + 1), random_state=0,
                                          center=center, show_progressbar=False,
                                          **spec.get("sweep_options", {}))
    out = {"suggested_k": int(est.suggested_k)}
    arrays = {"loss": np.asarray(est.sweep["loss"]), "n_iter": np.asarray(est.sweep["n_iter"])}
    return out, arrays


def _stage_decomposition(s, spec, center):
    est = s.decomposition(
        algorithm="constrained_nmf", output_dimension=spec["k"], compression="auto",
        n_restarts=spec["restarts"], max_iter=spec["iterations"], random_state=0,
        center=center, print_info=False, return_info=True, show_progressbar=False,
    )
    s.learning_results.save(spec["lr_file"], overwrite=True)
    out = {"timings": {k: round(v, 2) for k, v in est.timings_.items()},
           "n_iter": int(est.n_iter_), "error": float(est.reconstruction_err_),
           "sketch_rank": est.sketch_rank_}
    lr = s.learning_results
    return out, {"factors": np.asarray(lr.factors), "loadings": np.asarray(lr.loadings)}


def _load_decomposition(s, spec):
    s.learning_results.load(spec["lr_file"])


def _stage_cluster(s, spec, center):
    res = s.cluster_components(center=center)
    return ({"n_clusters": int(np.max(res.labels)) + 1},
            {"labels": np.asarray(res.labels), "factors": np.asarray(res.factors.data)})


def _stage_maps(s, spec, center):
    ratio = s.get_weight_ratio_map(exclude=0)
    levels = s.get_overlap_map(exclude=0)
    labels = s.get_component_map()
    means, reps = s.get_component_mean_patterns()
    return {}, {"ratio": np.asarray(ratio.data), "overlap": np.asarray(levels.data),
                "component_map": np.asarray(labels.data), "means": np.asarray(means.data),
                "representatives": np.asarray(reps.data)}


def run_worker(spec):
    """One stage in this process: returns its time, peaks and passes; saves its arrays."""
    import warnings

    warnings.filterwarnings("ignore")
    from stemnmf_hs.decomposition._passes import count_passes

    client = cluster = None
    if spec["distributed"]:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=spec["workers"], threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        s = _open_signal(spec)
        center = tuple(spec["center"])
        if spec["stage"] in ("cluster", "maps"):
            _load_decomposition(s, spec)
        stage = globals()[f"_stage_{spec['stage']}"]
        rss_base, read0 = _rss_peak_mib(), _store_bytes_read(spec["log"])
        w0 = _workers_cpu(client)
        j0, c0, t0 = _busy_jiffies(), _cpu_seconds(), time.perf_counter()
        with count_passes() as passes:  # dask's threads, or the client when one is active
            out, arrays = stage(s, spec, center)
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = _cpu_seconds() - c0
        j1 = _busy_jiffies()
        out["worker_cpu"] = _workers_cpu(client) - w0
        if j0 is not None and j1 is not None and out["wall"] > 0:
            machine = (j1 - j0) / os.sysconf("SC_CLK_TCK")
            out["others"] = max(0.0, (machine - out["cpu"] - out["worker_cpu"]) / out["wall"])
        out["rss_peak"], out["rss_base"] = _rss_peak_mib(), rss_base
        out["store_passes"] = (_store_bytes_read(spec["log"]) - read0) / spec["nbytes"]
        out["passes"] = {"total": passes.total, "by_stage": passes.by_stage,
                         "by_kind": passes.by_kind}
        if client is not None:
            out["worker_rss"] = sorted(float(v) for v in client.run(_rss_peak_mib).values())
            out["rss_peak_total"] = out["rss_peak"] + sum(out["worker_rss"])
        np.savez(spec["result_file"], **arrays)
    finally:
        if client is not None:
            client.close()
            cluster.close()
    return out


# ----------------------------------------------------------------------------- driver side
def _launch(spec, verbose=False):
    """Run one stage in a fresh interpreter (its result line, or ``None`` on failure)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if verbose and proc.stderr:
        sys.stderr.write(proc.stderr)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    sys.stderr.write(f"  worker failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}\n")
    return None


def _log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _make_store(args, workdir):
    """The zarr store of the scan (reused while complete with the same parameters)."""
    F = args.pattern * args.pattern
    rows = args.chunk_rows or max(1, (args.chunk_mib << 20) // (args.scan * F * 2))
    params = {"format": OOC_FORMAT, "scan": args.scan, "pattern": [args.pattern] * 2,
              "n_crystals": args.crystals, "electrons": ELECTRONS, "seed": args.seed,
              "chunk_rows": rows}
    path = os.path.join(workdir, f"workflow_scan{args.scan}_pattern{args.pattern}"
                        f"_seed{args.seed}_rows{rows}.zarr")
    t0 = time.perf_counter()
    z = _open_complete_zarr(path, params)
    reused = z is not None
    if not reused:
        _log(f"writing {path} chunk by chunk ...")
        build_ooc_zarr(path, params)
    import zarr

    z = zarr.open_array(path, mode="r")
    return {"path": path, "reused": reused, "wall": time.perf_counter() - t0,
            "shape": list(z.shape), "chunks": list(z.chunks), "nchunks": int(z.nchunks),
            "nbytes": int(z.nbytes), "stored": int(z.nbytes_stored),
            "center": list(z.attrs["center"]), "rss_peak": _rss_peak_mib()}


def _compare(workdir, stages):
    """Largest relative difference between the threaded and the distributed results."""
    rows = []
    for stage in stages:
        a = np.load(os.path.join(workdir, f"result_threads_{stage}.npz"))
        b = np.load(os.path.join(workdir, f"result_distributed_{stage}.npz"))
        for key in a.files:
            x, y = a[key].astype(np.float64), b[key].astype(np.float64)
            scale = max(float(np.nanmax(np.abs(x))), 1e-30)
            diff = float(np.nanmax(np.abs(x - y))) / scale if x.size else 0.0
            rows.append((stage, key, diff, bool(np.array_equal(a[key], b[key],
                                                                 equal_nan=True))))
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="The whole stemnmf_hs workflow on a lazy zarr "
                                "scan: time, peak memory and passes per stage.")
    p.add_argument("--scan", type=int, default=64, help="scan side, probe positions (64)")
    p.add_argument("--pattern", type=int, default=128, help="pattern side, pixels (128)")
    p.add_argument("--chunk-mib", type=int, default=32,
                   help="uint16 MiB per zarr chunk of whole scan rows (32)")
    p.add_argument("--chunk-rows", type=int, default=None,
                   help="scan rows per chunk (overrides --chunk-mib)")
    p.add_argument("--crystals", type=int, default=29, help="crystal phases (29)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--components", type=int, default=30, help="k of the decomposition (30)")
    p.add_argument("--k-max", type=int, default=20, help="the sweep runs k = 2..K (20)")
    p.add_argument("--restarts", type=int, default=10, help="decomposition restarts (10)")
    p.add_argument("--iterations", type=int, default=100,
                   help="decomposition iterations (100; the paper's protocol: 500)")
    p.add_argument("--sweep-options", type=json.loads, default={},
                   help="JSON keywords for estimate_number_of_components, e.g. "
                   "'{\"heldout\": false, \"refine_iter\": 0}' (default: none)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--distributed", action="store_true",
                   help="run every stage again on LocalCluster(n_workers=2) and compare")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (2)")
    p.add_argument("--workdir", default=None, help="store and results (<tmp>/stemnmf_hs_bench)")
    p.add_argument("--clean", action="store_true", help="delete the store afterwards")
    p.add_argument("--verbose", action="store_true", help="pass worker stderr through")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _stage_line(label, res):
    if res is None:
        return f"{label:<34} failed"
    peak = res.get("rss_peak_total", res["rss_peak"])
    solver = res["passes"]
    budget = ", ".join(f"{k} {v}" for k, v in solver["by_stage"].items() if v)
    return (f"{label:<34} {res['wall']:8.1f} {peak:9.0f} {res['rss_peak'] - res['rss_base']:8.0f}"
            f" {res['store_passes']:7.1f} {solver['total']:7d} "
            f"{(res['cpu'] + res.get('worker_cpu', 0.0)) / max(res['wall'], 1e-9):8.2f}"
            f" {res.get('others', float('nan')):6.2f}  {budget or '-'}")


def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        print(RESULT_TAG + json.dumps(run_worker(json.loads(args._worker))), flush=True)
        return 0
    stages = [st for st in args.stages.split(",") if st]
    workdir = args.workdir or os.path.join(tempfile.gettempdir(), "stemnmf_hs_bench")
    os.makedirs(workdir, exist_ok=True)
    load_before, t_start = os.getloadavg(), time.perf_counter()
    store = _make_store(args, workdir)
    _log(f"store {'reused' if store['reused'] else 'written'} in {store['wall']:.1f} s")
    modes = ["threads"] + (["distributed"] if args.distributed else [])
    results = {}
    for mode in modes:
        log = os.path.join(workdir, f"reads_{mode}.log")
        if os.path.exists(log):
            os.remove(log)
        for stage in stages:
            spec = {"stage": stage, "path": store["path"], "log": log,
                    "nbytes": store["nbytes"], "center": store["center"],
                    "k": args.components, "k_max": args.k_max, "restarts": args.restarts,
                    "iterations": args.iterations, "distributed": mode == "distributed",
                    "sweep_options": args.sweep_options,
                    "workers": args.workers,
                    "lr_file": os.path.join(workdir, f"decomposition_{mode}.npz"),
                    "result_file": os.path.join(workdir, f"result_{mode}_{stage}.npz")}
            _log(f"{mode}: {stage} ...")
            res = results[(mode, stage)] = _launch(spec, args.verbose)
            if res is not None:
                _log(f"  {res['wall']:.1f} s, peak "
                     f"{res.get('rss_peak_total', res['rss_peak']):.0f} MiB, "
                     f"{res['store_passes']:.1f} store passes, others "
                     f"{res.get('others', float('nan')):.2f}")
    load_after, elapsed = os.getloadavg(), time.perf_counter() - t_start
    print(format_report(args, store, stages, modes, results, load_before, load_after,
                        elapsed, workdir))
    if args.clean:
        shutil.rmtree(store["path"], ignore_errors=True)
    return 0


def format_report(args, store, stages, modes, results, load_before, load_after, elapsed,
                  workdir):
    gib = store["nbytes"] / 2**30
    lines = [
        f"stemnmf_hs workflow benchmark ({_dt.date.today().isoformat()}, {elapsed / 60:.1f} min)",
        f"machine : {_cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}, numpy {np.__version__}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after",
        f"data    : {'x'.join(map(str, store['shape']))} uint16 zarr, {gib:.2f} GiB "
        f"({2 * gib:.2f} GiB as float32), {store['stored'] / 2**30:.2f} GiB on disk, "
        f"{store['nchunks']} chunks of {'x'.join(map(str, store['chunks']))}; "
        f"{'reused' if store['reused'] else 'written'} in {store['wall']:.1f} s",
        f"protocol: estimate_number_of_components(range(2, {args.k_max + 1})) with "
        f"{args.sweep_options or 'its defaults'}; decomposition k = {args.components}, "
        "compression='auto', "
        f"{args.restarts} restarts x {args.iterations} iterations (default solver); "
        "cluster_components(); weight-ratio, overlap, component and mean-pattern maps",
        "",
        f"{'stage':<34} {'wall s':>8} {'peak MiB':>9} {'+MiB':>8} {'store':>7} {'solver':>7}"
        f" {'cpu/wall':>8} {'others':>6}  solver passes by stage",
        "-" * 120,
    ]
    for mode in modes:
        total = 0.0
        for stage in stages:
            res = results.get((mode, stage))
            lines.append(_stage_line(f"{stage} ({mode})", res))
            total += res["wall"] if res else float("nan")
        peaks = [results[(mode, st)].get("rss_peak_total", results[(mode, st)]["rss_peak"])
                 for st in stages if results.get((mode, st))]
        lines.append(f"{'  whole workflow (' + mode + ')':<34} {total:8.1f} "
                     f"{max(peaks, default=float('nan')):9.0f}")
    lines += [
        "",
        "wall s   the stage's calls only (imports, loading the lazy signal and starting the "
        "cluster excluded)",
        "peak MiB VmHWM of the stage's process (+ every worker's with distributed)",
        "+MiB     peak minus the process's peak before the stage",
        "store    passes over the store: chunks read from zarr / chunks in the store (every "
        "read, by the solver or not)",
        "solver   passes of the data operators (stemnmf_hs.decomposition._passes.count_passes)",
        "others   busy cores of other processes while the stage ran (> 0.2: disturbed)",
    ]
    dec = results.get(("threads", "decomposition"))
    if dec:
        lines.append(f"decomposition: solver stages (s) {dec['timings']}, "
                     f"{dec['n_iter']} iterations, sketch rank {dec['sketch_rank']}")
    est = results.get(("threads", "estimate_k"))
    if est:
        lines.append(f"estimate_k: suggested k = {est['suggested_k']}")
    if "distributed" in modes:
        lines += ["", "distributed vs threaded (same seed): largest |difference| / max |value|"]
        for stage, key, diff, equal in _compare(workdir, [st for st in stages if all(
                results.get((m, st)) for m in modes)]):
            lines.append(f"  {stage:<14} {key:<16} {diff:.2e}{'  (identical)' if equal else ''}")
    if store["shape"][0] >= 256 and store["shape"][2] >= 256:
        wall = sum(results[("threads", st)]["wall"] for st in stages
                   if results.get(("threads", st)))
        peak = max((results[("threads", st)]["rss_peak"] for st in stages
                    if results.get(("threads", st))), default=float("nan"))
        lines += ["", "targets (issue 17, 256^4 scan, 2 cores):",
                  f"  whole workflow under 15 min: {wall / 60:.1f} min -> "
                  f"{'met' if wall < TARGET_WALL_S else 'MISSED'}",
                  f"  peak under 3 GiB: {peak / 1024:.2f} GiB -> "
                  f"{'met' if peak < TARGET_PEAK_MIB else 'MISSED'}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
