"""Simulated 4D-STEM data set of Kimoto et al. (2025).

Pure numpy / scipy re-implementation of the synthetic data used to
demonstrate constrained NMF in

    K. Kimoto et al., "Nonnegative matrix factorization with domain-specific
    constraints for 4D-STEM", *Sci. Rep.* **15**, 39143 (2025),
    Methods, "Simulated 4D-STEM data", and Fig. 10.

Paper facts reproduced here:

* scan ``(nx, ny) = (36, 36)``, diffraction patterns ``128 x 128``;
* one amorphous and three crystalline diffractions, each normalized
  (``sum == 1``), Fig. 10b;
* nine crystalline areas of about ``6 x 6`` scan pixels embedded in an
  amorphous matrix, with a graded crystal/amorphous interface, Fig. 10a;
* crystallinity ratios 9 %, 3 % and 1 %: areas (i), (ii), (iii) contain
  crystal 1 at 9/3/1 %, (iv), (v), (vi) crystal 2, (vii), (viii), (ix)
  crystal 3;
* Poisson (quantum) noise with ``N = 1e4`` electrons per diffraction pattern.

The exact diffraction patterns of the paper (made with DigitalMicrograph
scripts) are not published; the patterns here are synthetic stand-ins with
the property that matters for the paper's argument: several spots of every
crystal fall on or near the amorphous rings, so that primitive NMF tends to
put dark "downward-convex" spots into the amorphous component.

Conventions
-----------
* Arrays use numpy / HyperSpy order: navigation (scan) axes first, then the
  signal axes; within each pair the row (``y``) axis precedes the column
  (``x``) axis.  The data array is ``(ny_scan, nx_scan, ny_sig, nx_sig)``.
* Diffraction-plane coordinates are in **pixels**: pixel ``[row, col]``
  has its centre at ``x = col``, ``y = row``.
* A pattern centre is given as ``center = (cx, cy)`` = (column, row), i.e.
  ``[x, y]`` like pyxem's ``calibration.center``.  The default centre is
  ``(nx_sig // 2, ny_sig // 2)``, which always lies on a pixel centre
  (``(64, 64)`` for ``128 x 128`` patterns).
* Reciprocal lattice vectors ``g1``, ``g2`` are ``[x, y]`` offsets in pixels.

This module never imports hyperspy or pyxem.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from .._validation import finite_array
from ..polar import resolve_center

__all__ = [
    "CRYSTAL_G_VECTORS",
    "SimulatedScan",
    "amorphous_pattern",
    "simulate_precipitates",
    "spot_offsets",
    "spot_pattern",
]


def _polar(length, angle_deg):
    a = np.deg2rad(angle_deg)
    return (float(length * np.cos(a)), float(length * np.sin(a)))


#: Reciprocal basis vectors ``(g1, g2)`` (pixels, ``[x, y]``) of the three
#: crystals used by :func:`simulate_precipitates`:
#:
#: 0. crystal 1, hexagonal: ``|g1| = |g2| = 22`` px, 60 deg apart, rotated by
#:    10 deg (spot radii 22, 38.1, 44, 58.2 px);
#: 1. crystal 2, square: ``|g1| = |g2| = 27`` px, rotated by 30 deg
#:    (spot radii 27, 38.2, 54 px);
#: 2. crystal 3, oblique: ``|g1| = 18`` px, ``|g2| = 31`` px, 75 deg between
#:    them, ``g1`` at 50 deg (spot radii 18, 31, 31.6, 36, 39.7, ... px).
#:
#: With the default amorphous rings at 20, 38 and 55 px many spots of every
#: crystal lie on or near a ring.
CRYSTAL_G_VECTORS = (
    (_polar(22.0, 10.0), _polar(22.0, 70.0)),
    (_polar(27.0, 30.0), _polar(27.0, 120.0)),
    (_polar(18.0, 50.0), _polar(31.0, 125.0)),
)

# Amorphous pattern model (pixels): background b0 * exp(-q / q0) plus rings
# of peak height exp(-r_i / ring_decay) (an atomic-scattering-factor-like
# falloff).
_AMORPHOUS_BACKGROUND = 0.5
_AMORPHOUS_Q0 = 30.0
_AMORPHOUS_RING_DECAY = 60.0

# Spot intensity falloff exp(-|g| / _SPOT_DECAY) (pixels).
_SPOT_DECAY = 40.0


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _check_shape(shape, name):
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(
            f"{name} must be a pair of positive integers (rows, cols), "
            f"got {shape!r}"
        ) from None
    if len(shape) != 2 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0
        for s in shape
    ):
        raise ValueError(
            f"{name} must be a pair of positive integers (rows, cols), "
            f"got {shape!r}"
        )
    return int(shape[0]), int(shape[1])


def _check_float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(
            f"dtype must be a floating-point dtype (e.g. np.float32 or "
            f"np.float64), got {dt}"
        )
    return dt


def _check_center(center, shape):
    ny, nx = shape
    if center is None:
        return float(nx // 2), float(ny // 2)
    return resolve_center(center, shape)  # the simulators' default centre differs (above)


def _check_positive(value, name, allow_zero=False):
    ok = isinstance(value, Real) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite real number {rel}, got {value!r}")
    return float(value)


def _check_vector(v, name):
    a = finite_array(v)
    if a is None:
        raise ValueError(f"{name} must be a finite [x, y] pair in pixels, got {v!r}")
    return a


# --------------------------------------------------------------------------
# diffraction patterns
# --------------------------------------------------------------------------
def amorphous_pattern(
    shape=(128, 128),
    center=None,
    ring_radii=(20.0, 38.0, 55.0),
    ring_widths=(4.0, 6.0, 8.0),
    dtype=np.float32,
):
    """Rotationally symmetric amorphous diffraction pattern (Fig. 10b, k = 0).

    The radial intensity profile is

    ``I(q) = 0.5 * exp(-q / 30) + sum_i exp(-r_i / 60) * exp(-(q - r_i)**2 / (2 w_i**2))``

    with ``q`` the distance (pixels) from ``center``: diffuse Gaussian halo
    rings on a smoothly decaying background mimicking the atomic scattering
    factor falloff.  There is no direct-beam peak.  The pattern is then
    normalized to ``sum == 1`` as in the paper.

    Parameters
    ----------
    shape : tuple of int, default (128, 128)
        Pattern shape ``(ny, nx)`` = (rows, columns) in pixels.
    center : (float, float) or None
        Pattern centre ``(cx, cy)`` = (column, row) in pixels, i.e. ``[x, y]``
        as pyxem's ``calibration.center``.  ``None`` gives
        ``(nx // 2, ny // 2)`` (on a pixel centre).
    ring_radii : sequence of float
        Ring radii ``r_i`` in pixels (``>= 0``).
    ring_widths : sequence of float
        Gaussian standard deviations ``w_i`` of the ring profiles in pixels
        (``> 0``); same length as ``ring_radii``.
    dtype : floating dtype, default np.float32
        Output dtype.

    Returns
    -------
    numpy.ndarray
        Shape ``(ny, nx)`` (rows, columns); non-negative, sums to 1
        (computed in float64, then cast).

    Raises
    ------
    ValueError
        If ``shape`` is not two positive integers, ``center`` is not two
        finite numbers, ``ring_radii`` and ``ring_widths`` differ in length
        or contain negative radii / non-positive widths / non-finite values,
        or ``dtype`` is not floating point.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data import amorphous_pattern
    >>> img = amorphous_pattern((32, 32), ring_radii=(5.0, 9.0, 13.0),
    ...                         ring_widths=(1.0, 1.5, 2.0))
    >>> img.shape, img.dtype, round(float(img.sum()), 4)
    ((32, 32), dtype('float32'), 1.0)
    """
    ny, nx = _check_shape(shape, "shape")
    cx, cy = _check_center(center, (ny, nx))
    dt = _check_float_dtype(dtype)
    radii = np.atleast_1d(np.asarray(ring_radii, dtype=np.float64))
    widths = np.atleast_1d(np.asarray(ring_widths, dtype=np.float64))
    if radii.ndim != 1 or widths.ndim != 1 or radii.shape != widths.shape:
        raise ValueError(
            "ring_radii and ring_widths must be 1-D sequences of equal length, "
            f"got {ring_radii!r} and {ring_widths!r}"
        )
    if not (np.all(np.isfinite(radii)) and np.all(radii >= 0)):
        raise ValueError(f"ring_radii must be finite and >= 0 pixels, got {ring_radii!r}")
    if not (np.all(np.isfinite(widths)) and np.all(widths > 0)):
        raise ValueError(f"ring_widths must be finite and > 0 pixels, got {ring_widths!r}")

    y = np.arange(ny, dtype=np.float64)[:, None] - cy
    x = np.arange(nx, dtype=np.float64)[None, :] - cx
    q = np.hypot(x, y)  # (ny, nx)
    img = _AMORPHOUS_BACKGROUND * np.exp(-q / _AMORPHOUS_Q0)
    amps = np.exp(-radii / _AMORPHOUS_RING_DECAY)
    # (n_rings, ny, nx) summed over rings
    img = img + np.einsum(
        "r,ryx->yx",
        amps,
        np.exp(-((q[None] - radii[:, None, None]) ** 2) / (2.0 * widths[:, None, None] ** 2)),
    )
    img /= img.sum()
    return img.astype(dt)


def spot_offsets(g1, g2, max_radius=60.0):
    """Reciprocal-lattice spot offsets ``h*g1 + k*g2`` with ``0 < |g| <= max_radius``.

    Parameters
    ----------
    g1, g2 : (float, float)
        Reciprocal basis vectors ``[x, y]`` in pixels; must be linearly
        independent.
    max_radius : float, default 60
        Largest spot distance from the centre in pixels (``> 0``).

    Returns
    -------
    offsets : numpy.ndarray
        Shape ``(n_spots, 2)``, float64, columns ``[x, y]`` in pixels,
        direct beam (``h = k = 0``) excluded.  The set is closed under
        ``g -> -g`` (Friedel pairs).
    hk : numpy.ndarray
        Shape ``(n_spots, 2)``, int, the indices ``(h, k)`` of each spot.

    Raises
    ------
    ValueError
        If ``g1``/``g2`` are not finite ``[x, y]`` pairs, are (nearly)
        collinear, or ``max_radius`` is not a finite number ``> 0``.

    Examples
    --------
    >>> from stemnmf_hs.data._simulate import spot_offsets
    >>> offsets, hk = spot_offsets((10.0, 0.0), (0.0, 10.0), max_radius=10.0)
    >>> offsets
    array([[-10.,   0.],
           [  0., -10.],
           [  0.,  10.],
           [ 10.,   0.]])
    >>> hk
    array([[-1,  0],
           [ 0, -1],
           [ 0,  1],
           [ 1,  0]])
    """
    a = _check_vector(g1, "g1")
    b = _check_vector(g2, "g2")
    rmax = _check_positive(max_radius, "max_radius")
    cross = abs(a[0] * b[1] - a[1] * b[0])
    if cross <= 1e-9 * max(np.hypot(*a) * np.hypot(*b), 1e-300):
        raise ValueError(
            f"g1 and g2 must be non-zero and linearly independent, got g1={g1!r}, g2={g2!r}"
        )
    # Cramer's rule: |h| <= |g| |g2| / |g1 x g2|, |k| <= |g| |g1| / |g1 x g2|
    hmax = int(np.ceil(rmax * np.hypot(*b) / cross))
    kmax = int(np.ceil(rmax * np.hypot(*a) / cross))
    h, k = np.meshgrid(
        np.arange(-hmax, hmax + 1), np.arange(-kmax, kmax + 1), indexing="ij"
    )
    hk = np.stack([h.ravel(), k.ravel()], axis=1)
    off = hk[:, :1] * a[None, :] + hk[:, 1:] * b[None, :]
    r = np.hypot(off[:, 0], off[:, 1])
    keep = (hk != 0).any(axis=1) & (r <= rmax * (1.0 + 1e-12))
    return off[keep], hk[keep]


def spot_pattern(
    shape=(128, 128),
    g1=CRYSTAL_G_VECTORS[0][0],
    g2=CRYSTAL_G_VECTORS[0][1],
    center=None,
    spot_sigma=1.2,
    max_radius=60.0,
    dtype=np.float32,
):
    """Kinematical-like zone-axis spot pattern of a crystal (Fig. 10b, k = 1-3).

    Isotropic Gaussian spots of standard deviation ``spot_sigma`` are placed
    at ``center + h*g1 + k*g2`` for all integers ``(h, k)`` with
    ``0 < |h*g1 + k*g2| <= max_radius``; the direct beam (``h = k = 0``) is
    excluded (it is part of no component in the paper's data).  Spot peak
    heights fall off as ``exp(-|g| / 40)``.  The spot set is closed under
    ``g -> -g``, so the pattern is Friedel (centro-) symmetric about
    ``center`` by construction.  The pattern is normalized to ``sum == 1``.

    Parameters
    ----------
    shape : tuple of int, default (128, 128)
        Pattern shape ``(ny, nx)`` = (rows, columns) in pixels.
    g1, g2 : (float, float)
        Reciprocal basis vectors ``[x, y]`` in pixels (default: crystal 1 of
        :data:`CRYSTAL_G_VECTORS`, hexagonal, ``|g| = 22`` px).
    center : (float, float) or None
        Pattern centre ``(cx, cy)`` = (column, row) in pixels (pyxem
        ``[x, y]`` convention); ``None`` gives ``(nx // 2, ny // 2)``.
    spot_sigma : float, default 1.2
        Gaussian standard deviation of each spot in pixels (``> 0``).
    max_radius : float, default 60
        Largest spot distance from the centre in pixels (``> 0``).
    dtype : floating dtype, default np.float32
        Output dtype.

    Returns
    -------
    numpy.ndarray
        Shape ``(ny, nx)`` (rows, columns); non-negative, sums to 1.

    Raises
    ------
    ValueError
        If ``shape``, ``center``, ``g1``, ``g2``, ``spot_sigma``,
        ``max_radius`` or ``dtype`` is invalid (see :func:`spot_offsets`),
        or if no spot falls within ``max_radius`` or the pattern has no
        intensity inside the array.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data import spot_pattern
    >>> img = spot_pattern((32, 32), g1=(8.0, 0.0), g2=(0.0, 8.0), max_radius=12.0)
    >>> img.shape, round(float(img.sum()), 4)
    ((32, 32), 1.0)
    """
    ny, nx = _check_shape(shape, "shape")
    cx, cy = _check_center(center, (ny, nx))
    sigma = _check_positive(spot_sigma, "spot_sigma")
    dt = _check_float_dtype(dtype)
    off, _ = spot_offsets(g1, g2, max_radius)
    if off.shape[0] == 0:
        raise ValueError(
            f"no spot h*g1 + k*g2 lies within max_radius={max_radius!r} px "
            f"for g1={g1!r}, g2={g2!r}; increase max_radius"
        )
    r = np.hypot(off[:, 0], off[:, 1])
    amp = np.exp(-r / _SPOT_DECAY)  # (n_spots,)
    # separable Gaussians: gx (n_spots, nx), gy (n_spots, ny)
    x = np.arange(nx, dtype=np.float64)
    y = np.arange(ny, dtype=np.float64)
    gx = np.exp(-((x[None, :] - (cx + off[:, :1])) ** 2) / (2.0 * sigma**2))
    gy = np.exp(-((y[None, :] - (cy + off[:, 1:])) ** 2) / (2.0 * sigma**2))
    img = gy.T @ (amp[:, None] * gx)  # (ny, nx)
    total = img.sum()
    if not total > 0:
        raise ValueError(
            "the spot pattern has no intensity inside the array; check center "
            f"{(cx, cy)!r}, shape {(ny, nx)!r} and max_radius {max_radius!r}"
        )
    img /= total
    return img.astype(dt)


# --------------------------------------------------------------------------
# scan simulation
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulatedScan:
    """Result of :func:`simulate_precipitates`.

    Attributes
    ----------
    data : numpy.ndarray
        ``(ny_scan, nx_scan, ny_sig, nx_sig)`` electron counts (Poisson
        samples when ``noise`` is True, else the noiseless expectation);
        navigation axes first as in HyperSpy.
    diffractions : numpy.ndarray
        ``(4, ny_sig, nx_sig)`` ground-truth diffractions, index 0 amorphous,
        1-3 crystals 1-3; each sums to 1.
    maps : numpy.ndarray
        ``(4, ny_scan, nx_scan)`` ground-truth weights in electrons:
        ``maps[0] = N * (1 - sum_j f_j)``, ``maps[j] = N * f_j`` with ``f_j``
        the crystalline fraction of crystal ``j``.  The expectation of
        ``data`` is ``einsum('kyx,kuv->yxuv', maps, diffractions)``.
    center : tuple of float
        ``(cx, cy)`` = (column, row) pixel centre of the patterns.
    crystallinity : tuple of float
        Crystalline fractions of the three columns of areas.
    seed : int or None
        Seed given to ``numpy.random.default_rng``.
    area_labels : numpy.ndarray
        ``(ny_scan, nx_scan)`` int, 0 for the matrix, 1..9 for the nominal
        ``area_size x area_size`` squares of areas (i)..(ix).
    electrons_per_pattern : float
        ``N``, expected electrons per diffraction pattern.
    noise : bool
        Whether ``data`` is Poisson-sampled.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_precipitates
    >>> truth = simulate_precipitates(scan_shape=(24, 24), pattern_shape=(32, 32), seed=0)
    >>> type(truth).__name__, truth.diffractions.shape, truth.maps.shape
    ('SimulatedScan', (4, 32, 32), (4, 24, 24))
    >>> truth.crystallinity, truth.center
    ((0.09, 0.03, 0.01), (16.0, 16.0))
    """

    data: np.ndarray
    diffractions: np.ndarray
    maps: np.ndarray
    center: tuple
    crystallinity: tuple
    seed: object
    area_labels: np.ndarray
    electrons_per_pattern: float = 1e4
    noise: bool = True

    @property
    def expectation(self):
        """Noiseless ``(ny_scan, nx_scan, ny_sig, nx_sig)`` expectation of ``data``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import simulate_precipitates
        >>> truth = simulate_precipitates(scan_shape=(24, 24), pattern_shape=(32, 32), noise=False)
        >>> truth.expectation.shape
        (24, 24, 32, 32)
        >>> bool(np.allclose(truth.expectation, truth.data, rtol=1e-5))
        True
        """
        return expected_counts(self.maps, self.diffractions, blas=False)


def with_matrix(fractions):
    """Crystal fractions ``(n, ...)`` with the amorphous matrix's, the rest to 1, put first.

    The one rule of the simulators for the matrix: ``1 - sum(fractions)`` at every position.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data._simulate import with_matrix
    >>> with_matrix(np.array([[0.25], [0.5]])).ravel().tolist()
    [0.25, 0.25, 0.5]
    """
    return np.concatenate([(1.0 - fractions.sum(axis=0))[None], fractions])


def expected_counts(maps, diffractions, blas=True):
    """Noiseless scan ``(ny, nx, qy, qx)``: ``einsum('kyx,kuv->yxuv', maps, diffractions)``.

    The one forward model of the simulators and the validation cases: maps ``(k, ny, nx)``
    (electrons) times diffractions ``(k, qy, qx)``, in the dtype the two arrays promote to.

    Parameters
    ----------
    maps, diffractions : numpy.ndarray
        ``(k, ny, nx)`` and ``(k, qy, qx)``.
    blas : bool, default True
        One ``(n_scan, k) @ (k, n_sig)`` BLAS matmul (fast); ``False``: numpy's ``einsum``
        itself, whose sums the ``expectation`` of the result objects and their tests follow
        to the last bit.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data._simulate import expected_counts
    >>> maps, diffractions = np.full((2, 3, 4), 5.0), np.full((2, 6, 6), 0.5)
    >>> expected_counts(maps, diffractions).shape
    (3, 4, 6, 6)
    >>> bool(np.allclose(expected_counts(maps, diffractions, blas=False), 5.0))
    True
    """
    if not blas:
        return np.einsum("kyx,kuv->yxuv", maps, diffractions)
    k, ny, nx = maps.shape
    flat = maps.reshape(k, ny * nx).T @ diffractions.reshape(k, -1)
    return flat.reshape((ny, nx) + diffractions.shape[1:])


def poisson_counts(expectation, rng, dtype):
    """Poisson counts of ``expectation`` drawn with ``rng``, as ``dtype``.

    ``rng.poisson`` draws elements sequentially in C order, so sampling one scan row at a time
    into a preallocated array gives bit-for-bit the result of ``rng.poisson(expectation)`` in
    one call, while avoiding its full-size int64 temporary (~2x faster).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data._simulate import poisson_counts
    >>> lam = np.full((2, 3, 4), 7.0)
    >>> same = np.random.default_rng(0).poisson(lam).astype(np.float32)
    >>> bool(np.array_equal(poisson_counts(lam, np.random.default_rng(0), np.float32), same))
    True
    """
    data = np.empty(expectation.shape, dtype=dtype)
    for row in range(expectation.shape[0]):
        data[row] = rng.poisson(expectation[row])
    return data


def _area_profile(n, area_size):
    """Graded 1-D profiles of the three areas along one scan axis.

    Returns ``prof`` (3, n) in [0, 1] and ``inside`` (3, n) bool (nominal
    area).  Area ``i`` is centred at ``c_i = (i + 1/2) * n / 3`` in edge
    coordinates (pixel ``p`` spans ``[p, p + 1)``, centre ``p + 1/2``), so
    ``c = 6, 18, 30`` for ``n = 36``.  With ``d = |p + 1/2 - c_i|`` the
    profile is ``clip((area_size/2 + 1 - d) / 2, 0, 1)``: 1 on the central
    plateau, a 2 px linear ramp centred on the nominal edge
    ``d = area_size / 2``, 0 beyond ``area_size / 2 + 1``.
    """
    centres = (np.arange(3) + 0.5) * (n / 3.0)
    d = np.abs(np.arange(n)[None, :] + 0.5 - centres[:, None])  # (3, n)
    prof = np.clip((area_size / 2.0 + 1.0 - d) / 2.0, 0.0, 1.0)
    inside = d < area_size / 2.0
    return prof, inside


def simulate_precipitates(
    scan_shape=(36, 36),
    pattern_shape=(128, 128),
    electrons_per_pattern=1e4,
    crystallinity=(0.09, 0.03, 0.01),
    area_size=6,
    seed=0,
    noise=True,
    dtype=np.float32,
):
    """Simulated 4D-STEM scan of Kimoto et al. 2025 (Methods, Fig. 10).

    Steps (paper, "Simulated 4D-STEM data"):

    1. Four normalized diffractions (Fig. 10b): ``diffractions[0]`` =
       :func:`amorphous_pattern` (rings at 20, 38, 55 px scaled by
       ``min(ny_sig, nx_sig) / 128``), ``diffractions[1:4]`` =
       :func:`spot_pattern` with the lattices of :data:`CRYSTAL_G_VECTORS`
       (also scaled with the pattern size; hexagonal, square, oblique).
    2. Real-space structure (Fig. 10a): nine areas on a 3 x 3 grid, centred
       at ``(i + 1/2) * n / 3`` scan pixels (edge coordinates; 6, 18, 30 for
       36) along each scan axis.  Grid row ``r`` (scan ``y``) holds crystal
       ``r + 1``; grid column ``c`` (scan ``x``) has crystalline fraction
       ``crystallinity[c]``; area label ``3 r + c + 1``, i.e. (i)-(iii) =
       crystal 1 at 9/3/1 %, (iv)-(vi) crystal 2, (vii)-(ix) crystal 3.
       Each area's fraction is ``crystallinity[c] * p(y) * p(x)`` with the
       separable graded profile ``p(d) = clip((area_size/2 + 1 - d)/2, 0, 1)``
       (``d`` = distance from the area centre in pixels): full ratio on the
       central ``(area_size - 2)^2`` plateau, a linear 2 px ramp across the
       nominal edge (for ``area_size = 6`` the 1-D profile is
       ``0.25, 0.75, 1, 1, 1, 1, 0.75, 0.25``), zero elsewhere (amorphous
       matrix, also between areas and at the scan margins).
    3. Maps in electrons: ``maps[j] = N * f_j``, ``maps[0] = N * (1 - sum_j f_j)``.
    4. Expectation ``einsum('kyx,kuv->yxuv', maps, diffractions)`` (so every
       pattern's expectation sums to ``N``) and, when ``noise`` is True,
       independent Poisson sampling of every pixel, identical to one
       ``rng.poisson(expectation)`` call with ``rng = default_rng(seed)``.

    Parameters
    ----------
    scan_shape : tuple of int, default (36, 36)
        Scan shape ``(ny_scan, nx_scan)`` = (rows, columns).
    pattern_shape : tuple of int, default (128, 128)
        Diffraction pattern shape ``(ny_sig, nx_sig)`` in pixels; each side
        must be ``>= 16``.
    electrons_per_pattern : float, default 1e4
        Expected number of electrons ``N`` per diffraction pattern (``> 0``).
    crystallinity : sequence of 3 float, default (0.09, 0.03, 0.01)
        Crystalline fractions (0-1, not percent) of the three columns of
        areas.  Areas do not overlap, so each must lie in ``[0, 1]``.
    area_size : int, default 6
        Nominal side of each square area in scan pixels (``>= 3``).  Each
        scan side must satisfy ``n // 3 >= area_size + 2`` so the graded
        areas do not overlap.
    seed : int or None, default 0
        Seed for ``numpy.random.default_rng``; the result is reproducible
        for a given seed.
    noise : bool, default True
        If True ``data`` holds Poisson counts, else the noiseless expectation.
    dtype : floating dtype, default np.float32
        Dtype of ``data``, ``diffractions`` and ``maps``.

    Returns
    -------
    SimulatedScan
        Frozen dataclass with ``data`` (ny_scan, nx_scan, ny_sig, nx_sig),
        ``diffractions`` (4, ny_sig, nx_sig), ``maps`` (4, ny_scan, nx_scan)
        in electrons, ``center`` (cx, cy) in pixels, ``crystallinity``,
        ``seed``, ``area_labels`` (ny_scan, nx_scan) int,
        ``electrons_per_pattern`` and ``noise``.

    Raises
    ------
    ValueError
        For non-integer / non-positive shapes, patterns smaller than 16 px,
        ``electrons_per_pattern <= 0`` or non-finite, ``crystallinity`` not
        three finite values in ``[0, 1]``, ``area_size`` not an integer
        ``>= 3``, a scan too small for 3 x 3 areas of ``area_size``, or a
        non-floating ``dtype``.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_precipitates
    >>> truth = simulate_precipitates(scan_shape=(24, 24), pattern_shape=(32, 32), seed=0)
    >>> truth.data.shape, truth.data.dtype
    ((24, 24, 32, 32), dtype('float32'))
    >>> int(truth.area_labels.max()), truth.electrons_per_pattern
    (9, 10000.0)
    """
    nys, nxs = _check_shape(scan_shape, "scan_shape")
    nyp, nxp = _check_shape(pattern_shape, "pattern_shape")
    if min(nyp, nxp) < 16:
        raise ValueError(
            f"pattern_shape sides must be >= 16 pixels, got {pattern_shape!r}"
        )
    n_el = _check_positive(electrons_per_pattern, "electrons_per_pattern")
    dt = _check_float_dtype(dtype)
    cr = finite_array(crystallinity, shape=(3,))
    if cr is None:
        raise ValueError(
            f"crystallinity must be three finite fractions in [0, 1] "
            f"(one per column of areas), got {crystallinity!r}"
        )
    if np.any(cr < 0) or np.any(cr > 1):
        raise ValueError(
            f"crystallinity values must lie in [0, 1] (fractions, not percent; "
            f"crystalline plus amorphous fraction cannot exceed 1), got {crystallinity!r}"
        )
    if not (isinstance(area_size, Integral) and not isinstance(area_size, bool)) or area_size < 3:
        raise ValueError(f"area_size must be an integer >= 3 scan pixels, got {area_size!r}")
    area_size = int(area_size)
    need = 3 * (area_size + 2)
    if nys // 3 < area_size + 2 or nxs // 3 < area_size + 2:
        raise ValueError(
            f"scan_shape {scan_shape!r} is too small for a 3 x 3 grid of "
            f"graded areas of area_size={area_size}: each side must be >= {need} "
            f"scan pixels (or reduce area_size)"
        )

    # 1. diffractions (pattern geometry scaled with the pattern size)
    scale = min(nyp, nxp) / 128.0
    center = (float(nxp // 2), float(nyp // 2))
    diff = np.empty((4, nyp, nxp), dtype=np.float64)
    diff[0] = amorphous_pattern(
        (nyp, nxp),
        center,
        ring_radii=(20.0 * scale, 38.0 * scale, 55.0 * scale),
        ring_widths=(4.0 * scale, 6.0 * scale, 8.0 * scale),
        dtype=np.float64,
    )
    for j, (g1, g2) in enumerate(CRYSTAL_G_VECTORS):
        diff[j + 1] = spot_pattern(
            (nyp, nxp),
            np.multiply(g1, scale),
            np.multiply(g2, scale),
            center,
            spot_sigma=max(1.2 * scale, 0.5),
            max_radius=60.0 * scale,
            dtype=np.float64,
        )

    # 2. real-space fractions (3 crystals, ny, nx); rows = crystals, cols = ratio
    py, in_y = _area_profile(nys, area_size)  # (3, nys)
    px, in_x = _area_profile(nxs, area_size)  # (3, nxs)
    frac = np.einsum("ry,c,cx->ryx", py, cr, px)  # (3 crystals, nys, nxs)
    inside = in_y[:, None, :, None] & in_x[None, :, None, :]  # (r, c, y, x)
    labels_rc = (np.arange(9).reshape(3, 3) + 1)[:, :, None, None]
    area_labels = (inside * labels_rc).sum(axis=(0, 1)).astype(np.intp)

    # 3. maps in electrons
    maps = n_el * with_matrix(frac)

    maps_out = maps.astype(dt)
    diff_out = diff.astype(dt)

    # 4. expectation, then Poisson noise.
    expectation = expected_counts(maps_out, diff_out)
    if noise:
        data = poisson_counts(expectation, np.random.default_rng(seed), dt)
    else:
        data = expectation.astype(dt, copy=False)

    return SimulatedScan(
        data=data,
        diffractions=diff_out,
        maps=maps_out,
        center=center,
        crystallinity=tuple(float(v) for v in cr),
        seed=seed,
        area_labels=area_labels,
        electrons_per_pattern=n_el,
        noise=bool(noise),
    )
