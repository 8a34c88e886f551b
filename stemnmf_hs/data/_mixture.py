"""Amorphous matrix plus any number of random-lattice crystals: a scan with a known k.

Array generator (no HyperSpy) used by the k-selection tests and the benchmarks (the paper's
58 x 58 x 128 x 128, k = 30 protocol runs on ``n_crystals=29``).
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

__all__ = ["CrystalMixture", "simulate_crystal_mixture"]


@dataclass
class CrystalMixture:
    """Result of :func:`simulate_crystal_mixture`.

    Attributes
    ----------
    data : numpy.ndarray
        ``(ny_scan, nx_scan, ny_sig, nx_sig)`` counts (Poisson samples if ``noise``).
    diffractions : numpy.ndarray
        ``(n_crystals + 1, ny_sig, nx_sig)`` float64 ground truth, 0 amorphous, each summing
        to 1.
    maps : numpy.ndarray
        ``(n_crystals + 1, ny_scan, nx_scan)`` float64 weights in electrons.
    center : tuple of float
        ``(cx, cy)`` pattern centre, pixels.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_crystal_mixture
    >>> mix = simulate_crystal_mixture(scan_shape=(8, 8), pattern_shape=(32, 32), n_crystals=2)
    >>> type(mix).__name__, mix.diffractions.shape, mix.maps.shape, mix.center
    ('CrystalMixture', (3, 32, 32), (3, 8, 8), (16.0, 16.0))
    """

    data: np.ndarray
    diffractions: np.ndarray
    maps: np.ndarray
    center: tuple

    @property
    def n_components(self):
        """Number of distinct diffractions (the true ``k``).

        Examples
        --------
        >>> from stemnmf_hs.data import simulate_crystal_mixture
        >>> mix = simulate_crystal_mixture(scan_shape=(8, 8), pattern_shape=(32, 32),
        ...                                n_crystals=2)
        >>> mix.n_components
        3
        """
        return int(self.diffractions.shape[0])

    @property
    def expectation(self):
        """Noiseless ``(ny_scan, nx_scan, ny_sig, nx_sig)`` expectation of ``data``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import simulate_crystal_mixture
        >>> mix = simulate_crystal_mixture(scan_shape=(8, 8), pattern_shape=(32, 32), n_crystals=2,
        ...                                electrons_per_pattern=1e4)
        >>> mix.expectation.shape
        (8, 8, 32, 32)
        >>> bool(np.allclose(mix.expectation.sum(axis=(2, 3)), 1e4))
        True
        """
        return expected_counts(self.maps, self.diffractions, blas=False)


def simulate_crystal_mixture(
    scan_shape=(58, 58),
    pattern_shape=(128, 128),
    n_crystals=29,
    electrons_per_pattern=1e4,
    max_fraction=0.8,
    seed=0,
    noise=True,
    dtype=np.float32,
):
    """Amorphous matrix plus ``n_crystals`` spot patterns with smooth blob maps.

    Every crystal is a random 2D reciprocal lattice (``|g1|, |g2|`` in 14-34 px scaled by
    ``min(pattern_shape) / 128``, 55-125 degrees apart, random in-plane rotation; spots up to
    60/128 of the pattern size from the centre) rendered by :func:`spot_pattern`; the matrix
    is :func:`amorphous_pattern`.  Each crystal occupies 1-3 Gaussian blobs (sigma 5-15 % of
    the scan) of crystalline fraction 0.1-0.5; where the fractions add up to more than
    ``max_fraction`` they are scaled down to it, and the amorphous fraction is the rest.

    Parameters
    ----------
    scan_shape : tuple of int
        ``(ny, nx)`` probe positions.
    pattern_shape : tuple of int
        ``(ny, nx)`` pattern pixels, at least 32 each.
    n_crystals : int
        Number of crystals (>= 0); the true ``k`` is ``n_crystals + 1``.
    electrons_per_pattern : float
        Expected electrons per pattern (``> 0``).
    max_fraction : float
        Cap of the summed crystalline fraction, in ``(0, 1]``.
    seed : int
        Seed of the lattices, maps and noise.
    noise : bool
        Poisson-sample the counts.
    dtype : numpy dtype
        Float dtype of ``data``.

    Returns
    -------
    CrystalMixture

    Raises
    ------
    ValueError
        On shapes below the minimum, a negative ``n_crystals``, non-positive electrons or a
        ``max_fraction`` outside ``(0, 1]``.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_crystal_mixture
    >>> mix = simulate_crystal_mixture(scan_shape=(8, 8), pattern_shape=(32, 32), n_crystals=3,
    ...                                seed=1)
    >>> mix.data.shape, mix.data.dtype, mix.n_components
    ((8, 8, 32, 32), dtype('float32'), 4)
    """
    sy, sx = (int(n) for n in scan_shape)
    py, px = (int(n) for n in pattern_shape)
    if min(sy, sx) < 2 or min(py, px) < 32:
        raise ValueError(
            f"scan_shape {scan_shape} must be at least (2, 2) and pattern_shape "
            f"{pattern_shape} at least (32, 32)."
        )
    if int(n_crystals) < 0 or not electrons_per_pattern > 0 or not 0 < max_fraction <= 1:
        raise ValueError(
            "n_crystals must be >= 0, electrons_per_pattern > 0 and max_fraction in (0, 1]; "
            f"got {n_crystals}, {electrons_per_pattern}, {max_fraction}."
        )
    rng = np.random.default_rng(seed)
    n = int(n_crystals)
    scale = min(py, px) / 128.0
    diffs = np.empty((n + 1, py, px))
    diffs[0] = amorphous_pattern((py, px), dtype=np.float64)
    for j in range(n):
        a1 = rng.uniform(0.0, 360.0)
        a2 = a1 + rng.uniform(55.0, 125.0)
        l1, l2 = rng.uniform(14.0, 34.0, size=2) * scale
        g1 = (l1 * np.cos(np.deg2rad(a1)), l1 * np.sin(np.deg2rad(a1)))
        g2 = (l2 * np.cos(np.deg2rad(a2)), l2 * np.sin(np.deg2rad(a2)))
        diffs[j + 1] = spot_pattern(
            (py, px), g1, g2, spot_sigma=rng.uniform(1.0, 1.6) * max(scale, 0.5),
            max_radius=60.0 * scale, dtype=np.float64,
        )
    yy, xx = np.mgrid[0:sy, 0:sx].astype(np.float64)
    frac = np.zeros((n, sy, sx))
    for j in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, sy), rng.uniform(0, sx)
            sigma = rng.uniform(0.05, 0.15) * max(sy, sx)
            amp = rng.uniform(0.1, 0.5)
            frac[j] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    total = frac.sum(axis=0)
    frac *= np.where(total > max_fraction, max_fraction / np.maximum(total, 1e-300), 1.0)[None]
    maps = electrons_per_pattern * with_matrix(frac)
    expectation = expected_counts(maps.astype(np.float32), diffs.astype(np.float32),
                                  blas=False)
    np.maximum(expectation, 0, out=expectation)
    data = poisson_counts(expectation, rng, dtype) if noise else expectation.astype(dtype)
    center = (float(px // 2), float(py // 2))  # the simulators' default centre
    return CrystalMixture(data=data, diffractions=diffs, maps=maps, center=center)
