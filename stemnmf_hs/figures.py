"""Whole figures: the composite figures of the signal methods, the result objects and the CLI.

Built from the panels, colour bars, labels and units of :mod:`stemnmf_hs.plotting` (the
shared visual language), so that every figure looks alike: components over their maps,
image grids, convergence curves, the dendrogram of clusters, similarity matrices, the
component map, mean raw patterns against their representatives, the k-estimate figure
(Cao et al. 2025, Fig. 3), and the self-contained HTML report of the console command.
Matplotlib only: never imports HyperSpy.  The overlap map stays in :mod:`stemnmf_hs.plotting`
beside the widget detection it uses.
"""

from __future__ import annotations

import math

import numpy as np

from .plotting import (
    DIFFRACTION_LABEL,
    IQA_LABELS,
    MAP_LABEL,
    MASKED_CAPTION,
    MATRIX_CMAP,
    add_colorbar,
    calibrate_image,
    component_cmap,
    draw_diffraction,
    draw_map,
    image_extent,
    iqa_label,
    label_colour,
    new_axes,
    robust_limit,
)

__all__ = [
    "component_grid",
    "component_map_figure",
    "convergence_figure",
    "dendrogram_figure",
    "html_report",
    "image_grid",
    "k_estimate_figure",
    "mean_patterns_figure",
    "similarity_figure",
]

#: IQA colour maps: bright = similar for SSIM and PSNR, bright = different for GMSD and MDSI.
_IQA_CMAPS = {"ssim": "viridis", "psnr": "viridis", "gmsd": "magma", "mdsi": "magma"}


# ---------------------------------------------------------------------------- layout helpers
def _grid(k):
    """``(rows, columns)`` of a near-square grid of ``k`` panels."""
    ncols = min(k, max(1, math.ceil(math.sqrt(k))))
    return math.ceil(k / ncols), ncols



def _panel_grid(nrows, ncols, figsize):
    """A pyplot figure of ``nrows x ncols`` axes (always 2D), constrained layout."""
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")


def _masked_caption(title, *images):
    """``title`` with :data:`MASKED_CAPTION` added when any image holds a NaN (masked)."""
    if not any(np.isnan(np.asarray(img, dtype=float)).any() for img in images):
        return title
    return f"{title}\n({MASKED_CAPTION})" if title else MASKED_CAPTION


def _label_ticks(ax, names):
    """Tick labels ``names`` on both axes of a matrix, in the component colours."""
    k = len(names)
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for i, tick in enumerate(ticks):
            tick.set_color(label_colour(i))


def _annotate_cells(ax, values, fmt, bright, fontsize, skip_diagonal=False):
    """Write ``values[i, j]`` into each cell; dark text where ``bright(value)``."""
    k = values.shape[0]
    for i in range(k):
        for j in range(k):
            if not (skip_diagonal and i == j):
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                        fontsize=fontsize, color="k" if bright(values[i, j]) else "w")


# ---------------------------------------------------------------------------- whole figures
def component_grid(factors, f_axes, maps, m_axes, prefix=("w", "h"), gamma=0.3, title="",
                   f_label=DIFFRACTION_LABEL, m_label=MAP_LABEL):
    """Figure of ``k`` diffractions (top row) over their maps (bottom row).

    Every panel has a colour bar labelled with its quantity and units; empty components are
    labelled "empty"; the title says "grey: masked pixels" only when pixels are masked.

    Parameters
    ----------
    factors : numpy.ndarray
        ``(k, ky, kx)`` diffractions.
    f_axes : (Axis, Axis) or None
        Their ``(kx, ky)`` axes.
    maps : numpy.ndarray
        ``(k, y, x)`` maps.
    m_axes : (Axis, Axis) or None
        Their ``(x, y)`` axes.
    prefix : (str, str)
        Panel titles ``prefix + index`` (a space after prefixes longer than one letter).
    gamma : float, default 0.3
    title : str
    f_label, m_label : str
        Colour-bar labels of the diffractions and the maps.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = component_grid(np.ones((2, 8, 8)), None, np.ones((2, 4, 4)), None)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['w0', 'w1']
    """
    k = factors.shape[0]
    fig, axs = _panel_grid(2, k, (2.7 * k + 0.6, 6.6))
    sep = " " if len(prefix[0]) > 1 else ""
    for i in range(k):
        im = draw_diffraction(axs[0, i], factors[i], f_axes, gamma=gamma)
        axs[0, i].set_title(f"{prefix[0]}{sep}{i}", fontsize=10, color=label_colour(i))
        add_colorbar(axs[0, i], im, f_label, location="bottom", shrink=0.7)
        im = draw_map(axs[1, i], maps[i], m_axes)
        axs[1, i].set_title(f"{prefix[1]}{sep}{i}", fontsize=10, color=label_colour(i))
        add_colorbar(axs[1, i], im, m_label, location="bottom", shrink=0.7)
    title = _masked_caption(title, factors, maps)
    if title:
        fig.suptitle(title)
    return fig


def image_grid(images, axes=None, kind="diffraction", prefix="factor", title="", gamma=0.3,
               label=None):
    """A near-square grid of ``k`` diffractions or maps, one panel per image, each with a
    labelled colour bar ("grey: masked pixels" in the title only when pixels are masked).

    Parameters
    ----------
    images : numpy.ndarray
        ``(k, ny, nx)``; NaN (masked) pixels show grey.
    axes : (Axis, Axis), optional
        Image axes ``(x, y)``; pixels when ``None``.
    kind : {"diffraction", "map"}
        :func:`draw_diffraction` (power-law ``gamma``) or :func:`draw_map` with a colour bar.
    prefix : str
        Panel titles ``"{prefix} {i}"``.
    title : str
    gamma : float, default 0.3
    label : str, optional
        Colour-bar label; default :data:`DIFFRACTION_LABEL` or :data:`MAP_LABEL`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = image_grid(np.ones((3, 8, 8)), kind="map", prefix="map")
    >>> [ax.get_title() for ax in fig.axes if ax.images]
    ['map 0', 'map 1', 'map 2']
    """
    if kind not in ("diffraction", "map"):
        raise ValueError(f"kind must be 'diffraction' or 'map'; got {kind!r}.")
    data = np.asarray(images, dtype=np.float64)
    k = data.shape[0]
    nrows, ncols = _grid(k)
    width = 3.4 if kind == "diffraction" else 3.8
    fig, axs = _panel_grid(nrows, ncols, (width * ncols, 3.2 * nrows))
    if label is None:
        label = DIFFRACTION_LABEL if kind == "diffraction" else MAP_LABEL
    for i, ax in enumerate(axs.flat):
        if i >= k:
            ax.axis("off")
            continue
        if kind == "diffraction":
            im = draw_diffraction(ax, data[i], axes, gamma=gamma)
        else:
            im = draw_map(ax, data[i], axes)
        add_colorbar(ax, im, label, shrink=0.85)
        ax.set_title(f"{prefix} {i}")
    title = _masked_caption(title, data)
    if title:
        fig.suptitle(title)
    return fig


def convergence_figure(history, axes=None, label=None, reference_mse=None,
                       reference_label="reference", stop=None):
    """Convergence curves of one fit: MSE, L1 change of W and of H per iteration.

    Kimoto et al. 2025, Fig. 7.  With ``stop``, a dotted line marks the iteration where the
    kept restart stopped, the title names that restart and why it stopped, and a note says
    what to try when the fit did not settle (:func:`convergence_note`).

    Parameters
    ----------
    history : mapping
        ``"mse"``, ``"w_change"``, ``"h_change"`` -> ``(n_iter,)`` values (a missing key
        draws nothing).
    axes : sequence of 3 matplotlib.axes.Axes, optional
        Draw into these (to overlay fits); a new figure when ``None``.
    label : str, optional
        Legend label of the curves; no legend without a label or reference.
    reference_mse : float, optional
        MSE drawn as a dashed line in the first panel (e.g. PCA's).
    reference_label : str, default "reference"
    stop : mapping, optional
        ``"n_iter"`` (iteration of the stop), ``"hit_limit"`` (stopped by ``max_iter``),
        optionally ``"restart"`` and ``"n_restarts"`` (which restart was kept, 0-based) and
        ``"note"`` (the not-settled note).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = convergence_figure({"mse": [3.0, 2.0], "w_change": [1.0, 0.1],
    ...                           "h_change": [1.0, 0.2]}, label="ALS")
    >>> [ax.get_yscale() for ax in fig.axes]
    ['linear', 'log', 'log']
    >>> fig = convergence_figure({"mse": [3.0, 2.0]}, stop={"n_iter": 2, "hit_limit": False,
    ...                                                     "restart": 1, "n_restarts": 10})
    >>> fig.get_suptitle()
    'restart 1 of 10 kept (lowest error); stopped at iteration 2 (tolerance reached)'
    """
    if axes is None:
        fig, axes = _panel_grid(1, 3, (12, 3.4))
        axes = axes[0]
    axes = list(axes)
    fig = axes[0].figure
    panels = (("mse", "MSE (counts²)", False),
              ("w_change", "||W(i+1) - W(i)||₁ (diffractions)", True),
              ("h_change", "||H(i+1) - H(i)||₁ (maps, counts)", True))
    for a, (key, name, log) in zip(axes, panels):
        y = np.asarray(history.get(key, []), dtype=float)
        it = np.arange(1, y.size + 1)
        ok = np.isfinite(y) & ((y > 0) if log else True)
        a.plot(it[ok], y[ok], ".-", ms=3, label=label)
        if log and ok.any():
            a.set_yscale("log")
        a.set_title(name, fontsize=10)
        a.set_xlabel("iteration")
        a.grid(True, alpha=0.3)
    if reference_mse is not None:
        axes[0].axhline(float(reference_mse), ls="--", color="k", lw=1, label=reference_label)
    if label is not None or reference_mse is not None:
        axes[0].legend(fontsize=8)
    if stop is not None:
        _mark_stop(fig, axes, stop)
    return fig


def _mark_stop(fig, axes, stop):
    """The stopping iteration, the kept restart and a not-settled note on a convergence figure."""
    n_iter = int(stop["n_iter"])
    why = "max_iter reached" if stop.get("hit_limit") else "tolerance reached"
    for a in axes:  # a collection, not a curve: overlays count their curves only
        a.vlines(n_iter, 0, 1, transform=a.get_xaxis_transform(), linestyles=":",
                 colors="0.3", lw=1, label="_stop")
    title = f"stopped at iteration {n_iter} ({why})"
    if stop.get("n_restarts") is not None and stop.get("restart") is not None:
        title = (f"restart {int(stop['restart'])} of {int(stop['n_restarts'])} kept (lowest "
                 f"error); " + title)
    fig.suptitle(title, fontsize=10)
    if stop.get("note"):
        import textwrap

        fig.supxlabel("\n".join(textwrap.wrap(stop["note"], 150)), fontsize=8,
                      color="#b35806")


def dendrogram_figure(linkage, labels, diffractions, axes=None, metric="polar", ax=None,
                      gamma=0.3):
    """Dendrogram of the components with the averaged diffraction of every cluster.

    Kimoto et al. 2025, Fig. 9c-d: branches inside a cluster take the cluster's colour
    (:data:`LABEL_COLOURS`), links above the cut are grey; the insets above show the
    averaged diffraction of every cluster (in the order of the leaves), with a scale bar.

    Parameters
    ----------
    linkage : numpy.ndarray
        ``(k - 1, 4)`` scipy linkage matrix.
    labels : numpy.ndarray
        ``(k,)`` cluster of every component.
    diffractions : numpy.ndarray
        ``(n_clusters, ky, kx)`` averaged diffraction of every cluster.
    axes : (Axis, Axis), optional
        Reciprocal axes of the diffractions.
    metric : {"polar", "cosine"}
        Which similarity the distance ``1 - similarity`` used (y label).
    ax : matplotlib.axes.Axes, optional
        Axes to draw the dendrogram into (the insets go above it); a new figure when
        ``None``.
    gamma : float, default 0.3

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from scipy.cluster.hierarchy import linkage as link
    >>> z = link([[0.0], [0.1], [1.0]], "average")
    >>> fig = dendrogram_figure(z, np.array([0, 0, 1]), np.ones((2, 8, 8)))
    >>> fig.axes[0].get_ylabel()
    '1 - diffraction similarity (eq. 10)'
    """
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram

    labels = np.asarray(labels)
    n = int(labels.max()) + 1
    k = len(labels)
    if ax is None:
        fig = plt.figure(figsize=(max(6.0, 1.9 * n), 6.2))
        ax = fig.add_axes([0.1, 0.08, 0.86, 0.5])
    fig = ax.figure
    members = [{i} for i in range(k)]
    for a, b in np.asarray(linkage)[:, :2].astype(int):
        members.append(members[a] | members[b])

    def link_colour(node):
        """Colour of linkage node ``node``: its cluster's colour, grey if mixed."""
        clusters = np.unique(labels[sorted(members[node])])
        return label_colour(clusters[0]) if clusters.size == 1 else "0.45"

    tree = dendrogram(linkage, ax=ax, labels=[f"w{i}" for i in range(k)],
                      link_color_func=link_colour)
    for tick in ax.get_xticklabels():
        tick.set_color(label_colour(labels[int(tick.get_text()[1:])]))
    name = "cosine similarity (eq. 9)" if metric == "cosine" else (
        "diffraction similarity (eq. 10)")
    ax.set_ylabel(f"1 - {name}")
    ax.set_xlabel("component")
    order = list(dict.fromkeys(int(labels[leaf]) for leaf in tree["leaves"]))
    data = np.asarray(diffractions, dtype=float)
    width = 1.0 / n
    for slot, c in enumerate(order):
        inset = ax.inset_axes([slot * width + 0.04 * width, 1.06, 0.92 * width, 0.62])
        draw_diffraction(inset, data[c], axes, gamma=gamma, labels=False)
        inset.set_title(f"cluster {c}: " + ",".join(f"w{m}" for m in np.flatnonzero(labels == c)),
                        fontsize=8, color=label_colour(c))
        inset.set_xticks([])
        inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set_edgecolor(label_colour(c))
            spine.set_linewidth(2)
    return fig


def similarity_figure(similarity, names, title="", ax=None, annotate=True):
    """A k x k similarity matrix in :data:`MATRIX_CMAP` on ``[0, 1]``, annotated.

    Parameters
    ----------
    similarity : numpy.ndarray
        ``(k, k)``.
    names : sequence of str
        ``(k,)`` row and column labels, drawn in the component colours.
    title : str
    ax : matplotlib.axes.Axes, optional
    annotate : bool, default True
        Write the values into the cells (for ``k <= 12``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = similarity_figure(np.eye(2), ["w0", "w1"], "cosine similarity, eq. 9")
    >>> fig.axes[0].get_title()
    'cosine similarity, eq. 9'
    """
    sim = np.asarray(similarity)
    k = sim.shape[0]
    fig, ax = new_axes(ax, (1.0 + 0.55 * k + 1.2, 1.0 + 0.55 * k))
    im = ax.imshow(sim, cmap=MATRIX_CMAP, vmin=0, vmax=1, interpolation="nearest")
    _label_ticks(ax, list(names))
    if annotate and k <= 12:
        _annotate_cells(ax, sim, "{:.2f}", lambda v: v > 0.6, 8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="similarity")
    return fig


def component_map_figure(labels, k, axes=None, name="w", ax=None, scalebar=True):
    """Dominant component at every probe position, component ``i`` in ``label_colour(i)``.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(y, x)`` int labels.
    k : int
        Number of components (colours).
    axes : (Axis, Axis), optional
        Scan axes ``(x, y)``.
    name : str
        Legend entries ``name + index`` (a space after names longer than one letter).
    ax : matplotlib.axes.Axes, optional
    scalebar : bool, default True

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = component_map_figure(np.array([[0, 1], [1, 2]]), 3)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['w0', 'w1', 'w2']
    """
    from matplotlib.colors import BoundaryNorm
    from matplotlib.patches import Patch

    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
    fig, ax = new_axes(ax, (6.4, 5.0))
    extent = image_extent(axes, labels.shape)
    ax.imshow(labels, cmap=component_cmap(k), norm=norm, extent=extent,
              interpolation="nearest")
    sep = " " if len(name) > 1 else ""
    ax.legend(handles=[Patch(color=label_colour(i), label=f"{name}{sep}{i}")
                       for i in np.unique(labels)],
              loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    calibrate_image(ax, axes, extent, ("x", "y"), scalebar)
    ax.set_title("Component map (dominant component)")
    return fig


def mean_patterns_figure(means, representatives, counts, axes=None, name="w", gamma=0.3,
                         label=DIFFRACTION_LABEL):
    """Mean raw pattern of every component's positions over its NMF representative.

    Both rows of a column share one robust intensity scale (Cao et al. 2025, "Comparing NMF
    results with the raw dataset"), shown by the colour bar under the column.

    Parameters
    ----------
    means, representatives : numpy.ndarray
        ``(k, ky, kx)``.
    counts : sequence of int
        ``(k,)`` number of positions of every component.
    axes : (Axis, Axis), optional
        Reciprocal axes.
    name : str
        Panel prefix ("w" or "cluster ").
    gamma : float, default 0.3
    label : str
        Colour-bar label (quantity and units of the raw data).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = mean_patterns_figure(np.ones((1, 8, 8)), np.ones((1, 8, 8)), [5])
    >>> fig.axes[0].get_title()
    'mean raw, w0 (5 pos.)'
    """
    m = np.asarray(means, dtype=float)
    r = np.asarray(representatives, dtype=float)
    k = m.shape[0]
    fig, axs = _panel_grid(2, k, (2.7 * k + 0.6, 5.8))
    for i in range(k):
        vmax = robust_limit(np.concatenate([np.ravel(m[i]), np.ravel(r[i])]))
        draw_diffraction(axs[0, i], m[i], axes, gamma=gamma, vmax=vmax)
        axs[0, i].set_title(f"mean raw, {name}{i} ({counts[i]} pos.)", fontsize=9,
                            color=label_colour(i))
        im = draw_diffraction(axs[1, i], r[i], axes, gamma=gamma, vmax=vmax)
        axs[1, i].set_title(f"{name}{i}: w max(h)", fontsize=9, color=label_colour(i))
        add_colorbar(axs[1, i], im, label, location="bottom", shrink=0.7)
    fig.suptitle(_masked_caption("Mean raw patterns (top) vs NMF representatives (bottom)",
                                 m, r))
    return fig


def k_estimate_figure(k_values, loss, knee, range_of_interest, roi_k_values, criteria,
                      thresholds, matrices, k, suggested_k, loss_units="", annotate=None,
                      figsize=(13, 8)):
    """Loss curve, duplicate criteria and the four IQA matrices (Cao et al. 2025, Fig. 3).

    Top left: the K-component loss against ``k`` with the knee marked, the range of interest
    shaded and ``k`` marked (Fig. 3a).  Top right: per ``k`` of the range, the largest
    off-diagonal SSIM and the smallest off-diagonal GMSD with their thresholds.  Bottom: the
    SSIM, PSNR, GMSD and MDSI matrices of fit ``k`` (Fig. 3b-e).

    Parameters
    ----------
    k_values, loss : numpy.ndarray
        ``(n,)`` the loss curve.
    knee : int
    range_of_interest : (int, int)
    roi_k_values : numpy.ndarray
        ``(m,)`` the ``k`` of the range.
    criteria : dict
        ``(m,)`` arrays ``max_ssim``, ``min_gmsd``, ``distinct``
        (:func:`stemnmf_hs.model_selection.suggest_k`).
    thresholds : dict
        ``{"ssim": ..., "gmsd": ...}`` (``None`` = off).
    matrices : dict
        Metric -> ``(k, k)`` matrix of fit ``k``.
    k, suggested_k : int
    loss_units : str
    annotate : bool, optional
        Values in the matrix cells; default when ``k <= 10``.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> eye = {m: np.eye(2) for m in ("ssim", "psnr", "gmsd", "mdsi")}
    >>> crit = {"max_ssim": np.zeros(3), "min_gmsd": np.ones(3), "distinct": np.ones(3, bool)}
    >>> fig = k_estimate_figure(np.arange(1, 4), np.array([3.0, 1.0, 0.9]), 2, (1, 3),
    ...                         np.arange(1, 4), crit, {"ssim": 0.9, "gmsd": 0.07}, eye,
    ...                         2, 2)
    >>> fig.get_suptitle()
    'Number of components: suggested k = 2'
    """
    import matplotlib.pyplot as plt

    ks, y = np.asarray(k_values), np.asarray(loss)
    if annotate is None:
        annotate = k <= 10
    fig = plt.figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 4, height_ratios=[1, 1.1])
    ax_loss = fig.add_subplot(gs[0, :2])
    ax_crit = fig.add_subplot(gs[0, 2:])

    k0, k1 = range_of_interest
    ax_loss.axvspan(k0 - 0.5, k1 + 0.5, color="tab:blue", alpha=0.12,
                    label=f"range of interest {k0}-{k1}")
    ax_loss.plot(ks, y, "o-", color="k", ms=4)
    ax_loss.plot([knee], [y[ks == knee][0]], "s", ms=10, mfc="none", mec="tab:red",
                 label=f"knee k = {knee}")
    ax_loss.plot([k], [y[ks == k][0]], "*", ms=14, color="tab:orange",
                 label=f"{'suggested ' if k == suggested_k else ''}k = {k}")
    ax_loss.set_xlabel("number of components k")
    unit = f" ({loss_units})" if loss_units else ""
    ax_loss.set_ylabel(f"K-component loss{unit}")
    ax_loss.set_title("(a) K-component loss")
    ax_loss.legend(fontsize=8)

    roi = np.asarray(roi_k_values)
    c = criteria
    ax_crit.set_xlabel("number of components k")
    ax_g = ax_crit.twinx()
    for ax_, key, name, colour, marker, label in (
            (ax_crit, "max_ssim", "ssim", "tab:green", "o-", "max off-diag SSIM"),
            (ax_g, "min_gmsd", "gmsd", "tab:purple", "s-", "min off-diag GMSD")):
        ax_.plot(roi, c[key], marker, color=colour, label=label)
        if thresholds[name] is not None:
            ax_.axhline(thresholds[name], color=colour, ls="--", lw=0.8)
        ax_.set_ylabel(name.upper(), color=colour)
    for kd in roi[~np.asarray(c["distinct"], bool)]:
        ax_crit.axvline(kd, color="0.6", lw=6, alpha=0.3)
    ax_crit.axvline(suggested_k, color="tab:orange", lw=1.5)
    ax_crit.set_title("duplicate criteria (grey: fits with duplicates)")
    lines = ax_crit.get_lines()[:1] + ax_g.get_lines()[:1]
    ax_crit.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")

    for col, (m, letter) in enumerate(zip(("ssim", "psnr", "gmsd", "mdsi"), "bcde")):
        ax = fig.add_subplot(gs[1, col])
        mat = np.asarray(matrices[m], dtype=float)
        shown = mat.copy()
        if m == "psnr":  # the capped diagonal would swamp the colour scale
            np.fill_diagonal(shown, np.nan)
        im = ax.imshow(shown, cmap=_IQA_CMAPS[m], interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label=iqa_label(m))
        ax.set_title(f"({letter}) {IQA_LABELS[m]}, k = {k}")
        ax.set_xlabel("component j")
        ax.set_ylabel("component i")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        if annotate:
            # dark text on bright cells
            _annotate_cells(ax, mat, "{:.0f}" if m == "psnr" else "{:.2f}",
                            lambda v, norm=im.norm: norm(v) > 0.6, 7, m == "psnr")
    fig.suptitle(f"Number of components: suggested k = {suggested_k}")
    return fig


# ---------------------------------------------------------------------------- report
_REPORT_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}"
    "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;"
    "padding:.2em .6em;text-align:left;vertical-align:top}"
    "pre{background:#f6f6f6;padding:.6em;overflow-x:auto}img{max-width:100%}"
    ".note{color:#b35806}"
)


def _report_item(item, dpi):
    """One item of a report section as HTML: a figure, a PNG file, a table, a note or text."""
    import base64
    import html
    import io
    import os

    if hasattr(item, "savefig") or isinstance(item, os.PathLike):
        if isinstance(item, os.PathLike):
            if not str(item).lower().endswith(".png"):
                raise ValueError(f"a report embeds PNG files only; got {os.fspath(item)!r}.")
            from pathlib import Path

            png, alt = Path(item).read_bytes(), os.path.basename(item)
        else:
            buf = io.BytesIO()
            item.savefig(buf, format="png", dpi=dpi)
            png, alt = buf.getvalue(), "figure"
        data = base64.b64encode(png).decode("ascii")
        return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'
    if isinstance(item, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in item.items())
        return f"<table>{rows}</table>"
    text = str(item)
    if text.startswith("note:"):
        return f'<p class="note">{html.escape(text)}</p>'
    if "\n" in text:
        return f"<pre>{html.escape(text)}</pre>"
    return f"<p>{html.escape(text)}</p>"


def html_report(title, sections, path=None, dpi=100):
    """One self-contained HTML page of figures, tables and text (nothing linked).

    What the console command can write besides its PNGs: a file a user opens in any browser
    or sends as it is, figures embedded as PNG.

    Parameters
    ----------
    title : str
        Page title and heading.
    sections : sequence of (str, sequence)
        ``(heading, items)``; an item is a matplotlib figure (embedded as PNG), a
        :class:`pathlib.Path` of a PNG file (its bytes embedded, e.g. a figure already
        saved), a mapping (a two-column table: parameters, results, timings), a string
        starting ``"note:"`` (highlighted), a multi-line string (preformatted, e.g. a
        summary) or other text.
    path : str or pathlib.Path, optional
        Write the page there (UTF-8).
    dpi : int, default 100
        Resolution of the embedded figures.

    Returns
    -------
    str
        The HTML text.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); _ = fig.add_subplot().plot([1, 2])
    >>> page = html_report("stemnmf run", [("Parameters", [{"k": 4, "solver": "hals"}]),
    ...                                    ("Convergence", [fig, "note: did not settle"])])
    >>> page.count("data:image/png;base64,"), "<th>k</th><td>4</td>" in page
    (1, True)
    """
    import html

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_REPORT_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(str(heading))}</h2>")
        parts.extend(_report_item(item, dpi) for item in items)
    parts.append("</body></html>")
    page = "\n".join(parts) + "\n"
    if path is not None:
        from pathlib import Path

        Path(path).write_text(page, encoding="utf-8")
    return page
