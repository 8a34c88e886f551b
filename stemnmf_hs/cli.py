"""Command line interface: ``stemnmf [FILE] [--components K] [--output DIR]``.

Runs the constrained NMF of Kimoto et al. (Sci. Rep. 15, 39143, 2025) on a 4D-STEM scan and
writes the results into a folder:

``decomposition.hspy``
    The scan with its ``learning_results`` (reload with ``hs.load`` and call
    ``get_decomposition_factors()`` / ``get_decomposition_loadings()``).
``factors.hspy``, ``loadings.hspy``
    The ``k`` diffractions and the ``k`` maps alone (small files).
``factors.png``, ``loadings.png``, ``convergence.png``
    Figures: the diffractions (gamma scaled, calibrated axes), the maps (calibrated scan axes,
    colorbars) and the convergence curves (MSE and L1 changes of W and H per iteration, the
    stopping iteration marked).
``dendrogram.png``, ``k_estimate.png``
    The clustering of the components (``s.cluster_components()``, K >= 2) and, with
    ``--estimate-k``, the k sweep (loss, knee, image-quality criteria; Cao et al. 2025).
``orientation_map.png``, ``phase_map.png``, ``templates.png``, ``crystal_map.h5``
    With ``--phase CIF`` (repeatable): the components indexed against those phases
    (``s.index_components``: pyxem polar template matching of diffsims templates over an
    orix orientation grid of ``--resolution`` degrees), the IPF-coloured orientation map,
    the phase map, every component beside its best template, and the orix ``CrystalMap``
    (orix's HDF5 writer; ``orix.io.load`` reads it).
``summary.txt``
    Input, shapes, calibration and the pattern centre with where it came from, parameters,
    the choice of K, iterations and how the fit stopped, reconstruction error, per-component
    map norms and intensity fractions, clusters, timings per step and versions; for the
    built-in simulation also the cosine similarity of every factor to its matched
    ground-truth diffraction.
``report.html``
    All of it on one self-contained page (figures embedded as PNG, nothing linked) to open in
    a browser or send.

The pattern centre is ``--center X Y`` when given, else the file's calibration, else (signal
axes uncalibrated) the direct beam found from the data by ``s.find_center()``; the command
prints which, and writes it into the saved signals' calibration.

Without ``FILE`` the built-in simulation :func:`stemnmf_hs.data.simulated_precipitates` is
analysed.  ``FILE`` is anything ``hs.load`` opens (rosettasciio) holding a scan of 2
navigation + 2 signal dimensions after length-1 axes are squeezed; fpd HDF5 files
(``fpd_expt/fpd_data/data``), which ``hs.load`` cannot tell from other HDF5 flavours, are read
with h5py.

Errors print one line ``stemnmf: error: <message>`` on stderr; the exit code is 2 for usage
errors, 1 for runtime errors and 130 on Ctrl-C.

This module holds the parser, :func:`main` (warnings and log records become one-line notes,
errors one line on stderr) and a short :func:`run` whose steps are library calls: loading
(:func:`stemnmf_hs.io.load_scan`), the centre (``s.find_center``), the direct-beam mask
(pyxem's ``circular_mask``), the k sweep (``s.estimate_number_of_components``), the
decomposition (the signal's ``decomposition``), the clustering (``s.cluster_components``),
the figures and the comparison with the simulation's truth
(:func:`stemnmf_hs.data.match_ground_truth`); :mod:`stemnmf_hs._report` writes the summary
and the report.  It checks the output folder, the input and the options before any long
work.  ``load_scan``, ``as_scan``, ``match_ground_truth`` and the figure writers
``plot_factors``, ``plot_loadings``, ``plot_convergence`` stay importable from here.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ._report import (
    GAMMA,
    check_indexing,
    index_and_write,
    plot_convergence,
    plot_factors,
    plot_loadings,
    save_figure,
)
from .data import match_ground_truth
from .io import as_scan, load_scan, shape_text

__all__ = [
    "as_scan",
    "build_parser",
    "direct_beam_mask",
    "load_scan",
    "main",
    "match_ground_truth",
    "plot_convergence",
    "plot_factors",
    "plot_loadings",
    "run",
]

PROG = "stemnmf"
#: Loggers whose messages become notes on stdout instead of lines on stderr.
_LIBRARY_LOGGERS = ("hyperspy", "rsciio", "pyxem", "stemnmf_hs")
#: Warning categories left out of the notes (library internals, not about the data).
_QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)
#: K when neither -k nor --estimate-k is given (the simulation's four phases).
DEFAULT_COMPONENTS = 4
#: Library advice in notes, worded as the command's options and files.
_OPTION_WORDS = (
    ("raise max_iter", "raise --max-iter"),
    ("loosen tol", "loosen --tol"),
    ("with signal_mask", "with --mask-direct-beam RADIUS"),
    ("or map_constraint=None", "or --no-map-constraint"),
    ("s.plot_convergence() shows the curves", "convergence.png shows the curves"),
)
#: Files every successful run writes.
OUTPUT_FILES = (
    "decomposition.hspy",
    "factors.hspy",
    "loadings.hspy",
    "factors.png",
    "loadings.png",
    "convergence.png",
    "summary.txt",
    "report.html",
)
#: Files some runs add: the clustering's dendrogram (K >= 2), the k sweep (--estimate-k), the
#: indexing (--phase).
OPTIONAL_FILES = ("dendrogram.png", "k_estimate.png", "orientation_map.png", "phase_map.png",
                  "templates.png", "crystal_map.h5")


class CLIError(Exception):
    """A runtime error whose message is shown to the user as it is (exit code 1)."""


class _UsageError(Exception):
    """Raised by the parser instead of printing usage and exiting (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse hook: raise instead of printing usage and exiting."""
        raise _UsageError(message)


# ----------------------------------------------------------------------------- arguments
def _number(kind, positive, what):
    """An argparse type: ``kind`` (int or float) that is > 0 (``positive``) or >= 0, finite."""

    def parse(text):
        """Convert and check one command-line value."""
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_positive_int = _number(int, True, "a positive integer")
_positive_float = _number(float, True, "a positive number")
_non_negative_float = _number(float, False, "a number >= 0")
_non_negative_int = _number(int, False, "an integer >= 0")


def _version():
    from ._version import __version__

    return __version__


def build_parser():
    """The argument parser of the ``stemnmf`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser whose ``error`` raises instead of exiting, so that :func:`main` prints a single
        error line and returns exit code 2.

    Examples
    --------
    >>> from stemnmf_hs.cli import build_parser
    >>> parser = build_parser()
    >>> parser.prog
    'stemnmf'
    >>> args = parser.parse_args(["scan.hspy", "-k", "4"])
    >>> args.file, args.components, args.solver
    ('scan.hspy', 4, 'hals')
    """
    p = _Parser(
        prog=PROG,
        description=(
            "Constrained NMF (Kimoto et al., Sci. Rep. 15, 39143, 2025) of a 4D-STEM scan: "
            "finds K diffraction patterns (factors) and their maps over the scan (loadings), "
            "and writes decomposition.hspy, factors.hspy, loadings.hspy, factors.png, "
            "loadings.png, convergence.png, dendrogram.png, summary.txt and a self-contained "
            "report.html into the output folder."
        ),
        epilog=(
            "Examples: 'stemnmf' (built-in simulation, K=4); "
            "'stemnmf scan.mib -k 3 -o results --mask-direct-beam 8 --center 25 55'; "
            "'stemnmf scan.hspy --estimate-k 2 8'; "
            "'stemnmf scan.hspy --probe-fwhm 2 --scan-step 1.5 --solver mu'. "
            "Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted."
        ),
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help=(
            "4D-STEM scan to analyse: any file hs.load opens (e.g. .hspy, .blo, .mib with its "
            ".hdr, .zspy, .dm4, .emd) or an fpd .hdf5; it must hold 2 navigation + 2 signal "
            "dimensions once length-1 axes are squeezed. Default: the built-in simulated "
            "precipitates (36x36 scan of 128x128 patterns, with ground truth)."
        ),
    )
    p.add_argument(
        "-k",
        "--components",
        type=_positive_int,
        default=None,
        metavar="K",
        help="number of components K, at most the number of probe positions (default: "
        f"{DEFAULT_COMPONENTS}, or the K suggested by --estimate-k)",
    )
    p.add_argument(
        "--estimate-k",
        type=_positive_int,
        nargs=2,
        default=None,
        metavar=("KMIN", "KMAX"),
        help="first choose K from a sweep of short fits for K = KMIN..KMAX (at least 3 "
        "values): the K-component loss, its knee and image-quality criteria (Cao et al. "
        "2025), with a held-out score for count data; the fit then uses the suggested K "
        "unless -k is given; adds k_estimate.png (default: no sweep)",
    )
    p.add_argument(
        "--center",
        type=_non_negative_float,
        nargs=2,
        default=None,
        metavar=("X", "Y"),
        help="pattern centre (the direct beam) in pixels, column X and row Y counted from "
        "the first pixel; overrides the file's calibration (default: the calibrated centre "
        "or, for uncalibrated signal axes, the direct beam found from the data)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="stemnmf_output",
        metavar="DIR",
        help="output folder, created if missing; existing files are overwritten "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--solver",
        choices=("hals", "als", "mu"),
        default="hals",
        help="'hals': the monotone solver, whose objective never rises (initialized by the "
        "paper's ALS); 'als': projected alternating least squares (the paper's protocol); "
        "'mu': multiplicative updates (default: %(default)s)",
    )
    p.add_argument(
        "--no-diffraction-constraint",
        action="store_true",
        help="switch off the continuity constraint along diffraction rings (non-negativity "
        "only for the factors)",
    )
    p.add_argument(
        "--no-map-constraint",
        action="store_true",
        help="switch off the smoothing of the maps by the probe kernel (non-negativity only "
        "for the loadings)",
    )
    p.add_argument(
        "--probe-fwhm",
        type=_positive_float,
        default=None,
        metavar="LENGTH",
        help="probe FWHM for the map smoothing kernel, in the length unit of --scan-step "
        "(default: none, the paper's 3x3 Gaussian kernel of sigma 0.57 scan pixels)",
    )
    p.add_argument(
        "--scan-step",
        type=_positive_float,
        default=None,
        metavar="LENGTH",
        help="scan step in the unit of --probe-fwhm; only used with --probe-fwhm "
        "(default: the scale of the navigation axes)",
    )
    p.add_argument(
        "--restarts",
        type=_positive_int,
        default=10,
        metavar="N",
        help="random initializations; the one with the lowest error is kept (default: %(default)s)",
    )
    p.add_argument(
        "--max-iter",
        type=_positive_int,
        default=500,
        metavar="N",
        help="maximum iterations per restart (default: %(default)s)",
    )
    p.add_argument(
        "--tol",
        type=_non_negative_float,
        default=1e-4,
        metavar="TOL",
        help="stop when the relative L1 changes of W and H both fall below TOL; 0 runs "
        "--max-iter iterations (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help="random seed of the initializations (random_state), and of the noise of the "
        "simulation when no FILE is given (default: %(default)s)",
    )
    p.add_argument(
        "--mask-direct-beam",
        type=_positive_float,
        default=None,
        metavar="RADIUS",
        help="leave out a disc of RADIUS pixels about the pattern centre (see --center) "
        "from the fit (default: no mask)",
    )
    p.add_argument(
        "--clip-negative",
        action="store_true",
        help="set negative values (e.g. after a background subtraction) to zero in a working "
        "copy instead of refusing the data",
    )
    p.add_argument(
        "--phase",
        action="append",
        metavar="CIF",
        help="index the components against this phase (a CIF file; repeat for several "
        "phases) and write the orientation and phase maps",
    )
    p.add_argument(
        "--resolution",
        type=float,
        default=1.0,
        metavar="DEG",
        help="orientation-grid resolution of the indexing in degrees (default: %(default)s)",
    )
    p.add_argument(
        "--beam-energy",
        type=float,
        default=None,
        metavar="KV",
        help="beam energy in kV for the indexing templates (default: the file's metadata)",
    )
    p.add_argument(
        "--lazy",
        action="store_true",
        help="load FILE lazily (dask) instead of into memory",
    )
    p.add_argument(
        "--no-progressbar",
        action="store_true",
        help="hide the progress bar over iterations (shown by default)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing on stdout (errors still go to stderr)",
    )
    return p


# ----------------------------------------------------------------------------- input
def _one_line(text):
    """``text`` on one line (runs of white space, newlines included, become one space)."""
    return " ".join(str(text).split())


def direct_beam_mask(signal, radius, center=None):
    """Boolean ``(ny, nx)`` signal mask, ``True`` in a disc about the pattern centre.

    pyxem's ``Diffraction2D.get_direct_beam_mask(radius)`` (0.21) always centres its disc on
    the geometric middle ``((n - 1) / 2)`` and ignores ``s.calibration.center``; the disc here
    is pyxem's :func:`pyxem.utils.diffraction.circular_mask` placed on the calibrated centre.

    Parameters
    ----------
    signal : NMFDiffraction2D
        The scan (only its signal shape and calibration are used).
    radius : float
        Disc radius in pixels; pixels closer than ``radius`` to the centre are masked.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels; default
        :func:`stemnmf_hs.signals.nmf_diffraction2d.calibrated_center`.

    Returns
    -------
    numpy.ndarray of bool
        ``(ny, nx)`` in array order.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.zeros((2, 2, 5, 7)))
    >>> direct_beam_mask(s, 1.5, center=(2, 1)).astype(int)
    array([[0, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 0, 0, 0],
           [0, 1, 1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    from pyxem.utils.diffraction import circular_mask

    if center is None:
        from .signals.nmf_diffraction2d import calibrated_center

        center = calibrated_center(signal)
    shape = tuple(signal.axes_manager.signal_shape[::-1])  # (ny, nx)
    cx, cy = (float(c) for c in center)
    return np.asarray(circular_mask(shape, float(radius), center=(cy, cx)), dtype=bool)


# ----------------------------------------------------------------------------- main job
def _check_output(path):
    """The output folder, refused before any long work when it cannot be created or written.

    Nothing is created here (a refused input leaves no folder behind); the first existing
    folder up the path must be writable.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder; give a folder with --output")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(
            f"cannot create the output folder {out}: {parent} is a file, not a folder; give "
            "another --output"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(
            f"cannot write the output folder {out}: no write permission in {parent}; give "
            "another --output"
        )
    return out


def _option_error(args):
    """The usage error of options that do not fit together, or ``None`` (before any work)."""
    if args.scan_step is not None and args.probe_fwhm is None:
        return "--scan-step is only used with --probe-fwhm"
    if args.estimate_k is not None and args.estimate_k[1] < args.estimate_k[0] + 2:
        kmin, kmax = args.estimate_k
        return (f"--estimate-k {kmin} {kmax} needs at least 3 values of K: give KMAX >= "
                f"KMIN + 2, e.g. --estimate-k {kmin} {kmin + 4}")
    return None


def _load(args, log):
    """The scan, the simulation's truth (None for a file) and the source for the summary."""
    if args.file is None:
        from .data import simulated_precipitates

        log(f"Simulating the precipitate scan (Kimoto et al. 2025), seed {args.seed}")
        s, truth = simulated_precipitates(seed=args.seed)
        return as_scan(s.as_lazy() if args.lazy else s, "the simulation"), truth, "simulation"
    log(f"Loading {args.file}{' (lazy)' if args.lazy else ''}")
    return load_scan(args.file, lazy=args.lazy), None, str(Path(args.file).resolve())


def _check_components(args, s):
    """K and the sweep's KMAX within the probe positions, options that agree (before the fit)."""
    n_pos = int(np.prod(s.axes_manager.navigation_shape))
    asked = [(args.components, f"--components {args.components}")]
    if args.estimate_k is not None:
        asked.append((args.estimate_k[1], f"--estimate-k's KMAX {args.estimate_k[1]}"))
    for k, text in asked:
        if k is not None and k > n_pos:
            raise CLIError(
                f"{text} exceeds the {n_pos} probe positions of the scan {shape_text(s)}; "
                f"give K between 1 and {n_pos}"
            )
    if args.probe_fwhm is not None and args.no_map_constraint:
        raise CLIError("--probe-fwhm sets the map smoothing, which --no-map-constraint switches off")


def _pattern_center(args, s, log):
    """The pattern centre ``(cx, cy)`` in pixels and where it came from (before the fit).

    ``--center`` (checked against the pattern, then written into ``s.calibration.center``),
    else the file's calibration, else the direct beam found from the data by
    ``s.find_center()`` (which sets the calibration itself).
    """
    from ._validation import check_center
    from .signals._checks import calibration_center

    if args.center is not None:
        try:
            center = check_center(tuple(args.center), s.axes_manager.signal_shape[::-1],
                                  name="--center")
        except ValueError as exc:
            raise CLIError(_one_line(exc)) from exc
        try:
            s.calibration.center = center
        except (AttributeError, TypeError, ValueError, NotImplementedError):
            pass  # non-uniform axes: the fit still gets the centre as its parameter
        origin = "given by --center"
    else:
        center, why = calibration_center(s)
        origin = "from the file's calibration (s.calibration.center)"
        if center is None:
            center, origin = _found_center(args, s, why, log)
    log(f"  pattern centre (cx, cy) = ({center[0]:.2f}, {center[1]:.2f}) px, {origin}")
    return tuple(float(c) for c in center), origin


def _found_center(args, s, why, log):
    """The direct beam found by ``s.find_center()`` and its origin; data it cannot read get
    the fit's own refusal (negative values) or, with ``--clip-negative``, the middle."""
    from .polar import default_center
    from .signals._checks import calibrated_center, check_values

    log(f"  {why}: finding the direct beam in the data (s.find_center)")
    try:
        beam = s.find_center(per_pattern=True, inplace=True,
                             show_progressbar=not args.no_progressbar)
    except ValueError as exc:
        try:
            check_values(s, clip_negative=args.clip_negative)  # the fit would refuse them
        except ValueError as refused:
            raise _library_error(refused) from refused
        center = default_center(s.axes_manager.signal_shape[::-1])
        return center, (f"the geometric centre, the beam was not found ({_one_line(exc)}); "
                        "give --center X Y")
    return calibrated_center(s), (f"found from the data by s.find_center() ({why}); descan "
                                  f"spread {float(beam.spread):.2g} px")


def _beam_mask(args, s, center, log):
    """The direct-beam signal mask of ``--mask-direct-beam`` (None without it)."""
    if args.mask_direct_beam is None:
        return None
    mask = direct_beam_mask(s, args.mask_direct_beam, center=center)
    log(
        f"  masking the direct beam: {int(mask.sum())} px within "
        f"{args.mask_direct_beam:g} px of ({center[0]:.1f}, {center[1]:.1f})"
    )
    if mask.all():
        raise CLIError(
            f"--mask-direct-beam {args.mask_direct_beam:g} covers the whole "
            f"{mask.shape[0]}x{mask.shape[1]} pattern"
        )
    return mask


def _fit_parameters(args, center):
    """Keyword arguments of ``decomposition(algorithm="constrained_nmf")`` from the options."""
    params = {
        "solver": args.solver,
        "diffraction_constraint": None if args.no_diffraction_constraint else "continuity",
        "map_constraint": None if args.no_map_constraint else "smooth",
        "n_restarts": args.restarts,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "random_state": args.seed,
        "center": tuple(float(c) for c in center),
    }
    if args.probe_fwhm is not None:
        params["probe_fwhm"] = args.probe_fwhm
        if args.scan_step is not None:
            params["scan_step"] = args.scan_step
    return params


def _library_error(exc):
    """A library ``ValueError`` as a :class:`CLIError`, its fix named by the CLI option."""
    return CLIError(_one_line(exc).replace("Pass clip_negative=True", "Pass --clip-negative"))


def _estimate_k(s, args, params, signal_mask, log):
    """The k sweep of ``--estimate-k`` (``s.estimate_number_of_components``), or None."""
    if args.estimate_k is None:
        return None
    kmin, kmax = args.estimate_k
    sweep = {key: value for key, value in params.items()
             if key not in ("solver", "n_restarts", "max_iter", "tol")}
    n_restarts, max_iter = min(args.restarts, 2), min(args.max_iter, 20)
    log(f"Choosing K: fits for K = {kmin}..{kmax}, {n_restarts} restart(s) of at most "
        f"{max_iter} iterations each")
    try:
        est = s.estimate_number_of_components(
            k_range=range(kmin, kmax + 1), n_restarts=n_restarts, max_iter=max_iter,
            signal_mask=signal_mask, clip_negative=args.clip_negative,
            show_progressbar=not args.no_progressbar, **sweep,
        )
    except ValueError as exc:
        raise _library_error(exc) from exc
    log(f"  suggested K = {est.suggested_k}: {_one_line(est.reason)}")
    return est


def _fit(s, args, params, signal_mask, log):
    """The signal's constrained-NMF ``decomposition``; returns the estimator."""
    log(
        f"Constrained NMF: K={args.components}, solver {args.solver}, {args.restarts} "
        f"restart(s) of at most {args.max_iter} iterations, tol {args.tol:g}"
    )
    t_fit = time.perf_counter()
    try:
        est = s.decomposition(
            algorithm="constrained_nmf", output_dimension=args.components,
            signal_mask=signal_mask, return_info=True, print_info=False,
            show_progressbar=not args.no_progressbar, clip_negative=args.clip_negative,
            **params,
        )
    except ValueError as exc:
        raise _library_error(exc) from exc
    log(
        f"  {est.n_iter_} iterations in {time.perf_counter() - t_fit:.1f} s, reconstruction "
        f"error {est.reconstruction_err_:.6g}"
    )
    return est


def _cluster(s, k, log):
    """``s.cluster_components()`` of the fit and ``""``, or ``None`` and why not."""
    from ._report import cluster_rows

    if k < 2:
        return None, "K = 1, nothing to cluster"
    try:
        clusters = s.cluster_components()
    except ValueError as exc:
        return None, f"not clustered: {_one_line(exc)}"
    log(f"Clustering the components: {clusters.n_clusters} cluster(s): "
        + "; ".join(cluster_rows(clusters)))
    return clusters, ""


def _write_results(s, est, out, args, log, k_estimate=None, clusters=None):
    """Save the three signals and the figures; returns factors and loadings."""
    from .signals._adapter import fit_stop, is_lazy

    out.mkdir(parents=True, exist_ok=True)
    factors = s.get_decomposition_factors()
    loadings = s.get_decomposition_loadings()
    for sig in (factors, loadings):
        if is_lazy(sig):
            sig.compute(show_progressbar=not args.no_progressbar)
    log(f"Writing results to {out}")
    save_kw = {"overwrite": True, "show_progressbar": not args.no_progressbar}
    s.save(out / "decomposition.hspy", **save_kw)
    factors.save(out / "factors.hspy", **save_kw)
    loadings.save(out / "loadings.hspy", **save_kw)
    plot_factors(factors, out / "factors.png")
    plot_loadings(loadings, out / "loadings.png")
    plot_convergence(est.history_, out / "convergence.png", stop=fit_stop(s))
    for name in OPTIONAL_FILES:
        (out / name).unlink(missing_ok=True)  # no stale figure of an earlier run
    if clusters is not None:
        save_figure(clusters.plot_dendrogram(gamma=GAMMA), out / "dendrogram.png")
    if k_estimate is not None:
        save_figure(k_estimate.plot(), out / "k_estimate.png")
    return factors, loadings


def run(args, log=print, notes=None):
    """Run the main job for parsed arguments.

    Checks the output folder, loads the scan (:func:`stemnmf_hs.io.load_scan`, or the
    built-in simulation), checks K and the options, settles the pattern centre (``--center``,
    the calibration, or ``s.find_center()``), optionally chooses K (``--estimate-k``), fits
    (the signal's ``decomposition``), clusters the components, writes the signals, the
    figures, ``summary.txt`` and ``report.html``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`; ``args.components`` is set to the K fitted.
    log : callable, default print
        Receives progress lines.
    notes : list of str, optional
        Warnings raised during the run, collected by :func:`main` (written to the summary).

    Returns
    -------
    pathlib.Path
        The output folder.

    Raises
    ------
    CLIError, ValueError, OSError
        On unusable input or output (:class:`stemnmf_hs.io.ScanError` is a ``ValueError``).

    Examples
    --------
    >>> import tempfile
    >>> args = build_parser().parse_args(["-k", "2", "--restarts", "1", "--max-iter", "5",
    ...                                   "-o", tempfile.mkdtemp(), "-q", "--no-progressbar"])
    >>> out = run(args, log=lambda msg: None)
    >>> sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES + ("dendrogram.png",))
    True
    """
    from ._report import (
        RunRecord,
        pass_budget,
        summary_sections,
        truth_rows_of,
        write_report,
        write_summary,
    )
    from .decomposition import count_passes

    timings, t_start = {}, time.perf_counter()

    def lap(name, since):
        """Record the seconds of step ``name`` since ``since``; the time now."""
        now = time.perf_counter()
        timings[name] = now - since
        return now

    out = _check_output(args.output)
    s, truth, source = _load(args, log)
    n_pos = int(np.prod(s.axes_manager.navigation_shape))
    sig_shape = s.axes_manager.signal_shape[::-1]
    log(
        f"  {type(s).__name__} {shape_text(s)} {s.data.dtype}: {n_pos} probe positions of "
        f"{sig_shape[0]}x{sig_shape[1]} px patterns"
    )
    _check_components(args, s)
    try:
        phases = check_indexing(args, s)
    except (ValueError, OSError) as exc:
        raise CLIError(_one_line(exc)) from exc
    t = lap("load", t_start)
    center, center_origin = _pattern_center(args, s, log)
    signal_mask = _beam_mask(args, s, center, log)
    params = _fit_parameters(args, center)
    t = lap("pattern centre", t)
    passes = {}
    with count_passes() as passes["k sweep"]:
        k_estimate = _estimate_k(s, args, params, signal_mask, log)
    if k_estimate is not None:
        log(f"  passes over the data: {pass_budget(passes['k sweep'])}")
        t = lap("k sweep", t)
    else:
        del passes["k sweep"]
    k_origin = "given by -k" if args.components is not None else (
        f"suggested by --estimate-k {args.estimate_k[0]} {args.estimate_k[1]}"
        if k_estimate is not None else "the default")
    if args.components is None:
        args.components = (int(k_estimate.suggested_k) if k_estimate is not None
                           else DEFAULT_COMPONENTS)
    with count_passes() as passes["fit"]:
        est = _fit(s, args, params, signal_mask, log)
    log(f"  passes over the data: {pass_budget(passes['fit'])}")
    t = lap("fit", t)
    clusters, cluster_note = _cluster(s, args.components, log)
    t = lap("clustering", t)
    factors, loadings = _write_results(s, est, out, args, log, k_estimate, clusters)
    try:
        indexing = index_and_write(s, args, phases, out, log)
    except ValueError as exc:
        raise _library_error(exc) from exc
    if indexing is not None:
        t = lap("indexing", t)
    truth_rows = truth_rows_of(factors, truth, log) if truth is not None else []
    lap("writing results", t)
    timings["elapsed"] = time.perf_counter() - t_start
    record = RunRecord(args, s, source, center, center_origin, k_origin, params, est, loadings,
                       signal_mask, k_estimate, clusters, cluster_note, truth_rows, timings,
                       list(notes or []), indexing, passes)
    sections = summary_sections(record)
    write_summary(out / "summary.txt", sections)
    write_report(out / "report.html", record, sections, out)
    log(f"Done in {time.perf_counter() - t_start:.1f} s. Report: {(out / 'report.html').resolve()}")
    log(f"Output: {out.resolve()}")
    return out


def main(argv=None):
    """Entry point of the ``stemnmf`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 success, 1 runtime error, 2 usage error, 130 interrupted.

    Examples
    --------
    >>> from stemnmf_hs.cli import main
    >>> main(["scan.hspy", "--no-such-option"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)} (see '{PROG} --help')", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    problem = _option_error(args)
    if problem:
        print(f"{PROG}: error: {problem} (see '{PROG} --help')", file=sys.stderr)
        return 2

    def log(msg):
        """Print a progress line unless --quiet."""
        if not args.quiet:
            print(msg, flush=True)

    notes = []

    def note(text, origin=""):
        """Record a one-line note (once) for the log and the summary."""
        text = _one_line(text).split(" Set s.calibration.center")[0]
        for library, option in _OPTION_WORDS:
            text = text.replace(library, option)
        if text and text not in notes:
            notes.append(text)
            log(f"  note{origin}: {text}")

    def on_warning(message, category, filename, lineno, file=None, line=None):
        """warnings.showwarning hook: library warnings become one-line notes."""
        if not (issubclass(category, _QUIET_WARNINGS) or "Deprecation" in category.__name__):
            note(message)

    class _LogCapture(logging.Handler):
        def emit(self, record):
            """Turn a HyperSpy/rosettasciio log warning into a note."""
            if record.levelno >= logging.WARNING:
                note(record.getMessage(), f" ({record.name})")

    saved = {}
    try:
        import matplotlib

        matplotlib.use("Agg")  # before pyplot is imported anywhere below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import hyperspy.api  # noqa: F401 - sets up its loggers, captured from here on
        capture = _LogCapture()
        for name in _LIBRARY_LOGGERS:
            lg = logging.getLogger(name)
            saved[name] = (lg.handlers[:], lg.propagate)
            lg.handlers, lg.propagate = [capture], False
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = on_warning
            run(args, log=log, notes=notes)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CLIError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - never a traceback
        msg = _one_line(exc) or "(no message)"
        if not isinstance(exc, (ValueError, OSError)):
            msg = f"{type(exc).__name__}: {msg}"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        for name, (handlers, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers, lg.propagate = handlers, propagate
    return 0


def console_main():
    """``stemnmf``: :func:`main`, exit with its code (after Ctrl-C no 1-2 s collection on exit).

    Examples
    --------
    >>> from stemnmf_hs.cli import console_main
    """
    import gc

    code = main()
    if code == 130:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console_main()
