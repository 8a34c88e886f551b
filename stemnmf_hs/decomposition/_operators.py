"""The data matrix as the solver sees it: a linear operator, its sketch, the K-component loss.

Every iteration of the constrained NMF touches the data ``X (N, F)`` only through two matrix
products, ``X @ B`` (``B`` ``(F, m)``, e.g. the diffractions of every restart) and ``X^T @ Y``
(``Y`` ``(N, m)``, e.g. the maps).  The solver therefore works on a
:class:`scipy.sparse.linalg.LinearOperator` and calls them by scipy's names, ``matmat`` and
``rmatmat``; three operators serve the three ways the data can live:

* :class:`InMemoryOperator` -- a float32 numpy array (one BLAS call per product, or one per
  block of rows of a matrix over 128 MiB);
* :class:`DaskOperator` -- a dask array chunked along the navigation (row) axis, streamed chunk
  by chunk on every product: the whole matrix is never held, peak memory is a few chunks plus
  the ``(N, m)`` / ``(m, F)`` operands.  Products run on whatever dask scheduler is active, so
  a ``dask.distributed.Client`` processes the chunks on its workers;
* :class:`SketchedOperator` -- the randomized range sketch ``X ~= Q B`` (Halko, Martinsson &
  Tropp 2011, "Finding structure with randomness", SIAM Rev. 53, 217, Algorithm 4.4; used for
  NMF by Tepper & Sapiro 2016, IEEE TSP 64, 5559): products cost ``O((N + F) m l)`` instead of
  ``O(N F m)``.  :func:`sketch` is the one place that draws it, for in-memory and dask data
  alike; :func:`sketch_rank` the one rule for its rank.

:func:`as_operator` wraps (and checks) an array; :func:`k_component_loss` is the one
K-component loss of the package, streamed over dask chunks or in-memory row blocks.

**Passes.**  Every read of the whole data (a product, the statistics, a loss, a gathered
copy) is counted where it happens: on the operator (``op.passes``) and by every
:func:`~stemnmf_hs.decomposition._passes.count_passes` block active in the process
(``_passes.py``).

**Ctrl-C.**  Python answers a ``KeyboardInterrupt`` only between calls into compiled code, and
a BLAS product over a matrix of some GiB is one call of seconds.  No call here reads more than
128 MiB of the data: larger products run block by block of rows (at ~1 % of their time).  A
dask product interrupted in the main thread also cancels its chunk tasks, which stop at their
next row block instead of finishing their chunks (the interpreter waits for the scheduler's
threads before it exits).

Math module: arrays in, arrays out; knows neither HyperSpy nor the estimator.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator
from sklearn.utils import check_array
from sklearn.utils.validation import check_non_negative
from threadpoolctl import threadpool_limits

from ._chunks import (
    _BLOCK_ROWS,
    _CANCELLED,
    _chunk_residual_sums,
    _chunk_stats,
    _chunk_t_times,
    _chunk_times,
    _product_rows,
)
from ._kernels import sum_and_squares
from ._passes import record as _record
from ._passes import stage as _stage

__all__ = [
    "DaskOperator",
    "DataOperator",
    "InMemoryOperator",
    "SketchedOperator",
    "as_operator",
    "check_dask_matrix",
    "is_dask",
    "k_component_loss",
    "sketch",
    "sketch_rank",
]

#: Ids of the dask products (an interrupted one is cancelled by id: `_chunks._CANCELLED`).
_PRODUCT_IDS = itertools.count()

#: Bytes of float32 per converted block of non-float32 or masked in-memory data (64 MiB:
#: smaller blocks slow OpenBLAS down, ~25 % at 16 MiB with 300 columns).
_BLOCK_BYTES = 1 << 26


class DataOperator(LinearOperator):
    """Base of the solver's data operators: ``X (N, F)`` float32 seen through its products.

    Subclasses implement ``_matmat`` (``X @ B``), ``_rmatmat`` (``X^T @ Y``) and
    :meth:`stats`; :class:`scipy.sparse.linalg.LinearOperator` supplies ``matmat``,
    ``rmatmat``, ``matvec``, ``@`` and the shape checks.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator, DataOperator
    >>> isinstance(as_operator(np.ones((3, 4))), DataOperator)
    True
    """

    #: Whether the products stream chunks of a lazy array.
    lazy = False

    def __init__(self, shape):
        super().__init__(np.float32, tuple(int(n) for n in shape))
        self._stats = None
        #: Passes over the data so far (products, statistics; a sketch's products: none).
        self.passes = 0

    def _matvec(self, x):
        return self._matmat(x.reshape(-1, 1)).reshape(-1)

    def _rmatvec(self, x):
        return self._rmatmat(x.reshape(-1, 1)).reshape(-1)

    def _adjoint(self):
        return _Adjoint(self)

    @property
    def exact(self):
        """The operator on the data themselves (``self``; a sketch's underlying data).

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import as_operator
        >>> op = as_operator(np.ones((3, 4)))
        >>> op.exact is op
        True
        """
        return self

    @property
    def is_sketch(self):
        """Whether the products are those of a sketch ``Q B`` rather than of the data.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import as_operator
        >>> as_operator(np.ones((3, 4))).is_sketch
        False
        """
        return self.exact is not self


class _Adjoint(LinearOperator):
    """``X^T`` of a data operator (scipy's ``op.H`` / ``op.T``)."""

    def __init__(self, op):
        super().__init__(op.dtype, op.shape[::-1])
        self.op = op

    # scipy's public products of the operator (they check the shapes, then call its
    # ``_rmatmat`` / ``_matmat``).
    def _matmat(self, Y):
        return self.op.rmatmat(Y)

    def _rmatmat(self, B):
        return self.op.matmat(B)

    def _matvec(self, x):
        return self.op.rmatvec(x)

    def _rmatvec(self, x):
        return self.op.matvec(x)


class InMemoryOperator(DataOperator):
    """An in-memory data matrix ``(N, F)`` (held by reference, never copied whole).

    Float32 C-contiguous data are multiplied in one BLAS call (one per 128 MiB block of rows
    of a larger matrix, so that Ctrl-C is answered between them).  Any other real dtype (the
    ``uint8``/``uint16`` counts detectors write) and masked data (``rows``, ``cols``) are
    converted to float32 block by block of ``_BLOCK_BYTES`` (64 MiB) inside each product, so a
    uint16 scan never exists as a whole float32 copy (at the cost of one conversion pass
    per product).

    Parameters
    ----------
    X : numpy.ndarray
        ``(N0, F0)`` real data, already checked (:func:`as_operator` checks any array).
    rows, cols : numpy.ndarray of int, optional
        Indices of the probe positions / pattern pixels used (the rest masked); default all.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import InMemoryOperator
    >>> op = InMemoryOperator(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> op.matmat(np.ones((3, 1), np.float32)).ravel()
    array([ 3., 12.], dtype=float32)
    >>> op.rmatmat(np.ones((2, 1), np.float32)).ravel()
    array([3., 5., 7.], dtype=float32)
    >>> u16 = InMemoryOperator(np.arange(6, dtype=np.uint16).reshape(2, 3), cols=np.array([0, 2]))
    >>> u16.shape, u16.matmat(np.ones((2, 1), np.float32)).ravel()
    ((2, 2), array([2., 8.], dtype=float32))
    """

    def __init__(self, X, rows=None, cols=None):
        n = X.shape[0] if rows is None else len(rows)
        f = X.shape[1] if cols is None else len(cols)
        super().__init__((n, f))
        self._source, self._rows, self._cols = X, rows, cols
        self.direct = (X.dtype == np.float32 and X.flags.c_contiguous and rows is None
                       and cols is None)

    @property
    def X(self):
        """The ``(N, F)`` matrix: the data themselves when float32 and unmasked, otherwise a
        gathered copy in the data's own dtype (made on each access: for the held-out
        thinning, which copies the data anyway)."""
        if self.direct:
            return self._source
        _record(self, "gather")
        return np.concatenate([self._raw_block(s) for s in range(0, self.shape[0],
                                                                  self.block_rows)])

    @property
    def block_rows(self):
        """Rows per converted block: about ``_BLOCK_BYTES`` of float32, and at most an
        eighth of the matrix (a small scan is still converted in several blocks)."""
        n, f = self.shape
        block = min(_BLOCK_BYTES, max(1 << 22, 4 * n * f // 8))
        return max(1, block // (4 * max(1, f)))

    def _raw_block(self, start):
        """Rows ``start:start + block_rows`` of the unmasked data, one gathered copy at most."""
        rows = slice(start, start + self.block_rows)
        if self._rows is None:
            x = self._source[rows]
            return x if self._cols is None else x[:, self._cols]
        if self._cols is None:
            return self._source[self._rows[rows]]
        return self._source[np.ix_(self._rows[rows], self._cols)]

    def blocks(self):
        """``(start, block)`` pairs covering the rows, each block float32 ``(b, F)``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import InMemoryOperator
        >>> [(s, b.dtype.name, b.shape) for s, b in InMemoryOperator(np.ones((3, 2), np.uint8)).blocks()]
        [(0, 'float32', (3, 2))]
        """
        if self.direct:
            for start in range(0, self.shape[0], _BLOCK_ROWS):
                yield start, self._source[start:start + _BLOCK_ROWS]
            return
        buf = np.empty((min(self.block_rows, self.shape[0]), self.shape[1]), np.float32)
        for start in range(0, self.shape[0], self.block_rows):
            raw = self._raw_block(start)
            out = buf[: raw.shape[0]]
            np.copyto(out, raw, casting="unsafe")
            yield start, out

    def _matmat(self, B):
        """``X @ B``: ``B`` ``(F, m)`` -> ``(N, m)``."""
        _record(self, "matmat")
        if self.direct:
            X = self._source
            rows = _product_rows(X.shape)
            if rows >= X.shape[0]:
                return X @ B
            out = np.empty((X.shape[0], B.shape[1]), np.result_type(X, B))
            for start in range(0, X.shape[0], rows):  # Ctrl-C is answered between blocks
                np.matmul(X[start:start + rows], B, out=out[start:start + rows])
            return out
        B = np.ascontiguousarray(B, dtype=np.float32)
        out = np.empty((self.shape[0], B.shape[1]), np.float32)
        for start, x in self.blocks():
            np.matmul(x, B, out=out[start:start + x.shape[0]])
        return out

    def _rmatmat(self, Y):
        """``X^T @ Y`` as ``(Y^T @ X)^T``: ``Y`` ``(N, m)`` -> ``(F, m)`` (a transposed view
        of a C-contiguous ``(m, F)`` product)."""
        _record(self, "rmatmat")
        if self.direct:
            X = self._source
            rows = _product_rows(X.shape)
            out = Y[:rows].T @ X[:rows]
            for start in range(rows, X.shape[0], rows):  # Ctrl-C is answered between blocks
                out += Y[start:start + rows].T @ X[start:start + rows]
            return out.T
        Yt = np.ascontiguousarray(Y.T, dtype=np.float32)
        out = np.zeros((Yt.shape[0], self.shape[1]), np.float32)
        for start, x in self.blocks():
            out += Yt[:, start:start + x.shape[0]] @ x
        return out.T

    def stats(self):
        """``(||X||_F^2, mean(X))`` in float64, computed once.

        Returns
        -------
        tuple of float

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import InMemoryOperator
        >>> InMemoryOperator(np.full((2, 2), 2, np.float32)).stats()
        (16.0, 2.0)
        """
        if self._stats is None:
            _record(self, "stats")
            self._stats = _block_stats(self)
        return self._stats


class DaskOperator(DataOperator):
    """A dask data matrix ``(N, F)`` chunked along ``N`` (one chunk along ``F``), streamed.

    Each product is one pass over the chunks: ``X^T @ Y`` sums the per-chunk partial products
    ``(Y[rows]^T @ X[rows])^T`` (dask's tree reduction), ``X @ B`` concatenates ``X[rows] @
    B``.  The float32 conversion happens per chunk.

    Parameters
    ----------
    X : dask.array.Array
        ``(N, F)`` real data, already checked (:func:`as_operator` checks its values).

    Raises
    ------
    ValueError
        If ``X`` is not 2D.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import DaskOperator
    >>> op = DaskOperator(da.ones((4, 3), chunks=(2, 3)))
    >>> op.matmat(np.ones((3, 1), np.float32)).ravel()
    array([3., 3., 3., 3.], dtype=float32)
    """

    lazy = True

    def __init__(self, X):
        if X.ndim != 2:
            raise ValueError(f"The data matrix must be 2D (N, F); got shape {X.shape}.")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        super().__init__(X.shape)
        # The products read the chunks in their own dtype (uint16 counts: a quarter of the
        # bytes of float64) and convert them by row blocks into a reused buffer.
        self._raw = X
        #: The float32 dask matrix (a lazy conversion; the products do not use it).
        self.X = X if X.dtype == np.float32 else X.astype(np.float32)

    def _rmatmat(self, Y):
        """``X^T @ Y``: ``Y`` ``(N, m)`` numpy -> ``(F, m)`` numpy, one streamed pass."""
        import dask.array as da

        X = self._raw
        m, F = Y.shape[1], X.shape[1]
        Yd = da.from_array(np.ascontiguousarray(Y, dtype=np.float32), chunks=(X.chunks[0], -1))
        pid = next(_PRODUCT_IDS)
        # One (1, m, F) partial product per chunk of rows, summed (dask's tree reduction).
        parts = da.blockwise(
            _chunk_t_times, "iab", X, "ij", Yd, "ik", pid, None,
            new_axes={"a": m, "b": F}, adjust_chunks={"i": 1}, dtype=np.float32,
            concatenate=True,
        )
        (out,) = _compute(pid, parts.sum(axis=0))
        _record(self, "rmatmat")
        return np.ascontiguousarray(out).T

    def _matmat(self, B):
        """``X @ B``: ``B`` ``(F, m)`` numpy -> ``(N, m)`` numpy, one streamed pass.

        The first call also gathers :meth:`stats` in the same pass.
        """
        B = np.ascontiguousarray(B, dtype=np.float32)
        pid = next(_PRODUCT_IDS)
        out = self._raw.map_blocks(
            _chunk_times, B, pid, chunks=(self._raw.chunks[0], (B.shape[1],)), dtype=np.float32
        )
        if self._stats is None:
            out, sq, mean = _compute(pid, out, *self._stat_graphs())
            self._stats = (float(sq), float(mean))
        else:
            (out,) = _compute(pid, out)
        _record(self, "matmat")
        return np.ascontiguousarray(out)

    def _stat_graphs(self):
        # Per-chunk float64 sums of x and x**2, each chunk read once in its own dtype.
        X = self._raw
        sums = X.map_blocks(
            _chunk_stats, chunks=((1,) * X.numblocks[0], (1,) * X.numblocks[1], (2,)),
            new_axis=2, dtype=np.float64,
        ).sum(axis=(0, 1))
        return sums[1], sums[0] / max(1, X.size)

    def stats(self):
        """``(||X||_F^2, mean(X))`` in float64 (one streamed pass, the first time only).

        Returns
        -------
        tuple of float

        Examples
        --------
        >>> import dask.array as da
        >>> from stemnmf_hs.decomposition import DaskOperator
        >>> DaskOperator(da.ones((4, 3), chunks=(2, 3))).stats()
        (12.0, 1.0)
        """
        if self._stats is None:
            import dask

            sq, mean = dask.compute(*self._stat_graphs())
            self._stats = (float(sq), float(mean))
            _record(self, "stats")
        return self._stats


class SketchedOperator(DataOperator):
    """The rank-``l`` sketch ``X ~= Q B`` of a data matrix (``Q`` orthonormal columns).

    Made by :func:`sketch`.  A fit on a sketch iterates against ``Q B`` and scores, refines
    and polishes against :attr:`exact`.

    Parameters
    ----------
    Q : numpy.ndarray
        ``(N, l)`` float32, orthonormal columns spanning the dominant range of ``X``.
    B : numpy.ndarray
        ``(l, F)`` float32, ``Q^T X``.
    exact : InMemoryOperator or DaskOperator
        The data themselves, for statistics and the final exact products.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator, sketch
    >>> X = np.outer(np.arange(1, 5), np.arange(1, 4)).astype(np.float32)  # rank one
    >>> sk = sketch(as_operator(X), 1, 1, np.random.RandomState(0))
    >>> sk.rank, sk.is_sketch
    (1, True)
    >>> np.allclose(sk.Q @ sk.B, X, atol=1e-4)
    True
    """

    def __init__(self, Q, B, exact):
        super().__init__(exact.shape)
        self.Q = Q
        self.B = B
        self._exact = exact
        self.rank = int(Q.shape[1])

    @property
    def exact(self):
        """The operator on the data themselves.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import as_operator, sketch
        >>> op = as_operator(np.ones((6, 5), np.float32))
        >>> sk = sketch(op, 2, 0, np.random.RandomState(0))
        >>> sk.exact is op, sk.lazy
        (True, False)
        """
        return self._exact

    @property
    def lazy(self):
        """Whether the underlying data are streamed (example: :attr:`exact`)."""
        return self._exact.lazy

    def _matmat(self, B):
        """``Q @ (B_sketch @ B)`` ~= ``X @ B``: ``(F, m)`` -> ``(N, m)``."""
        return self.Q @ (self.B @ B)

    def _rmatmat(self, Y):
        """``((Y^T @ Q) @ B_sketch)^T`` ~= ``X^T @ Y``: ``(N, m)`` -> ``(F, m)``."""
        return ((Y.T @ self.Q) @ self.B).T

    def stats(self):
        """``(||Q B||_F^2, mean(X))``: the sketch's energy and the data's mean.

        Returns
        -------
        tuple of float

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.decomposition import as_operator, sketch
        >>> X = np.ones((4, 3), np.float32)
        >>> [round(v, 4) for v in sketch(as_operator(X), 1, 0, np.random.RandomState(0)).stats()]
        [12.0, 1.0]
        """
        return (
            float(np.einsum("ij,ij->", self.B, self.B, dtype=np.float64)),
            self._exact.stats()[1],
        )


def _block_stats(op):
    """``(sum X**2, mean X)`` in float64 from the operator's row blocks, each read once
    (:func:`~._kernels.sum_and_squares`: float64 accumulation, no temporary)."""
    n, f = op.shape
    if n * f == 0:
        return 0.0, 0.0
    sq = total = 0.0
    for _, x in op.blocks():
        s, q = sum_and_squares(x)
        total += s
        sq += q
    return sq, total / (n * f)


def _compute(pid, *graphs):
    """``dask.compute(*graphs)`` of product ``pid``; on any exception (Ctrl-C) the chunk
    tasks of ``pid`` still running stop at their next row block.

    BLAS runs single-threaded meanwhile: the chunks are the parallelism (dask's threads or
    workers, whose BLAS is single-threaded too), and OpenBLAS's sums depend on its thread
    count (4.7e-7 relative on a chunk product), so the threaded scheduler and a
    ``dask.distributed`` cluster then compute the same numbers."""
    import dask

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return dask.compute(*graphs)
    except BaseException:
        _CANCELLED.add(pid)
        raise


def is_dask(X):
    """Whether ``X`` is a ``dask.array.Array`` (``False`` when dask is not importable).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import is_dask
    >>> is_dask(da.zeros(3)), is_dask(np.zeros(3))
    (True, False)
    """
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(X, da.Array)


def check_dask_matrix(X, name="X"):
    """Shape and dtype checks of a dask data matrix, and one streamed value check.

    Unsigned-integer and boolean data need no pass; float or signed data are checked for
    non-finite and negative values in a single pass (min and max together).

    Parameters
    ----------
    X : dask.array.Array
        ``(N, F)`` data.
    name : str
        How error messages name ``X``.

    Returns
    -------
    dask.array.Array
        ``X`` itself.

    Raises
    ------
    ValueError
        On a shape other than 2D, a non-real dtype, NaN/inf or negative values.

    Examples
    --------
    >>> import dask.array as da
    >>> from stemnmf_hs.decomposition import check_dask_matrix
    >>> check_dask_matrix(da.ones((2, 2)) - 2)
    Traceback (most recent call last):
    ...
    ValueError: Negative values in data passed to X (minimum -1).
    """
    import dask

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2D (n_samples, n_features); got shape {X.shape}.")
    if X.dtype.kind not in "uifb":
        raise ValueError(f"{name} must hold real numbers; got dtype {X.dtype}.")
    if X.dtype.kind in "ub":
        return X
    # min and max in one pass: NaN propagates into both, inf shows in one of them.
    vmin, vmax = (float(v) for v in dask.compute(X.min(), X.max()))
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise ValueError(f"{name} holds NaN or infinite values (min {vmin}, max {vmax}).")
    if vmin < 0:
        raise ValueError(f"Negative values in data passed to {name} (minimum {vmin:g}).")
    return X


def as_operator(X, *, check_values=True, name="X"):
    """The data operator of ``X``: what :meth:`ConstrainedNMF.fit` accepts prepared.

    Parameters
    ----------
    X : array_like, dask.array.Array or DataOperator
        ``(N, F)`` non-negative data.  An operator is returned as it is.
    check_values : bool, default True
        Check the values (finite, non-negative): one pass over the data (a streamed one for
        dask).  ``False`` when the caller has checked them already.
    name : str
        How error messages name ``X``.

    Returns
    -------
    DataOperator
        :class:`DaskOperator` for a dask array, otherwise :class:`InMemoryOperator` on a
        float32 C-contiguous array (no copy when ``X`` is one).

    Raises
    ------
    ValueError
        On a shape other than 2D, NaN/inf or negative values.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> op = as_operator(np.ones((4, 3)))
    >>> type(op).__name__, op.shape, op.dtype
    ('InMemoryOperator', (4, 3), dtype('float32'))
    >>> as_operator(op) is op
    True
    """
    if isinstance(X, DataOperator):
        return X
    if is_dask(X):
        return DaskOperator(check_dask_matrix(X, name) if check_values else X)
    X = check_array(X, dtype=np.float32, order="C", ensure_all_finite=check_values,
                    input_name=name)
    if check_values:
        check_non_negative(X, name)
    return InMemoryOperator(X)


def sketch_rank(compression, k, shape):
    """Sketch rank ``l`` of a ``compression`` setting for ``k`` components of ``shape`` data.

    Parameters
    ----------
    compression : {"auto"} or int or None
        ``None``: no sketch; ``"auto"``: ``min(k + 10, min(shape))``; an int: that rank.
    k : int
        Number of components.
    shape : tuple of int
        ``(N, F)``.

    Returns
    -------
    int or None

    Raises
    ------
    ValueError
        If an int rank lies outside ``[k, min(shape)]``.

    Examples
    --------
    >>> from stemnmf_hs.decomposition import sketch_rank
    >>> sketch_rank("auto", 3, (100, 50)), sketch_rank(None, 3, (100, 50))
    (13, None)
    """
    if compression is None:
        return None
    limit = min(shape)
    if compression == "auto":
        return min(k + 10, limit)
    rank = int(compression)
    if not k <= rank <= limit:
        raise ValueError(
            f"compression={rank} is not a usable sketch rank: it must lie between "
            f"n_components={k} and min(n_samples, n_features)={limit}. Use "
            "compression='auto' (k + 10) or None for the exact mode."
        )
    return rank


def sketch(data, rank, n_power_iter, rng):
    """Randomized range sketch ``X ~= Q (Q^T X)`` of a data operator.

    Parameters
    ----------
    data : InMemoryOperator or DaskOperator
        ``(N, F)`` data.
    rank : int
        Sketch rank ``l`` (columns of ``Q``), ``1 <= l <= min(N, F)``.
    n_power_iter : int
        Power (subspace) iterations; each costs two passes over the data.
    rng : numpy.random.RandomState
        Source of the Gaussian test matrix.

    Returns
    -------
    SketchedOperator
        With ``Q`` ``(N, l)`` and ``B = Q^T X`` ``(l, F)``, float32.

    Notes
    -----
    Halko, Martinsson & Tropp, SIAM Rev. 53, 217 (2011), Algorithm 4.4 (randomized subspace
    iteration, re-orthonormalized after every product).  Written on ``data.matmat`` /
    ``data.rmatmat`` rather than with :func:`sklearn.utils.extmath.randomized_range_finder`
    (which only takes in-memory arrays) or :func:`dask.array.linalg.compression_matrix`
    (dask only), so in-memory and dask data get the same sketch from the same seed and a
    dask matrix is streamed: ``2 + 2 n_power_iter`` passes in all, counting ``B``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator, sketch
    >>> sk = sketch(as_operator(np.ones((6, 5))), 2, 1, np.random.RandomState(0))
    >>> sk.Q.shape, sk.B.shape
    ((6, 2), (2, 5))
    """
    F = data.shape[1]
    omega = rng.standard_normal(size=(F, int(rank))).astype(np.float32)
    with _stage("sketch"):
        Q = _orthonormal(data.matmat(omega))
        for _ in range(int(n_power_iter)):
            Z = _orthonormal(data.rmatmat(Q))
            Q = _orthonormal(data.matmat(Z))
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        B = np.ascontiguousarray(data.rmatmat(Q).T, dtype=np.float32)
    return SketchedOperator(Q, B, data)


def _orthonormal(Y):
    """Orthonormal basis of the columns of ``Y`` (economic QR, float32).

    Single-threaded: right after a large product OpenBLAS's worker threads still spin, and
    a multithreaded Householder QR of a tall ``(n, l)`` panel then runs 2-4x slower (e.g.
    75 ms instead of 18 ms for 16384 x 70 on 2 cores).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        q, _ = scipy.linalg.qr(Y, mode="economic", check_finite=False)
    return np.ascontiguousarray(q, dtype=np.float32)


def k_component_loss(data, reconstruction, return_error=False):
    """K-component loss: the mean absolute reconstruction error of one NMF.

    ``L = 1 / (M N) sum_ij |V(i, j) - V'(i, j)|`` with ``V`` the data and ``V' = W H`` the
    reconstruction (Cao et al. 2025, "K-Component loss and image quality assessment", the
    equation of ``L_K-component``).  The one implementation in the package.

    Parameters
    ----------
    data : array_like, dask.array.Array or DataOperator
        ``(n_navigation, n_signal)`` (or, with an array ``reconstruction``, any shape) data
        ``V``.  A sketch is scored against its exact data.
    reconstruction : array_like, dask.array.Array, tuple or list of tuples
        Same shape: ``maps @ components`` of the NMF with ``k`` components; or the pair
        ``(maps, components)`` (``(N, k)``, ``(k, F)``), whose product is then formed block
        by block (streamed chunk by chunk for dask data) and never held whole; or a list of
        such pairs (the fits of a k sweep), all scored in one pass over the data.
    return_error : bool, default False
        Also return the Frobenius error ``||V - V'||_F`` from the same pass over the data
        (the k sweep records both without reading a lazy scan twice).

    Returns
    -------
    float or numpy.ndarray
        Mean absolute error, in the data's unit per pixel (e.g. electrons); ``(n_fits,)``
        for a list of pairs.
    float or numpy.ndarray
        With ``return_error``: the Frobenius error, in the data's unit.

    Raises
    ------
    ValueError
        If the shapes differ or the result is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import k_component_loss
    >>> V = np.ones((2, 3))
    >>> k_component_loss(V, np.zeros((2, 3)))
    1.0
    >>> k_component_loss(V, (np.ones((2, 1)), np.full((1, 3), 0.5)), return_error=True)
    (0.5, 1.224744871391589)
    >>> k_component_loss(V, [(np.ones((2, 1)), np.full((1, 3), k)) for k in (0.5, 1.0)])
    array([0.5, 0. ])
    """
    many = isinstance(reconstruction, list)
    if many:
        maps = np.concatenate([np.asarray(m, dtype=np.float32) for m, _ in reconstruction], 1)
        components = [np.ascontiguousarray(c, dtype=np.float32) for _, c in reconstruction]
        if sum(c.shape[0] for c in components) != maps.shape[1]:
            raise ValueError("every (maps, components) pair needs as many maps as components.")
        reconstruction = (maps, components)
    op = None
    if isinstance(data, DataOperator):
        data = op = data.exact
        if not isinstance(data, InMemoryOperator) or not isinstance(reconstruction, tuple):
            data = data.X  # dask matrix, or an array to subtract a whole reconstruction from
    if isinstance(reconstruction, tuple):
        maps, components = reconstruction
        last = components[-1] if isinstance(components, list) else components
        rec_shape = (np.shape(maps)[0], np.shape(last)[1])
    else:
        rec_shape = np.shape(reconstruction)
    if np.shape(data) != rec_shape:
        raise ValueError(
            f"data {np.shape(data)} and reconstruction {rec_shape} differ in "
            "shape; reconstruct with maps @ components of the same unfolded data."
        )
    if not isinstance(reconstruction, tuple):
        residual = (data.astype(np.float64) if is_dask(data)
                    else np.asarray(data, dtype=np.float64)) - reconstruction
        sums = [abs(residual).sum(), (residual ** 2).sum()]
        if is_dask(residual):
            import dask

            sums = dask.compute(*sums)
    elif is_dask(data):
        sums = _streamed_residual_sums(data, maps, components)
    else:
        if not isinstance(data, InMemoryOperator):
            data = InMemoryOperator(np.asarray(data))
        maps = np.asarray(maps, dtype=np.float32)
        if not isinstance(components, list):
            components = np.asarray(components, dtype=np.float32)
        sums = sum(_chunk_residual_sums(x, maps[s:s + x.shape[0]], components)[0]
                   for s, x in data.blocks())
    with _stage("loss"):
        _record(op, "loss")
    sums = np.asarray(sums, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(sums).all():
        raise ValueError("the K-component loss is not finite: the data or the "
                         "reconstruction contain NaN or infinite values.")
    value = sums[:, 0] / max(int(np.prod(np.shape(data))), 1)
    error = np.sqrt(sums[:, 1])
    if not many:
        value, error = float(value[0]), float(error[0])
    return (value, error) if return_error else value


def _streamed_residual_sums(X, maps, components):
    """``(sum |X - maps @ components|, sum (X - maps @ components)**2)`` over a dask ``X``
    (per fit for a list of ``components``: ``(2 n_fits,)``), one streamed pass."""
    import dask.array as da

    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    M = da.from_array(np.ascontiguousarray(maps, dtype=np.float32),
                      chunks=(X.chunks[0], -1))
    D = (components if isinstance(components, list)
         else np.ascontiguousarray(components, dtype=np.float32))
    n_fits = len(D) if isinstance(D, list) else 1
    pid = next(_PRODUCT_IDS)
    res = da.map_blocks(_chunk_residual_sums, X, M, D, pid,
                        chunks=((1,) * X.numblocks[0], (2 * n_fits,)), dtype=np.float64)
    return _compute(pid, res.sum(axis=0))[0]
