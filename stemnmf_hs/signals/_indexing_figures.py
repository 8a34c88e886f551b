"""Figures of :class:`~stemnmf_hs.signals._indexing.IndexingResult` (matplotlib and orix).

Drawn with the package's visual language (:mod:`stemnmf_hs.plotting`: diffractions on
calibrated reciprocal axes with a power-law scale, maps on scan axes with a scale bar) and
orix's inverse-pole-figure colour key.
"""

from __future__ import annotations

import numpy as np

from .. import plotting

__all__ = ["orientation_map_figure", "template_figure"]

#: Colour of the template spots drawn over a diffraction.
TEMPLATE_COLOUR = "#00e5ff"
#: Colour of the not indexed in the phase map.
NOT_INDEXED_COLOUR = "0.15"


def _new_figure(figsize):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def template_figure(result, gamma=0.3, figsize=None, max_spots=200):
    """Each diffraction beside its best template overlaid on it (see ``IndexingResult.plot``).

    Parameters
    ----------
    result : IndexingResult
    gamma : float, default 0.3
        Power-law exponent of the diffractions' colour scale.
    figsize : tuple of float, optional
        Default 4.4 inches per pair wide, 2.3 per row high, at most 3 pairs per row.
    max_spots : int, default 200
        Strongest template spots drawn.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    ``res`` as built in the :class:`~stemnmf_hs.signals.IndexingResult` example:

    >>> from stemnmf_hs.signals._indexing_figures import template_figure
    >>> fig = template_figure(res, max_spots=20)
    >>> len(fig.axes), fig.axes[1].get_title().splitlines()[0][:2]
    (10, 'no')
    """
    k = result.n_components
    n_cols = min(k, 3)
    n_rows = int(np.ceil(k / n_cols))
    fig = _new_figure(figsize or (4.4 * n_cols, 2.4 * n_rows + 0.4))
    grid = fig.add_gridspec(n_rows, 2 * n_cols)
    axes = result.diffraction_axes
    cx, cy = result.center
    # Å⁻¹ -> the displayed axes (their units may be nm⁻¹)
    to_axes = result.pixel_size / float(axes[0].scale)
    for i in range(k):
        row, col = divmod(i, n_cols)
        img = result.diffractions[i]
        left = fig.add_subplot(grid[row, 2 * col])
        right = fig.add_subplot(grid[row, 2 * col + 1])
        for ax in (left, right):
            plotting.draw_diffraction(ax, img, axes, gamma=gamma, labels=False,
                                      scalebar=ax is left)
            ax.set_xticks([])
            ax.set_yticks([])
        tpl = result.templates[i]
        order = np.argsort(-tpl["intensity"])[:max_spots]
        x0 = axes[0].offset + cx * axes[0].scale
        y0 = axes[1].offset + cy * axes[1].scale
        colour = TEMPLATE_COLOUR if result.is_indexed[i] else "0.6"
        right.scatter(x0 + tpl["kx"][order] * to_axes, y0 + tpl["ky"][order] * to_axes,
                      s=8 + 60 * tpl["intensity"][order], facecolors="none",
                      edgecolors=colour, linewidths=0.8)
        ext = plotting.image_extent(axes, img.shape)
        right.set_xlim(ext[0], ext[1])
        right.set_ylim(ext[2], ext[3])
        name = "cluster" if result.source == "clusters" else "component"
        left.set_title(f"{name} {i}", fontsize=8)
        e = result.euler(i)
        text = (f"{result.labels[i]}  ({e[0]:.0f}, {e[1]:.0f}, {e[2]:.0f})°\n"
                if result.is_indexed[i] else f"{result.labels[i]}\n")
        right.set_title(text + f"score {result.scores[i]:.3f}, margin {result.margins[i]:.3f}",
                        fontsize=7, color="k" if result.is_indexed[i] else "0.45")
    fig.suptitle(f"Best templates ({result.library.n_templates} templates, "
                 f"{result.library.resolution:g}° grid; score >= {result.min_correlation:g} "
                 "to be indexed)", fontsize=9)
    return fig


def orientation_map_figure(result, threshold=0.3, overlap=0.4, direction="z", figsize=None):
    """IPF map, phase map and IPF colour keys (see ``IndexingResult.plot_orientation_map``).

    One colour key per Laue group of the phases (:func:`_draw_ipf_key`).

    Parameters
    ----------
    result : IndexingResult
    threshold, overlap : float
        Map rules of ``IndexingResult.get_orientation_map``.
    direction : {"z", "x", "y"}, default "z"
    figsize : tuple of float, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    ``res`` as built in the :class:`~stemnmf_hs.signals.IndexingResult` example:

    >>> from stemnmf_hs.signals._indexing_figures import orientation_map_figure
    >>> fig = orientation_map_figure(res, threshold=0.5)
    >>> len(fig.axes)                      # IPF map, phase map, one colour key (m-3m)
    3
    """
    import orix.plot  # noqa: F401  (registers the "ipf" projection)

    xmap = result.get_orientation_map(threshold, overlap)
    shape = result.maps.shape[1:]
    from .. import orientation

    phase_id = np.asarray(xmap.phase_id).reshape(shape)
    rgb = orientation.ipf_colors(xmap.rotations[:, 0], phase_id, result.phases,
                                 direction).reshape(shape + (3,))
    two = np.asarray(xmap.prop["overlap"]).reshape(shape).astype(bool)
    phases = result.phases
    # one colour key per Laue group (the IPF colour depends on nothing else)
    groups = {}
    for phase in phases:
        groups.setdefault(phase.point_group.laue.name, []).append(phase)
    fig = _new_figure(figsize or (10.5, 3.8))
    grid = fig.add_gridspec(len(groups), 3, width_ratios=(1.0, 1.0, 0.45))
    axes = result.scan_axes
    ext = plotting.image_extent(axes, shape)

    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(rgb, extent=ext, interpolation="nearest")
    if two.any():
        xs = axes[0].offset + axes[0].scale * np.arange(shape[1])
        ys = axes[1].offset + axes[1].scale * np.arange(shape[0])
        ax.contourf(xs, ys, two.astype(float), levels=[0.5, 1.5], colors="none",
                    hatches=["////"])
        ax.contour(xs, ys, two.astype(float), levels=[0.5], colors="w", linewidths=0.8)
    plotting.calibrate_image(ax, axes, ext, fontsize=8)
    ax.set_title(f"IPF-{direction} (hatched: two orientations)", fontsize=9)

    draw_phase_map(fig.add_subplot(grid[:, 1]), phase_id, phases, axes)

    from orix.vector import Vector3d

    vec = {"x": Vector3d.xvector(), "y": Vector3d.yvector(), "z": Vector3d.zvector()}
    for i, (laue, members) in enumerate(groups.items()):
        key = fig.add_subplot(grid[i, 2], projection="ipf",
                              symmetry=members[0].point_group.laue, direction=vec[direction])
        _draw_ipf_key(key, members[0].point_group.laue)
        names = ", ".join(p.name for p in members)
        key.set_title(f"{names} ({laue})", fontsize=8, y=-0.3)
    fig.suptitle(f"Orientation map: {result.source} present at >= {threshold:g} of their "
                 f"maximum weight, second orientation from {overlap:g} of the first",
                 fontsize=9)
    return fig


def _draw_ipf_key(ax, laue):
    """orix's TSL IPF colour key on an orix ``"ipf"`` axes, drawn as dense points.

    The colours are orix's (``DirectionColorKeyTSL.direction2color``) at the directions of an
    orix S2 grid (1.5°) folded into the fundamental sector; orix's own
    ``plot_ipf_color_key`` interpolates them with ``scipy.interpolate.griddata``, which took
    1-21 s per key on the 2-core test machine against 0.2-0.5 s here.
    """
    from orix.plot import DirectionColorKeyTSL
    from orix.sampling import sample_S2

    v = sample_S2(resolution=1.5).in_fundamental_sector(laue)
    rgb = DirectionColorKeyTSL(laue).direction2color(v)
    ax.scatter(v, c=rgb, s=18, marker="o", linewidths=0, rasterized=True)


def draw_phase_map(ax, phase_id, phases, axes):
    """Draw a phase-id map with one colour per phase, grey where not indexed, and a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    phase_id : numpy.ndarray of int
        ``(ny, nx)`` index into ``phases``; -1 not indexed.
    phases : sequence of orix.crystal_map.Phase
    axes : sequence of plotting.Axis
        The scan axes ``(x, y)`` (calibrated extent and scale bar).

    Examples
    --------
    >>> import numpy as np, matplotlib.pyplot as plt
    >>> from orix.crystal_map import Phase
    >>> from stemnmf_hs.plotting import Axis
    >>> fig, ax = plt.subplots()
    >>> draw_phase_map(ax, np.array([[0, -1], [0, 0]]), [Phase(name="Cu")],
    ...                [Axis("x", 1.0, 0.0, "nm"), Axis("y", 1.0, 0.0, "nm")])
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['Cu', 'not indexed']
    >>> plt.close(fig)
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    phase_id = np.asarray(phase_id)
    ext = plotting.image_extent(axes, phase_id.shape)
    colours = [NOT_INDEXED_COLOUR] + [plotting.label_colour(i) for i in range(len(phases))]
    ax.imshow(phase_id + 1, extent=ext, cmap=ListedColormap(colours), vmin=-0.5,
              vmax=len(phases) + 0.5, interpolation="nearest")
    plotting.calibrate_image(ax, axes, ext, fontsize=8)
    handles = [Patch(color=colours[i + 1], label=p.name) for i, p in enumerate(phases)]
    handles.append(Patch(color=NOT_INDEXED_COLOUR, label="not indexed"))
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.8)
    ax.set_title("phase", fontsize=9)


def phase_map_figure(result, threshold=0.3, overlap=0.4, figsize=None):
    """The phase map alone (see ``IndexingResult.get_phase_map``), e.g. for the CLI.

    Parameters
    ----------
    result : IndexingResult
    threshold, overlap : float
        Map rules of ``IndexingResult.get_orientation_map``.
    figsize : tuple of float, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    ``res`` as built in the :class:`~stemnmf_hs.signals.IndexingResult` example:

    >>> from stemnmf_hs.signals._indexing_figures import phase_map_figure
    >>> phase_map_figure(res).axes[0].get_title()
    'phase'
    """
    pm = result.get_phase_map(threshold, overlap)
    fig = _new_figure(figsize or (4.6, 4.0))
    draw_phase_map(fig.add_subplot(), pm.data, result.phases, result.scan_axes)
    fig.suptitle(f"Phase map: {result.source} present at >= {threshold:g} of their maximum "
                 "weight", fontsize=9)
    return fig
