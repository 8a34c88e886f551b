"""Compiled inner loops of the monotone solver (:mod:`._descent`), each with its numpy form.

* :func:`hals_rows` -- HALS updates of a range of rows of a ``(R, k, F)`` factor.  Every
  column (a pixel of the diffractions, a probe position of the transposed maps) is updated
  independently of the others, so the kernel runs through the columns in blocks that stay in
  the L1 cache, all rows and sweeps at once: no per-row Python call, no pass over the whole
  factor per row.  From 8192 columns on, the columns are split over the cores (threads: the
  kernel releases the GIL; the callers hold BLAS to one thread meanwhile), at block
  boundaries, so the result is the same bit for bit.
* :func:`dot_rows` -- ``<a_r, b_r>`` of every restart, accumulated in float64 (the objective
  checks) without a float64 copy of either operand.
* :func:`sum_and_squares` -- ``(sum x, sum x**2)`` of a data block in float64, read once in
  its own dtype (the data statistics ``||X||^2`` and mean).
* :func:`separable_factors` and :func:`correlate_separable` -- the scan blur of a separable
  kernel (the Gaussians) as two 1D passes over the ``(ny, nx, m)`` grid.

numba is a dependency of pyxem, hence present with this package; without it every function
falls back to numpy (same results up to float32 rounding).

Math module: arrays in, arrays out.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["correlate_separable", "dot_rows", "hals_rows", "l1_rows", "separable_factors",
           "sum_and_squares"]

#: Columns per block of :func:`hals_rows`: ``k`` rows of 256 float32 values (30 KiB for
#: k = 30) stay in the L1/L2 cache while every row of the range is updated.
_BLOCK = 256

#: Threads of :func:`hals_rows` and :func:`sum_and_squares` (the machine's cores, at most
#: 8), and the fewest columns per thread of :func:`hals_rows` (on the benchmark scan, 16384 pixels on 2 cores, a monotone iteration on the
#: sketch took ~10 % less).
_THREADS = max(1, min(8, os.cpu_count() or 1))
_MIN_COLUMNS = 4096
_POOL = []


def _pool():
    """The helper threads of the split kernels, started on first use."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max(1, _THREADS - 1),
                                        thread_name_prefix="stemnmf-kernel"))
    return _POOL[0]


def _split_call(kernel, args, n, parts, align=1):
    """``kernel(*args, a, b)`` over ``parts`` ranges ``a:b`` covering ``0:n`` (starts
    multiples of ``align``): the first in this thread, the others on the helper threads
    (the kernels release the GIL)."""
    if parts < 2:
        kernel(*args, 0, n)
        return
    edges = [i * n // parts // align * align for i in range(parts)] + [n]
    futures = [_pool().submit(kernel, *args, a, b)
               for a, b in zip(edges[1:-1], edges[2:]) if b > a]
    kernel(*args, edges[0], edges[1])
    for f in futures:
        f.result()


def hals_rows(D, G, B, diag, j0, j1, sweeps=1):
    """HALS rows ``j0..j1-1`` of ``D`` in place, ``sweeps`` times: the exact non-negative
    least-squares row given the others (Cichocki & Phan 2009, eq. 10).

    ``d_j = max((b_j - sum_{i != j} G_ji d_i) / diag_j, 0)`` for every restart, rows in
    order, every row seeing the rows updated before it.  With at least ``2 * 4096`` columns
    they are split over up to ``os.cpu_count()`` (at most 8) threads; each column's
    arithmetic is the same.

    Parameters
    ----------
    D : numpy.ndarray
        ``(R, k, F)`` float32, C-contiguous, updated in place.
    G : numpy.ndarray
        ``(R, k, k)`` float32 Gram matrices (``M^T M`` for diffractions).
    B : numpy.ndarray
        ``(R, k, F)`` float32 right-hand sides (``M^T X``), C-contiguous.
    diag : numpy.ndarray
        ``(R, k)`` float32 positive denominators (``G_jj``, plus any ridge).
    j0, j1 : int
        Row range.
    sweeps : int, default 1
        Passes over the range (columns are independent: a block runs all of them).

    Returns
    -------
    numpy.ndarray
        ``D``.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.zeros((1, 2, 3), np.float32)
    >>> G = np.array([[[1, 0.5], [0.5, 1]]], np.float32)
    >>> B = np.array([[[1, 2, -1], [1, 0, 1]]], np.float32)
    >>> hals_rows(D, G, B, np.ones((1, 2), np.float32), 0, 2)[0]
    array([[1. , 2. , 0. ],
           [0.5, 0. , 1. ]], dtype=float32)
    """
    if j1 <= j0:
        return D
    if _hals_kernel is not None and D.dtype == B.dtype == np.float32 and \
            D.flags.c_contiguous and B.flags.c_contiguous:
        args = (D, np.ascontiguousarray(G, np.float32), B,
                np.ascontiguousarray(diag, np.float32), int(j0), int(j1), int(sweeps))
        F = D.shape[2]
        # The columns are independent: split over threads at block boundaries, every
        # column sees the same arithmetic as in one call.
        _split_call(_hals_kernel, args, F, min(_THREADS, F // _MIN_COLUMNS), _BLOCK)
        return D
    for _ in range(sweeps):
        for j in range(j0, j1):
            b = B[:, j] - np.matmul(G[:, j:j + 1, :], D)[:, 0] + G[:, j, j:j + 1] * D[:, j]
            D[:, j] = np.maximum(b / diag[:, j:j + 1], 0)
    return D


def dot_rows(a, b):
    """``sum(a[r] * b[r])`` of every restart, accumulated in float64: ``(R,)``.

    Examples
    --------
    >>> import numpy as np
    >>> dot_rows(np.ones((2, 3, 4), np.float32), np.full((2, 3, 4), 0.5, np.float32))
    array([6., 6.])
    """
    R = a.shape[0]
    if _dot_kernel is not None and a.dtype == b.dtype == np.float32 and a.shape == b.shape:
        out = np.empty(R, np.float64)
        _dot_kernel(np.ascontiguousarray(a).reshape(R, -1),
                    np.ascontiguousarray(b).reshape(R, -1), out)
        return out
    return np.einsum("ri,ri->r", a.reshape(R, -1), b.reshape(R, -1), dtype=np.float64)


def l1_rows(a, b):
    """``||a[r] - b[r]||_1`` of every restart, ``(R,)`` float64.

    float32 sums over blocks of 4096 values (relative error ~1e-7), float64 over blocks,
    without the temporary difference array (numpy: float32 pairwise sums of ``|a - b|``).

    Examples
    --------
    >>> import numpy as np
    >>> l1_rows(np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    array([3., 3.])
    """
    R = a.shape[0]
    if _l1_kernel is not None and a.dtype == b.dtype == np.float32 and a.shape == b.shape:
        out = np.empty(R, np.float64)
        _l1_kernel(np.ascontiguousarray(a).reshape(R, -1),
                   np.ascontiguousarray(b).reshape(R, -1), out)
        return out
    d = np.subtract(a, b)
    np.abs(d, out=d)
    return d.reshape(R, -1).sum(axis=1).astype(np.float64)


def sum_and_squares(x, parallel=True):
    """``(sum x, sum x**2)`` of a 2D array in float64, reading it once.

    Every row is accumulated in float64 (no float64 copy, no squared temporary); with
    ``parallel`` and from ``2**22`` values on, the rows are split over the cores (threads;
    ``False`` inside a task of a parallel scheduler).  The numpy form (two
    float32 pairwise sums per row, one squared temporary) agrees to ~1e-7 relative and reads
    the array three times: on the 3364 x 16384 benchmark scan 38-92 ms against 5-9 ms.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, f)`` real values (float32 or an integer type: no conversion needed).
    parallel : bool, default True

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> import numpy as np
    >>> sum_and_squares(np.array([[1, 2], [3, 4]], np.uint16))
    (10.0, 30.0)
    """
    x = np.asarray(x)
    if x.size == 0:
        return 0.0, 0.0
    n = x.shape[0]
    compiled = x.dtype.kind in "iu" or x.dtype in (np.float32, np.float64)
    if _stats_kernel is None or not x.flags.c_contiguous or not compiled:
        xf = np.asarray(x, dtype=np.float32)
        return (float(xf.sum(axis=-1).sum(dtype=np.float64)),
                float(np.square(xf).sum(axis=-1).sum(dtype=np.float64)))
    out = np.zeros((n, 2), np.float64)
    parts = min(_THREADS, x.size // (1 << 21), n) if parallel else 1
    _split_call(_stats_kernel, (x, out), n, parts)
    return float(out[:, 0].sum()), float(out[:, 1].sum())


def separable_factors(kernel, rtol=1e-6):
    """``(col, row)`` float64 with ``kernel == outer(col, row)``, or ``None``.

    ``col`` are the row sums and ``row`` the column sums over the total (exact for a
    separable kernel: a Gaussian of :func:`~._constraints.gaussian_kernel`).

    Examples
    --------
    >>> import numpy as np
    >>> col, row = separable_factors(np.outer([1, 2, 1], [1, 2, 1]) / 16.0)
    >>> col.tolist(), row.tolist()
    ([0.25, 0.5, 0.25], [0.25, 0.5, 0.25])
    >>> separable_factors(np.eye(3)) is None
    True
    """
    k = np.asarray(kernel, dtype=np.float64)
    total = k.sum()
    if k.ndim != 2 or not total > 0:
        return None
    col, row = k.sum(axis=1), k.sum(axis=0) / total
    if not np.allclose(np.outer(col, row), k, rtol=rtol, atol=rtol * np.abs(k).max()):
        return None
    return col, row


def correlate_separable(g, col, row, scale=None, out=None):
    """``correlate(g, outer(col, row)[:, :, None], mode="constant")`` on a ``(ny, nx, m)``
    grid by two 1D passes, times ``scale`` ``(ny, nx)`` per position when given.

    A convolution is the correlation with the reversed factors.

    Parameters
    ----------
    g : numpy.ndarray
        ``(ny, nx, m)`` float32.
    col, row : numpy.ndarray
        Odd-length 1D weights along ``y`` and ``x``.
    scale : numpy.ndarray, optional
        ``(ny, nx)`` factor applied to the result.
    out : numpy.ndarray, optional
        ``(ny, nx, m)`` float32 result buffer (not ``g``).

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, m)`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.zeros((3, 3, 1), np.float32); g[1, 1] = 16
    >>> w = np.array([0.25, 0.5, 0.25])
    >>> correlate_separable(g, w, w)[:, :, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    g = np.ascontiguousarray(g, np.float32)
    ny, nx, m = g.shape
    if out is None:
        out = np.empty_like(g)
    col32 = np.asarray(col, np.float32)
    row32 = np.asarray(row, np.float32)
    sc = np.ones((ny, nx), np.float32) if scale is None else \
        np.ascontiguousarray(scale, np.float32).reshape(ny, nx)
    if _blur_kernel is not None:
        _blur_kernel(g.reshape(ny, nx * m), nx, m, col32, row32, sc, out.reshape(ny, nx * m))
        return out
    from scipy import ndimage

    tmp = ndimage.correlate1d(g, col32, axis=0, mode="constant")
    ndimage.correlate1d(tmp, row32, axis=1, mode="constant", output=out)
    out *= sc[:, :, None]
    return out


try:  # numba comes with pyxem
    import numba as _numba
except ImportError:  # pragma: no cover
    _hals_kernel = _dot_kernel = _blur_kernel = _l1_kernel = _stats_kernel = None
else:

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _hals_kernel(D, G, B, diag, j0, j1, sweeps, c0, c1):  # pragma: no cover
        """Kernel of :func:`hals_rows` on the columns ``c0:c1``: per restart and block of
        columns, every sweep and row; the sum over the other rows four at a time (one
        load/store of the partial sums per four rows).  Writes ``D``, returns nothing."""
        R, k, F = D.shape
        acc = np.empty(_BLOCK, np.float32)
        others = np.empty(k, np.int64)
        zero = np.float32(0.0)
        for r in range(R):
            for s in range(c0, c1, _BLOCK):
                n = min(c1, s + _BLOCK) - s
                a = acc[:n]
                for _ in range(sweeps):
                    for j in range(j0, j1):
                        b = B[r, j, s:s + n]
                        for f in range(n):
                            a[f] = b[f]
                        c = 0
                        for i in range(k):
                            if i != j:
                                others[c] = i
                                c += 1
                        c4 = c - c % 4
                        for q in range(0, c4, 4):
                            w0 = G[r, j, others[q]]
                            w1 = G[r, j, others[q + 1]]
                            w2 = G[r, j, others[q + 2]]
                            w3 = G[r, j, others[q + 3]]
                            d0 = D[r, others[q], s:s + n]
                            d1 = D[r, others[q + 1], s:s + n]
                            d2 = D[r, others[q + 2], s:s + n]
                            d3 = D[r, others[q + 3], s:s + n]
                            for f in range(n):
                                a[f] -= (w0 * d0[f] + w1 * d1[f]) + (w2 * d2[f] + w3 * d3[f])
                        for q in range(c4, c):
                            w = G[r, j, others[q]]
                            d = D[r, others[q], s:s + n]
                            for f in range(n):
                                a[f] -= w * d[f]
                        inv = np.float32(1.0) / diag[r, j]
                        dj = D[r, j, s:s + n]
                        for f in range(n):
                            v = a[f] * inv
                            dj[f] = max(v, zero)

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _dot_kernel(a, b, out):  # pragma: no cover
        """``out[r] = sum a[r] * b[r]``: float64 products and sums (exact products of
        float32 values), four accumulators."""
        R, n = a.shape
        for r in range(R):
            s0 = s1 = s2 = s3 = 0.0
            n4 = n - n % 4
            for j in range(0, n4, 4):
                s0 += np.float64(a[r, j]) * np.float64(b[r, j])
                s1 += np.float64(a[r, j + 1]) * np.float64(b[r, j + 1])
                s2 += np.float64(a[r, j + 2]) * np.float64(b[r, j + 2])
                s3 += np.float64(a[r, j + 3]) * np.float64(b[r, j + 3])
            for j in range(n4, n):
                s0 += np.float64(a[r, j]) * np.float64(b[r, j])
            out[r] = (s0 + s1) + (s2 + s3)

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _l1_kernel(a, b, out):  # pragma: no cover
        """``out[r] = sum |a[r] - b[r]|`` (float32 blocks of 4096, float64 over blocks)."""
        R, n = a.shape
        for r in range(R):
            total = 0.0
            for s in range(0, n, 4096):
                x = a[r, s:s + 4096]
                y = b[r, s:s + 4096]
                acc = np.float32(0.0)
                for j in range(x.size):
                    acc += abs(x[j] - y[j])
                total += acc
            out[r] = total

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _blur_kernel(g, nx, m, col, row, scale, out):  # pragma: no cover
        """Kernel of :func:`correlate_separable` on the ``(ny, nx * m)`` view: a scan row
        of ``m`` values per position is one contiguous run, so both passes are long
        slice operations.  Writes ``out``, returns nothing."""
        ny, L = g.shape
        ry = col.size // 2
        rx = row.size // 2
        tmp = np.empty(L, np.float32)
        for y in range(ny):
            tmp[:] = np.float32(0.0)
            for dy in range(-ry, ry + 1):
                if 0 <= y + dy < ny:
                    w = col[ry + dy]
                    src = g[y + dy]
                    for j in range(L):
                        tmp[j] += w * src[j]
            dst = out[y]
            dst[:] = np.float32(0.0)
            for dx in range(-rx, rx + 1):
                sh = abs(dx) * m
                if sh >= L:
                    continue
                w = row[rx + dx]
                if dx >= 0:
                    d = dst[:L - sh]
                    t = tmp[sh:]
                else:
                    d = dst[sh:]
                    t = tmp[:L - sh]
                for j in range(d.size):
                    d[j] += w * t[j]
            for x in range(nx):
                sc = scale[y, x]
                seg = dst[x * m:(x + 1) * m]
                for c in range(m):
                    seg[c] *= sc

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _stats_kernel(x, out, r0, r1):  # pragma: no cover
        """Kernel of :func:`sum_and_squares`: rows ``r0:r1``, four float64 accumulators
        per sum.  Writes ``out[i] = (sum, sum of squares)``, returns nothing."""
        f = x.shape[1]
        f4 = f - f % 4
        for i in range(r0, r1):
            s0 = s1 = s2 = s3 = 0.0
            q0 = q1 = q2 = q3 = 0.0
            for j in range(0, f4, 4):
                a = np.float64(x[i, j])
                b = np.float64(x[i, j + 1])
                c = np.float64(x[i, j + 2])
                d = np.float64(x[i, j + 3])
                s0 += a
                s1 += b
                s2 += c
                s3 += d
                q0 += a * a
                q1 += b * b
                q2 += c * c
                q3 += d * d
            for j in range(f4, f):
                a = np.float64(x[i, j])
                s0 += a
                q0 += a * a
            out[i, 0] = (s0 + s1) + (s2 + s3)
            out[i, 1] = (q0 + q1) + (q2 + q3)
