"""Preprocessing of 4D-STEM scans before NMF: the scan mean filter and the noise level.

Cao et al., "Unsupervised multi-clustering and decision-making strategies for 4D-STEM
orientation mapping", Digital Discovery (2025), section "Impact of dataset filtering on NMF
robustness" and Fig. 2, compare NMF on the raw scan with NMF on a "mean function" filtered
scan ("normalizing the sum of neighboring images using a 3 x 3 kernel sliding across the scan
... a scan of unchanged size, where each diffraction pattern (DP) image is the average of
neighboring images") and quantify the noise of each with the noise standard deviation (NSD).

Arrays only (numpy or dask); :mod:`stemnmf_hs.signals` wraps these functions in signal
methods.  Array order is ``(scan_y, scan_x, ky, kx)``: the two leading axes are the scan
(navigation), the trailing axes the diffraction pattern.

Functions
---------
mean_filter_navigation
    Each pattern replaced by the mean of its ``size x size`` scan neighbourhood.
neighbour_counts
    How many in-scan neighbours every probe position averages (the border normalization).
noise_std
    Noise standard deviation of each pattern (``"rms"``, ``"mad"`` or ``"std"``).
beam_center
    Sub-pixel direct-beam position of a (mean) pattern: the calibration centre.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage

from .decomposition import is_dask

__all__ = [
    "NOISE_STD_METHODS",
    "beam_center",
    "check_filter_size",
    "mean_filter_navigation",
    "neighbour_counts",
    "noise_std",
    "output_dtype",
]

#: Estimators accepted by :func:`noise_std`.
NOISE_STD_METHODS = ("rms", "mad", "std")

#: ``Phi^-1(3/4)``: the median of ``|N(0, 1)|`` (``scipy.stats.norm.ppf(0.75)``).
_MAD_TO_SIGMA = 0.6744897501960817


# ------------------------------------------------------------------------- mean filter
def check_filter_size(size, scan_shape):
    """Validate the side of the scan neighbourhood; return it as an ``int``.

    Parameters
    ----------
    size : int
        Side of the square neighbourhood in probe positions.
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``size`` is not an integer (``bool`` included).
    ValueError
        If ``size`` is not positive and odd, or larger than a side of the scan.

    Examples
    --------
    >>> from stemnmf_hs.preprocessing import check_filter_size
    >>> check_filter_size(3, (10, 12))
    3
    >>> check_filter_size(4, (10, 12))
    Traceback (most recent call last):
        ...
    ValueError: size=4 is not a positive odd integer: the neighbourhood must be centred on the probe position. Use an odd size such as 3 (the paper's 3 x 3 kernel).
    """
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
        raise TypeError(
            f"size must be a positive odd integer (e.g. 3 for the 3 x 3 neighbourhood of Cao "
            f"et al. 2025); got {size!r} of type {type(size).__name__}."
        )
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(
            f"size={size} is not a positive odd integer: the neighbourhood must be centred "
            "on the probe position. Use an odd size such as 3 (the paper's 3 x 3 kernel)."
        )
    ny, nx = (int(n) for n in scan_shape)
    if size > min(ny, nx):
        raise ValueError(
            f"size={size} is larger than the scan ({ny} x {nx} probe positions): the "
            f"neighbourhood must fit in the scan. Use size <= {min(ny, nx)} (odd)."
        )
    return size


def _axis_counts(n, radius):
    """``(n,)`` number of in-scan positions within ``radius`` of each index along an axis."""
    i = np.arange(n)
    return np.minimum(i, radius) + np.minimum(n - 1 - i, radius) + 1


def neighbour_counts(scan_shape, size=3):
    """Number of in-scan probe positions each position's neighbourhood averages.

    ``size**2`` inside the scan, fewer within ``size // 2`` positions of its border (4 at the
    corners and 6 along the edges for ``size=3``).  Dividing a noise variance by these counts
    gives the variance left after :func:`mean_filter_navigation` (independent noise).

    Parameters
    ----------
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.
    size : int, default 3
        Side of the square neighbourhood (positive, odd, at most the scan's shorter side).

    Returns
    -------
    numpy.ndarray
        ``(scan_y, scan_x)`` int.

    Raises
    ------
    TypeError, ValueError
        On an invalid ``size`` (see :func:`check_filter_size`).

    Examples
    --------
    >>> from stemnmf_hs.preprocessing import neighbour_counts
    >>> neighbour_counts((3, 4))
    array([[4, 6, 6, 4],
           [6, 9, 9, 6],
           [4, 6, 6, 4]])
    """
    size = check_filter_size(size, scan_shape)
    r = size // 2
    ny, nx = (int(n) for n in scan_shape)
    return np.outer(_axis_counts(ny, r), _axis_counts(nx, r))


def output_dtype(dtype):
    """The dtype of the filtered scan: float64 stays float64, other real dtypes give float32.

    Parameters
    ----------
    dtype : numpy.dtype or str
        dtype of the scan (integers, bool, float16/32/64).

    Returns
    -------
    numpy.dtype

    Raises
    ------
    TypeError
        For complex or non-numeric data (the filter needs real intensities).

    Examples
    --------
    >>> output_dtype("uint16"), output_dtype("float64")
    (dtype('float32'), dtype('float64'))
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating) or not (
        np.issubdtype(dtype, np.number) or dtype == bool
    ):
        raise TypeError(
            f"The mean filter needs real intensities; got dtype {dtype}. Take the amplitude "
            "or power of complex data first."
        )
    if np.issubdtype(dtype, np.floating) and dtype.itemsize >= 8:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _normalized_box_mean(block, size, factor_y, factor_x):
    """Box mean over axes 0 and 1 of ``block``, zero outside, times per-axis factors.

    ``uniform_filter1d(mode="constant")`` divides the in-block sum by ``size``; multiplying
    by ``size / count`` along each axis turns it into the mean over the positions that exist.
    """
    out = np.empty(block.shape, dtype=output_dtype(block.dtype))
    ndimage.uniform_filter1d(block, size, axis=0, output=out, mode="constant", cval=0.0)
    ndimage.uniform_filter1d(out, size, axis=1, output=out, mode="constant", cval=0.0)
    if factor_y is not None:
        expand = (slice(None),) + (None,) * (block.ndim - 1)
        out *= factor_y[expand].astype(out.dtype)
        expand = (None, slice(None)) + (None,) * (block.ndim - 2)
        out *= factor_x[expand].astype(out.dtype)
    return out


def mean_filter_navigation(data, size=3):
    """Replace every pattern by the mean of its ``size x size`` scan neighbourhood.

    The "mean function" filter of Cao et al. 2025 (section "Impact of dataset filtering on
    NMF robustness", Fig. 2): a ``size x size`` kernel slides across the *scan* (navigation
    axes only; the patterns are not blurred) and every diffraction pattern becomes the
    average of the patterns around it, itself included; the scan keeps its size.

    Edges: the mean is taken over the neighbours that exist in the scan (a normalized box
    filter: the paper's "normalizing the sum of neighboring images").  A corner pattern
    is the mean of ``((size + 1) / 2)**2`` patterns (4 for ``size=3``), an edge pattern of
    ``size * (size + 1) / 2`` (6), an interior one of ``size**2`` (9); see
    :func:`neighbour_counts`.  No pattern is invented or repeated by padding, so a
    constant scan stays constant and border patterns are not biased towards the border.
    A NaN spreads to every neighbourhood that contains it.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        ``(scan_y, scan_x, ...)``, typically ``(scan_y, scan_x, ky, kx)``: the two leading
        axes are the scan, any trailing axes are filtered position by position.  Real
        values in any unit (counts, electrons).
    size : int, default 3
        Side of the square neighbourhood in probe positions (positive, odd, at most the
        scan's shorter side); ``size=1`` returns a float copy.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and type of array as ``data`` (a dask input gives a lazy dask result,
        computed with :func:`dask.array.map_overlap` with ``size // 2`` ghost positions on
        the scan axes only); dtype float64 for float64 input, float32 otherwise (integer
        counts included).  ``data`` is never modified.

    Raises
    ------
    ValueError
        If ``data`` has fewer than 2 axes or ``size`` is not a positive odd integer at most
        the scan's shorter side.
    TypeError
        If ``size`` is not an integer or ``data`` is not real.

    See Also
    --------
    scipy.ndimage.uniform_filter1d : the box filter applied along each scan axis.
    neighbour_counts : the number of patterns averaged at every position.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.preprocessing import mean_filter_navigation
    >>> data = np.arange(9.0).reshape(3, 3, 1, 1)
    >>> mean_filter_navigation(data)[..., 0, 0]
    array([[2. , 2.5, 3. ],
           [3.5, 4. , 4.5],
           [5. , 5.5, 6. ]])
    """
    if data.ndim < 2:
        raise ValueError(
            f"mean_filter_navigation needs at least the 2 scan axes (scan_y, scan_x, ...); "
            f"got an array of shape {tuple(data.shape)}."
        )
    scan_shape = tuple(int(n) for n in data.shape[:2])
    size = check_filter_size(size, scan_shape)
    dtype = output_dtype(data.dtype)
    r = size // 2
    counts_y = _axis_counts(scan_shape[0], r)
    counts_x = _axis_counts(scan_shape[1], r)
    factor_y = size / counts_y
    factor_x = size / counts_x
    if not is_dask(data):
        return _normalized_box_mean(np.asarray(data), size, factor_y, factor_x)

    import dask.array as da

    # Box sum / size**2 blockwise (ghost positions from the neighbouring chunks, nothing
    # past the scan's border), then the normalization by the global per-position counts.
    depth = {0: r, 1: r, **{ax: 0 for ax in range(2, data.ndim)}}
    summed = da.map_overlap(
        _normalized_box_mean,
        data,
        depth=depth,
        boundary="none",
        trim=True,
        dtype=dtype,
        meta=np.empty((0,) * data.ndim, dtype=dtype),
        size=size,
        factor_y=None,
        factor_x=None,
    )
    scale = np.outer(factor_y, factor_x).astype(dtype)
    scale = scale.reshape(scale.shape + (1,) * (data.ndim - 2))
    return (summed * scale).astype(dtype, copy=False)


# ------------------------------------------------------------------------ noise level
def _haar_diagonal(patterns):
    """Finest-scale diagonal Haar detail ``(a - b - c + d) / 2`` of non-overlapping 2 x 2 blocks.

    ``(..., ky, kx)`` -> ``(..., ky // 2, kx // 2)`` float64; an odd last row/column is left
    out.  The transform is orthonormal, so independent noise of standard deviation ``sigma``
    gives coefficients of standard deviation ``sigma``, while any pattern of the form
    ``f(ky) + g(kx)`` (constants, ramps, straight streaks along an axis) cancels.
    """
    p = np.asarray(patterns, dtype=np.float64)
    ny, nx = p.shape[-2] // 2 * 2, p.shape[-1] // 2 * 2
    p = p[..., :ny, :nx]
    return 0.5 * (p[..., 0::2, 0::2] - p[..., 0::2, 1::2] - p[..., 1::2, 0::2] + p[..., 1::2, 1::2])


def noise_std(patterns, method="rms"):
    """Noise standard deviation (NSD) of each diffraction pattern.

    Cao et al. 2025 (section "Noise standard deviation (NSD) to quantify noise influence in
    diffraction patterns", Fig. 2a and 2d) use the NSD to compare raw and filtered scans; its
    formula is given only in their Supplementary Algorithm SI_1, which is not part of the
    article text.  The default here is therefore a standard estimator of the noise alone:

    ``"rms"`` (default)
        Root mean square of the finest-scale diagonal Haar wavelet coefficients
        ``d = (I[2i, 2j] - I[2i, 2j+1] - I[2i+1, 2j] + I[2i+1, 2j+1]) / 2``:
        ``NSD = sqrt(mean(d**2))``.  For independent pixel noise this is
        ``sqrt(mean pixel variance)`` (the orthonormal transform keeps the noise variance
        and cancels smooth signal), so it also holds for Poisson counts, where it equals
        ``sqrt(mean counts)`` of a smooth pattern.  Sharp features (Bragg-disk edges)
        inflate it slightly.
    ``"mad"``
        The robust wavelet estimator of Donoho & Johnstone (Biometrika 81, 425, 1994), as in
        :func:`skimage.restoration.estimate_sigma` but with the Haar instead of the db2
        wavelet (no PyWavelets needed): ``NSD = median(|d|) / 0.6745``.  Insensitive to
        sparse sharp features, meant for Gaussian-like noise; on low-count integer data the
        median of ``|d|`` sits on the half-integer grid (every raw pattern of
        :func:`stemnmf_hs.data.simulated_precipitates` gives ``0.5 / 0.6745 = 0.741``), so
        prefer ``"rms"`` there.
    ``"std"``
        Standard deviation of the pixel values about the pattern's mean, the literal reading
        of the article text ("the extent to which pixel values deviate from their mean").
        It includes the diffraction contrast itself, so it measures noise only for
        featureless patterns.

    Parameters
    ----------
    patterns : numpy.ndarray or dask.array.Array
        ``(..., ky, kx)``: one pattern or any stack of patterns (e.g. a scan
        ``(scan_y, scan_x, ky, kx)``), real values; at least 2 x 2 pixels for the wavelet
        methods (an odd last row/column is left out).
    method : {"rms", "mad", "std"}, default "rms"
        Estimator, see above.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        ``(...)`` float64 NSD of every pattern, in the units of ``patterns`` (a 0-d array for
        a single pattern); lazy for dask input.

    Raises
    ------
    ValueError
        On an unknown ``method`` or patterns with fewer than 2 axes or smaller than 2 x 2.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.preprocessing import noise_std
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:128, :128]
    >>> pattern = 100 * np.exp(-((x - 64.0) ** 2 + (y - 64.0) ** 2) / 800)
    >>> round(float(noise_std(pattern + rng.normal(0, 2.0, pattern.shape))), 1)
    2.0
    """
    if method not in NOISE_STD_METHODS:
        raise ValueError(
            f"method={method!r} is not a noise estimator; choose one of {NOISE_STD_METHODS}."
        )
    shape = tuple(patterns.shape)
    if len(shape) < 2 or (method != "std" and min(shape[-2:]) < 2):
        raise ValueError(
            f"noise_std needs patterns (..., ky, kx) of at least 2 x 2 pixels; got an array "
            f"of shape {shape}."
        )
    if is_dask(patterns):
        import dask.array as da

        lead = patterns.ndim - 2
        whole = patterns.rechunk({lead: -1, lead + 1: -1})
        return da.map_blocks(
            _noise_std_numpy,
            whole,
            method=method,
            drop_axis=(lead, lead + 1),
            dtype=np.float64,
            meta=np.empty((0,) * lead, dtype=np.float64),
        )
    return _noise_std_numpy(patterns, method)


def _noise_std_numpy(patterns, method):
    axes = (-2, -1)
    if method == "std":
        return np.asarray(patterns, dtype=np.float64).std(axis=axes)
    d = _haar_diagonal(patterns)
    if method == "mad":
        return np.median(np.abs(d), axis=axes) / _MAD_TO_SIGMA
    return np.sqrt(np.mean(d * d, axis=axes))


def beam_center(pattern, radius=None, sigma=2.0, n_iter=10):
    """Sub-pixel position of the direct beam in one diffraction pattern.

    Each step a library call: the brightest pixel of the Gaussian-blurred pattern (pyxem's
    ``find_beam_center_blur``, as ``get_direct_beam_position(method="blur")``); the beam's
    half-maximum region around it (:func:`scipy.ndimage.label`), whose equivalent radius
    sets the disk; then the centre of mass (:func:`scipy.ndimage.center_of_mass`, pyxem's
    ``"center_of_mass"`` method) of the background-subtracted intensity inside a disk of
    ``radius`` around the current estimate, repeated until it moves less than 0.01 px.
    The background is the median of the annulus from ``radius`` to ``1.5 radius``, so a
    diffuse halo or amorphous rings symmetric about the beam do not pull the centre
    towards the disk's own centre (a masked centre of mass without background is biased
    towards the mask centre).  A saturated beam (a plateau of more than 10 pixels at the
    pattern's maximum, e.g. a 6-bit Medipix frame) is located by the centroid of its
    plateau instead, which flares and streaks around the disk cannot pull.

    Parameters
    ----------
    pattern : array_like, shape (ny, nx)
        One diffraction pattern (e.g. the scan's mean pattern), non-negative counts.
    radius : float, optional
        Radius of the centre-of-mass disk in pixels; default twice the beam's half-maximum
        radius, at least 3 px.
    sigma : float, default 2.0
        Gaussian blur (pixels) of the first, whole-pixel estimate.
    n_iter : int, default 10
        Most centre-of-mass refinements.

    Returns
    -------
    tuple of float
        ``(cx, cy, radius)``: the beam position in pixels, column first (pyxem's
        ``calibration.center`` convention: pixel centres at whole numbers), and the disk
        radius (px) that holds the beam.

    Raises
    ------
    ValueError
        If ``pattern`` is not 2D, holds non-finite or negative values, or no counts.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:64, :64]
    >>> halo = 5 * np.exp(-((x - 30) ** 2 + (y - 31) ** 2) / (2 * 20.0**2))
    >>> beam = 100 * np.exp(-((x - 37.3) ** 2 + (y - 26.9) ** 2) / (2 * 1.5**2))
    >>> cx, cy, r = beam_center(halo + beam)
    >>> round(cx, 1), round(cy, 1)
    (37.3, 26.9)
    """
    from pyxem.utils.diffraction import find_beam_center_blur

    z = np.asarray(pattern, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"beam_center needs one 2D pattern; got shape {z.shape}.")
    if not np.isfinite(z).all() or (z < 0).any():
        raise ValueError(
            "The pattern holds non-finite or negative values; the direct beam is found from "
            "counts. Replace them (e.g. np.nan_to_num, np.clip(data, 0, None)) first."
        )
    if not z.max() > 0:
        raise ValueError("The pattern holds no counts: there is no direct beam to find.")
    ny, nx = z.shape
    x0, y0 = (int(v) for v in find_beam_center_blur(z, sigma))
    blurred = ndimage.gaussian_filter(z, 1.0)
    half, _ = ndimage.label(blurred >= 0.5 * (blurred[y0, x0] + np.median(blurred)))
    half_area = np.count_nonzero(half == half[y0, x0]) if half[y0, x0] else 1
    plateau, _ = ndimage.label(z >= z.max())
    sizes = np.bincount(plateau.ravel())[1:]
    if sizes.max() > 10:  # saturated: the centroid of the largest plateau
        largest = plateau == 1 + int(np.argmax(sizes))
        cy, cx = ndimage.center_of_mass(largest)
        r = float(np.sqrt(sizes.max() / np.pi)) if radius is None else float(radius)
        return float(cx), float(cy), r
    radius = max(3.0, 2.0 * np.sqrt(half_area / np.pi)) if radius is None else float(radius)
    yy, xx = np.mgrid[:ny, :nx]
    cx, cy = float(x0), float(y0)
    for _ in range(int(n_iter)):
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        ring = z[(r2 >= radius**2) & (r2 < (1.5 * radius) ** 2)]
        background = np.median(ring) if ring.size else 0.0
        weights = np.where(r2 < radius**2, np.clip(z - background, 0, None), 0.0)
        if not weights.sum() > 0:
            break
        ny_c, nx_c = ndimage.center_of_mass(weights)
        moved = np.hypot(nx_c - cx, ny_c - cy)
        cx, cy = float(nx_c), float(ny_c)
        if moved < 0.01:
            break
    return cx, cy, radius
