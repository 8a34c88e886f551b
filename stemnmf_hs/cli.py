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
    colorbars) and the convergence curves (MSE and L1 changes of W and H per iteration).
``summary.txt``
    Input, shapes, calibration, parameters, iterations, reconstruction error, per-component
    map norms and intensity fractions, timings and versions; for the built-in simulation also
    the cosine similarity of every factor to its matched ground-truth diffraction.

Without ``FILE`` the built-in simulation :func:`stemnmf_hs.data.simulated_precipitates` is
analysed.  ``FILE`` is anything ``hs.load`` opens (rosettasciio) holding a scan of 2
navigation + 2 signal dimensions after length-1 axes are squeezed; fpd HDF5 files
(``fpd_expt/fpd_data/data``), which ``hs.load`` cannot tell from other HDF5 flavours, are read
with h5py.

Errors print one line ``stemnmf: error: <message>`` on stderr; the exit code is 2 for usage
errors, 1 for runtime errors and 130 on Ctrl-C.

This module holds the parser, :func:`main` (warnings and log records become one-line notes,
errors one line on stderr) and a short :func:`run` whose steps are library calls: loading
(:func:`stemnmf_hs.io.load_scan`), the direct-beam mask (pyxem's ``circular_mask``), the
decomposition (the signal's ``decomposition``), the figures and the comparison with the
simulation's truth (:func:`stemnmf_hs.data.match_ground_truth`).  It checks the output folder
and the options before any long work.  ``load_scan``, ``as_scan`` and ``match_ground_truth``
are re-exported here for callers of the former CLI functions.

Public API only: a lazy signal is told by HyperSpy's public class,
``isinstance(s, hs.signals.LazySignal)`` (:func:`_is_lazy`), not by its private ``_lazy`` flag.
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
#: Exponent of the power-law (gamma) scaling of the diffraction figures.
GAMMA = 0.3
#: Names of the ground-truth diffractions of the simulation (``truth.diffractions`` order).
TRUTH_NAMES = ("amorphous", "crystal 1", "crystal 2", "crystal 3")
#: Loggers whose messages become notes on stdout instead of lines on stderr.
_LIBRARY_LOGGERS = ("hyperspy", "rsciio", "pyxem", "stemnmf_hs")
#: Warning categories left out of the notes (library internals, not about the data).
_QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)
OUTPUT_FILES = (
    "decomposition.hspy",
    "factors.hspy",
    "loadings.hspy",
    "factors.png",
    "loadings.png",
    "convergence.png",
    "summary.txt",
)


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
            "loadings.png, convergence.png and summary.txt into the output folder."
        ),
        epilog=(
            "Examples: 'stemnmf' (built-in simulation, K=4); "
            "'stemnmf scan.mib -k 3 -o results --mask-direct-beam 8'; "
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
        default=4,
        metavar="K",
        help="number of components K, at most the number of probe positions (default: %(default)s)",
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
        help="leave out a disc of RADIUS pixels about the pattern centre (the calibrated "
        "centre, else the middle of the pattern) from the fit (default: no mask)",
    )
    p.add_argument(
        "--clip-negative",
        action="store_true",
        help="set negative values (e.g. after a background subtraction) to zero in a working "
        "copy instead of refusing the data",
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


# ----------------------------------------------------------------------------- figures
def _save_figure(fig, path):
    """Write ``fig`` to ``path`` (PNG, 100 dpi) and close it."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_factors(factors, path, gamma=GAMMA):
    """Save a grid of the diffractions with power-law scaling and calibrated axes.

    Drawn by :func:`stemnmf_hs.figures.image_grid`, as the signal's plot methods draw them.

    Parameters
    ----------
    factors : hyperspy.signal.BaseSignal
        ``s.get_decomposition_factors()``: ``(k|kx, ky)``.
    path : str or pathlib.Path
        PNG file to write.
    gamma : float, default 0.3
        Exponent of the intensity scaling (rings and spots both show).

    Examples
    --------
    >>> import tempfile, pathlib, hyperspy.api as hs
    >>> f = hs.signals.Signal2D(np.ones((2, 8, 8)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_factors(f, pathlib.Path(d) / "factors.png")
    """
    _save_grid(factors, path, kind="diffraction", prefix="factor",
               title=f"Diffractions (intensity$^{{{gamma:g}}}$)", gamma=gamma)


def plot_loadings(loadings, path):
    """Save a grid of the maps with calibrated scan axes and colorbars.

    Parameters
    ----------
    loadings : hyperspy.signal.BaseSignal
        ``s.get_decomposition_loadings()``: ``(k|scan_x, scan_y)``.
    path : str or pathlib.Path
        PNG file to write.

    Examples
    --------
    >>> import tempfile, pathlib, hyperspy.api as hs
    >>> h = hs.signals.Signal2D(np.ones((2, 4, 4)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_loadings(h, pathlib.Path(d) / "loadings.png")
    """
    _save_grid(loadings, path, kind="map", prefix="map", title="Maps (loadings)")


def _save_grid(signal, path, **kwargs):
    """Save :func:`stemnmf_hs.figures.image_grid` of a stack signal on its calibrated axes."""
    from . import figures
    from .signals._adapter import plot_axes

    fig = figures.image_grid(signal.data, plot_axes(signal.axes_manager.signal_axes), **kwargs)
    _save_figure(fig, path)


def plot_convergence(history, path):
    """Save the convergence curves: MSE, L1 change of W and L1 change of H per iteration.

    Drawn by :func:`stemnmf_hs.figures.convergence_figure`, as ``s.plot_convergence()``.

    Parameters
    ----------
    history : dict of numpy.ndarray
        ``est.history_`` with keys ``"mse"``, ``"w_change"``, ``"h_change"``.
    path : str or pathlib.Path
        PNG file to write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_convergence({"mse": [2.0, 1.0]}, pathlib.Path(d) / "convergence.png")
    """
    from . import figures

    _save_figure(figures.convergence_figure(history), path)


# ----------------------------------------------------------------------------- summary
def _axis_text(ax, fallback):
    from .plotting import defined

    name = defined(ax.name) or fallback
    units = defined(ax.units) or "px (uncalibrated)"
    if getattr(ax, "is_uniform", True):
        return (
            f"{name}: size {ax.size}, scale {float(ax.scale):.6g}, "
            f"offset {float(ax.offset):.6g}, units {units}"
        )
    return f"{name}: size {ax.size}, non-uniform, units {units}"


def _versions():
    import hyperspy
    import pyxem

    import stemnmf_hs

    return {
        "stemnmf_hs": stemnmf_hs.__version__,
        "hyperspy": hyperspy.__version__,
        "pyxem": pyxem.__version__,
        "numpy": np.__version__,
    }


def _write_summary(path, info):
    lines = [f"stemnmf summary ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    for title, rows in info:
        lines.append(f"[{title}]")
        lines.extend(f"  {r}" for r in rows)
        lines.append("")
    Path(path).write_text("\n".join(lines), encoding="utf-8")


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
    """K within the probe positions, and options that agree (before the fit)."""
    n_pos = int(np.prod(s.axes_manager.navigation_shape))
    if args.components > n_pos:
        raise CLIError(
            f"--components {args.components} exceeds the {n_pos} probe positions of the "
            f"scan {shape_text(s)}; give K between 1 and {n_pos}"
        )
    if args.probe_fwhm is not None and args.no_map_constraint:
        raise CLIError("--probe-fwhm sets the map smoothing, which --no-map-constraint switches off")


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
    params = dict(
        solver=args.solver,
        diffraction_constraint=None if args.no_diffraction_constraint else "continuity",
        map_constraint=None if args.no_map_constraint else "smooth",
        n_restarts=args.restarts,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.seed,
        center=tuple(float(c) for c in center),
    )
    if args.probe_fwhm is not None:
        params["probe_fwhm"] = args.probe_fwhm
        if args.scan_step is not None:
            params["scan_step"] = args.scan_step
    return params


def _fit(s, args, params, signal_mask, log):
    """The signal's constrained-NMF ``decomposition``; returns the estimator and seconds."""
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
        msg = _one_line(exc).replace("Pass clip_negative=True", "Pass --clip-negative")
        raise CLIError(msg) from exc
    fit_s = time.perf_counter() - t_fit
    log(
        f"  {est.n_iter_} iterations in {fit_s:.1f} s, reconstruction error "
        f"{est.reconstruction_err_:.6g}"
    )
    return est, fit_s


def _is_lazy(signal):
    """Whether ``signal`` is a lazy HyperSpy signal (its public class, not ``_lazy``)."""
    import hyperspy.api as hs

    return isinstance(signal, hs.signals.LazySignal)


def _write_results(s, est, out, args, log):
    """Save the three signals and the three figures; returns factors and loadings."""
    out.mkdir(parents=True, exist_ok=True)
    factors = s.get_decomposition_factors()
    loadings = s.get_decomposition_loadings()
    for sig in (factors, loadings):
        if _is_lazy(sig):
            sig.compute(show_progressbar=not args.no_progressbar)
    log(f"Writing results to {out}")
    save_kw = dict(overwrite=True, show_progressbar=not args.no_progressbar)
    s.save(out / "decomposition.hspy", **save_kw)
    factors.save(out / "factors.hspy", **save_kw)
    loadings.save(out / "loadings.hspy", **save_kw)
    plot_factors(factors, out / "factors.png")
    plot_loadings(loadings, out / "loadings.png")
    plot_convergence(est.history_, out / "convergence.png")
    return factors, loadings


def _summary_sections(args, s, source, center, signal_mask, params, est, loadings):
    """The input, calibration, parameters, result and component sections of summary.txt."""
    am = s.axes_manager
    nav_shape, sig_shape = am.navigation_shape[::-1], am.signal_shape[::-1]
    k = args.components
    maps = np.asarray(loadings.data, dtype=np.float64).reshape(k, -1)
    l2 = np.sqrt(np.nansum(maps**2, axis=1))
    sums = np.nansum(maps, axis=1)
    frac = sums / sums.sum() if sums.sum() > 0 else np.zeros_like(sums)
    mse = np.asarray(est.history_["mse"])
    fwhm = args.probe_fwhm if args.probe_fwhm is not None else "none (paper kernel)"
    masked = ("none" if signal_mask is None else
              f"radius {args.mask_direct_beam:g} px, {int(signal_mask.sum())} px masked")
    return [
        ("input", [
            f"source: {source}",
            f"signal: {type(s).__name__}, title {s.metadata.General.title!r}",
            f"shape (navigation|signal): {shape_text(s)}, array order {nav_shape + sig_shape}",
            f"dtype: {s.data.dtype}, lazy: {_is_lazy(s)}",
            f"probe positions: {int(np.prod(nav_shape))}, pattern pixels: "
            f"{int(np.prod(sig_shape))}",
        ]),
        ("calibration", [
            *(f"navigation {_axis_text(ax, n)}" for ax, n in zip(am.navigation_axes, "xy")),
            *(f"signal {_axis_text(ax, n)}" for ax, n in zip(am.signal_axes, ("kx", "ky"))),
            f"pattern centre (cx, cy): ({center[0]:.3f}, {center[1]:.3f}) px",
        ]),
        ("parameters", [
            f"components (K): {k}",
            f"solver: {args.solver}",
            f"diffraction constraint: {params['diffraction_constraint']}",
            f"map constraint: {params['map_constraint']}",
            f"probe FWHM: {fwhm}",
            f"scan step: {est.scan_step if est.scan_step is not None else 'n/a'}",
            f"restarts: {args.restarts}",
            f"max iterations: {args.max_iter}",
            f"tol: {args.tol:g}",
            f"seed (random_state): {args.seed}",
            f"clip negative values: {args.clip_negative}",
            f"direct-beam mask: {masked}",
        ]),
        ("result", [
            f"n_iter: {est.n_iter_}",
            f"reconstruction error (Frobenius): {est.reconstruction_err_:.6g}",
            f"final MSE: {float(mse[-1]):.6g}" if len(mse) else "final MSE: n/a",
            "restart errors: "
            + ", ".join(f"{e:.6g}" for e in np.asarray(getattr(est, "restart_errors_", []))),
        ]),
        ("components", [
            f"component {i}: map L2 norm {l2[i]:.6g}, fraction of total intensity {frac[i]:.4f}"
            + (" (empty: this component vanished; try a smaller K)" if l2[i] == 0 else "")
            for i in range(k)
        ]),
    ]


def _truth_rows(factors, truth, log):
    """Summary rows comparing every factor with its matched ground-truth diffraction."""
    rows = []
    for i, j, c in match_ground_truth(factors.data, truth.diffractions):
        if j is None:
            rows.append(f"factor {i}: unmatched (more factors than ground-truth diffractions)")
            continue
        name = TRUTH_NAMES[j] if j < len(TRUTH_NAMES) else f"truth {j}"
        rows.append(f"factor {i} <-> truth {j} ({name}): cosine similarity {c:.4f}")
        log(f"  factor {i} ~ {name}: cosine {c:.4f}")
    return rows


def run(args, log=print, notes=None):
    """Run the main job for parsed arguments.

    Checks the output folder, loads the scan (:func:`stemnmf_hs.io.load_scan`, or the
    built-in simulation), checks K and the options, fits (the signal's ``decomposition``),
    writes the signals, figures and ``summary.txt``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`.
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
    >>> sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    True
    """
    from .signals.nmf_diffraction2d import calibrated_center

    t_start = time.perf_counter()
    out = _check_output(args.output)
    s, truth, source = _load(args, log)
    n_pos = int(np.prod(s.axes_manager.navigation_shape))
    sig_shape = s.axes_manager.signal_shape[::-1]
    log(
        f"  {type(s).__name__} {shape_text(s)} {s.data.dtype}: {n_pos} probe positions of "
        f"{sig_shape[0]}x{sig_shape[1]} px patterns"
    )
    _check_components(args, s)
    center = calibrated_center(s)
    signal_mask = _beam_mask(args, s, center, log)
    params = _fit_parameters(args, center)
    est, fit_s = _fit(s, args, params, signal_mask, log)
    factors, loadings = _write_results(s, est, out, args, log)

    sections = _summary_sections(args, s, source, center, signal_mask, params, est, loadings)
    if truth is not None:
        sections.append(("ground truth (simulation)", _truth_rows(factors, truth, log)))
    elapsed = time.perf_counter() - t_start
    sections.append(("timing", [f"fit: {fit_s:.2f} s", f"elapsed: {elapsed:.2f} s"]))
    sections.append(("versions", [f"{n}: {v}" for n, v in _versions().items()]))
    if notes:
        sections.append(("warnings", list(dict.fromkeys(notes))))
    _write_summary(out / "summary.txt", sections)
    log(f"Done in {elapsed:.1f} s. Output: {out.resolve()}")
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
    if args.scan_step is not None and args.probe_fwhm is None:
        print(
            f"{PROG}: error: --scan-step is only used with --probe-fwhm (see '{PROG} --help')",
            file=sys.stderr,
        )
        return 2

    def log(msg):
        """Print a progress line unless --quiet."""
        if not args.quiet:
            print(msg, flush=True)

    notes = []

    def note(text, origin=""):
        """Record a one-line note (once) for the log and the summary."""
        text = _one_line(text).split(" Set s.calibration.center")[0]
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
    except Exception as exc:  # never a traceback
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


if __name__ == "__main__":
    sys.exit(main())
