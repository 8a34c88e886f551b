"""The per-chunk kernels of the data operators: what runs on dask's threads or workers.

Each kernel takes one chunk of rows ``x`` ``(n, F)`` of the data matrix (any real dtype) and
returns its part of a product or statistic.  A product reads the chunk by row blocks, so
that an interrupted product stops at its next block (:func:`_check_cancelled`), and a
non-float32 chunk (uint16 counts) is converted block by block into a float32 buffer that
each thread reuses, never as a float32 copy of the whole chunk.

Math module: numpy and scipy only; :mod:`._operators` builds the dask graphs around these.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.linalg.blas

from ._kernels import sum_and_squares

#: Rows per block of the in-memory statistics and loss (bounds their temporaries).
_BLOCK_ROWS = 256

#: Most bytes of the data matrix one BLAS call of a product reads, so that Ctrl-C is answered
#: between calls: 128 MiB, ~0.5 s for 300 columns on a loaded 2-core machine.  Summing the
#: row blocks of ``X^T Y`` costs ~1 % of the product at this size (2-5 % at 64 MiB).
_PRODUCT_BLOCK_BYTES = 1 << 27

#: Dask products interrupted in the main thread: their chunk tasks stop at the next row block.
_CANCELLED = set()


class _Cancelled(Exception):
    """Raised in a chunk task of a dask product that was interrupted (its result is unused)."""


def _product_rows(shape, itemsize=4):
    """Rows per block of a product over a ``shape`` matrix: at most
    :data:`_PRODUCT_BLOCK_BYTES` (all ``N`` rows of a smaller matrix: one call).

    Row blocks of a C-ordered matrix are contiguous, so every block is one efficient BLAS
    call (1024-row blocks of a 16384-pixel matrix run at the speed of the whole product;
    128-256-row blocks ran 4-20x slower in OpenBLAS for 300 columns, measured on 2 cores),
    and Ctrl-C is answered between them.
    """
    n, f = (int(v) for v in shape)
    return max(1, min(n, _PRODUCT_BLOCK_BYTES // max(1, f * int(itemsize))))


def _check_cancelled(pid):
    """Stop a chunk task of an interrupted product (its result will not be used)."""
    if pid in _CANCELLED:
        raise _Cancelled(f"dask product {pid} was interrupted")


#: Bytes of float32 per converted row block of a non-float32 dask chunk, in a buffer each
#: thread reuses: no float32 copy of a whole chunk (twice a uint16 chunk's bytes) per
#: product.  16 MiB: a pass over a 0.5 GiB uint16 zarr scan took 0.42 s (m = 40) and
#: 1.15 s (m = 300) for ``X @ B``, against 0.50 s and 1.17 s through a float32 chunk copy;
#: 4 MiB blocks were slower for m = 300 (1.47 s).
_CONVERT_BYTES = 1 << 24
_BUFFERS = threading.local()


def _float32_rows(x, rows):
    """``(start, block)`` pairs over a chunk: float32 views, or blocks of ``rows`` rows
    converted into this thread's reused buffer."""
    if x.dtype == np.float32:
        for start in range(0, x.shape[0], rows):
            yield start, x[start:start + rows]
        return
    size = min(rows, x.shape[0]) * x.shape[1]
    buf = getattr(_BUFFERS, "convert", None)
    if buf is None or buf.size < size:
        buf = _BUFFERS.convert = np.empty(size, np.float32)
    for start in range(0, x.shape[0], rows):
        raw = x[start:start + rows]
        block = buf[: raw.size].reshape(raw.shape)
        np.copyto(block, raw, casting="unsafe")
        yield start, block


def _chunk_rows(x):
    """Rows per block of a chunk product: :func:`_product_rows`, or converted blocks of
    ``_CONVERT_BYTES`` (at least 64 rows, for the BLAS)."""
    if x.dtype == np.float32:
        return _product_rows(x.shape)
    return max(64, _CONVERT_BYTES // max(1, 4 * x.shape[1]))


def _chunk_times(x, b, pid=None):
    """One chunk's ``x @ b`` in float32, by row blocks (runs on the workers)."""
    _check_cancelled(pid)
    rows = _chunk_rows(x)
    if rows >= x.shape[0] and x.dtype == np.float32:
        return x @ b
    out = np.empty((x.shape[0], b.shape[1]), np.float32)
    for start, block in _float32_rows(x, rows):
        _check_cancelled(pid)
        np.matmul(block, b, out=out[start:start + block.shape[0]])
    return out


def _chunk_t_times(x, y, pid=None):
    """One chunk's ``y^T @ x`` as a ``(1, m, F)`` float32 block, by row blocks (workers),
    accumulated in place (``sgemm`` with ``beta = 1`` on the transposed output)."""
    out = np.zeros((1, y.shape[1], x.shape[1]), np.float32)
    acc = out[0].T  # (F, m), Fortran-ordered: sgemm writes into it
    for start, block in _float32_rows(x, _chunk_rows(x)):
        _check_cancelled(pid)
        yb = y[start:start + block.shape[0]]
        scipy.linalg.blas.sgemm(1.0, block.T, yb, beta=1.0, c=acc, overwrite_c=1)
    return out


def _chunk_stats(x):
    """One chunk's ``(sum x, sum x**2)`` as a ``(1, 1, 2)`` float64 block, the chunk read
    once in its own dtype (:func:`~._kernels.sum_and_squares`; the scheduler's threads
    already run the chunks in parallel)."""
    return np.array(sum_and_squares(x, parallel=False)).reshape(1, 1, 2)


def _chunk_residual_sums(x, m, d, pid=None):
    """One block's ``sum |x - m_j @ d_j|`` and ``sum (x - m_j @ d_j)**2`` for every fit
    ``j`` as a ``(1, 2 n_fits)`` float64 block; ``d`` is one ``(k, F)`` array or a list of
    them, ``m`` their maps side by side.  By blocks of ``_BLOCK_ROWS`` rows: one bounded
    temporary per fit, worked in place (3x faster than ``abs(x - m @ d).sum()`` with its
    three), the data block read once for all fits."""
    ds = d if isinstance(d, (list, tuple)) else [d]
    sums = np.zeros((len(ds), 2))
    for start in range(0, x.shape[0], _BLOCK_ROWS):
        _check_cancelled(pid)
        stop = start + _BLOCK_ROWS
        o = 0
        for j, dj in enumerate(ds):
            r = np.asarray(m[start:stop, o:o + dj.shape[0]] @ dj, dtype=np.float32)
            o += dj.shape[0]
            np.subtract(x[start:stop], r, out=r)
            sums[j, 1] += float(np.einsum("ij,ij->i", r, r).sum(dtype=np.float64))
            np.abs(r, out=r)
            sums[j, 0] += float(r.sum(dtype=np.float64))
    return sums.reshape(1, -1)
