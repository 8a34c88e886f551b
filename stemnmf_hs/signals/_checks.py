"""Checks of a request before any computation, and the pattern centre of a signal.

Part of the signal <-> arrays boundary (:mod:`._adapter` imports every name from here, so
they stay importable from there): the shape of a scan, the number of components, the data's
values (one pass: NaN/inf, negative values, zero counts), masks, and the pattern centre from
pyxem's calibration (:func:`calibration_center`, the one rule for a calibrated centre) or of
a fit (:func:`fit_center`).  Imports the shared rules of :mod:`stemnmf_hs._validation`,
never :mod:`._adapter` (no import circle).
"""

from __future__ import annotations

import warnings

import numpy as np
from hyperspy.signal import BaseSignal

from .._validation import center_inside, check_center, check_counts, check_mask
from ..polar import default_center

__all__ = [
    "ALGORITHM",
    "calibrated_center",
    "calibration_center",
    "check_output_dimension",
    "check_scan_dimensions",
    "check_values",
    "fit_center",
    "is_lazy",
    "mask_array",
]

#: Name under which HyperSpy's ``decomposition`` dispatches to :class:`ConstrainedNMF`.
ALGORITHM = "constrained_nmf"


def is_lazy(signal):
    """Whether ``signal`` is a lazy (dask-backed) HyperSpy signal, asked publicly.

    Examples
    --------
    >>> import numpy as np
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.zeros((2, 3, 3)))
    >>> is_lazy(s), is_lazy(s.as_lazy())
    (False, True)
    """
    import hyperspy.api as hs

    return isinstance(signal, hs.signals.LazySignal)



def check_scan_dimensions(signal):
    """Shapes ``(nav_shape, sig_shape)`` in array order, or an error for non-4D-STEM data.

    Raises
    ------
    ValueError
        If the signal is not 2 navigation + 2 signal dimensions.
    """
    am = signal.axes_manager
    if am.navigation_dimension != 2 or am.signal_dimension != 2:
        raise ValueError(
            f"The constrained NMF needs a 4D-STEM scan with 2 navigation and 2 signal "
            f"dimensions; this signal has {am.navigation_dimension} navigation and "
            f"{am.signal_dimension} signal dimension(s) (shape {am.navigation_shape} | "
            f"{am.signal_shape}). Squeeze length-1 axes with s.squeeze() or use "
            "s.transpose(signal_axes=2) to choose the pattern axes."
        )
    return tuple(am.navigation_shape[::-1]), tuple(am.signal_shape[::-1])


def check_output_dimension(k, n_positions, n_pixels):
    """Refuse a number of components the data cannot support.

    Raises
    ------
    ValueError
        If ``k`` is missing, not an integer, < 1 or > ``min(n_positions, n_pixels)``.
    """
    limit = min(n_positions, n_pixels)
    if k is None:
        raise ValueError(
            f"output_dimension (the number of components k) is required for "
            f"algorithm='{ALGORITHM}'; give an integer between 1 and {limit}, e.g. "
            "s.estimate_number_of_components() or the paper's 4 for the simulation."
        )
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not (
        1 <= k <= limit
    ):
        raise ValueError(
            f"output_dimension={k!r} is impossible: the number of components must be an "
            f"integer between 1 and min(probe positions, pattern pixels) = "
            f"min({n_positions}, {n_pixels}) = {limit}."
        )


def check_values(signal, clip_negative=False):
    """Refuse NaN/inf, (unless clipping is allowed) negative values and zero counts, in one pass.

    Unsigned in-memory data need a ``max`` only; a lazy unsigned scan gets no pass.

    Raises
    ------
    ValueError
        Naming how many values are bad and what to do; all-zero data
        (:func:`stemnmf_hs._validation.check_counts`).
    """
    data = signal.data
    if np.issubdtype(data.dtype, np.complexfloating):
        raise ValueError(
            "The data are complex; take s.amplitude or s.power first (NMF needs real "
            "non-negative intensities)."
        )
    unsigned = np.issubdtype(data.dtype, np.unsignedinteger) or data.dtype == bool
    if unsigned and is_lazy(signal):
        return  # no pass over a lazy scan for unsigned data (the estimator sees zero counts)
    if unsigned:
        check_counts(data.max())
        return
    # min and max only (no scan-sized temporaries): NaN propagates into both, inf shows in
    # one of them; the bad values are counted on the error path only.
    vmin, vmax = data.min(), data.max()
    if is_lazy(signal):
        import dask

        vmin, vmax = dask.compute(vmin, vmax)
    n_bad = n_neg = 0
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        n_bad = int((~_isfinite(data)).sum())
    elif vmin < 0 and not clip_negative:
        n_neg = int((data < 0).sum())
    if int(n_bad):
        raise ValueError(
            f"The data hold {int(n_bad)} NaN or infinite value(s); NMF needs finite "
            "intensities. Replace them first, e.g. s.data = np.nan_to_num(s.data), or leave "
            "those positions/pixels out with navigation_mask/signal_mask."
        )
    if int(n_neg) and not clip_negative:
        raise ValueError(
            f"The data hold {int(n_neg)} negative value(s) (minimum {float(vmin):.6g}); NMF "
            "needs non-negative intensities. Pass clip_negative=True to set them to zero in "
            "a working copy (the signal is not changed), or remove the offset first."
        )
    check_counts(float(vmax))


def _isfinite(data):
    """``isfinite`` of a numpy or dask array, computed."""
    out = np.isfinite(data)
    return out.compute() if hasattr(out, "compute") else out


def calibration_center(signal):
    """``((cx, cy), "")`` in pixels from calibrated signal axes, else ``(None, why not)``.

    The one rule for a calibrated centre: pyxem puts the centre where the signal axes are
    zero (``-offset / scale``); both offsets zero means uncalibrated axes, and a centre
    outside the pattern is refused.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.zeros((2, 2, 8, 10)))
    >>> calibration_center(s)
    (None, 'the signal axes are not calibrated')
    >>> s.axes_manager.signal_axes[0].offset = -3.0
    >>> calibration_center(s)
    ((3.0, 0.0), '')
    """
    ny, nx = signal.axes_manager.signal_shape[::-1]
    axes = signal.axes_manager.signal_axes
    if all(float(ax.offset) == 0 for ax in axes):
        return None, "the signal axes are not calibrated"
    try:
        cx, cy = (float(c) for c in signal.calibration.center)
    except Exception:  # noqa: BLE001 - non-uniform or curved-Ewald axes, or no pyxem signal
        cx, cy = (-float(ax.offset) / float(ax.scale) for ax in axes)
    if not center_inside((cx, cy), (ny, nx)):
        return None, f"the calibrated centre ({cx:g}, {cy:g}) px lies outside the pattern"
    return (cx, cy), ""


def calibrated_center(signal):
    """Pattern centre ``(cx, cy)`` in pixels from pyxem's calibration, or the middle.

    :func:`calibration_center` when the axes are calibrated; for uncalibrated axes (both
    offsets zero) or a centre outside the pattern, the geometric centre with a warning.
    """
    center, why = calibration_center(signal)
    if center is None:
        fallback = default_center(signal.axes_manager.signal_shape[::-1])
        warnings.warn(
            f"{why[0].upper()}{why[1:]}; using the geometric centre {fallback}. Set "
            "s.calibration.center (pyxem), call s.find_center(), or pass center=(cx, cy) in "
            "pixels.",
            UserWarning,
            stacklevel=4,
        )
        return fallback
    return center


def mask_array(mask, shape, name):
    """A boolean numpy mask of ``shape`` (array order) from an array or signal, or None.

    A navigation mask in HyperSpy's axes order (``navigation_shape``, the transpose) is
    accepted as HyperSpy accepts it.
    """
    if mask is None:
        return None
    if isinstance(mask, BaseSignal):
        mask = mask.data
    mask = np.asarray(mask)
    if name == "navigation_mask" and mask.shape == tuple(shape)[::-1] != tuple(shape):
        mask = mask.T
    return check_mask(mask, shape, name, require_bool=True)


def fit_center(signal, center=None):
    """Pattern centre in pixels: ``center`` if given, else the fit's, else the calibration's."""
    if center is not None:
        return check_center(center, signal.axes_manager.signal_shape[::-1])
    fit = signal.metadata.get_item("Signal.ConstrainedNMF.parameters.center", None)
    if fit is not None and fit != "None":
        return tuple(float(c) for c in fit)
    return calibrated_center(signal)
