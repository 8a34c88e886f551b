"""Polar geometry of diffraction patterns, shared by the continuity constraint and similarity.

Math module: arrays in, arrays out; never imports HyperSpy.

Conventions
-----------
* A pattern is a 2D array of shape ``(ny, nx)`` (rows, columns), the order of HyperSpy's
  signal data.  A stack of patterns is ``(k, ny, nx)`` or, unfolded, ``(k, ny * nx)`` in
  C order.
* The pattern centre is ``(cx, cy)`` in **pixels**, column first, as pyxem's
  ``s.calibration.center`` returns it.  ``(0, 0)`` is the centre of the first pixel.
* A signal mask is a boolean ``(ny, nx)`` array, ``True`` where a pixel is *excluded*
  (HyperSpy's ``signal_mask`` convention), e.g. the direct beam.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["default_center", "radius_map", "RingBinning"]


def default_center(signal_shape):
    """Geometric centre of a pattern.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.

    Returns
    -------
    tuple of float
        ``(cx, cy) = ((nx - 1) / 2, (ny - 1) / 2)`` in pixels.
    """
    ny, nx = signal_shape
    return ((nx - 1) / 2.0, (ny - 1) / 2.0)


def radius_map(signal_shape, center=None):
    """Distance of every pixel from the pattern centre.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels; the geometric centre when ``None``.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float64 radii in pixels.
    """
    ny, nx = signal_shape
    cx, cy = default_center(signal_shape) if center is None else center
    yy, xx = np.mgrid[0:ny, 0:nx]
    return np.hypot(xx - cx, yy - cy)


class RingBinning:
    """Assignment of pattern pixels to concentric rings about the pattern centre.

    Pixel ``(y, x)`` belongs to ring ``floor(r / ring_width)`` with ``r`` its distance from
    the centre.  Built once per decomposition and reused every iteration: ring sums of a
    whole stack of patterns are one sparse matrix product.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels; the geometric centre when ``None``.
    ring_width : float, default 1.0
        Ring width in pixels (Kimoto et al. 2025 use one-pixel radial steps of the r-phi
        transform).
    signal_mask : numpy.ndarray of bool, optional
        ``(ny, nx)``, ``True`` for excluded pixels.  The binning then describes the
        ``n_features = (~signal_mask).sum()`` kept pixels in C order, as HyperSpy hands them
        to an estimator.

    Attributes
    ----------
    labels : numpy.ndarray of int
        ``(n_features,)`` ring index of every kept pixel.
    n_rings : int
        Number of rings that hold at least one kept pixel.
    counts : numpy.ndarray of float
        ``(n_rings,)`` number of kept pixels per ring.

    Raises
    ------
    ValueError
        If ``ring_width`` is not positive or the mask shape differs from ``signal_shape``.
    """

    def __init__(self, signal_shape, center=None, ring_width=1.0, signal_mask=None):
        if not ring_width > 0:
            raise ValueError(f"ring_width must be > 0 pixels, got {ring_width!r}.")
        signal_shape = tuple(int(n) for n in signal_shape)
        r = radius_map(signal_shape, center).ravel()
        if signal_mask is not None:
            signal_mask = np.asarray(signal_mask, dtype=bool)
            if signal_mask.shape != signal_shape:
                raise ValueError(
                    f"signal_mask has shape {signal_mask.shape} but the patterns are "
                    f"{signal_shape}; give a boolean mask of the pattern shape."
                )
            r = r[~signal_mask.ravel()]
        raw = np.floor(r / ring_width).astype(np.int64)
        # Relabel to consecutive ring indices so that empty rings cost nothing.
        _, self.labels = np.unique(raw, return_inverse=True)
        self.labels = self.labels.ravel()
        self.n_rings = int(self.labels.max()) + 1 if self.labels.size else 0
        n = self.labels.size
        self._onehot = sp.csr_matrix(
            (np.ones(n, dtype=np.float32), (np.arange(n), self.labels)),
            shape=(n, self.n_rings),
        )
        self.counts = np.bincount(self.labels, minlength=self.n_rings).astype(np.float64)

    def ring_sums(self, patterns):
        """Sum of every pattern over every ring.

        Parameters
        ----------
        patterns : numpy.ndarray
            ``(k, n_features)`` unfolded (masked) patterns.

        Returns
        -------
        numpy.ndarray
            ``(k, n_rings)`` ring sums, same dtype family as the input.
        """
        # (onehot.T @ patterns.T).T keeps the sparse operand on the left (fast CSR path).
        return np.asarray(self._onehot.T @ np.asarray(patterns).T).T

    def ring_means(self, patterns):
        """Mean of every pattern over every ring.

        Parameters
        ----------
        patterns : numpy.ndarray
            ``(k, n_features)``.

        Returns
        -------
        numpy.ndarray
            ``(k, n_rings)`` ring means.
        """
        return self.ring_sums(patterns) / self.counts

    def expand(self, ring_values):
        """Broadcast per-ring values back to pixels.

        Parameters
        ----------
        ring_values : numpy.ndarray
            ``(k, n_rings)``.

        Returns
        -------
        numpy.ndarray
            ``(k, n_features)``.
        """
        return ring_values[:, self.labels]
