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

The composite figures built from these parts (components over maps, image grids,
convergence, dendrogram, similarity, component map, mean patterns, the k estimate, the HTML
report) live in :mod:`stemnmf_hs.figures`, which imports this module (never the reverse).
Sections here: labels and units; figures and axes; single panels; the overlap map and its
widget (kept beside the Jupyter/ipympl detection it uses).
"""

from __future__ import annotations

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
    "calibrate_image",
    "component_cmap",
    "convergence_note",
    "defined",
    "display_axis",
    "display_units",
    "draw_diffraction",
    "draw_map",
    "image_extent",
    "label_colour",
    "new_axes",
    "overlap_level_colours",
    "overlap_lookup_cmap",
    "overlap_map_figure",
    "quantity_units",
    "robust_limit",
    "root_figure",
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


def calibrate_image(ax, axes, extent, fallback=("x", "y"), scalebar=True, labels=True,
                    fontsize=None):
    """Axis labels (small ones with ``fontsize``) and a scale bar of an image panel.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    axes : (Axis, Axis) or None
        The image's ``(x, y)`` axes; pixels when ``None``.
    extent : sequence of 4 float
        The image's extent (:func:`image_extent`).
    fallback : (str, str), default ("x", "y")
        Axis names used where an axis has none.
    scalebar, labels : bool, default True
    fontsize : float, optional
        Label size (tick labels one point smaller); matplotlib's default when ``None``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> calibrate_image(ax, (Axis("x", 2.0, 0, "nm"), Axis("y", 2.0, 0, "nm")),
    ...                 [-1.0, 7.0, 5.0, -1.0])
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('x (nm)', 'y (nm)')
    """
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
                bbox={"boxstyle": "round", "facecolor": "0.3", "alpha": 0.8,
                      "edgecolor": "none"})


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
    calibrate_image(ax, axes, extent, fallback, scalebar, labels, fontsize=8)
    return im


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
    calibrate_image(ax, axes, extent, ("x", "y"), scalebar)
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


