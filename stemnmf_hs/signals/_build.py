"""A calibrated ``nmf_diffraction`` scan from a 4D array (used by ``stemnmf_hs.data``).

Sits above the classes in the flow of imports (it builds :class:`NMFDiffraction2D`); the
methods build their result signals with :mod:`._adapter` instead.
"""

from __future__ import annotations

from ..polar import default_center
from .nmf_diffraction2d import NMFDiffraction2D

__all__ = ["scan_signal"]


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

    Examples
    --------
    >>> import numpy as np
    >>> s = scan_signal(np.ones((2, 3, 8, 8)), scan_step=1.5, pixel_size=0.02)
    >>> s.axes_manager.signal_axes[0].offset  # zero at the geometric centre, 3.5 px
    -0.07
    """
    ny, nx, kv, ku = data.shape
    cx, cy = default_center((kv, ku)) if center is None else center
    axes = [
        _axis("y", ny, scan_step, 0.0, scan_units, True),
        _axis("x", nx, scan_step, 0.0, scan_units, True),
        _axis("ky", kv, pixel_size, -cy * pixel_size, k_units, False),
        _axis("kx", ku, pixel_size, -cx * pixel_size, k_units, False),
    ]
    s = NMFDiffraction2D(data, axes=axes)
    s.metadata.General.title = title
    return s
