"""Builders of calibrated signals from arrays (used by ``stemnmf_hs.data`` and the methods)."""

from __future__ import annotations

import numpy as np

__all__ = ["scan_signal", "diffraction_stack", "map_stack"]


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


def stack_like(data, axes, title=""):
    """A ``Signal2D`` stack ``(n, *shape)`` whose last two axes copy ``axes`` (calibrated).

    Parameters
    ----------
    data : numpy.ndarray
        ``(n, a, b)``.
    axes : sequence of hyperspy axes
        The two axes of the images, in HyperSpy order ``(x, y)``.
    """
    import hyperspy.api as hs

    s = hs.signals.Signal2D(data)
    for new, old in zip(s.axes_manager.signal_axes, axes):
        new.update_from(old, attributes=("scale", "offset", "units", "name"))
    s.axes_manager.navigation_axes[0].name = "component"
    s.metadata.General.title = title
    return s
