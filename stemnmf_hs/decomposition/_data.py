"""The data matrix as the solver sees it: two products and a few statistics.

Every iteration of the constrained NMF touches the data ``X (N, F)`` only through two matrix
products, ``A @ X`` (``A`` of shape ``(m, N)``, e.g. the maps of every restart) and ``X @ B``
(``B`` of shape ``(F, m)``, e.g. the diffractions).  The solver therefore works on an object
with exactly these products, and three implementations serve the three ways the data can
live:

* :class:`InMemoryData` -- a float32 numpy array (one BLAS call per product);
* :class:`DaskData` -- a dask array chunked along the navigation (row) axis, streamed chunk by
  chunk on every product: the whole matrix is never held, peak memory is a few chunks plus the
  ``(m, N)`` / ``(m, F)`` operands.  Products run on whatever dask scheduler is active, so a
  ``dask.distributed.Client`` processes the chunks on its workers;
* :class:`SketchedData` -- the randomized range sketch ``X ~= Q B`` (Halko, Martinsson & Tropp
  2011, "Finding structure with randomness", SIAM Rev. 53, 217, Algorithm 4.4; used for NMF by
  Tepper & Sapiro 2016, IEEE TSP 64, 5559): products cost ``O((N + F) m l)`` instead of
  ``O(N F m)``.  The same code sketches in-memory and dask data.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["DaskData", "InMemoryData", "SketchedData", "is_dask", "sketch"]


class InMemoryData:
    """A float32 numpy data matrix ``(N, F)`` (held by reference, never copied)."""

    lazy = False

    def __init__(self, X):
        self.X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self._stats = None

    def left(self, A):
        """``A @ X``: ``A`` ``(m, N)`` -> ``(m, F)``."""
        return A @ self.X

    def right(self, B):
        """``X @ B``: ``B`` ``(F, m)`` -> ``(N, m)``."""
        return self.X @ B

    def stats(self):
        """``(||X||_F^2, mean(X))`` in float64."""
        if self._stats is None:
            self._stats = _block_stats(self.X)
        return self._stats

    def abs_residual_mean(self, maps, components):
        """Mean ``|X - maps @ components|`` over all matrix elements (Cao et al.'s loss)."""
        from ..model_selection import k_component_loss

        return k_component_loss(self.X, maps @ components)

    @property
    def exact(self):
        """The data themselves (for the final, exact products of a sketched fit)."""
        return self


class DaskData:
    """A dask data matrix ``(N, F)`` chunked along ``N`` (one chunk along ``F``), streamed.

    Each product is one pass over the chunks; ``A @ X`` sums the per-chunk partial products
    ``A[:, rows] @ X[rows]`` (dask's tree reduction), ``X @ B`` concatenates ``X[rows] @ B``.
    The float32 conversion happens per chunk.
    """

    lazy = True

    def __init__(self, X):
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(f"The data matrix must be 2D (N, F); got shape {X.shape}.")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        if X.dtype != np.float32:
            X = X.astype(np.float32)
        self._da = da
        self.X = X
        self.shape = tuple(int(n) for n in X.shape)
        self.dtype = np.dtype(np.float32)
        self._stats = None

    def _compute(self, *arrays):
        import dask

        return dask.compute(*arrays)

    def left(self, A):
        """``A @ X``: ``A`` ``(m, N)`` numpy -> ``(m, F)`` numpy, one streamed pass."""
        A = np.ascontiguousarray(A, dtype=np.float32)
        Ad = self._da.from_array(A, chunks=(A.shape[0], self.X.chunks[0]))
        return np.ascontiguousarray(self._compute(Ad @ self.X)[0])

    def right(self, B):
        """``X @ B``: ``B`` ``(F, m)`` numpy -> ``(N, m)`` numpy, one streamed pass.

        The first call also gathers :meth:`stats` in the same pass.
        """
        B = np.ascontiguousarray(B, dtype=np.float32)
        out = self.X.map_blocks(
            _chunk_times, B, chunks=(self.X.chunks[0], (B.shape[1],)), dtype=np.float32
        )
        if self._stats is None:
            out, sq, mean = self._compute(out, *self._stat_graphs())
            self._stats = (float(sq), float(mean))
        else:
            (out,) = self._compute(out)
        return np.ascontiguousarray(out)

    def _stat_graphs(self):
        # Per-chunk float64 accumulation without a float64 copy of the chunk (the former
        # ``(X.astype(float64) ** 2).sum()`` made two float64 temporaries per chunk: 4x the
        # float32 chunk on top of it, per dask thread).
        X = self.X
        sq = X.map_blocks(
            _chunk_sum_squares, chunks=((1,) * X.numblocks[0], (1,) * X.numblocks[1]),
            dtype=np.float64,
        ).sum()
        return sq, X.mean(dtype=np.float64)

    def stats(self):
        """``(||X||_F^2, mean(X))`` in float64 (one streamed pass, the first time only)."""
        if self._stats is None:
            sq, mean = self._compute(*self._stat_graphs())
            self._stats = (float(sq), float(mean))
        return self._stats

    def abs_residual_mean(self, maps, components):
        """Mean ``|X - maps @ components|`` over all matrix elements, one streamed pass."""
        M = self._da.from_array(
            np.ascontiguousarray(maps, dtype=np.float32), chunks=(self.X.chunks[0], -1)
        )
        D = np.ascontiguousarray(components, dtype=np.float32)
        res = self._da.map_blocks(
            _chunk_abs_residual_sum, self.X, M, D, chunks=((1,) * self.X.numblocks[0], (1,)),
            dtype=np.float64,
        )
        total = self._compute(res.sum())[0]
        return float(total) / (self.shape[0] * self.shape[1])

    @property
    def exact(self):
        """The data themselves."""
        return self


def _block_stats(X, rows=256):
    """``(sum X**2, mean X)`` in float64 from blocks of rows: float32 pairwise sums along each
    row (relative error ~1e-7), float64 across rows; one reused block-sized buffer (the
    float64-accumulating ``einsum``/``mean`` take ~4x longer on a large matrix)."""
    n = X.shape[0]
    if X.size == 0:
        return 0.0, 0.0
    buf = np.empty((min(rows, n),) + X.shape[1:], np.float32)
    sq = total = 0.0
    for start in range(0, n, rows):
        x = X[start:start + rows]
        b = buf[: x.shape[0]]
        total += float(x.sum(axis=-1).sum(dtype=np.float64))
        np.square(x, out=b)
        sq += float(b.sum(axis=-1).sum(dtype=np.float64))
    return sq, total / X.size


def _chunk_times(x, b):
    """One chunk's ``x @ b`` in float32 (runs on the workers)."""
    return x.astype(np.float32, copy=False) @ b


def _chunk_sum_squares(x):
    """One chunk's ``sum x**2`` as a ``(1, 1)`` float64 block (buffered cast, no copy)."""
    return np.array([[np.einsum("ij,ij->", x, x, dtype=np.float64)]])


def _chunk_abs_residual_sum(x, m, d):
    """One chunk's ``sum |x - m @ d|`` as a ``(1, 1)`` float64 block."""
    return np.array([[np.abs(x - m @ d).sum(dtype=np.float64)]])


class SketchedData:
    """The rank-``l`` sketch ``X ~= Q B`` of a data matrix (``Q`` orthonormal columns).

    Parameters
    ----------
    Q : numpy.ndarray
        ``(N, l)`` float32, orthonormal columns spanning the dominant range of ``X``.
    B : numpy.ndarray
        ``(l, F)`` float32, ``Q^T X``.
    exact : InMemoryData or DaskData
        The data themselves, for statistics and the final exact products.
    """

    lazy = False

    def __init__(self, Q, B, exact):
        self.Q = Q
        self.B = B
        self.exact = exact
        self.shape = exact.shape
        self.dtype = np.dtype(np.float32)
        self.rank = int(Q.shape[1])

    def left(self, A):
        """``A @ Q @ B`` ~= ``A @ X``: ``(m, N)`` -> ``(m, F)``."""
        return (A @ self.Q) @ self.B

    def right(self, B):
        """``Q @ (B_sketch @ B)`` ~= ``X @ B``: ``(F, m)`` -> ``(N, m)``."""
        return self.Q @ (self.B @ B)

    def stats(self):
        """``(||Q B||_F^2, mean(X))``: the sketch's energy and the data's mean."""
        return (
            float(np.einsum("ij,ij->", self.B, self.B, dtype=np.float64)),
            self.exact.stats()[1],
        )

    def abs_residual_mean(self, maps, components):
        """Mean ``|X - maps @ components|`` against the full data (one exact pass)."""
        return self.exact.abs_residual_mean(maps, components)


def is_dask(X):
    """Whether ``X`` is a ``dask.array.Array`` (``False`` when dask is not importable)."""
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(X, da.Array)


def sketch(data, rank, n_power_iter, rng):
    """Randomized range sketch ``X ~= Q (Q^T X)`` of solver data.

    Parameters
    ----------
    data : InMemoryData or DaskData
        ``(N, F)`` data.
    rank : int
        Sketch rank ``l`` (columns of ``Q``), ``1 <= l <= min(N, F)``.
    n_power_iter : int
        Power (subspace) iterations; each costs two passes over the data.
    rng : numpy.random.RandomState
        Source of the Gaussian test matrix.

    Returns
    -------
    SketchedData
        With ``Q`` ``(N, l)`` and ``B = Q^T X`` ``(l, F)``, float32.

    Notes
    -----
    Halko, Martinsson & Tropp, SIAM Rev. 53, 217 (2011), Algorithm 4.4 (randomized subspace
    iteration, re-orthonormalized after every product).  Written on ``data.left`` /
    ``data.right`` rather than with :func:`sklearn.utils.extmath.randomized_range_finder`
    (which only takes in-memory arrays) or :func:`dask.array.linalg.compression_matrix`
    (dask only), so in-memory and dask data get the same sketch from the same seed and a
    dask matrix is streamed: ``2 + 2 n_power_iter`` passes in all, counting ``B``.
    """
    F = data.shape[1]
    omega = rng.standard_normal(size=(F, int(rank))).astype(np.float32)
    Q = _orthonormal(data.right(omega))
    for _ in range(int(n_power_iter)):
        Z = _orthonormal(data.left(Q.T).T)
        Q = _orthonormal(data.right(Z))
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    B = np.ascontiguousarray(data.left(Q.T), dtype=np.float32)
    return SketchedData(Q, B, data)


def _orthonormal(Y):
    """Orthonormal basis of the columns of ``Y`` (economic QR, float32).

    Single-threaded: right after a large product OpenBLAS's worker threads still spin, and
    a multithreaded Householder QR of a tall ``(n, l)`` panel then runs 2-4x slower (e.g.
    75 ms instead of 18 ms for 16384 x 70 on 2 cores).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        q, _ = scipy.linalg.qr(Y, mode="economic", check_finite=False)
    return np.ascontiguousarray(q, dtype=np.float32)
