"""Validation of the constrained NMF on independent data (issue 13).

For every case x dose x variant, the decomposition at k = the true number of components is
scored against the ground truth (:mod:`stemnmf_hs.data._truth`): amorphous diffraction
cosine, the smallest crystal cosine (the truth's amorphous part removed, see
``crystal_cosine``), amorphous and smallest crystal map correlation, the dark-spot ratio of
the amorphous diffraction, whether the recorded objective rose between iterations, and the
time.  At k = 30 on the four-component real-pattern case, ``cluster_components()`` of the
signal API is compared with the truth.  The table is printed and written to
``docs/validation.md``.

Variants are a dict name -> estimator parameters (:data:`VARIANTS`): a new solver or
constraint is one line.  A variant with the key ``"sklearn"`` runs
``sklearn.decomposition.NMF`` with those parameters instead.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/validation.py --quick
    python benchmarks/validation.py --cases abtem,kinematic --doses 1e4,1e5 --variants default,"ALS W+H"
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from stemnmf_hs import ConstrainedNMF
from stemnmf_hs.data._cases import (
    DOSES,
    abtem_case,
    kinematic_case,
    real_pattern_case,
)
from stemnmf_hs.data._truth import cosine, score_decomposition

ROOT = Path(__file__).resolve().parents[1]

#: name -> ConstrainedNMF parameters (or {"sklearn": NMF parameters}).
VARIANTS = {
    "default": dict(),
    "hals H": dict(diffraction_constraint=None),
    "hals no-uniq": dict(unique_components=False),
    "hals strict-uniq": dict(unique_components=True),
    "primitive": dict(solver="als", diffraction_constraint=None, map_constraint=None),
    "ALS W": dict(solver="als", map_constraint=None),
    "ALS H": dict(solver="als", diffraction_constraint=None),
    "ALS W+H": dict(solver="als"),
    "sklearn-cd": dict(sklearn=dict(solver="cd", init="nndsvda")),
    # Diagnostics of the low-dose regime (docs/validation_low_dose.md), not candidates:
    # the default started from the true maps (does its objective prefer the truth?), and
    # scikit-learn with a Poisson-aware loss: pixel residuals weighted by 1 / sqrt(mean
    # pattern) (variance-stabilizing), or the Kullback-Leibler divergence.
    "default from truth": dict(init="truth", init_iter=0, n_restarts=1),
    "sklearn-cd poisson-w": dict(sklearn=dict(solver="cd", init="nndsvda"), weights="poisson"),
    "sklearn-mu KL": dict(sklearn=dict(solver="mu", beta_loss="kullback-leibler",
                                       init="nndsvda")),
}

#: name -> builder(dose, seed) of a ValidationCase.
CASES = {
    "abtem": lambda dose, seed: abtem_case(dose, seed=seed),
    "real_patterns": lambda dose, seed: real_pattern_case(dose, seed=seed),
    "kinematic": lambda dose, seed: kinematic_case(dose, seed=seed),
}


def fit_variant(case, params, k, n_restarts, max_iter, seed, tol):
    """Fit one variant; returns (factors (k, qy, qx) nan-masked, maps (k, n_pos), info)."""
    X = case.X
    t0 = time.perf_counter()
    objective = None
    if "sklearn" in params:
        from sklearn.decomposition import NMF

        opts = dict(max_iter=max(max_iter, 200), random_state=seed)
        opts.update(params["sklearn"])
        est = NMF(n_components=k, **opts)
        # "poisson": residuals weighted by 1 / sqrt(mean pattern), the Poisson variance's
        # inverse square root, by scaling the pixels (columns) and unscaling the components.
        w = np.ones(X.shape[1], np.float32)
        if params.get("weights") == "poisson":
            mu = np.asarray(X, np.float64).mean(axis=0)
            w = (1.0 / np.sqrt(np.maximum(mu, 1e-3 * mu.max()))).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = est.fit_transform(X * w)
        components = est.components_ / w
        rose, n_iter = None, est.n_iter_
    else:
        opts = dict(n_restarts=n_restarts, max_iter=max_iter, tol=tol, random_state=seed,
                    **case.estimator_geometry())
        opts.update({key: v for key, v in params.items() if key != "init"})
        est = ConstrainedNMF(k, **opts)
        init = None
        if params.get("init") == "truth":  # the true maps, in the data's units
            init = case.maps.reshape(case.maps.shape[0], -1).T.astype(np.float32)
            init *= float(np.sum(X, dtype=np.float64) / max(init.sum(dtype=np.float64), 1e-12))
        maps = est.fit_transform(X, init_maps=init)
        components = est.components_
        n_iter = est.n_iter_
        hist = getattr(est, "history_", {})
        # The objective each solver descends: J for "hals", the squared error for ALS/MU.
        mse = np.asarray(hist.get("objective", hist.get("mse", [])), dtype=np.float64)
        rose = None
        if mse.size > 1:
            rise = np.diff(mse) / mse[:-1]
            rose = float(rise.max())
        if "objective" in hist:
            objective = float(hist["objective"][-1])
    elapsed = time.perf_counter() - t0
    return case.unmask(components), np.asarray(maps).T, dict(
        time=elapsed, rose=rose, n_iter=n_iter, objective=objective)


def _fmt(v, nd=3):
    if v is None:
        return "n/a"
    if isinstance(v, (float, np.floating)) and not np.isfinite(v):
        return "nan"
    return f"{v:.{nd}f}"


def _rose(r):
    if r is None:
        return "n/a"
    return f"yes (+{r:.1e})" if r > 1e-6 else "no"


def run_table(cases, doses, variants, n_restarts, max_iter, seed, tol, log):
    rows = []
    for cname in cases:
        for dose in doses:
            try:
                case = CASES[cname](dose, seed)
            except FileNotFoundError as err:
                log(f"skip {cname}: {err}")
                break
            for vname in variants:
                W, H, info = fit_variant(case, VARIANTS[vname], case.n_components, n_restarts,
                                         max_iter, seed, tol)
                s = score_decomposition(
                    W, H, case.diffractions, case.maps, amorphous_index=case.amorphous_index,
                    amorphous_reference=case.info.get("amorphous_reference"))
                row = dict(case=cname, dose=dose, variant=vname, **info, **s)
                rows.append(row)
                log(
                    f"{cname:14s} {dose:8.0e} {vname:11s} amorph cos "
                    f"{_fmt(s['amorphous_cosine'])}  min cryst cos "
                    f"{_fmt(np.nanmin(s['crystal_cosines']))}  amorph r "
                    f"{_fmt(s['amorphous_map_r'])}  matrix r {_fmt(s['matrix_map_r'])}  "
                    f"min cryst r "
                    f"{_fmt(np.nanmin(s['crystal_map_r']))}  dark "
                    f"{_fmt(s['dark_spot_ratio'])}  rose {_rose(info['rose'])}  "
                    f"J {_fmt(info['objective'], 6)}  {info['time']:.1f} s"
                )
    return rows


def run_clustering(case_name, dose, k, n_restarts, max_iter, seed, tol, params, log):
    """k = 30 decomposition through the signal API, then ``cluster_components()``."""
    import hyperspy.api as hs

    case = CASES[case_name](dose, seed)
    s = hs.signals.Signal2D(case.data)
    s.set_signal_type("nmf_diffraction")
    for ax in s.axes_manager.navigation_axes:
        ax.scale, ax.units = case.scan_step_nm, "nm"
    t0 = time.perf_counter()
    s.decomposition(algorithm="constrained_nmf", output_dimension=k,
                    signal_mask=case.signal_mask, center=case.center,
                    probe_fwhm=case.probe_fwhm_nm, n_restarts=n_restarts, max_iter=max_iter,
                    tol=tol, random_state=seed, print_info=False, show_progressbar=False,
                    **params)
    t_fit = time.perf_counter() - t0
    res = s.cluster_components(center=case.center)
    labels = np.asarray(res.labels)
    factors = np.asarray(s.get_decomposition_factors().data, dtype=np.float64)
    nearest = np.array([np.argmax([cosine(f, t) for t in case.diffractions]) for f in factors])
    amorphous_labels = set(labels[nearest == case.amorphous_index].tolist())
    out = dict(case=case_name, dose=dose, k=k, truth=case.n_components,
               clusters=len(set(labels.tolist())),
               n_amorphous_factors=int((nearest == case.amorphous_index).sum()),
               amorphous_one_cluster=len(amorphous_labels) == 1,
               amorphous_cluster_pure=(len(amorphous_labels) == 1 and set(
                   nearest[labels == next(iter(amorphous_labels))].tolist())
                   == {case.amorphous_index}),
               time=t_fit)
    log(f"clustering {case_name} dose {dose:.0e} k={k}: {out['clusters']} clusters "
        f"(truth {out['truth']}), amorphous-like factors {out['n_amorphous_factors']} in "
        f"{len(amorphous_labels)} cluster(s), fit {t_fit:.1f} s")
    return out


def run_builtin(variant, log, seed=0):
    """Issue 13's bars on the built-in simulation with the CLI defaults (k = 4, 10 restarts
    x 500 iterations, tol 1e-4): crystal cosines, and the largest deviation of the matched
    amorphous map (electrons, scaled to 1 where the truth is pure matrix) from its true
    fraction, over the precipitate areas' means."""
    from stemnmf_hs import ConstrainedNMF
    from stemnmf_hs.data import match_ground_truth, simulated_precipitates

    s, truth = simulated_precipitates(seed=seed)
    ny, nx = s.axes_manager.navigation_shape[::-1]
    X = s.data.reshape(ny * nx, -1).astype(np.float32)
    t0 = time.perf_counter()
    est = ConstrainedNMF(4, signal_shape=s.axes_manager.signal_shape[::-1],
                         navigation_shape=(ny, nx), center=tuple(truth.center), n_restarts=10,
                         max_iter=500, tol=1e-4, random_state=seed, **VARIANTS[variant])
    maps = est.fit_transform(X)
    match = match_ground_truth(est.components_, truth.diffractions.reshape(4, -1))
    cos = {t: c for _, t, c in match}
    o = {t: i for i, t, _ in match}[0]
    fraction = truth.maps[0] / truth.maps[0].max()
    amorph = (maps[:, o] * est.components_[o].sum()).reshape(ny, nx)
    amorph = amorph / np.median(amorph[fraction >= 0.999])
    labels = np.asarray(truth.area_labels)
    dev = max(abs(float(amorph[labels == a].mean() - fraction[labels == a].mean()))
              for a in np.unique(labels[labels > 0]))
    out = dict(variant=variant, cosines=[cos[j] for j in (1, 2, 3)], deviation=dev,
               time=time.perf_counter() - t0)
    log(f"built-in simulation, {variant}: crystal cosines "
        f"{', '.join(f'{c:.3f}' for c in out['cosines'])}, largest deviation of the matrix "
        f"map from its true fraction {dev:.3f} ({out['time']:.0f} s)")
    return out


def builtin_markdown(rows):
    """The built-in simulation's section of docs/validation.md."""
    lines = ["", "## Built-in simulation, CLI defaults (issue 13's bars)", "",
             "`simulated_precipitates(seed=0)`, k = 4, 10 restarts x 500 iterations: crystal "
             "cosines (bar >= 0.90) and the largest deviation of the amorphous map from its "
             "true fraction over the nine precipitate areas' means (bar <= 0.1).", "",
             "| variant | crystal cosines | largest deviation | time s |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {', '.join(_fmt(c) for c in r['cosines'])} | "
                     f"{_fmt(r['deviation'])} | {r['time']:.0f} |")
    return lines


# ----------------------------------------------------------------- choice of k (issue 14)
def _kimoto_case(dose, seed):
    """Kimoto et al.'s scan: 36 x 36 x 128 x 128, amorphous + crystals at 9, 3, 1 %."""
    from stemnmf_hs.data import simulated_precipitates

    s, truth = simulated_precipitates(seed=seed, electrons_per_pattern=dose)
    return s, 4, {}


def _case_signal(cname, dose, seed):
    """(signal, truth k, estimate_number_of_components keywords) of a k-validation case."""
    import hyperspy.api as hs

    if cname == "kimoto":
        return _kimoto_case(dose, seed)
    case = CASES[cname](dose, seed)
    s = hs.signals.Signal2D(case.data)
    s.set_signal_type("nmf_diffraction")
    for ax in s.axes_manager.navigation_axes:
        ax.scale, ax.units = case.scan_step_nm, "nm"
    return s, case.n_components, dict(signal_mask=case.signal_mask, center=case.center,
                                      probe_fwhm=case.probe_fwhm_nm)


K_CASES = ("kimoto", "abtem", "real_patterns", "kinematic")


def run_k(cases, doses, k_range, seed, log, **opts):
    """``estimate_number_of_components`` per case and dose: every criterion's k vs truth."""
    rows = []
    for cname in cases:
        for dose in doses:
            try:
                s, truth, kw = _case_signal(cname, dose, seed)
            except FileNotFoundError as err:
                log(f"skip {cname}: {err}")
                break
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = s.estimate_number_of_components(k_range, random_state=seed,
                                                      show_progressbar=False, **kw, **opts)
            row = dict(case=cname, dose=dose, truth=truth, suggested=est.suggested_k,
                       time=time.perf_counter() - t0, **est.choices)
            rows.append(row)
            log(f"k: {cname:14s} {dose:8.0e} truth {truth} suggested {est.suggested_k} "
                f"choices {est.choices} {row['time']:.1f} s")
    return rows


def k_markdown(rows, config):
    lines = ["", "## Choice of k (issue 14)", "",
             "`s.estimate_number_of_components()` per case and dose: the suggested k (held-out "
             "Poisson deviance of binomially thinned counts, checked by Cao's IQA duplicates, "
             "the knee of the loss as a floor) "
             "and each criterion's own choice: the knee of the K-component loss, Cao's rule "
             "(loss + IQA), the held-out minimum and the one-standard-error held-out k.  "
             + "; ".join(f"{k}: {v}" for k, v in config.items()) + ".", "",
             "| case | dose | truth | suggested | within 1 | knee | Cao | held-out min "
             "| held-out 1-SE | time s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['dose']:.0e} | {r['truth']} | **{r['suggested']}** | "
            f"{'yes' if abs(r['suggested'] - r['truth']) <= 1 else 'no'} | {r['knee']} | "
            f"{r['cao']} | {r.get('heldout_min', 'n/a')} | {r.get('heldout_one_se', 'n/a')} "
            f"| {r['time']:.1f} |")
    return lines


HEADER = """# Validation on independent data

Generated by `benchmarks/validation.py` (issue 13): the constrained NMF and its variants on
data the package did not simulate itself, scored against ground truth.

## Cases (`stemnmf_hs.data._cases`)

- **abtem**: the abTEM multislice scan of `shared/realdata` (32 x 32 positions, 64 x 64
  pixels, Cu and Fe nanoparticles in a Zr-Cu-Al glass, two particles overlapping in
  projection; 0.1875 nm step, 0.98 nm probe FWHM).  Counts: Poisson draws from the
  noise-free patterns at the dose.  Truth maps: the matrix and particle atom-density maps
  (k = 5).  Truth diffractions: per-pixel non-negative least squares of the noise-free
  patterns on those maps (multislice is not linear in the densities: this truth reproduces
  the noise-free data to a relative error of {abtem_residual}), so the abtem scores are
  bounded below 1 by the truth itself.  That fitted matrix diffraction is dark at the
  particles' spots, so its dark-spot ratio uses its rotational average as the reference.
- **real_patterns**: a 32 x 32 scan of four *experimental* diffractions on a 64 x 64 grid:
  the rotational average of the amorphous Titan pattern, the G-phase NBED pattern, the same
  turned by 40 degrees, and the ASTAR precession pattern; three grains (peak crystal
  fractions 0.6, 0.5, 0.4) in the amorphous matrix, maps blurred by a 2 nm probe at 1 nm
  steps; direct beams masked (r <= 3 px).
- **kinematic**: diffsims/orix kinematic patterns of Cu [001] at 20 and 50 degrees (an
  overlapping pair), Fe [001] and Cu [111] at 15 degrees, with peak crystallinities 9, 9, 3
  and 1 %, in an amorphous matrix (k = 5).

Doses are electrons per pattern.  Direct beams are excluded with `signal_mask`.

## Figures

- *amorph cos*: cosine of the amorphous diffraction with its truth.
- *min cryst cos*: the smallest crystal cosine, each computed after removing the truth's
  amorphous share from factor and truth alike (`crystal_cosine`): a crystal factor that
  carries the matrix's rings scores low.
- *amorph r*, *min cryst r*: Pearson correlation of the matched maps with the truth maps.
- *matrix r*: the same for the summed maps of every factor whose diffraction has a cosine
  >= 0.9 with the true matrix (the matched one included): where the fit splits the matrix
  over two factors (at k = truth when a weak crystal is not detectable), the matrix map the
  clustering reports; equal to *amorph r* when the matrix is one factor.
- *dark*: dark-spot ratio of the amorphous diffraction (mean on the crystals' spot pixels
  over the true profile scaled on the other pixels; < 0.95 = the crystals' spots dug into
  the amorphous diffraction).  Spot pixels: the crystal truths' excess over their running
  median, above 10 % of its maximum; spots touching the direct-beam mask are the beam's
  tail, not Bragg spots, and are left out (since 2026-12-03: before, the real crystal
  patterns' wide direct beams put 17 of 64 "spot" pixels at 3-4 px from the centre of
  real_patterns, where the crystals are 30x brighter than the matrix).
- *rose*: whether the recorded objective (`history_["mse"]`) rose between iterations
  (the largest relative rise); n/a for scikit-learn, which records none.
- Components are matched to the truth by the Hungarian method on diffraction cosines.
"""


def write_markdown(path, rows, clusters, config, abtem_residual, k_lines=()):
    lines = [HEADER.format(abtem_residual=abtem_residual), "## Configuration", ""]
    lines += [f"- {k}: {v}" for k, v in config.items()]
    lines += ["", "## Results at k = truth", "",
              "| case | dose | variant | amorph cos | min cryst cos | amorph r | matrix r "
              "| min cryst r | dark | rose | iter | time s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['dose']:.0e} | {r['variant']} | "
            f"{_fmt(r['amorphous_cosine'])} | {_fmt(np.nanmin(r['crystal_cosines']))} | "
            f"{_fmt(r['amorphous_map_r'])} | {_fmt(r['matrix_map_r'])} | "
            f"{_fmt(np.nanmin(r['crystal_map_r']))} | "
            f"{_fmt(r['dark_spot_ratio'])} | {_rose(r['rose'])} | {r['n_iter']} | "
            f"{r['time']:.1f} |"
        )
    lines += ["", "### Per crystal (truth order)", "",
              "| case | dose | variant | crystal cosines | crystal map r |", "|---|---|---|---|---|"]
    for r in rows:
        cc = ", ".join(_fmt(v) for v in r["crystal_cosines"])
        cr = ", ".join(_fmt(v) for v in r["crystal_map_r"])
        lines.append(f"| {r['case']} | {r['dose']:.0e} | {r['variant']} | {cc} | {cr} |")
    if clusters:
        lines += ["", "## Clustering at k = 30 (`cluster_components()` defaults)", "",
                  "| case | dose | variant | k | clusters | truth | amorphous-like factors "
                  "| amorphous in one cluster | that cluster pure | fit s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in clusters:
            lines.append(
                f"| {c['case']} | {c['dose']:.0e} | {c['variant']} | {c['k']} | "
                f"{c['clusters']} | {c['truth']} | {c['n_amorphous_factors']} | "
                f"{'yes' if c['amorphous_one_cluster'] else 'no'} | "
                f"{'yes' if c['amorphous_cluster_pure'] else 'no'} | {c['time']:.1f} |"
            )
    lines += list(k_lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="2 restarts, 200 iterations, doses 1e4,1e5")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--doses", default=None, help="comma list, default 1e3,1e4,1e5,1e6")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--n-restarts", type=int, default=None)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--tol", type=float, default=0.0,
                   help="ConstrainedNMF tol (default 0: exactly max-iter iterations)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cluster-k", type=int, default=30, help="0 skips the clustering")
    p.add_argument("--cluster-case", default="real_patterns")
    p.add_argument("--cluster-dose", type=float, default=1e5)
    p.add_argument("--cluster-variants", default="default")
    p.add_argument("--out", default=str(ROOT / "docs" / "validation.md"))
    p.add_argument("--builtin", default="",
                   help="comma list of variants fitted on the built-in simulation with the "
                        "CLI defaults (about 40 s each), e.g. 'default,hals noise-uniq'")
    p.add_argument("--k", action="store_true",
                   help="also the choice of k per case and dose (issue 14)")
    p.add_argument("--k-cases", default=",".join(K_CASES))
    p.add_argument("--k-doses", default="1e3,1e4,1e5")
    p.add_argument("--k-range", default="2,11", help="first,stop of the k range")
    p.add_argument("--k-solver", default="hals", help="solver of the k sweep")
    p.add_argument("--k-param", action="append", default=[], metavar="NAME=VALUE",
                   help="another sweep keyword (int, float, None, True/False or a "
                        "string), e.g. --k-param max_iter=60")
    a = p.parse_args(argv)
    n_restarts = a.n_restarts or (2 if a.quick else 10)
    max_iter = a.max_iter or (200 if a.quick else 500)
    doses = ([float(d) for d in a.doses.split(",")] if a.doses
             else ([1e4, 1e5] if a.quick else list(DOSES)))
    cases = [c for c in a.cases.split(",") if c]
    variants = [v for v in a.variants.split(",") if v]
    for name, known in ((cases, CASES), (variants, VARIANTS)):
        bad = [n for n in name if n not in known]
        if bad:
            p.error(f"unknown {bad}; choose from {list(known)}")

    def log(msg):
        print(msg, flush=True)

    t0 = time.perf_counter()
    rows = run_table(cases, doses, variants, n_restarts, max_iter, a.seed, a.tol, log)
    clusters = []
    if a.cluster_k:
        for v in a.cluster_variants.split(","):
            params = {k: val for k, val in VARIANTS[v].items()}
            try:
                c = run_clustering(a.cluster_case, a.cluster_dose, a.cluster_k, n_restarts,
                                   max_iter, a.seed, a.tol, params, log)
            except FileNotFoundError as err:
                log(f"skip clustering: {err}")
                break
            c["variant"] = v
            clusters.append(c)
    try:
        residual = f"{abtem_case(1e5).info['truth_residual']:.2f}"
    except FileNotFoundError:
        residual = "(data absent)"
    import sklearn

    import stemnmf_hs

    config = {
        "command": "python benchmarks/validation.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "restarts": n_restarts, "iterations": max_iter,
        "tol": a.tol, "seed": a.seed, "doses": ", ".join(f"{d:.0e}" for d in doses),
        "scikit-learn NMF": f"max_iter {max(max_iter, 200)}, tol 1e-4 (its default)",
        "versions": f"stemnmf_hs {stemnmf_hs.__version__}, scikit-learn {sklearn.__version__},"
                    f" numpy {np.__version__}, Python {platform.python_version()}",
        "machine": f"{platform.machine()}, OMP threads as set by the caller; shared CPU, "
                   "times are indicative",
        "date": datetime.date.today().isoformat(),
        "total time": f"{time.perf_counter() - t0:.0f} s",
    }
    k_lines = []
    builtin = [run_builtin(v, log) for v in a.builtin.split(",") if v]
    if builtin:
        k_lines += builtin_markdown(builtin)
    if a.k:
        k0, k1 = (int(v) for v in a.k_range.split(","))
        extra = {}
        for item in a.k_param:
            name, value = item.split("=", 1)
            extra[name] = _parse_value(value)
        k_rows = run_k([c for c in a.k_cases.split(",") if c],
                       [float(d) for d in a.k_doses.split(",")], range(k0, k1), a.seed, log,
                       solver=a.k_solver, **extra)
        k_lines += k_markdown(k_rows, {"k range": f"{k0}-{k1 - 1}", "solver": a.k_solver,
                                      **extra,
                                      "sweep": "method defaults (2 restarts; hals: 10 ALS + 20 "
                                               "monotone iterations, tol 1e-3)"})
        config["total time"] = f"{time.perf_counter() - t0:.0f} s"
    write_markdown(Path(a.out), rows, clusters, config, residual, k_lines)
    log(f"wrote {a.out}")


def _parse_value(text):
    """A ``--k-param`` value: int, float, ``None``/``True``/``False`` or a string."""
    named = {"None": None, "True": True, "False": False}
    if text in named:
        return named[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
