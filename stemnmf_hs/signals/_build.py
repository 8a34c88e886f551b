"""Builders of calibrated signals from arrays (used by ``stemnmf_hs.data`` and the methods)."""

from __future__ import annotations

import numpy as np

__all__ = ["component_matrix", "image_like", "scan_signal", "stack_like"]


def _axis(name, size, scale, offset, units, navigate):
    return {
        "name": name,
        "size": int(size),
        "scale": float(scale),
        "offset": float(offset),
        "units": units,
        "navigate": navigate,
    }


def scan_signal(data, scan_step=1.0, scan_units="nm", pixel_size=1.0, k_units="1/Å",
                center=None, title=""):
    """A calibrated :class:`~stemnmf_hs.signals.NMFDiffraction2D` from a 4D array.

    Parameters
    ----------
    data : numpy.ndarray
        ``(scan_y, scan_x, ky, kx)``.
    scan_step : float
        Scan step in ``scan_units`` (navigation axes ``x``, ``y``).
    pixel_size : float
        Reciprocal-space pixel size in ``k_units`` (signal axes ``kx``, ``ky``).
    center : tuple of float, optional
        ``(cx, cy)`` pattern centre in pixels, placed at zero of the signal axes (pyxem's
        calibration convention); the geometric centre when ``None``.

    Returns
    -------
    NMFDiffraction2D
    """
    from .nmf_diffraction2d import NMFDiffraction2D

    ny, nx, kv, ku = data.shape
    if center is None:
        center = ((ku - 1) / 2.0, (kv - 1) / 2.0)
    cx, cy = center
    axes = [
        _axis("y", ny, scan_step, 0.0, scan_units, True),
        _axis("x", nx, scan_step, 0.0, scan_units, True),
        _axis("ky", kv, pixel_size, -cy * pixel_size, k_units, False),
        _axis("kx", ku, pixel_size, -cx * pixel_size, k_units, False),
    ]
    s = NMFDiffraction2D(data, axes=axes)
    s.metadata.General.title = title
    return s


def stack_like(data, axes, title="", navigation_name="component"):
    """A ``Signal2D`` stack ``(n | b, a)`` whose image axes copy calibrated ``axes``.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n, a, b)`` in array order (rows, columns).
    axes : sequence of hyperspy axes
        The two image axes in HyperSpy order ``(x, y)``: the scan's navigation axes for maps,
        its signal axes for diffractions.
    title : str
        Signal title.
    navigation_name : str
        Name of the stacking axis.

    Returns
    -------
    hyperspy.signals.Signal2D
    """
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(data))
    _copy_axes(s.axes_manager.signal_axes, axes)
    s.axes_manager.navigation_axes[0].name = navigation_name
    s.metadata.General.title = title
    return s


def image_like(data, axes, title=""):
    """A single ``Signal2D`` image ``(| b, a)`` with calibrated ``axes`` (see stack_like)."""
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(data))
    _copy_axes(s.axes_manager.signal_axes, axes)
    s.metadata.General.title = title
    return s


def component_matrix(matrix, title, units=""):
    """A ``Signal2D`` ``(| k, k)`` component-by-component matrix, axes named "component".

    Parameters
    ----------
    matrix : numpy.ndarray
        ``(k, k)``.
    title : str
        Signal title.
    units : str
        Quantity units of the values (e.g. "degree").
    """
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(matrix))
    for ax, name in zip(s.axes_manager.signal_axes, ("component j", "component i")):
        ax.name = name
    s.metadata.General.title = title
    if units:
        s.metadata.set_item("Signal.quantity", f"{title} ({units})")
    return s


def _copy_axes(new_axes, old_axes):
    for new, old in zip(new_axes, old_axes):
        for attr in ("scale", "offset", "units", "name"):
            setattr(new, attr, getattr(old, attr))
