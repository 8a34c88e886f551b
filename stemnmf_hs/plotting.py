"""One visual language for the figures of the signal methods, the result objects and the CLI.

Matplotlib only: never imports HyperSpy.  Every function takes arrays plus plain axis
descriptions (:class:`Axis`: name, scale, offset, units); the signal layer
(:mod:`stemnmf_hs.signals`) turns HyperSpy axes into those, and the console command draws
with the same functions.  The figures share:

* colour maps :data:`DIFFRACTION_CMAP` (diffractions, power-law scaled), :data:`MAP_CMAP`
  (maps), :data:`SIGNED_CMAP` (factors with negative values, e.g. PCA: blue is negative),
  :data:`MATRIX_CMAP` (k x k matrices), :data:`LABEL_COLOURS` (component / cluster index) and
  :data:`OVERLAP_LEVEL_COLOURS` (overlap levels, Cao et al. 2025, Fig. 5);
* images drawn on calibrated axes (``"x (nm)"``, ``"kx (1/Å)"``; ``px`` where an axis carries
  no units) with a scale bar (:class:`mpl_toolkits.axes_grid1.anchored_artists.
  AnchoredSizeBar`).

One cohesive topic (the drawing of every figure of the package), hence longer than 600
lines: splitting it would separate figures that must look alike.  Sections: labels and units;
single panels; whole figures; the overlap map and its widget.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "DIFFRACTION_CMAP",
    "DIFFRACTION_LABEL",
    "DIFFRACTION_PERCENTILE",
    "IQA_LABELS",
    "IQA_UNITS",
    "LABEL_COLOURS",
    "MAP_CMAP",
    "MAP_LABEL",
    "MASKED_CAPTION",
    "MATRIX_CMAP",
    "OVERLAP_BELOW_COLOUR",
    "OVERLAP_LEVEL_COLOURS",
    "SIGNED_CMAP",
    "Axis",
    "add_colorbar",
    "add_scalebar",
    "axis_label",
    "component_cmap",
    "component_grid",
    "component_map_figure",
    "convergence_figure",
    "convergence_note",
    "defined",
    "display_axis",
    "display_units",
    "dendrogram_figure",
    "draw_diffraction",
    "draw_map",
    "html_report",
    "image_extent",
    "image_grid",
    "k_estimate_figure",
    "label_colour",
    "mean_patterns_figure",
    "new_axes",
    "overlap_level_colours",
    "overlap_lookup_cmap",
    "overlap_map_figure",
    "quantity_units",
    "robust_limit",
    "root_figure",
    "similarity_figure",
    "use_widgets",
]

#: Colour map of diffractions (non-negative factors), drawn with ``PowerNorm(gamma)``.
DIFFRACTION_CMAP = "inferno"
#: Percentile of a diffraction's pixels that tops its colour scale (robust contrast: one hot
#: pixel or the direct beam does not set the scale; brighter pixels saturate, and the colour
#: bar shows an arrow).
DIFFRACTION_PERCENTILE = 99.5
#: Colour-bar labels of diffractions and maps (arbitrary units unless a caller knows better).
DIFFRACTION_LABEL = "intensity (a.u.)"
MAP_LABEL = "weight (a.u.)"
#: Caption of figures whose images hold masked (NaN) pixels; absent when nothing is masked.
MASKED_CAPTION = "grey: masked pixels"
#: Colour map of maps (loadings) and of the summed-weight background of the overlap map.
MAP_CMAP = "viridis"
#: Diverging colour map of factors or maps holding negative values (PCA): blue < 0 < red.
SIGNED_CMAP = "RdBu_r"
#: Colour map of k x k component matrices (similarity).
MATRIX_CMAP = "cividis"
#: Colour of component (or cluster) ``i``: ``LABEL_COLOURS[i % 10]`` (matplotlib "tab10").
LABEL_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
#: Colours of the overlap levels 75, 80, 85, 90 and 95 % (Cao et al. 2025, Fig. 5: "red
#: (75%), orange (80%), yellow (85%), and blue (95%)"; the paper names no colour for 90 %,
#: green is used between yellow and blue).
OVERLAP_LEVEL_COLOURS = ("#e41a1c", "#ff7f00", "#ffd92f", "#4daf4a", "#377eb8")
#: Colour of weight ratios between the slider value and the lowest threshold (interactive
#: overlap map with the slider moved below the lowest threshold only).
OVERLAP_BELOW_COLOUR = "#984ea3"

#: Display names of the IQA metrics of :mod:`stemnmf_hs.iqa`, and their units.
IQA_LABELS = {"ssim": "SSIM", "psnr": "PSNR", "gmsd": "GMSD", "mdsi": "MDSI"}
IQA_UNITS = {"psnr": "dB"}
#: IQA colour maps: bright = similar for SSIM and PSNR, bright = different for GMSD and MDSI.
_IQA_CMAPS = {"ssim": "viridis", "psnr": "viridis", "gmsd": "magma", "mdsi": "magma"}


# ---------------------------------------------------------------------------- labels, units
class Axis(NamedTuple):
    """Plain description of one image axis: what a figure needs of a calibrated axis.

    Attributes
    ----------
    name : str
        Axis name (``""`` when undefined: figures then use a fallback such as "x").
    scale : float
        Step between pixels, in ``units`` (1 for pixels).
    offset : float
        Coordinate of the first pixel's centre.
    units : str
        Units (``""`` when undefined: figures then write ``px``).

    Examples
    --------
    >>> Axis("kx", 0.02, -0.64, "1/Å")
    Axis(name='kx', scale=0.02, offset=-0.64, units='1/Å')
    """

    name: str = ""
    scale: float = 1.0
    offset: float = 0.0
    units: str = ""


def defined(text):
    """``text`` if it is a non-empty string other than HyperSpy's ``"<undefined>"``, else ``""``.

    The one rule for names and units that may be missing.

    Parameters
    ----------
    text : object
        An axis name or units, or anything else.

    Returns
    -------
    str

    Examples
    --------
    >>> defined("nm"), defined("<undefined>"), defined(None)
    ('nm', '', '')
    """
    return text if isinstance(text, str) and text and text != "<undefined>" else ""


#: Spellings of reciprocal lengths (pyxem writes ``A^{-1}``) and their display form.
_RECIPROCAL_UNITS = {
    **dict.fromkeys(("A^{-1}", "A^-1", "A-1", "1/A", "Å^{-1}", "Å^-1", "Å-1", "1/Å", "Å⁻¹",
                     "1/angstrom", "angstrom^-1"), "Å⁻¹"),
    **dict.fromkeys(("nm^{-1}", "nm^-1", "nm-1", "1/nm", "nm⁻¹"), "nm⁻¹"),
}
#: Real-space lengths shown in nm (the factor from each to nm); some vendor files (ASTAR
#: ``.blo``) write centimetres.
_LENGTHS_IN_NM = {"m": 1e9, "cm": 1e7, "mm": 1e6, "µm": 1e3, "μm": 1e3, "um": 1e3,
                  "nm": 1.0, "Å": 0.1, "A": 0.1, "angstrom": 0.1}


def display_units(units):
    """How figures write ``units``: reciprocal lengths as ``Å⁻¹``/``nm⁻¹``, others unchanged.

    Examples
    --------
    >>> display_units("A^{-1}"), display_units("1/nm"), display_units("nm")
    ('Å⁻¹', 'nm⁻¹', 'nm')
    """
    text = defined(units).strip()
    return _RECIPROCAL_UNITS.get(text, text)


def display_axis(axis):
    """``axis`` as figures show it: readable units, real-space lengths converted to nm.

    Parameters
    ----------
    axis : Axis

    Returns
    -------
    Axis

    Examples
    --------
    >>> display_axis(Axis("x", 1.5e-7, 0.0, "cm"))
    Axis(name='x', scale=1.5, offset=0.0, units='nm')
    >>> display_axis(Axis("kx", 0.02, -0.3, "A^{-1}")).units
    'Å⁻¹'
    """
    units = display_units(axis.units)
    factor = _LENGTHS_IN_NM.get(units)
    if factor is None or factor == 1.0:
        return Axis(axis.name, axis.scale, axis.offset, units)
    return Axis(axis.name, float(axis.scale) * factor, float(axis.offset) * factor, "nm")


def quantity_units(quantity, bare_units=False):
    """Units of a quantity written ``"Name (units)"``: the text in its final parentheses.

    Parameters
    ----------
    quantity : str or None
        E.g. HyperSpy's ``metadata.Signal.quantity``, ``"Intensity (electrons)"``.
    bare_units : bool, default False
        How to read text without parentheses: as the units themselves (``True``) or as a
        quantity without units (``False``: ``""``).

    Returns
    -------
    str

    Examples
    --------
    >>> quantity_units("Intensity (electrons)")
    'electrons'
    >>> quantity_units("Intensity"), quantity_units("electrons", bare_units=True)
    ('', 'electrons')
    """
    text = str(quantity or "").strip()
    open_at = text.rfind("(")
    if text.endswith(")") and open_at >= 0:
        return text[open_at + 1:-1].strip()
    return text if bare_units else ""


def axis_label(axis, fallback):
    """``"name (units)"`` of an axis; ``fallback`` without a name, ``px`` without units.

    Parameters
    ----------
    axis : Axis
    fallback : str
        Name used when the axis has none.

    Returns
    -------
    str

    Examples
    --------
    >>> axis_label(Axis("x", 1.5, 0.0, "nm"), "x"), axis_label(Axis(), "ky")
    ('x (nm)', 'ky (px)')
    """
    return f"{defined(axis.name) or fallback} ({defined(axis.units) or 'px'})"


def label_colour(i):
    """Colour of component or cluster ``i`` (:data:`LABEL_COLOURS`, cycled).

    Examples
    --------
    >>> label_colour(0) == label_colour(10) == "#1f77b4"
    True
    """
    return LABEL_COLOURS[int(i) % len(LABEL_COLOURS)]


def component_cmap(k):
    """``ListedColormap`` of the ``k`` component colours (label ``i`` in ``label_colour(i)``).

    Examples
    --------
    >>> component_cmap(3).N
    3
    """
    from matplotlib.colors import ListedColormap

    return ListedColormap([label_colour(i) for i in range(int(k))])


def overlap_level_colours(n_levels):
    """Colours of ``n_levels`` increasing overlap thresholds, red to blue.

    Parameters
    ----------
    n_levels : int
        Number of thresholds (>= 1).

    Returns
    -------
    list of str or tuple
        ``(n_levels,)`` matplotlib colours: exactly :data:`OVERLAP_LEVEL_COLOURS` for the
        paper's five thresholds, otherwise samples of the same red-orange-yellow-green-blue
        sequence (Cao et al. 2025, Fig. 5).

    Raises
    ------
    ValueError
        If ``n_levels < 1``.

    Examples
    --------
    >>> overlap_level_colours(5)[0], len(overlap_level_colours(3))
    ('#e41a1c', 3)
    """
    n = int(n_levels)
    if n < 1:
        raise ValueError(f"n_levels must be at least 1; got {n_levels!r}.")
    if n == len(OVERLAP_LEVEL_COLOURS):
        return list(OVERLAP_LEVEL_COLOURS)
    from matplotlib.colors import LinearSegmentedColormap

    ramp = LinearSegmentedColormap.from_list("overlap", OVERLAP_LEVEL_COLOURS)
    return [tuple(c) for c in ramp(np.linspace(0, 1, n) if n > 1 else [0.0])]


def overlap_lookup_cmap(thresholds, n=1000):
    """A fine colour table on ``[0, 1]`` whose bins take the colour of the level they reach.

    For viewers that take a colour map but no norm (HyperSpy's navigator): dark grey below
    the lowest threshold, then :func:`overlap_level_colours`.

    Examples
    --------
    >>> cmap = overlap_lookup_cmap((0.5,), n=4)
    >>> [round(float(cmap(i)[0]), 2) for i in range(4)]  # grey below 0.5, then red
    [0.15, 0.15, 0.89, 0.89]
    """
    from matplotlib.colors import ListedColormap

    t = np.asarray(thresholds, dtype=float)
    colours = ["0.15"] + list(overlap_level_colours(len(t)))
    bins = np.searchsorted(t, (np.arange(n) + 0.5) / n, side="right")
    return ListedColormap([colours[b] for b in bins])


def image_extent(axes, shape):
    """imshow ``extent`` (left, right, bottom, top) of an ``(ny, nx)`` image on two axes.

    Parameters
    ----------
    axes : (Axis, Axis) or None
        ``(x, y)`` axes; ``None`` for pixels.
    shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    list of float

    Examples
    --------
    >>> image_extent((Axis("x", 2.0), Axis("y", 2.0)), (3, 4))
    [-1.0, 7.0, 5.0, -1.0]
    """
    ny, nx = shape
    ax_x, ax_y = axes if axes is not None else (Axis(), Axis())
    sx, sy = float(ax_x.scale), float(ax_y.scale)
    x0, y0 = float(ax_x.offset), float(ax_y.offset)
    return [x0 - sx / 2, x0 + (nx - 0.5) * sx, y0 + (ny - 0.5) * sy, y0 - sy / 2]


def _nice_length(span):
    """A round length (1, 2 or 5 x 10^n) of about a fifth of ``span``."""
    target = abs(float(span)) / 5.0
    if not np.isfinite(target) or target <= 0:
        return 1.0
    exp = np.floor(np.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**exp <= target * 1.0001:
            return float(m * 10**exp)
    return float(10**exp)


def add_scalebar(ax, axis, extent, color="white", fontsize=8):
    """A scale bar in the units of ``axis`` (px when uncalibrated), lower right.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    axis : Axis
        The horizontal axis of the image.
    extent : sequence of 4 float
        The image's extent (:func:`image_extent`).

    Returns
    -------
    mpl_toolkits.axes_grid1.anchored_artists.AnchoredSizeBar

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> add_scalebar(ax, Axis("x", 1.5, 0, "nm"), [0, 45, 30, 0]).txt_label.get_text()
    '5 nm'
    """
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    span = abs(extent[1] - extent[0])
    length = _nice_length(span)
    units = defined(axis.units) or "px"
    bar = AnchoredSizeBar(ax.transData, length, f"{length:g} {units}", "lower right",
                          pad=0.3, borderpad=0.3, color=color, frameon=False,
                          size_vertical=abs(extent[2] - extent[3]) * 0.012,
                          fontproperties=FontProperties(size=fontsize))
    bar.set_label("scalebar")
    ax.add_artist(bar)
    return bar


def _label_axes(ax, axes, fallback=("x", "y"), fontsize=None):
    axes = axes if axes is not None else (Axis(), Axis())
    ax.set_xlabel(axis_label(axes[0], fallback[0]), fontsize=fontsize)
    ax.set_ylabel(axis_label(axes[1], fallback[1]), fontsize=fontsize)


def _calibrate(ax, axes, extent, fallback, scalebar, labels=True, fontsize=None):
    """Axis labels (small ones with ``fontsize``) and a scale bar of an image panel."""
    if labels:
        _label_axes(ax, axes, fallback, fontsize=fontsize)
        if fontsize is not None:
            ax.tick_params(labelsize=fontsize - 1)
    if scalebar:
        add_scalebar(ax, (axes or (Axis(),))[0], extent)


# ---------------------------------------------------------------------------- figures, axes
def root_figure(fig):
    """The top-level :class:`~matplotlib.figure.Figure` of a figure or subfigure.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> root_figure(fig.subfigures(1, 2)[0]) is fig
    True
    """
    from matplotlib.figure import Figure

    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def new_axes(ax, figsize, pyplot=True, show=True):
    """``(figure, axes)``: the given axes' or a new figure.

    ``pyplot=False`` makes a figure pyplot does not manage (the inline backend will not show
    it by itself); ``show=False`` makes a pyplot figure with interactive mode off (ipympl does
    not display its canvas on creation).

    Examples
    --------
    >>> fig, ax = new_axes(None, (3, 2), pyplot=False)
    >>> new_axes(ax, (3, 2))[0] is fig
    True
    """
    if ax is not None:
        return root_figure(ax.figure), ax
    if pyplot:
        import matplotlib.pyplot as plt

        if show:
            return plt.subplots(figsize=figsize, layout="constrained")
        with plt.ioff():
            return plt.subplots(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _signed(img):
    """Whether an image holds significant negative values (a signed factorization)."""
    finite = img[np.isfinite(img)]
    if not finite.size:
        return False
    return bool(finite.min() < -1e-6 * max(np.abs(finite).max(), 1e-300))


def _grid(k):
    """``(rows, columns)`` of a near-square grid of ``k`` panels."""
    ncols = min(k, max(1, math.ceil(math.sqrt(k))))
    return math.ceil(k / ncols), ncols


# ---------------------------------------------------------------------------- panels
def draw_diffraction(ax, img, axes=None, gamma=0.3, vmax=None, labels=True, scalebar=True,
                     percentile=DIFFRACTION_PERCENTILE):
    """One diffraction on calibrated reciprocal axes (NaN = masked, grey).

    Non-negative patterns in :data:`DIFFRACTION_CMAP` with ``PowerNorm(gamma)`` from 0 to a
    robust top (:func:`robust_limit`: the ``percentile`` of the pixels, so the direct beam or
    a hot pixel does not set the scale); patterns with negative values (PCA) as
    ``sign(x) |x|^gamma`` in :data:`SIGNED_CMAP` on a symmetric scale.  An empty pattern
    (no positive value) is labelled "empty" in the panel.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    img : array_like
        ``(ny, nx)``.
    axes : (Axis, Axis), optional
        ``(kx, ky)``; pixels when ``None``.
    gamma : float, default 0.3
        Power-law exponent of the colour scale (1: linear).
    vmax : float, optional
        Top of the colour scale; default :func:`robust_limit` of the image.
    labels, scalebar : bool, default True
    percentile : float, default :data:`DIFFRACTION_PERCENTILE`
        Percentile of the pixels at the top of the scale (100: the maximum).

    Returns
    -------
    matplotlib.image.AxesImage

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> img = np.ones((32, 32)); img[4, 4] = 1e6        # one hot pixel
    >>> im = draw_diffraction(Figure().add_subplot(), img)
    >>> im.get_cmap().name, im.norm.vmax
    ('inferno', 1.0)
    """
    from matplotlib.colors import PowerNorm

    img = np.asarray(img, dtype=float)
    panel = (axes, ("kx", "ky"), labels, scalebar)
    if _signed(img):
        return _show(ax, np.sign(img) * np.abs(img) ** gamma, None, *panel)
    shown = np.clip(img, 0, None)
    top = float(vmax) if vmax is not None and vmax > 0 else robust_limit(shown, percentile)
    im = _show(ax, shown, (DIFFRACTION_CMAP, PowerNorm(gamma, vmin=0, vmax=top or 1.0)),
               *panel)
    _mark_empty(ax, shown)
    return im


def draw_map(ax, img, axes=None, labels=True, scalebar=True):
    """One map on calibrated scan axes (signed maps on a symmetric diverging scale).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    img : array_like
        ``(ny, nx)``.
    axes : (Axis, Axis), optional
        ``(x, y)``; pixels when ``None``.
    labels, scalebar : bool, default True

    Returns
    -------
    matplotlib.image.AxesImage

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> draw_map(Figure().add_subplot(), np.eye(4)).get_cmap().name
    'viridis'
    """
    from matplotlib.colors import Normalize

    img = np.asarray(img, dtype=float)
    panel = (axes, ("x", "y"), labels, scalebar)
    if _signed(img):
        return _show(ax, img, None, *panel)
    top = float(np.nanmax(img)) if np.isfinite(img).any() else 1.0
    im = _show(ax, img, (MAP_CMAP, Normalize(0, top or 1.0)), *panel)
    _mark_empty(ax, img)
    return im


def robust_limit(img, percentile=DIFFRACTION_PERCENTILE):
    """Top of a robust colour scale: the ``percentile`` of the finite positive pixels.

    Falls back to the maximum when the percentile is 0 (sparse spots) and to 0 for an image
    without positive values.

    Examples
    --------
    >>> img = np.ones((32, 32)); img[0, 0] = 1000.0
    >>> robust_limit(img), robust_limit(img, 100)
    (1.0, 1000.0)
    """
    img = np.asarray(img, dtype=float)
    values = img[np.isfinite(img) & (img > 0)]
    if not values.size:
        return 0.0
    top = float(np.percentile(values, percentile))
    return top if top > 0 else float(values.max())


def _is_empty(img):
    """Whether an image holds no finite non-zero value (an empty component)."""
    img = np.asarray(img, dtype=float)
    finite = img[np.isfinite(img)]
    return not finite.size or not np.any(finite != 0)


def _mark_empty(ax, img):
    """Label an empty panel "empty (all zero)" so that it is not read as a dark pattern."""
    if _is_empty(img):
        ax.text(0.5, 0.5, "empty\n(all zero)", transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="w",
                bbox=dict(boxstyle="round", facecolor="0.3", alpha=0.8, edgecolor="none"))


def add_colorbar(ax, im, label, location="right", shrink=0.8, fontsize=7):
    """A colour bar with ``label`` (quantity and units) next to ``ax``.

    Extends with an arrow at the top when the image holds values above its scale (robust
    contrast clipped them).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); ax = fig.add_subplot()
    >>> add_colorbar(ax, draw_map(ax, np.eye(4)), MAP_LABEL).ax.get_ylabel()
    'weight (a.u.)'
    """
    data = np.ma.filled(np.ma.masked_invalid(im.get_array()).astype(float), np.nan)
    clipped = bool(np.isfinite(data).any() and np.nanmax(data) > im.norm.vmax * (1 + 1e-9))
    cb = ax.figure.colorbar(im, ax=ax, shrink=shrink, location=location,
                            extend="max" if clipped else "neither")
    gamma = getattr(im.norm, "gamma", None)
    if gamma is not None and im.norm.vmax is not None and im.norm.vmax > im.norm.vmin:
        # power-law scale: ticks evenly spaced on the bar, not crowded at its top
        lo, hi = float(im.norm.vmin), float(im.norm.vmax)
        ticks = lo + (hi - lo) * np.linspace(0.0, 1.0, 4) ** (1.0 / gamma)
        cb.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
    cb.set_label(label, fontsize=fontsize)
    cb.ax.tick_params(labelsize=fontsize)
    return cb


def _masked_caption(title, *images):
    """``title`` with :data:`MASKED_CAPTION` added when any image holds a NaN (masked)."""
    if not any(np.isnan(np.asarray(img, dtype=float)).any() for img in images):
        return title
    return f"{title}\n({MASKED_CAPTION})" if title else MASKED_CAPTION


def _show(ax, shown, colours, axes, fallback, labels, scalebar):
    """Draw an image panel: ``colours = (cmap name, norm)``, or ``None`` for a signed image
    on :data:`SIGNED_CMAP`, symmetric about zero; NaN grey; labels and scale bar."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    if colours is None:
        lim = float(np.nanmax(np.abs(shown))) or 1.0
        colours = (SIGNED_CMAP, Normalize(-lim, lim))
    cmap = plt.get_cmap(colours[0]).copy()
    cmap.set_bad("0.5")
    extent = image_extent(axes, shown.shape)
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=colours[1], extent=extent,
                   interpolation="nearest")
    _calibrate(ax, axes, extent, fallback, scalebar, labels, fontsize=8)
    return im


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
def _panel_grid(nrows, ncols, figsize):
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")


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


def convergence_note(mse, hit_limit, max_iter=None, rise=1e-3):
    """A one-line note on a fit that did not settle, with what to try; ``""`` if it did.

    Parameters
    ----------
    mse : array_like
        ``(n_iter,)`` MSE per iteration of the kept restart (its main iterations).
    hit_limit : bool
        Whether the fit stopped at ``max_iter`` rather than at the tolerance.
    max_iter : int, optional
        For the message.
    rise : float, default 1e-3
        Relative rise of the final MSE above its minimum that counts as rising (a limit
        cycle or the constraints pulling away from the least-squares fit).

    Returns
    -------
    str

    Examples
    --------
    >>> convergence_note([3.0, 2.0, 1.0], hit_limit=False)
    ''
    >>> convergence_note([3.0, 1.0, 1.5], hit_limit=True, max_iter=3)  # doctest: +ELLIPSIS
    'The fit did not settle: it stopped at max_iter=3 ...; the MSE ended 50% above its minimum (iteration 2)...'
    """
    y = np.asarray(mse, dtype=float)
    y = y[np.isfinite(y)]
    parts = []
    if hit_limit:
        limit = f"max_iter={max_iter}" if max_iter is not None else "max_iter"
        parts.append(f"it stopped at {limit} before the changes fell below tol (raise "
                     "max_iter, or loosen tol)")
    if y.size >= 3:
        low = int(np.argmin(y))
        if low < y.size - 1 and y[low] > 0 and y[-1] > y[low] * (1 + rise):
            parts.append(
                f"the MSE ended {100 * (y[-1] / y[low] - 1):.3g}% above its minimum "
                f"(iteration {low + 1}): the constraints trade fit for physical components; "
                "if the curves oscillate (a limit cycle), mask the direct beam with "
                "signal_mask, try fewer components, or map_constraint=None to see whether "
                "the smoothing causes it"
            )
    return ("The fit did not settle: " + "; ".join(parts) + ".") if parts else ""


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
    _calibrate(ax, axes, extent, ("x", "y"), scalebar)
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


def iqa_label(metric, with_units=True):
    """Display name of an IQA metric, with its units (``"PSNR (dB)"``).

    Examples
    --------
    >>> iqa_label("psnr"), iqa_label("ssim"), iqa_label("psnr", with_units=False)
    ('PSNR (dB)', 'SSIM', 'PSNR')
    """
    units = IQA_UNITS.get(metric, "") if with_units else ""
    return IQA_LABELS[metric] + (f" ({units})" if units else "")


__all__ += ["iqa_label"]


# ---------------------------------------------------------------------------- overlap map
def _ipympl_backend():
    """Whether matplotlib draws through ipympl (``%matplotlib widget``): canvases are widgets."""
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    return "ipympl" in backend or backend == "widget"


def _in_kernel():
    """Whether the code runs in a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def use_widgets(interactive):
    """Resolve ``interactive`` (None = auto, True, False) to whether to draw a slider.

    ``None``: a slider when ``ipywidgets`` is importable *and* the code runs in a Jupyter
    kernel with the ipympl backend; ``True``: always (needs ipywidgets); ``False``: never.

    Raises
    ------
    TypeError
        If ``interactive`` is not None, True or False.
    ImportError
        If ``interactive=True`` and ipywidgets is missing.

    Examples
    --------
    >>> use_widgets(False), use_widgets(None)  # outside a Jupyter kernel
    (False, False)
    """
    if interactive is not None and not isinstance(interactive, (bool, np.bool_)):
        raise TypeError(f"interactive must be None, True or False; got {interactive!r}.")
    if interactive is False:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        if interactive:
            raise ImportError(
                "interactive=True needs ipywidgets (pip install ipywidgets); use "
                "interactive=None or False for a static figure."
            ) from None
        return False
    return True if interactive else (_in_kernel() and _ipympl_backend())


def _overlap_shown(ratio, cut):
    """The weight ratio masked below ``cut`` (and where it is 0: no significant overlap)."""
    return np.ma.masked_where(~(ratio >= cut) | (ratio <= 0), ratio)


def overlap_map_figure(ratio, total, thresholds, axes=None, ax=None, widgets=False,
                       scalebar=True):
    """Colour-coded overlap levels over the summed weights (Cao et al. 2025, Fig. 5).

    Parameters
    ----------
    ratio : numpy.ndarray
        ``(y, x)`` weight ratio 2nd / 1st.
    total : numpy.ndarray
        ``(y, x)`` summed maps, drawn in grey underneath.
    thresholds : sequence of float
        Increasing thresholds, coloured by :func:`overlap_level_colours`.
    axes : (Axis, Axis), optional
        Scan axes ``(x, y)``.
    ax : matplotlib.axes.Axes, optional
    widgets : bool, default False
        Return a slider box (:func:`use_widgets` decides) instead of the figure.
    scalebar : bool, default True

    Returns
    -------
    matplotlib.figure.Figure or ipywidgets.VBox
        With widgets a ``VBox`` whose ``.figure`` is the figure, ``.slider`` the
        ``FloatSlider`` and ``.update(value)`` redraws for a slider value.

    Examples
    --------
    >>> fig = overlap_map_figure(np.array([[0.0, 0.8], [0.9, 1.0]]), np.ones((2, 2)),
    ...                          (0.75, 0.95))
    >>> fig.axes[0].get_title()
    'Overlap map'
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    t = [float(v) for v in thresholds]
    cmap = ListedColormap(overlap_level_colours(len(t)), name="overlap_levels")
    cmap.set_under(OVERLAP_BELOW_COLOUR)
    norm = BoundaryNorm(t + [1.0 + 1e-9], cmap.N)
    live = widgets and _ipympl_backend()  # the canvas itself is a widget (ipympl)
    fig, ax = new_axes(ax, (6.4, 5.0), pyplot=not widgets or live, show=not widgets)
    extent = image_extent(axes, total.shape)
    ax.imshow(total, cmap="gray", extent=extent, interpolation="nearest")
    im = ax.imshow(_overlap_shown(ratio, t[0]), cmap=cmap, norm=norm, extent=extent,
                   alpha=0.9, interpolation="nearest")
    fig.colorbar(im, ax=ax, ticks=t, extend="min" if widgets else "neither",
                 label="weight ratio 2nd / 1st (level reached)")
    _calibrate(ax, axes, extent, ("x", "y"), scalebar)
    ax.set_title("Overlap map")
    if not widgets:
        return fig
    return _overlap_widget(fig, ax, im, ratio, t)


def _overlap_widget(fig, ax, im, ratio, thresholds):
    """Slider box around an overlap-map figure (see overlap_map_figure)."""
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=thresholds[0], min=min(0.5, thresholds[0]), max=1.0,
                                 step=0.01, description="ratio ≥", continuous_update=False,
                                 readout_format=".2f")
    live = _ipympl_backend() and hasattr(fig.canvas, "layout")
    out = None if live else widgets.Output()

    def update(value):
        """Redraw the overlap map for weight-ratio threshold ``value`` (0-1)."""
        im.set_data(_overlap_shown(ratio, float(value)))
        ax.set_title(f"Overlap map (weight ratio ≥ {float(value):.2f})")
        if live:
            fig.canvas.draw_idle()
        elif _in_kernel():
            from IPython.display import display

            with out:
                out.clear_output(wait=True)
                display(fig)

    slider.observe(lambda change: update(change["new"]), names="value")
    box = widgets.VBox([slider, fig.canvas if live else out])
    box.figure, box.slider, box.update = fig, slider, update
    update(slider.value)
    return box


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
    """One item of a report section as HTML: a figure, a table, a note or text."""
    import base64
    import html
    import io

    if hasattr(item, "savefig"):
        buf = io.BytesIO()
        item.savefig(buf, format="png", dpi=dpi)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<p><img alt="figure" src="data:image/png;base64,{data}"></p>'
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
        ``(heading, items)``; an item is a matplotlib figure (embedded as PNG), a mapping
        (a two-column table: parameters, results, timings), a string starting ``"note:"``
        (highlighted), a multi-line string (preformatted, e.g. a summary) or other text.
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
