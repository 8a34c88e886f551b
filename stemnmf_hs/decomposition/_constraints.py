"""Domain-specific projections of Kimoto et al. 2025 (Sci. Rep. 15:39143).

``[.]_W`` -- continuity of the diffraction intensity along every ring (section "Constraint on
diffractions [.]_W: continuous intensity feature", Fig. 4), and ``[.]_H`` -- smoothness of the
maps governed by the spatial resolution (section "Constraint on maps [.]_H", Fig. 5).

Holds the projections (:func:`continuity_projection`, :func:`smooth_maps` and their fused
solver forms with numba kernels), the kernel of ``[.]_H`` (:func:`gaussian_kernel`,
:func:`resolve_map_kernel`) and the factories that validate the geometry and build the
projection objects the solver calls (:func:`make_diffraction_projection` ->
:class:`DiffractionProjection`, :func:`make_map_projection` -> :class:`MapProjection`).  Over
600 lines because it is one topic: the two constraints, each with its numpy form and the numba
kernel that must equal it.

Math module: arrays in, arrays out.  All functions act on a whole stack of components (and of
restarts) at once; none loops over components, rings or pixels.
"""

from __future__ import annotations

import weakref

import numpy as np
from scipy import ndimage

from .._validation import check_center, check_mask, check_probe_fwhm, check_shape
from ..polar import RingBinning
from ._kernels import separable_factors

__all__ = [
    "DEFAULT_KERNEL_SIGMA",
    "FWHM_TO_SIGMA",
    "DiffractionProjection",
    "MapProjection",
    "continuity_projection",
    "gaussian_kernel",
    "make_diffraction_projection",
    "make_map_projection",
    "project_normalize_sorted",
    "resolve_map_kernel",
    "ring_order",
    "smooth_maps",
    "smooth_maps_stack",
]

#: ``sigma = FWHM * FWHM_TO_SIGMA`` for a Gaussian.
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: Width (scan pixels) of the default 3x3 Gaussian kernel: the paper's experimental condition,
#: a 2 nm probe FWHM sampled with a 1.5 nm scan step (Kimoto et al. 2025, Methods).
DEFAULT_KERNEL_SIGMA = (2.0 / 1.5) * FWHM_TO_SIGMA


def continuity_projection(diffractions, binning: RingBinning, outlier_factor=2.0):
    """Apply ``[.]_W``: non-negativity plus intensity continuity along every ring.

    For every component and every ring about the pattern centre (Kimoto et al. 2025, Fig. 4):
    the ring mean is computed; values above ``outlier_factor`` times it (Bragg spots) are
    excluded and the mean recomputed (the robust baseline); values below that robust mean
    (dark-spot artefacts) are raised to it.  Masked pixels (direct beam) are not in the input
    and take no part.

    Parameters
    ----------
    diffractions : numpy.ndarray
        ``(m, n_features)`` unfolded diffractions, one per row (components of all restarts may
        be stacked).  Not modified.
    binning : stemnmf_hs.polar.RingBinning
        Ring assignment of the ``n_features`` kept pixels.
    outlier_factor : float, default 2.0
        Values above ``outlier_factor * ring mean`` are outliers (the paper: twice).

    Returns
    -------
    numpy.ndarray
        ``(m, n_features)`` projected diffractions, non-negative, same dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.polar import RingBinning
    >>> b = RingBinning((5, 5), center=(2, 2), ring_width=10.0)  # one ring
    >>> d = np.full((1, 25), 1.0)
    >>> d[0, 3] = 0.1  # a dark spot
    >>> float(continuity_projection(d, b)[0, 3]) > 0.9
    True
    """
    if _continuity_rows is not None and diffractions.ndim == 2 and diffractions.dtype in (
        np.float32, np.float64
    ):
        d = np.ascontiguousarray(diffractions)
        labels, inv_counts = _ring_tables(binning)
        out = np.empty_like(d)
        _continuity_rows(d, labels, inv_counts, binning.n_rings, float(outlier_factor), out)
        return out
    d = np.maximum(diffractions, 0)
    mean = binning.ring_means(d).astype(d.dtype, copy=False)
    keep = d <= binning.expand(outlier_factor * mean)
    kept_sum = binning.ring_sums(d * keep)
    kept_count = binning.ring_sums(keep.astype(d.dtype))
    robust = np.divide(kept_sum, kept_count, out=mean.copy(), where=kept_count > 0)
    return np.maximum(d, binning.expand(robust))


#: Tables derived from a :class:`~stemnmf_hs.polar.RingBinning` (built once per decomposition),
#: kept here beside the binning rather than as private attributes set on it.
_BINNING_TABLES = weakref.WeakKeyDictionary()


def _binning_table(binning, name, build):
    """``build(binning)``, computed once per binning and ``name``."""
    tables = _BINNING_TABLES.setdefault(binning, {})
    if name not in tables:
        tables[name] = build(binning)
    return tables[name]


def _ring_tables(binning):
    """int32 ring labels and float64 reciprocal ring sizes, cached per binning."""
    return _binning_table(binning, "kernel", lambda b: (
        np.ascontiguousarray(b.labels, dtype=np.int32),
        1.0 / np.maximum(b.counts.astype(np.float64), 1.0),
    ))


try:  # numba is a dependency of pyxem, hence always present with this package
    import numba as _numba
except ImportError:  # pragma: no cover - numpy fallback below
    _numba = None
    _continuity_rows = None
else:

    @_numba.njit(cache=True, nogil=True)
    def _continuity_rows(D, labels, inv_counts, n_rings, factor, out):  # pragma: no cover
        """Fused ``[.]_W`` of every row of ``D``: three sweeps over one row (in cache).

        Serial on purpose: right after a BLAS call OpenBLAS's worker threads still spin, so a
        multithreaded kernel here only competes with them.  Four interleaved accumulator
        tables break the store-to-load dependency chains of the ring sums.  Writes ``out``
        and returns nothing, as every kernel here: a Ctrl-C during a kernel that returns an
        array surfaces as numba's ``SystemError`` instead of ``KeyboardInterrupt``.
        """
        m, F = D.shape
        acc = np.zeros((4, n_rings), np.float64)
        cnt = np.zeros((4, n_rings), np.float64)
        mean = np.empty(n_rings, np.float64)
        thr = np.empty(n_rings, np.float64)
        robust = np.empty(n_rings, D.dtype)
        F4 = F - F % 4
        for i in range(m):
            acc[:] = 0.0
            for j in range(0, F4, 4):
                for q in range(4):
                    v = D[i, j + q]
                    acc[q, labels[j + q]] += v if v > 0 else 0.0
            for j in range(F4, F):
                v = D[i, j]
                acc[0, labels[j]] += v if v > 0 else 0.0
            for r in range(n_rings):
                mean[r] = (acc[0, r] + acc[1, r] + acc[2, r] + acc[3, r]) * inv_counts[r]
                thr[r] = factor * mean[r]
            acc[:] = 0.0
            cnt[:] = 0.0
            for j in range(0, F4, 4):
                for q in range(4):
                    v = D[i, j + q]
                    v = v if v > 0 else 0.0
                    r = labels[j + q]
                    if v <= thr[r]:
                        acc[q, r] += v
                        cnt[q, r] += 1.0
            for j in range(F4, F):
                v = D[i, j]
                v = v if v > 0 else 0.0
                r = labels[j]
                if v <= thr[r]:
                    acc[0, r] += v
                    cnt[0, r] += 1.0
            for r in range(n_rings):
                c = cnt[0, r] + cnt[1, r] + cnt[2, r] + cnt[3, r]
                robust[r] = (
                    (acc[0, r] + acc[1, r] + acc[2, r] + acc[3, r]) / c if c > 0 else mean[r]
                )
            for j in range(F):
                v = D[i, j]
                b = robust[labels[j]]
                out[i, j] = v if v > b else b


def ring_order(binning: RingBinning):
    """Pixel order that makes every ring a contiguous segment, cached per binning.

    Parameters
    ----------
    binning : stemnmf_hs.polar.RingBinning
        Ring assignment of the ``n_features`` kept pixels.

    Returns
    -------
    perm : numpy.ndarray of int
        ``(n_features,)``; ``D[:, perm]`` lists the pixels ring by ring (stable within a ring).
    starts : numpy.ndarray of int64
        ``(n_rings + 1,)`` segment bounds: ring ``r`` is ``D[:, perm][:, starts[r]:starts[r+1]]``.

    Examples
    --------
    >>> from stemnmf_hs.polar import RingBinning
    >>> order, starts = ring_order(RingBinning((3, 3), center=(1, 1)))[:2]
    >>> order.shape, int(starts[0])
    ((9,), 0)
    """
    return _binning_table(binning, "order", _build_ring_order)


def _build_ring_order(binning):
    perm = np.argsort(binning.labels, kind="stable")
    counts = np.bincount(binning.labels, minlength=binning.n_rings)
    return perm, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def project_normalize_sorted(D, binning, outlier_factor, old):
    """``[.]_W``, unit-sum normalization and the L1 change, in place, on ring-sorted pixels.

    The fused form of :func:`continuity_projection` followed by the solver's unit-sum (L1)
    normalization and its ``||W(i+1) - W(i)||_1`` bookkeeping (Kimoto et al. 2025, protocol
    steps 4 and 7), for diffractions whose pixels are in :func:`ring_order` (every ring one
    contiguous segment): one row at a time, while the row is in cache.

    Parameters
    ----------
    D : numpy.ndarray
        ``(m, n_features)`` float32, C-contiguous, pixels in ``ring_order(binning)``;
        overwritten with the projected, unit-sum diffractions.
    binning : stemnmf_hs.polar.RingBinning or None
        Ring assignment of the pixels; ``None``: non-negativity only (no continuity
        constraint, pixel order irrelevant), then normalization.
    outlier_factor : float
        Values above ``outlier_factor`` times the ring mean are Bragg-spot outliers.
    old : numpy.ndarray
        ``(m, n_features)`` previous diffractions (same order) for the L1 change.

    Returns
    -------
    sums : numpy.ndarray
        ``(m,)`` float64 sums of the projected rows before normalization (zero rows stay
        zero).
    l1 : numpy.ndarray
        ``(m,)`` float64 ``||D_new[i] - old[i]||_1``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.polar import RingBinning
    >>> b = RingBinning((3, 3), center=(1, 1))
    >>> D = np.ones((1, 9), np.float32)
    >>> sums, l1 = project_normalize_sorted(D, b, 2.0, np.zeros_like(D))
    >>> float(sums[0]), round(float(D.sum()), 5)
    (9.0, 1.0)
    """
    m = D.shape[0]
    sums = np.empty(m, np.float64)
    l1 = np.empty(m, np.float64)
    if _project_rows_sorted is not None and D.dtype == np.float32 and D.flags.c_contiguous:
        starts = _NO_RINGS if binning is None else ring_order(binning)[1]
        _project_rows_sorted(D, starts, float(outlier_factor), old, binning is not None, sums,
                             l1)
        return sums, l1
    # Without numba: the unfused steps, through continuity_projection in the data's order.
    if binning is None:
        d = np.maximum(D, 0)
    else:
        perm = ring_order(binning)[0]
        d = np.empty_like(D)
        d[:, perm] = D
        d = continuity_projection(d, binning, outlier_factor)[:, perm]
    sums[:] = d.sum(axis=1, dtype=np.float64)
    d /= np.where(sums > 0, sums, 1.0).astype(D.dtype)[:, None]
    l1[:] = np.abs(d - old).sum(axis=1, dtype=np.float64)
    D[...] = d
    return sums, l1


#: Typed dummy ring bounds for the kernel when there is no continuity constraint.
_NO_RINGS = np.zeros(2, np.int64)


if _numba is None:  # pragma: no cover
    _project_rows_sorted = None
else:

    # Loops run over slices (``range(seg.size)``): with bounds read from ``starts`` numba
    # cannot prove the indices non-negative, keeps its wraparound branch and does not
    # vectorize (7 ms instead of 2 ms on 300 x 16384).
    @_numba.njit(inline="always", fastmath=True)
    def _positive_sum(seg):  # pragma: no cover
        acc = np.float32(0.0)
        for j in range(seg.size):
            acc += max(seg[j], np.float32(0.0))
        return acc

    @_numba.njit(inline="always", fastmath=True)
    def _kept_sum(seg, thr):  # pragma: no cover
        acc = np.float32(0.0)
        cnt = np.float32(0.0)
        for j in range(seg.size):
            v = max(seg[j], np.float32(0.0))
            w = np.float32(v <= thr)
            acc += v * w
            cnt += w
        return acc, cnt

    @_numba.njit(inline="always", fastmath=True)
    def _raise_to(seg, base):  # pragma: no cover
        acc = np.float32(0.0)
        for j in range(seg.size):
            v = max(seg[j], base)
            seg[j] = v
            acc += v
        return acc

    @_numba.njit(inline="always", fastmath=True)
    def _scale_l1(row, old, scale):  # pragma: no cover
        acc = np.float32(0.0)
        for j in range(row.size):
            v = row[j] * scale
            row[j] = v
            acc += abs(v - old[j])
        return acc

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _project_rows_sorted(D, starts, factor, old, rings, sums, l1):  # pragma: no cover
        """Kernel of :func:`project_normalize_sorted`: contiguous ring segments vectorize.

        Per row: per ring the mean of the clipped values, the mean of those not above
        ``factor`` times it, the raise to that robust mean; then the row sum, the scaling to
        unit sum and the L1 change, all on the row while it is in cache.  float32 sums per
        ring (a few hundred values), float64 over rings.
        """
        m, F = D.shape
        f32 = np.float32(factor)
        for i in range(m):
            row = D[i]
            total = 0.0
            if rings:
                for r in range(starts.size - 1):
                    seg = row[starts[r]:starts[r + 1]]
                    mean = _positive_sum(seg) / np.float32(seg.size)
                    kept, count = _kept_sum(seg, f32 * mean)
                    total += _raise_to(seg, kept / count if count > 0 else mean)
            else:
                total = _raise_to(row, np.float32(0.0))
            sums[i] = total
            scale = np.float32(1.0 / total) if total > 0 else np.float32(1.0)
            l1[i] = _scale_l1(row, old[i], scale)


def gaussian_kernel(sigma, radius=None):
    """Normalized 2D Gaussian convolution kernel.

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation in scan pixels, scalar or ``(sigma_y, sigma_x)``.
    radius : int or tuple of int, optional
        Half size in pixels; the kernel is ``(2 * radius + 1)`` wide.  Default
        ``max(1, round(2.5 * sigma))`` per axis, so the paper's condition (sigma ~ 0.57 px)
        gives its 3x3 kernel.

    Returns
    -------
    numpy.ndarray
        ``(2 * ry + 1, 2 * rx + 1)`` float64 kernel summing to 1.

    Raises
    ------
    ValueError
        If a sigma is not positive and finite.

    Examples
    --------
    >>> k = gaussian_kernel(0.57)
    >>> k.shape, round(float(k.sum()), 6)
    ((3, 3), 1.0)
    """
    sy, sx = np.broadcast_to(np.asarray(sigma, dtype=float), (2,))
    if not (np.isfinite([sy, sx]).all() and sy > 0 and sx > 0):
        raise ValueError(f"Gaussian sigma must be positive and finite, got {sigma!r}.")
    if radius is None:
        ry, rx = (max(1, int(round(2.5 * s))) for s in (sy, sx))
    else:
        ry, rx = (int(r) for r in np.broadcast_to(radius, (2,)))
    y = np.arange(-ry, ry + 1)[:, None]
    x = np.arange(-rx, rx + 1)[None, :]
    k = np.exp(-0.5 * ((y / sy) ** 2 + (x / sx) ** 2))
    return k / k.sum()


def resolve_map_kernel(kernel=None, probe_fwhm=None, scan_step=None):
    """The smoothing kernel of ``[.]_H`` from the user's choice.

    Parameters
    ----------
    kernel : array_like, optional
        A user kernel ``(ky, kx)``, non-negative with a positive sum; normalized to sum 1.
    probe_fwhm : float, optional
        Probe full width at half maximum, in the units of ``scan_step`` (e.g. nm).
    scan_step : float or tuple of float, optional
        Scan step, scalar or ``(step_y, step_x)``, same units as ``probe_fwhm``.

    Returns
    -------
    numpy.ndarray
        ``(ky, kx)`` float64 kernel summing to 1.  Default (nothing given): the paper's 3x3
        Gaussian, sigma = ``DEFAULT_KERNEL_SIGMA`` scan pixels (2 nm probe, 1.5 nm step).
        With ``probe_fwhm`` and ``scan_step``: a Gaussian with
        ``sigma = probe_fwhm / 2.355 / scan_step`` pixels (Kimoto et al. 2025, Methods).

    Raises
    ------
    ValueError
        If a kernel and a probe size are both given, only one of ``probe_fwhm`` and
        ``scan_step`` is given, either is not positive, or the kernel is not a non-negative
        2D array with a positive sum.

    Examples
    --------
    >>> resolve_map_kernel().shape  # the paper's 3x3 Gaussian
    (3, 3)
    >>> resolve_map_kernel(probe_fwhm=2.0, scan_step=0.5).shape  # sigma 1.7 px
    (9, 9)
    """
    if kernel is not None:
        if probe_fwhm is not None:
            raise ValueError(
                "Give either map_kernel or probe_fwhm/scan_step, not both: the kernel is "
                "derived from the probe size when no kernel is given."
            )
        k = np.asarray(kernel, dtype=float)
        if k.ndim != 2 or not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
            raise ValueError(
                "map_kernel must be a 2D array of finite non-negative weights with a "
                f"positive sum; got shape {k.shape}."
            )
        return k / k.sum()
    if probe_fwhm is None and scan_step is None:
        return gaussian_kernel(DEFAULT_KERNEL_SIGMA, radius=1)
    if probe_fwhm is None or scan_step is None:
        raise ValueError(
            "probe_fwhm and scan_step are needed together (same length units, e.g. nm) to "
            f"derive the map kernel; got probe_fwhm={probe_fwhm!r}, scan_step={scan_step!r}."
        )
    step = np.broadcast_to(np.asarray(scan_step, dtype=float), (2,))
    if not (float(probe_fwhm) > 0 and (step > 0).all()):
        raise ValueError(
            f"probe_fwhm and scan_step must be positive; got {probe_fwhm!r} and {scan_step!r}."
        )
    return gaussian_kernel(float(probe_fwhm) * FWHM_TO_SIGMA / step)


def smooth_maps(maps, navigation_shape, kernel, valid=None):
    """Apply ``[.]_H``: convolve every map with the kernel, then clip at zero.

    Normalized convolution: the kernel weights that fall outside the scan (or on positions
    excluded by a navigation mask) are dropped and the rest renormalized, so the border is not
    darkened and masked positions leak nothing.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(m, n_positions)`` unfolded maps, one per row, C order over ``navigation_shape``
        restricted to the valid positions.  Not modified.
    navigation_shape : tuple of int
        ``(ny, nx)`` scan shape, array order.
    kernel : numpy.ndarray
        ``(ky, kx)`` convolution kernel, summing to 1.
    valid : numpy.ndarray of bool, optional
        ``(ny, nx)``, ``True`` at positions present in ``maps`` (all when ``None``).

    Returns
    -------
    numpy.ndarray
        ``(m, n_positions)`` smoothed, non-negative maps, same dtype.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 9)); m[0, 4] = 9.0  # a 3x3 map with one bright position
    >>> smooth_maps(m, (3, 3), np.full((3, 3), 1 / 9)).reshape(3, 3)[1]
    array([1.5, 1. , 1.5])
    """
    maps = np.maximum(maps, 0)
    m = maps.shape[0]
    kern = np.asarray(kernel, dtype=maps.dtype)[None]
    if valid is None:
        grid = maps.reshape((m,) + tuple(navigation_shape))
        num = ndimage.convolve(grid, kern, mode="constant")
        den = ndimage.convolve(np.ones(navigation_shape, maps.dtype), kern[0], mode="constant")
        return _safe_divide(num, den[None]).reshape(m, -1)
    valid = np.asarray(valid, dtype=bool)
    grid = np.zeros((m,) + tuple(navigation_shape), dtype=maps.dtype)
    grid[:, valid] = maps
    num = ndimage.convolve(grid, kern, mode="constant")
    den = ndimage.convolve(valid.astype(maps.dtype), kern[0], mode="constant")
    return _safe_divide(num[:, valid], den[valid][None])


def _safe_divide(num, den):
    # A user kernel with a zero centre can leave an isolated position without neighbours.
    return np.divide(num, den, out=np.zeros(np.broadcast_shapes(num.shape, den.shape), num.dtype),
                     where=den > 0)


def _correlate_axis(g, w, axis, out):
    """``out = correlate1d(g, w, axis, mode="constant")`` by shifted slice additions."""
    r = len(w) // 2
    n = g.shape[axis]
    np.multiply(g, w[r], out=out)
    for t in range(-r, r + 1):
        if t == 0 or abs(t) >= n:
            continue
        dst = [slice(None)] * g.ndim
        src = [slice(None)] * g.ndim
        dst[axis], src[axis] = (slice(0, n - t), slice(t, n)) if t > 0 else \
            (slice(-t, n), slice(0, n + t))
        o = out[tuple(dst)]
        o += w[r + t] * g[tuple(src)]
    return out


def smooth_maps_stack(maps, navigation_shape, kernel, out=None):
    """``[.]_H`` on maps in the solver's ``(R, n_positions, k)`` layout (no mask).

    The same result as :func:`smooth_maps` on the transposed ``(R * k, n_positions)``
    stack, up to float32 rounding, without the two transposing copies; a separable kernel
    (the Gaussians) runs as two 1D passes of shifted additions.

    ``out``, optional ``(R, n_positions, k)`` float32 array (not ``maps``), receives the
    result on the numba path.  Returns ``None`` for a kernel that is not separable (use
    :func:`smooth_maps`).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 9, 1), np.float32); m[0, 4, 0] = 9.0
    >>> smooth_maps_stack(m, (3, 3), np.full((3, 3), 1 / 9))[0, :, 0].reshape(3, 3)[1]
    array([1.5, 1. , 1.5], dtype=float32)
    """
    sep = separable_factors(kernel, rtol=1e-10)
    if sep is None:
        return None
    R, N, k = maps.shape
    ny, nx = navigation_shape
    col, row = (np.asarray(c, dtype=maps.dtype) for c in sep)
    if _smooth_stack_rows is not None and maps.dtype == np.float32:
        # One fused sweep per restart (clip, both 1D passes, border normalization).
        one = np.ones((ny, nx), np.float64)
        den = _correlate_axis(_correlate_axis(one, sep[0], 0, np.empty_like(one)), sep[1], 1,
                              np.empty_like(one))
        inv_den = np.where(den > 0, 1.0 / np.where(den > 0, den, 1.0), 0.0).astype(np.float32)
        if out is None:
            out = np.empty_like(maps)
        _smooth_stack_rows(np.ascontiguousarray(maps), ny, nx, col, row, inv_den, out)
        return out
    g = np.maximum(maps, 0).reshape(R, ny, nx, k)
    tmp = _correlate_axis(g, col, 1, np.empty_like(g))
    out = _correlate_axis(tmp, row, 2, g)  # g is a private copy: reuse it
    one = np.ones((ny, nx), maps.dtype)
    den = _correlate_axis(_correlate_axis(one, col, 0, np.empty_like(one)), row, 1,
                          np.empty_like(one))
    out /= den[None, :, :, None]
    return out.reshape(R, N, k)


if _numba is None:  # pragma: no cover
    _smooth_stack_rows = None
else:

    @_numba.njit(inline="always", fastmath=True)
    def _axpy_clip(dst, w, src, clip):  # pragma: no cover
        zero = np.float32(0.0)
        for j in range(dst.size):
            v = src[j]
            dst[j] += w * (max(v, zero) if clip else v)

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _smooth_stack_rows(M, ny, nx, col, row, inv_den, out):  # pragma: no cover
        """Kernel of :func:`smooth_maps_stack`: per restart, clip, correlate along the scan
        rows with ``col`` and along the columns with ``row`` (zero outside the scan), then
        multiply by the reciprocal border normalization.  A scan row of ``k`` maps is one
        contiguous run of ``nx * k`` values, so both passes are long slice operations.
        Writes ``out``, returns nothing (see :func:`_continuity_rows`)."""
        R, N, k = M.shape
        ry = col.size // 2
        rx = row.size // 2
        L = nx * k
        tmp = np.empty((ny, L), np.float32)
        for r in range(R):
            g = M[r].reshape((ny, L))
            o = out[r].reshape((ny, L))
            for y in range(ny):
                t = tmp[y]
                t[:] = np.float32(0.0)
                for dy in range(-ry, ry + 1):
                    if 0 <= y + dy < ny:
                        _axpy_clip(t, col[ry + dy], g[y + dy], True)
            for y in range(ny):
                dst = o[y]
                dst[:] = np.float32(0.0)
                src = tmp[y]
                for dx in range(-rx, rx + 1):
                    sh = abs(dx) * k
                    if sh >= L:
                        continue
                    if dx >= 0:
                        _axpy_clip(dst[:L - sh], row[rx + dx], src[sh:], False)
                    else:
                        _axpy_clip(dst[sh:], row[rx + dx], src[:L - sh], False)
                for x in range(nx):
                    sc = inv_den[y, x]
                    seg = dst[x * k:(x + 1) * k]
                    for c in range(k):
                        seg[c] *= sc


# ------------------------------------------------------------------ projections and factories
class DiffractionProjection:
    """``[.]_W`` for ``(m, n_features)`` stacks of diffractions.

    Calling it projects diffractions in the data's pixel order.  :attr:`order` and
    :meth:`project_normalize` serve the compressed solver, which keeps its diffractions in
    ring-sorted pixel order (every ring contiguous) and fuses the projection with the unit-sum
    normalization and the L1 change.

    Parameters
    ----------
    binning : stemnmf_hs.polar.RingBinning, optional
        Rings of the kept pixels; ``None``: non-negativity only.
    outlier_factor : float, default 2.0
        See :func:`continuity_projection`.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition._constraints import DiffractionProjection
    >>> DiffractionProjection()(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    def __init__(self, binning=None, outlier_factor=2.0):
        self.binning = binning
        self.outlier_factor = float(outlier_factor)
        self.order = None if binning is None else ring_order(binning)[0]

    def __call__(self, D):
        """Project ``(m, n_features)`` diffractions in the data's pixel order."""
        if self.binning is None:
            return np.maximum(D, 0)
        return continuity_projection(D, self.binning, self.outlier_factor)

    def project_normalize(self, D, old):
        """In place on ring-ordered ``D (m, n_features)``: project, normalize to unit sum.

        Parameters
        ----------
        D, old : numpy.ndarray
            ``(m, n_features)`` float32 in :attr:`order` (see
            :func:`project_normalize_sorted`).

        Returns
        -------
        sums, l1 : numpy.ndarray
            ``(m,)`` float64: the row sums before normalization and ``||D_new - old||_1``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition._constraints import DiffractionProjection
        >>> D = np.array([[1.0, 3.0]], np.float32)
        >>> sums, l1 = DiffractionProjection().project_normalize(D, np.zeros_like(D))
        >>> D, sums, l1
        (array([[0.25, 0.75]], dtype=float32), array([4.]), array([1.]))
        """
        return project_normalize_sorted(D, self.binning, self.outlier_factor, old)


class MapProjection:
    """``[.]_H`` for maps, in either layout the solver holds them.

    Parameters
    ----------
    navigation_shape : tuple of int, optional
        ``(ny, nx)`` scan shape; ``None``: non-negativity only.
    kernel : numpy.ndarray, optional
        ``(ky, kx)`` kernel summing to 1 (:func:`resolve_map_kernel`).
    valid : numpy.ndarray of bool, optional
        ``(ny, nx)``, ``True`` at the positions present in the maps.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition._constraints import MapProjection
    >>> project = MapProjection((2, 2), np.full((3, 3), 1 / 9))
    >>> project(np.array([[4.0, 0.0, 0.0, 0.0]]))
    array([[1., 1., 1., 1.]])
    """

    def __init__(self, navigation_shape=None, kernel=None, valid=None):
        self.shape = None if navigation_shape is None else tuple(navigation_shape)
        self.kernel = kernel
        self.valid = valid
        self._fast = (self.shape is not None and valid is None
                      and separable_factors(kernel, rtol=1e-10) is not None)

    def __call__(self, M):
        """``[.]_H`` of a ``(m, n_positions)`` stack of maps (Kimoto et al. 2025)."""
        if self.shape is None:
            return np.maximum(M, 0)
        return smooth_maps(M, self.shape, self.kernel, self.valid)

    def stack(self, M, out=None):
        """``[.]_H`` of the solver's ``(R, n_positions, k)`` maps.

        Parameters
        ----------
        M : numpy.ndarray
            ``(R, n_positions, k)`` maps of every restart.
        out : numpy.ndarray, optional
            A hint: a fast path may write the result there (use the returned array).

        Returns
        -------
        numpy.ndarray
            ``(R, n_positions, k)`` projected maps, C-contiguous.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition._constraints import MapProjection
        >>> MapProjection().stack(-np.ones((1, 4, 2))).max()
        np.float64(0.0)
        """
        if self.shape is None:
            return np.maximum(M, 0)
        if self._fast:
            return smooth_maps_stack(M, self.shape, self.kernel, out=out)
        r, N, k = M.shape
        flat = M.transpose(0, 2, 1).reshape(r * k, N)
        return np.ascontiguousarray(self(flat).reshape(r, k, N).transpose(0, 2, 1))


def make_diffraction_projection(constraint, n_features, *, signal_shape=None, center=None,
                                ring_width=1.0, signal_mask=None, outlier_factor=2.0):
    """The ``[.]_W`` of a ``diffraction_constraint``, after validating the pattern geometry.

    Parameters
    ----------
    constraint : {"continuity"} or None
        As ``ConstrainedNMF(diffraction_constraint=...)``.
    n_features : int
        Pixels per pattern in the data (the unmasked ones).
    signal_shape, center, ring_width, signal_mask, outlier_factor
        As the parameters of ``ConstrainedNMF``.

    Returns
    -------
    DiffractionProjection

    Raises
    ------
    ValueError
        If the continuity constraint lacks ``signal_shape`` or the shape and mask do not give
        ``n_features`` pixels.

    Examples
    --------
    >>> from stemnmf_hs.decomposition._constraints import make_diffraction_projection
    >>> make_diffraction_projection("continuity", 16, signal_shape=(4, 4)).binning.n_rings > 1
    True
    >>> make_diffraction_projection("continuity", 10, signal_shape=(4, 4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X has 10 features but signal_shape (4, 4) gives 16; pass the pattern ...
    """
    if constraint is None:
        return DiffractionProjection()
    if signal_shape is None:
        raise ValueError(
            "diffraction_constraint='continuity' needs the pattern geometry: pass "
            "signal_shape=(ny, nx) (and center=(cx, cy) if the pattern centre is not the "
            "middle), or use diffraction_constraint=None."
        )
    shape = check_shape(signal_shape, "signal_shape")
    if center is not None:
        center = check_center(center, shape)
    binning = RingBinning(shape, center, ring_width, signal_mask)
    if binning.labels.size != n_features:
        masked = "" if signal_mask is None else " minus the masked pixels"
        raise ValueError(
            f"X has {n_features} features but signal_shape {shape}{masked} gives "
            f"{binning.labels.size}; pass the pattern shape and signal_mask of the data."
        )
    return DiffractionProjection(binning, outlier_factor)


def make_map_projection(constraint, n_samples, *, navigation_shape=None, navigation_mask=None,
                        map_kernel=None, probe_fwhm=None, scan_step=None):
    """The ``[.]_H`` of a ``map_constraint``, after validating the scan geometry.

    Parameters
    ----------
    constraint : {"smooth"} or None
        As ``ConstrainedNMF(map_constraint=...)``.
    n_samples : int
        Probe positions in the data (the unmasked ones).
    navigation_shape, navigation_mask, map_kernel, probe_fwhm, scan_step
        As the parameters of ``ConstrainedNMF``.

    Returns
    -------
    MapProjection

    Raises
    ------
    ValueError
        If the smoothing constraint lacks ``navigation_shape``, the mask has another shape,
        or shape and mask do not give ``n_samples`` positions; see also
        :func:`resolve_map_kernel`.

    Examples
    --------
    >>> from stemnmf_hs.decomposition._constraints import make_map_projection
    >>> make_map_projection("smooth", 12, navigation_shape=(3, 4)).kernel.shape
    (3, 3)
    """
    if constraint is None:
        return MapProjection()
    if navigation_shape is None:
        raise ValueError(
            "map_constraint='smooth' needs the scan geometry: pass navigation_shape=(ny, nx), "
            "or use map_constraint=None."
        )
    shape = check_shape(navigation_shape, "navigation_shape")
    valid = None
    expected = int(np.prod(shape))
    nmask = check_mask(navigation_mask, shape, "navigation_mask")
    if nmask is not None:
        valid = ~nmask
        expected = int(valid.sum())
    if expected != n_samples:
        raise ValueError(
            f"X has {n_samples} samples but navigation_shape {shape} (with its mask) gives "
            f"{expected}; pass the scan shape and navigation_mask of the data."
        )
    if probe_fwhm is not None and scan_step is not None:
        check_probe_fwhm(probe_fwhm, scan_step, shape)
    kernel = resolve_map_kernel(map_kernel, probe_fwhm, scan_step)
    return MapProjection(shape, kernel, valid)
