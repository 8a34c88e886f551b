"""Input rules shared by several layers, each written once.

Math module (numpy only): the signal layer (:mod:`stemnmf_hs.signals`), the estimator
(:mod:`stemnmf_hs.decomposition`) and the geometry modules (:mod:`stemnmf_hs.polar`,
:mod:`stemnmf_hs.similarity`) call these instead of repeating a check:

* :func:`check_mask`: a boolean mask of the scan or pattern shape (``True`` = left out);
* :func:`check_real`: real-valued array data;
* :func:`check_int`: a whole number with a lower bound (``bool`` refused);
* :func:`check_spline_order`: a :func:`scipy.ndimage.map_coordinates` spline order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_int", "check_mask", "check_real", "check_spline_order"]


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
