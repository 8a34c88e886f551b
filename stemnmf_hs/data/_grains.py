"""Simulated scan of rotated, overlapping grains in an amorphous matrix (ground truth known).

One crystal seen in two orientations, as two grains that overlap along the beam in part, next
to a grain of a second crystal, all in an amorphous matrix: the situation of Kimoto et al. 2025
(Fig. 9, rotated copies of one diffraction) and Cao et al. 2025 (Fig. 5, overlapping grains).
Pure numpy; reuses the pattern models of :mod:`stemnmf_hs.data._simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._simulate import (
    amorphous_pattern,
    expected_counts,
    poisson_counts,
    spot_pattern,
    with_matrix,
)

__all__ = ["GrainScan", "simulate_overlapping_grains"]

#: Oblique lattice of crystal A ([x, y] pixels; no symmetry beyond Friedel's).
_A = ((17.0, 3.0), (-6.0, 25.0))
#: Rectangular lattice of crystal B.
_B = ((21.0, 0.0), (0.0, 14.0))


@dataclass(frozen=True)
class GrainScan:
    """Result of :func:`simulate_overlapping_grains`.

    Attributes
    ----------
    data : numpy.ndarray
        ``(ny_scan, nx_scan, ny_sig, nx_sig)`` float32 counts.
    diffractions : numpy.ndarray
        ``(4, ny_sig, nx_sig)``: amorphous, crystal A, crystal A rotated by ``rotation_deg``,
        crystal B; each sums to 1.
    maps : numpy.ndarray
        ``(4, ny_scan, nx_scan)`` weights in electrons; the data expectation is
        ``einsum('kyx,kuv->yxuv', maps, diffractions)``.
    rotation_deg : float
        Rotation of the second grain of crystal A (counter-clockwise in the displayed pattern,
        i.e. from +x towards +y in pixel coordinates), degrees.
    overlap : numpy.ndarray
        ``(ny_scan, nx_scan)`` bool, both A grains at full strength.
    single : numpy.ndarray
        ``(ny_scan, nx_scan)`` bool, interiors of single grains (one crystal only).
    center : tuple of float
        ``(cx, cy)`` pattern centre, pixels.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_overlapping_grains
    >>> scan = simulate_overlapping_grains(scan_shape=(20, 30), pattern_shape=(64, 64))
    >>> type(scan).__name__, scan.diffractions.shape, scan.maps.shape
    ('GrainScan', (4, 64, 64), (4, 20, 30))
    >>> scan.rotation_deg, scan.center
    (35.0, (32.0, 32.0))
    """

    data: np.ndarray
    diffractions: np.ndarray
    maps: np.ndarray
    rotation_deg: float
    overlap: np.ndarray
    single: np.ndarray
    center: tuple


def _rotate(v, deg):
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return (c * v[0] - s * v[1], s * v[0] + c * v[1])


def _disc(shape, cy, cx, radius, edge=1.5):
    """Grain profile in [0, 1]: 1 inside ``radius``, linear ramp over ``edge`` scan pixels."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    return np.clip((radius + edge / 2 - d) / edge, 0, 1)


def simulate_overlapping_grains(
    scan_shape=(30, 40),
    pattern_shape=(96, 96),
    rotation_deg=35.0,
    crystallinity=0.3,
    electrons_per_pattern=1e4,
    seed=0,
    noise=True,
):
    """Two orientations of crystal A overlapping in part, a grain of crystal B, amorphous matrix.

    Layout (scan pixels, for the default 30 x 40 scan): grain A at 0° centred at (row 15,
    col 10) and grain A rotated by ``rotation_deg`` at (15, 18), both of radius 6, overlapping
    by a lens ~4 px wide; grain B at (15, 32), radius 5.  Inside a grain the crystalline
    fraction is ``crystallinity`` (each grain), with a 1.5 px graded edge; the amorphous
    fraction is the rest.  Poisson noise for ``electrons_per_pattern``.

    Parameters
    ----------
    scan_shape : tuple of int
        ``(ny, nx)`` probe positions; at least ``(20, 30)``.
    pattern_shape : tuple of int
        ``(ny, nx)`` pattern pixels; at least ``(64, 64)``.
    rotation_deg : float
        Rotation between the two grains of crystal A, degrees, not a multiple of 180.
    crystallinity : float
        Crystalline fraction of a grain, in ``(0, 0.5]`` (two overlapping grains stay <= 1).
    electrons_per_pattern : float
        Expected electrons per pattern, ``> 0``.
    seed : int, optional
        Seed of the Poisson noise.
    noise : bool
        Poisson-sample the counts.

    Returns
    -------
    GrainScan

    Raises
    ------
    ValueError
        On a scan or pattern too small, a crystallinity outside ``(0, 0.5]``, a rotation that
        is a multiple of 180° (the two orientations would coincide by Friedel symmetry), or a
        non-positive electron dose.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data import simulate_overlapping_grains
    >>> scan = simulate_overlapping_grains(scan_shape=(20, 30), pattern_shape=(64, 64), seed=0)
    >>> scan.data.shape, scan.data.dtype
    ((20, 30, 64, 64), dtype('float32'))
    >>> bool(scan.overlap.any()), bool(np.allclose(scan.diffractions.sum(axis=(1, 2)), 1.0))
    (True, True)
    """
    sy, sx = (int(n) for n in scan_shape)
    py, px = (int(n) for n in pattern_shape)
    if sy < 20 or sx < 30:
        raise ValueError(f"scan_shape {scan_shape} is too small: need at least (20, 30).")
    if py < 64 or px < 64:
        raise ValueError(f"pattern_shape {pattern_shape} is too small: need at least (64, 64).")
    if not 0 < crystallinity <= 0.5:
        raise ValueError(f"crystallinity must be in (0, 0.5]; got {crystallinity!r}.")
    if np.isclose(np.mod(rotation_deg, 180.0), 0.0) or np.isclose(
        np.mod(rotation_deg, 180.0), 180.0
    ):
        raise ValueError(
            f"rotation_deg={rotation_deg!r} is a multiple of 180°: by Friedel symmetry the "
            "two grains would have the same diffraction. Choose another angle."
        )
    if not electrons_per_pattern > 0:
        raise ValueError(f"electrons_per_pattern must be > 0; got {electrons_per_pattern!r}.")

    center = (px // 2, py // 2)
    r_max = 0.45 * min(py, px)
    a_rot = tuple(_rotate(g, rotation_deg) for g in _A)
    diffractions = np.stack(
        [
            amorphous_pattern((py, px), center=center),
            spot_pattern((py, px), _A[0], _A[1], center=center, max_radius=r_max),
            spot_pattern((py, px), a_rot[0], a_rot[1], center=center, max_radius=r_max),
            spot_pattern((py, px), _B[0], _B[1], center=center, max_radius=r_max),
        ]
    ).astype(np.float64)
    diffractions /= diffractions.sum(axis=(1, 2), keepdims=True)

    cy = sy / 2.0
    scale = sx / 40.0
    grain_a = _disc((sy, sx), cy, 10 * scale, 6 * scale)
    grain_a_rot = _disc((sy, sx), cy, 18 * scale, 6 * scale)
    grain_b = _disc((sy, sx), cy, 32 * scale, 5 * scale)
    fractions = crystallinity * np.stack([grain_a, grain_a_rot, grain_b])
    maps = electrons_per_pattern * with_matrix(fractions)

    expectation = expected_counts(maps, diffractions, blas=False)
    if noise:
        data = poisson_counts(expectation, np.random.default_rng(seed), np.float32)
    else:
        data = expectation.astype(np.float32)
    overlap = (grain_a == 1) & (grain_a_rot == 1)
    present = np.stack([grain_a, grain_a_rot, grain_b]) > 0
    single = (np.stack([grain_a, grain_a_rot, grain_b]) == 1).any(0) & (present.sum(0) == 1)
    return GrainScan(
        data=data,
        diffractions=diffractions.astype(np.float32),
        maps=maps.astype(np.float32),
        rotation_deg=float(rotation_deg),
        overlap=overlap,
        single=single,
        center=(float(center[0]), float(center[1])),
    )
