"""Input rules shared by several layers, each written once.

Math module (numpy only): the signal layer (:mod:`stemnmf_hs.signals`), the estimator
(:mod:`stemnmf_hs.decomposition`) and the geometry modules (:mod:`stemnmf_hs.polar`,
:mod:`stemnmf_hs.similarity`) call these instead of repeating a check:

* :func:`check_mask`: a boolean mask of the scan or pattern shape (``True`` = left out);
* :func:`check_real`: real-valued array data;
* :func:`check_int`: a whole number with a lower bound (``bool`` refused);
* :func:`check_shape`: a 2D shape ``(ny, nx)`` of at least one pixel per side;
* :func:`check_nonnegative`: a finite number ``>= 0`` (a radius in pixels; ``bool`` refused);
* :func:`finite_array`: finite numbers of a fixed shape (a centre, a vector), or ``None``;
* :func:`check_spline_order`: a :func:`scipy.ndimage.map_coordinates` spline order;
* :func:`check_center`: a pattern centre ``(cx, cy)`` in pixels, inside the pattern
  (:func:`center_inside` is the bare inside rule, for callers that fall back instead);
* :func:`check_probe_fwhm`: a probe size no larger than the scan;
* :func:`check_counts`: data that hold some counts (not all zero).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "center_inside",
    "check_center",
    "check_counts",
    "check_int",
    "check_mask",
    "check_nonnegative",
    "check_probe_fwhm",
    "check_real",
    "check_shape",
    "check_spline_order",
    "finite_array",
]


def check_mask(mask, shape, name="signal_mask", require_bool=False):
    """A boolean mask of ``shape`` (array order), or ``None``.

    Parameters
    ----------
    mask : array_like or None
        ``True`` where a probe position or pattern pixel is left out.
    shape : tuple of int
        Expected shape in array order (rows, columns): the scan's for ``navigation_mask``,
        the patterns' otherwise.
    name : str, default "signal_mask"
        Name of the mask in messages; one starting with "nav" is a scan mask.
    require_bool : bool, default False
        Refuse non-boolean masks (user input) instead of casting them.

    Returns
    -------
    numpy.ndarray of bool or None

    Raises
    ------
    ValueError
        Naming both shapes when they differ, or the dtype with ``require_bool``.

    Examples
    --------
    >>> check_mask(np.zeros((2, 3), int), (2, 3)).dtype
    dtype('bool')
    >>> check_mask(np.zeros((3, 2), bool), (2, 3))
    Traceback (most recent call last):
    ...
    ValueError: signal_mask has shape (3, 2) but the patterns have shape (2, 3) (array order: rows, columns); give a boolean mask of that shape (True = left out).
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    if require_bool and mask.dtype != bool:
        raise ValueError(f"{name} must be boolean (True = leave out); got dtype {mask.dtype}.")
    shape = tuple(int(n) for n in shape)
    if mask.shape != shape:
        what = "scan has" if name.startswith("nav") else "patterns have"
        raise ValueError(
            f"{name} has shape {mask.shape} but the {what} shape {shape} (array order: rows, "
            "columns); give a boolean mask of that shape (True = left out)."
        )
    return mask.astype(bool, copy=False)


def check_real(array, name="patterns"):
    """``array`` as a numpy array of real numbers (integers, floats or booleans).

    Raises
    ------
    ValueError
        On complex, object or string data.

    Examples
    --------
    >>> check_real([1, 2]).dtype.kind
    'i'
    >>> check_real(np.ones(2, complex))
    Traceback (most recent call last):
    ...
    ValueError: patterns must be real numbers, got dtype complex128.
    """
    arr = np.asarray(array)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
            or arr.dtype == bool):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}.")
    return arr


def check_int(value, name, low):
    """``value`` as an ``int >= low``; booleans and non-integers refused.

    Examples
    --------
    >>> check_int(np.int64(3), "n_radial", 1)
    3
    >>> check_int(2.5, "n_radial", 1)
    Traceback (most recent call last):
    ...
    ValueError: n_radial must be an integer >= 1, got 2.5.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def check_shape(shape, name):
    """``shape`` as a tuple of two ints ``>= 1``: a pattern's or a scan's ``(ny, nx)``.

    Examples
    --------
    >>> from stemnmf_hs._validation import check_shape
    >>> check_shape([4, 5.0], "signal_shape")
    (4, 5)
    >>> check_shape((4,), "navigation_shape")
    Traceback (most recent call last):
    ...
    ValueError: navigation_shape must be (ny, nx) in pixels, got (4,).
    """
    try:
        out = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name} must be (ny, nx) in pixels, got {shape!r}.")
    return out


def check_nonnegative(value, name, units="pixels"):
    """``value`` as a finite ``float >= 0``; booleans, arrays and non-numbers refused.

    Examples
    --------
    >>> from stemnmf_hs._validation import check_nonnegative
    >>> check_nonnegative(2, "r_max")
    2.0
    >>> check_nonnegative(-1.0, "r_min")
    Traceback (most recent call last):
    ...
    ValueError: r_min must be a finite number >= 0 pixels, got -1.0.
    """
    if isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 {units}, got {value!r}.")
    return float(value)


def finite_array(value, shape=(2,), ravel=False):
    """``value`` as a float64 array of ``shape`` holding finite numbers; ``None`` if it is not.

    The shape rule of a pattern centre ``(cx, cy)`` or an ``[x, y]`` vector (the default
    ``shape=(2,)``) and of any fixed-length tuple of numbers; callers raise their own message
    (naming their convention) on ``None``.

    Parameters
    ----------
    value : object
        Anything ``numpy.asarray`` may turn into numbers.
    shape : tuple of int, default (2,)
        The shape required.
    ravel : bool, default False
        Flatten first (so ``[[cx, cy]]`` counts as a pair).

    Examples
    --------
    >>> from stemnmf_hs._validation import finite_array
    >>> finite_array((1, 2.5)).tolist(), finite_array([[1, 2]], ravel=True).tolist()
    ([1.0, 2.5], [1.0, 2.0])
    >>> finite_array((1, float("nan"))) is None, finite_array("ab") is None
    (True, True)
    >>> finite_array((0.1, 0.2, 0.3), shape=(3,)).shape
    (3,)
    """
    try:
        c = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if ravel:
        c = c.ravel()
    if c.shape != tuple(shape) or not np.isfinite(c).all():
        return None
    return c


def check_spline_order(order):
    """``order`` as an int spline order 0-5 (:func:`scipy.ndimage.map_coordinates`).

    Examples
    --------
    >>> check_spline_order(1)
    1
    >>> check_spline_order(7)
    Traceback (most recent call last):
    ...
    ValueError: order must be an integer spline order 0-5, got 7.
    """
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) \
            or not 0 <= order <= 5:
        raise ValueError(f"order must be an integer spline order 0-5, got {order!r}.")
    return int(order)


def center_inside(center, signal_shape):
    """Whether ``(cx, cy)`` lies on the pattern: ``0 <= cx <= nx - 1``, ``0 <= cy <= ny - 1``.

    Pixel centres are at whole numbers, ``(0, 0)`` the centre of the first pixel.

    Examples
    --------
    >>> center_inside((15.5, 15.5), (32, 32)), center_inside((40, 3), (32, 32))
    (True, False)
    """
    ny, nx = (int(n) for n in signal_shape)
    cx, cy = (float(c) for c in center)
    return 0 <= cx <= nx - 1 and 0 <= cy <= ny - 1


def check_center(center, signal_shape, name="center"):
    """``center`` as ``(cx, cy)`` floats in pixels on a pattern of ``signal_shape``.

    Parameters
    ----------
    center : array_like of 2 numbers
        ``(cx, cy)``: column first, pyxem's ``calibration.center`` convention.
    signal_shape : tuple of int
        ``(ny, nx)`` pattern shape, array order.
    name : str, default "center"
        How messages name the parameter.

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        If ``center`` is not two finite numbers, or lies outside the pattern; the message
        names the value, the allowed range and the geometric centre.

    Examples
    --------
    >>> check_center([15, 16.5], (32, 32))
    (15.0, 16.5)
    >>> check_center(5, (32, 32))
    Traceback (most recent call last):
    ...
    ValueError: center=5 is not a pattern centre: give two numbers (cx, cy) in pixels, column first, e.g. center=(15.5, 15.5) for this 32 x 32 pattern (the geometric centre); or leave it None to use s.calibration.center.
    >>> check_center((40, 3), (32, 32))
    Traceback (most recent call last):
    ...
    ValueError: center=(40, 3) lies outside the 32 x 32 pattern: cx must be in [0, 31] and cy in [0, 31] (pixels, column first). Give the direct beam's position, e.g. from s.find_center(), or the geometric centre (15.5, 15.5).
    """
    ny, nx = (int(n) for n in signal_shape)
    middle = f"({(nx - 1) / 2:g}, {(ny - 1) / 2:g})"
    c = finite_array(center)
    if c is None:
        raise ValueError(
            f"{name}={center!r} is not a pattern centre: give two numbers (cx, cy) in pixels, "
            f"column first, e.g. {name}={middle} for this {ny} x {nx} pattern (the geometric "
            "centre); or leave it None to use s.calibration.center."
        )
    if not center_inside(c, (ny, nx)):
        raise ValueError(
            f"{name}={center!r} lies outside the {ny} x {nx} pattern: cx must be in "
            f"[0, {nx - 1}] and cy in [0, {ny - 1}] (pixels, column first). Give the direct "
            f"beam's position, e.g. from s.find_center(), or the geometric centre {middle}."
        )
    return float(c[0]), float(c[1])


def check_probe_fwhm(probe_fwhm, scan_step, navigation_shape, units=""):
    """Refuse a probe size that is not positive or larger than the scan.

    The map smoothing kernel is a Gaussian of ``sigma = probe_fwhm / 2.355 / scan_step`` scan
    pixels; a probe wider than the scan would smooth every map flat (and its kernel, sized
    from ``sigma``, could not be allocated).

    Parameters
    ----------
    probe_fwhm : float
        Probe full width at half maximum, in the units of ``scan_step``.
    scan_step : float or tuple of float
        ``step`` or ``(step_y, step_x)``.
    navigation_shape : tuple of int
        ``(ny, nx)`` scan shape, array order.
    units : str
        Length units of both, for messages (e.g. "nm").

    Returns
    -------
    float
        ``probe_fwhm``.

    Raises
    ------
    ValueError
        Naming the probe size, the scan's extent and what to give instead.

    Examples
    --------
    >>> check_probe_fwhm(2.0, 1.5, (24, 24), "nm")
    2.0
    >>> check_probe_fwhm(1e6, 1.5, (24, 24), "nm")
    Traceback (most recent call last):
    ...
    ValueError: probe_fwhm=1e+06 nm is larger than the scan (24 x 24 positions of 1.5 x 1.5 nm = 36 x 36 nm): it would smooth every map flat. Give the probe's FWHM in the units of the navigation axes (nm), typically a few scan steps at most, e.g. probe_fwhm=3, or map_constraint=None for no smoothing.
    """
    unit = f" {units}" if units else ""
    if isinstance(probe_fwhm, (bool, np.bool_)) or not isinstance(
        probe_fwhm, (int, float, np.integer, np.floating)
    ) or not (np.isfinite(probe_fwhm) and probe_fwhm > 0):
        raise ValueError(
            f"probe_fwhm must be a positive number (the probe's FWHM in the units of the "
            f"navigation axes{',' + unit if unit else ''}); got {probe_fwhm!r}."
        )
    try:
        step = np.broadcast_to(np.asarray(scan_step, dtype=float), (2,))
    except (TypeError, ValueError):
        step = np.full(2, np.nan)
    if not (np.isfinite(step).all() and (step > 0).all()):
        raise ValueError(
            f"scan_step must be a positive number or (step_y, step_x); got {scan_step!r}."
        )
    ny, nx = (int(n) for n in navigation_shape)
    extent = step * (ny, nx)
    if probe_fwhm > extent.min():
        raise ValueError(
            f"probe_fwhm={probe_fwhm:g}{unit} is larger than the scan ({ny} x {nx} positions "
            f"of {step[0]:g} x {step[1]:g}{unit} = {extent[0]:g} x {extent[1]:g}{unit}): it "
            "would smooth every map flat. Give the probe's FWHM in the units of the "
            f"navigation axes{' (' + units + ')' if units else ''}, typically a few scan "
            f"steps at most, e.g. probe_fwhm={2 * step.max():g}, or map_constraint=None for "
            "no smoothing."
        )
    return probe_fwhm


def check_counts(vmax, name="The scan"):
    """Refuse data whose largest value ``vmax`` is not positive (all zero: nothing to fit).

    Examples
    --------
    >>> check_counts(3)
    >>> check_counts(0)
    Traceback (most recent call last):
    ...
    ValueError: The scan holds no counts (largest value 0): NMF would return all-zero components. Check that the right file or frames were loaded (s.data.max() is 0), and that the masks leave some signal.
    """
    if not vmax > 0:
        raise ValueError(
            f"{name} holds no counts (largest value {vmax:g}): NMF would return all-zero "
            f"components. Check that the right file or frames were loaded (s.data.max() is "
            f"{vmax:g}), and that the masks leave some signal."
        )
