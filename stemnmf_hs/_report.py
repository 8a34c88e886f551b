"""The console command's account of a run: its figures, ``summary.txt`` and ``report.html``.

The PNG writers :func:`plot_factors`, :func:`plot_loadings` and :func:`plot_convergence`
(re-exported by :mod:`stemnmf_hs.cli`) draw with :mod:`stemnmf_hs.figures`, as the signal's
plot methods do.
:func:`stemnmf_hs.cli.run` collects what it did in a :class:`RunRecord` (the scan, the centre
and where it came from, the parameters, the fit, the k sweep, the clustering, the timings and
the notes); :func:`summary_sections` turns it into titled rows, :func:`write_summary` writes
them as text and :func:`write_report` as one HTML page with the run's PNG figures embedded
(:func:`stemnmf_hs.figures.html_report`), a file a user can open in any browser or send.

Reads the signals through their public API and :mod:`stemnmf_hs.signals._adapter` (the fit's
stopping point); the versions come from the installed packages' metadata.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import match_ground_truth
from .io import shape_text
from .plotting import defined

__all__ = [
    "GAMMA",
    "RunRecord",
    "axis_text",
    "cluster_rows",
    "plot_convergence",
    "plot_factors",
    "plot_loadings",
    "save_figure",
    "summary_sections",
    "versions",
    "write_report",
    "write_summary",
]

#: Exponent of the power-law (gamma) scaling of the diffraction figures.
GAMMA = 0.3
#: Figures of a run in the order the report shows them, with their section.
REPORT_FIGURES = (
    ("Number of components", "k_estimate.png"),
    ("Components", "factors.png"),
    ("Components", "loadings.png"),
    ("Clustering", "dendrogram.png"),
    ("Convergence", "convergence.png"),
    ("Orientation and phase", "orientation_map.png"),
    ("Orientation and phase", "phase_map.png"),
    ("Orientation and phase", "templates.png"),
)


@dataclass
class RunRecord:
    """What one run of the ``stemnmf`` command did, for its summary and report.

    Attributes
    ----------
    args : argparse.Namespace
        The parsed options (``components`` holds the K that was fitted).
    signal : NMFDiffraction2D
        The decomposed scan.
    source : str
        ``"simulation"`` or the resolved path of the file.
    center : (float, float)
        Pattern centre ``(cx, cy)`` in pixels used by the fit.
    center_origin : str
        Where the centre came from (``--center``, the calibration, found from the data).
    k_origin : str
        Where K came from (``--components``, the default, ``--estimate-k``).
    params : dict
        Keyword arguments of the decomposition.
    estimator : ConstrainedNMF
        The fitted estimator.
    loadings : hyperspy.signal.BaseSignal
        ``(k | x, y)`` maps.
    signal_mask : numpy.ndarray of bool, optional
        The direct-beam mask (``None`` without ``--mask-direct-beam``).
    k_estimate : NumberOfComponentsEstimate, optional
        The k sweep of ``--estimate-k``.
    clusters : ClusterResult, optional
        The clustering of the components.
    cluster_note : str
        Why the components were not clustered (``""`` when they were).
    truth_rows : list of str
        Factors against the simulation's ground truth (empty for a file).
    timings : dict
        Step name -> seconds.
    notes : list of str
        Warnings raised during the run.
    indexing : IndexingResult, optional
        The components indexed against ``--phase``.
    passes : dict
        Step name -> :class:`~stemnmf_hs.decomposition.PassCounter` of the passes over the
        data that step's solver made (the pass budget).
    """

    args: object
    signal: object
    source: str
    center: tuple
    center_origin: str
    k_origin: str
    params: dict
    estimator: object
    loadings: object
    signal_mask: object = None
    k_estimate: object = None
    clusters: object = None
    cluster_note: str = ""
    truth_rows: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    indexing: object = None
    passes: dict = field(default_factory=dict)


#: Names of the ground-truth diffractions of the simulation (``truth.diffractions`` order).
TRUTH_NAMES = ("amorphous", "crystal 1", "crystal 2", "crystal 3")


def truth_rows_of(factors, truth, log=print):
    """Summary rows comparing every factor with its matched ground-truth diffraction.

    Parameters
    ----------
    factors : hyperspy.signal.BaseSignal
        ``(k | qy, qx)`` factors of the fit (``.data`` ``(k, qy, qx)`` or ``(k, F)``).
    truth : SimulatedScan
        The simulation's ground truth (its ``diffractions``, same pixels).
    log : callable, default print
        Receives one line per matched factor.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> rows = truth_rows_of(SimpleNamespace(data=np.eye(2, 4)[::-1]),
    ...                      SimpleNamespace(diffractions=np.eye(2, 4)), log=lambda m: None)
    >>> rows[0]
    'factor 0 <-> truth 1 (crystal 1): cosine similarity 1.0000'
    """
    rows = []
    for i, j, c in match_ground_truth(factors.data, truth.diffractions):
        if j is None:
            rows.append(f"factor {i}: unmatched (more factors than ground-truth diffractions)")
            continue
        name = TRUTH_NAMES[j] if j < len(TRUTH_NAMES) else f"truth {j}"
        rows.append(f"factor {i} <-> truth {j} ({name}): cosine similarity {c:.4f}")
        log(f"  factor {i} ~ {name}: cosine {c:.4f}")
    return rows


def pass_budget(counter):
    """One line for a :class:`~stemnmf_hs.decomposition.PassCounter`: its total and the
    passes of every stage that read the data.

    Parameters
    ----------
    counter : PassCounter
        From :func:`stemnmf_hs.decomposition.count_passes`.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator, count_passes
    >>> with count_passes() as passes:
    ...     _ = as_operator(np.ones((4, 3), np.float32)).matmat(np.ones((3, 1), np.float32))
    >>> pass_budget(passes)
    '1 (other 1)'
    """
    stages = ", ".join(f"{name} {n}" for name, n in counter.by_stage.items() if n)
    return f"{counter.total}" + (f" ({stages})" if stages else "")


# ----------------------------------------------------------------------------- figures
def save_figure(fig, path):
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
    """Save :func:`stemnmf_hs.figures.image_grid` of a stack signal on its calibrated axes.

    A stack of one image may come without its stack axis (HyperSpy's loadings of K = 1).
    """
    from . import figures
    from .signals._adapter import plot_axes

    data = np.asarray(signal.data)
    fig = figures.image_grid(data.reshape((-1,) + data.shape[-2:]),
                             plot_axes(signal.axes_manager.signal_axes), **kwargs)
    save_figure(fig, path)


def plot_convergence(history, path, stop=None):
    """Save the convergence curves: MSE, L1 change of W and L1 change of H per iteration.

    Drawn by :func:`stemnmf_hs.figures.convergence_figure`, as ``s.plot_convergence()``.

    Parameters
    ----------
    history : dict of numpy.ndarray
        ``est.history_`` with keys ``"mse"``, ``"w_change"``, ``"h_change"``.
    path : str or pathlib.Path
        PNG file to write.
    stop : dict, optional
        Where the kept restart stopped (``n_iter``, ``hit_limit``, ``restart``,
        ``n_restarts``, ``note``), marked on the figure.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     plot_convergence({"mse": [2.0, 1.0]}, pathlib.Path(d) / "convergence.png")
    """
    from . import figures

    save_figure(figures.convergence_figure(history, stop=stop), path)


# ----------------------------------------------------------------------------- summary, report
def axis_text(ax, fallback):
    """One line on a HyperSpy axis: name, size, scale, offset and units.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> axis_text(SimpleNamespace(name="x", units="nm", size=4, scale=1.5, offset=0.0), "x")
    'x: size 4, scale 1.5, offset 0, units nm'
    """
    name = defined(ax.name) or fallback
    units = defined(ax.units) or "px (uncalibrated)"
    if getattr(ax, "is_uniform", True):
        return (
            f"{name}: size {ax.size}, scale {float(ax.scale):.6g}, "
            f"offset {float(ax.offset):.6g}, units {units}"
        )
    return f"{name}: size {ax.size}, non-uniform, units {units}"


def versions():
    """Versions of stemnmf_hs, HyperSpy, pyxem and numpy (installed metadata, no import).

    Examples
    --------
    >>> sorted(versions())
    ['hyperspy', 'numpy', 'pyxem', 'stemnmf_hs']
    """
    from importlib.metadata import PackageNotFoundError, version

    from ._version import __version__

    out = {"stemnmf_hs": __version__}
    for name in ("hyperspy", "pyxem", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def cluster_rows(clusters):
    """``"cluster c: w0, w2"`` for every cluster of a :class:`ClusterResult`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cluster_rows(SimpleNamespace(labels=np.array([0, 1, 0])))
    ['cluster 0: w0, w2', 'cluster 1: w1']
    """
    labels = np.asarray(clusters.labels)
    return [f"cluster {c}: " + ", ".join(f"w{i}" for i in np.flatnonzero(labels == c))
            for c in range(int(labels.max()) + 1)]


def _stop_text(stop):
    """How the kept restart stopped, from the fit's metadata (see ``fit_stop``)."""
    if stop is None:
        return "n/a"
    why = "max_iter reached" if stop.get("hit_limit") else "tolerance reached"
    kept = ""
    if stop.get("restart") is not None and stop.get("n_restarts") is not None:
        kept = f"restart {int(stop['restart'])} of {int(stop['n_restarts'])} kept; "
    return f"{kept}stopped at iteration {stop['n_iter']} ({why})"


def _k_rows(run):
    """Rows of the number-of-components section."""
    args, est = run.args, run.k_estimate
    rows = [f"K fitted: {args.components} ({run.k_origin})"]
    if est is None:
        rows.append("k sweep: not run (--estimate-k KMIN KMAX chooses K from a sweep of fits, "
                    "Cao et al. 2025)")
        return rows
    k0, k1 = est.range_of_interest
    rows += [
        f"k sweep: K = {int(est.k_values[0])}..{int(est.k_values[-1])}",
        f"suggested K: {est.suggested_k}",
        f"knee of the K-component loss: {est.knee} ({est.knee_method})",
        f"range of interest: {k0}-{k1}",
        *(f"choice of {name}: {k}" for name, k in est.choices.items()),
        f"reason: {' '.join(str(est.reason).split())}",
    ]
    return rows


def _cluster_section(run):
    """Rows of the clustering section."""
    if run.clusters is None:
        return [f"clusters: none ({run.cluster_note})"]
    return [(f"method: s.cluster_components() (angular-spectrum similarity, average linkage, "
             f"default cut), {run.clusters.n_clusters} cluster(s)"),
            *cluster_rows(run.clusters)]


def summary_sections(run):
    """The titled rows of ``summary.txt`` (and the tables of the report) of a run.

    Parameters
    ----------
    run : RunRecord

    Returns
    -------
    list of (str, list of str)
        ``(title, rows)``; rows read ``"name: value"``.
    """
    from .signals._adapter import fit_stop, is_lazy

    s, args, est, params = run.signal, run.args, run.estimator, run.params
    am = s.axes_manager
    nav_shape, sig_shape = am.navigation_shape[::-1], am.signal_shape[::-1]
    k = args.components
    maps = np.asarray(run.loadings.data, dtype=np.float64).reshape(k, -1)
    l2 = np.sqrt(np.nansum(maps**2, axis=1))
    sums = np.nansum(maps, axis=1)
    frac = sums / sums.sum() if sums.sum() > 0 else np.zeros_like(sums)
    mse = np.asarray(est.history_["mse"])
    fwhm = args.probe_fwhm if args.probe_fwhm is not None else "none (paper kernel)"
    masked = ("none" if run.signal_mask is None else
              f"radius {args.mask_direct_beam:g} px, {int(run.signal_mask.sum())} px masked")
    stop = fit_stop(s)
    note = (stop or {}).get("note", "")
    cx, cy = run.center
    sections = [
        ("input", [
            f"source: {run.source}",
            f"signal: {type(s).__name__}, title {s.metadata.General.title!r}",
            f"shape (navigation|signal): {shape_text(s)}, array order {nav_shape + sig_shape}",
            f"dtype: {s.data.dtype}, lazy: {is_lazy(s)}",
            f"probe positions: {int(np.prod(nav_shape))}",
            f"pattern pixels: {int(np.prod(sig_shape))}",
        ]),
        ("calibration", [
            *(f"navigation {axis_text(ax, n)}" for ax, n in zip(am.navigation_axes, "xy")),
            *(f"signal {axis_text(ax, n)}" for ax, n in zip(am.signal_axes, ("kx", "ky"))),
            f"pattern centre (cx, cy): ({cx:.3f}, {cy:.3f}) px, {run.center_origin}",
        ]),
        ("parameters", [
            f"components (K): {k} ({run.k_origin})",
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
        ("number of components", _k_rows(run)),
        ("result", [
            f"n_iter: {est.n_iter_}",
            f"stop: {_stop_text(stop)}",
            f"convergence: {note or 'settled'}",
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
        ("clustering", _cluster_section(run)),
    ]
    if run.indexing is not None:
        sections.append(("orientation and phase", run.indexing.summary().splitlines()))
    if run.truth_rows:
        sections.append(("ground truth (simulation)", list(run.truth_rows)))
    sections.append(("timing", [f"{name}: {sec:.2f} s" for name, sec in run.timings.items()]))
    if run.passes:
        sections.append(("passes over the data", [f"{name}: {pass_budget(counter)}"
                                                  for name, counter in run.passes.items()]))
    sections.append(("versions", [f"{n}: {v}" for n, v in versions().items()]))
    if run.notes:
        sections.append(("warnings", list(dict.fromkeys(run.notes))))
    return sections


def write_summary(path, sections):
    """Write titled rows as ``summary.txt``: a dated header, ``[title]`` and indented rows."""
    lines = [f"stemnmf summary ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    for title, rows in sections:
        lines.append(f"[{title}]")
        lines.extend(f"  {r}" for r in rows)
        lines.append("")
    Path(path).write_text("\n".join(lines), encoding="utf-8")


def _table(rows):
    """Rows ``"name: value"`` as a two-column table (mapping) for the report."""
    pairs = [str(r).split(": ", 1) for r in rows]
    return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}


def write_report(path, run, sections, folder):
    """Write the run's self-contained ``report.html``.

    Parameters
    ----------
    path : str or pathlib.Path
        The HTML file.
    run : RunRecord
    sections : list of (str, list of str)
        :func:`summary_sections` of the run.
    folder : pathlib.Path
        Where the run's PNG figures are (embedded where present, see
        :data:`REPORT_FIGURES`).

    Returns
    -------
    str
        The HTML text.
    """
    from .figures import html_report

    text = dict(sections)
    pngs = {}
    for heading, name in REPORT_FIGURES:
        if (Path(folder) / name).is_file():
            pngs.setdefault(heading, []).append(Path(folder) / name)
    est = run.k_estimate
    note = next((r.split(": ", 1)[1] for r in text["result"] if r.startswith("convergence:")),
                "settled")
    page = [
        ("Input", [_table(text["input"])]),
        ("Calibration and pattern centre", [_table(text["calibration"])]),
        ("Parameters", [_table(text["parameters"])]),
        ("Number of components", [*pngs.get("Number of components", []),
                                  *([est.summary()] if est is not None else []),
                                  _table(text["number of components"])]),
        ("Components", [*pngs.get("Components", []), _table(text["components"])]),
        ("Clustering", [*pngs.get("Clustering", []), _table(text["clustering"])]),
        ("Convergence", [*pngs.get("Convergence", []), _table(text["result"]),
                         *([f"note: {note}"] if note != "settled" else [])]),
    ]
    if "orientation and phase" in text:
        page.append(("Orientation and phase", [*pngs.get("Orientation and phase", []),
                                               "\n".join(text["orientation and phase"])]))
    if "ground truth (simulation)" in text:
        page.append(("Ground truth (simulation)", [_table(text["ground truth (simulation)"])]))
    page.append(("Timings", [_table(text["timing"])]))
    if "warnings" in text:
        page.append(("Notes", [f"note: {n}" for n in text["warnings"]]))
    page.append(("Versions", [_table(text["versions"])]))
    title = f"stemnmf report: {Path(run.source).name if run.source != 'simulation' else run.source}"
    return html_report(title, page, path=path)


def check_indexing(args, signal):
    """The ``--phase`` files, the reciprocal calibration and the beam energy, before the fit.

    Parameters
    ----------
    args : argparse.Namespace
        ``phase`` (CIF paths or None), ``resolution`` (degrees), ``beam_energy`` (kV or None).
    signal : NMFDiffraction2D

    Returns
    -------
    list of orix.crystal_map.Phase or None
        ``None`` without ``--phase``.

    Raises
    ------
    ValueError, OSError
        A CIF that does not load or lacks a symmetry, signal axes without a reciprocal
        calibration, no beam energy, a resolution that is not positive.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check_indexing(SimpleNamespace(phase=None), None) is None
    True
    """
    if not args.phase:
        return None
    from .orientation import as_phases
    from .signals._indexing import reciprocal_pixel_size

    if not args.resolution > 0:
        raise ValueError(f"--resolution {args.resolution:g}: give a grid step in degrees > 0.")
    phases = as_phases([Path(p) for p in args.phase])
    reciprocal_pixel_size(signal)
    if args.beam_energy is None and signal.metadata.get_item(
            "Acquisition_instrument.TEM.beam_energy") is None:
        raise ValueError("--phase needs the beam energy for the templates and the file has "
                         "none in its metadata: give --beam-energy KV (e.g. 200).")
    return phases


def index_and_write(signal, args, phases, out, log):
    """``s.index_components`` of the fit; writes the maps, the templates and the CrystalMap.

    Writes ``templates.png`` (each component beside its best template),
    ``orientation_map.png`` (IPF map, phases, colour keys), ``phase_map.png`` and
    ``crystal_map.h5`` (orix's HDF5 writer) into ``out``.

    Parameters
    ----------
    signal : NMFDiffraction2D
        Decomposed.
    args : argparse.Namespace
        ``resolution``, ``beam_energy``, ``no_progressbar``.
    phases : list of orix.crystal_map.Phase or None
        From :func:`check_indexing`; ``None`` does nothing.
    out : pathlib.Path
    log : callable

    Returns
    -------
    IndexingResult or None

    Raises
    ------
    ValueError
        From ``index_components``.

    Examples
    --------
    >>> index_and_write(None, None, None, None, print) is None
    True
    """
    if phases is None:
        return None
    from orix import io as orix_io

    from .signals._indexing_figures import phase_map_figure

    log(f"Indexing the components against {', '.join(p.name for p in phases)} "
        f"({args.resolution:g} deg grid)")
    res = signal.index_components(phases, resolution=args.resolution,
                                  beam_energy=args.beam_energy,
                                  show_progressbar=not args.no_progressbar)
    for line in res.summary().splitlines():
        log(f"  {line}")
    save_figure(res.plot(), out / "templates.png")
    save_figure(res.plot_orientation_map(), out / "orientation_map.png")
    save_figure(phase_map_figure(res), out / "phase_map.png")
    orix_io.save(str(out / "crystal_map.h5"), res.get_orientation_map(), overwrite=True)
    return res

