"""The monotone solver (``solver="hals"``): one objective, and updates that never raise it.

The paper's protocol ("solve, clip, project", Kimoto et al. 2025, steps 3-6) is not a descent
method: the projections move the factors away from the least-squares step, and its error can
rise between iterations (the paper's Fig. 7 shows limit cycles).  This solver states the
objective each constraint belongs to and uses updates that cannot increase it.

Objective, per restart, with maps ``M`` ``(N, k)`` and diffractions ``D`` ``(k, F)``::

    J(M, D) = ||B X - M D||_F^2  +  lam * sum_{j in S} ||m_j||^2 * ||[d_j]_W - d_j||^2

* ``B`` is ``[.]_H`` as a linear operator on the scan: the normalized convolution of every
  pattern's intensity with the resolution kernel over the probe positions.  Blurring a map
  after each least-squares solve (the paper's ``[.]_H``) equals solving against the blurred
  data, ``B (X D^T (D D^T)^-1) = (B X) D^T (D D^T)^-1``, so fitting ``B X`` is the objective
  the map constraint belongs to: features finer than the probe are noise.
* ``[.]_W`` is the paper's continuity projection; its squared distance is a penalty on the
  components ``S`` it is meant for: by default only the ring-like (amorphous) ones, since
  real crystal diffractions carry diffuse intensity between their spots that the projection
  would turn into a ring baseline.  ``||m_j||^2`` makes the penalty invariant to the scale
  exchanged between ``m_j`` and ``d_j`` (the unit-sum normalization leaves ``J`` unchanged).

Updates (hierarchical alternating least squares, Cichocki & Phan 2009, IEICE Trans.
Fundamentals E92-A, 708; Gillis & Glineur 2012, Neural Comput. 24, 1085 for repeated inner
sweeps):

* diffractions: HALS sweeps; a penalized row takes, of its current value, its HALS update,
  the projection ``[.]_W`` of that update and the point halfway, the one with the lowest
  ``J`` (exactly computable per row), so ``J`` cannot rise;
* maps: HALS columns, each the exact minimizer of ``J`` in that column (the penalty adds
  ``lam * ||[d_j]_W - d_j||^2`` to its curvature).

The HALS sweeps (every pixel, every probe position independent), the float64 dot products of
the objective checks and the scan blur of a separable kernel run as compiled kernels
(:mod:`._kernels`); the ``k x k`` Grams of the current factors are carried from one
iteration to the next rather than recomputed.

:func:`fit_monotone` runs the whole default fit (initialization by the paper's ALS, the
monotone iterations, the refinement of compressed mode, the uniqueness rule of
:mod:`._uniqueness`); the estimator only calls it.  Over 600 lines as one topic: the default
solver and its objective's operators.

Math module: arrays and data operators in, arrays out.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from ._kernels import (
    correlate_separable,
    dot_rows,
    hals_rows,
    l1_rows,
    separable_factors,
)
from ._operators import sketch
from ._solver import fit_batched, lap, progress
from ._uniqueness import remove_shared_rings

#: Standard errors of the noise-aware uniqueness rule (``unique_components="noise"``).
NOISE_Z = 2.0

_CONTROLLER = []


def _serial_blas():
    """Context: BLAS on one thread for the row-by-row updates (small products).

    Hundreds of small products per iteration: OpenBLAS's threads only spin on them, and on
    a loaded machine that spinning made a sweep 10x slower (260 s instead of 23 s).  One
    :class:`threadpoolctl.ThreadpoolController` is made once (its library scan takes ms).
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")

__all__ = ["ScanBlur", "azimuthal_variation", "fit_hals", "fit_monotone", "product_change",
           "remove_shared_rings"]

_EPS = np.finfo(np.float32).eps


class ScanBlur:
    """``[.]_H`` as a linear operator ``B`` on ``(N, m)`` stacks over the scan, with adjoint.

    Normalized convolution (weights falling outside the scan or on masked positions are
    dropped and the rest renormalized), as :func:`~stemnmf_hs.decomposition._constraints.
    smooth_maps`, but linear: no clipping.

    Parameters
    ----------
    navigation_shape : tuple of int
        ``(ny, nx)`` scan shape, probe positions.
    kernel : numpy.ndarray
        ``(ky, kx)`` kernel summing to 1.
    valid : numpy.ndarray of bool, optional
        ``(ny, nx)``, ``True`` at the ``N`` positions present.

    Examples
    --------
    >>> import numpy as np
    >>> B = ScanBlur((4, 4), np.full((3, 3), 1 / 9))
    >>> y = np.ones((16, 2), np.float32)
    >>> bool(np.allclose(B.apply(y), 1))
    True
    >>> a, b = np.random.default_rng(0).random((2, 16, 1)).astype(np.float32)
    >>> bool(np.isclose((B.apply(a) * b).sum(), (a * B.adjoint(b)).sum(), rtol=1e-5))
    True
    """

    def __init__(self, navigation_shape, kernel, valid=None):
        self.shape = tuple(int(n) for n in navigation_shape)
        self.kernel = np.asarray(kernel, dtype=np.float32)
        self.valid = None if valid is None else np.asarray(valid, dtype=bool)
        ones = np.ones(self.shape, np.float32) if self.valid is None else \
            self.valid.astype(np.float32)
        den = ndimage.convolve(ones, self.kernel, mode="constant")
        inv = np.divide(1.0, den, out=np.zeros_like(den), where=den > 0)
        self._inv = inv.ravel() if self.valid is None else inv[self.valid]
        self._inv_grid = inv if self.valid is None else np.where(self.valid, inv, 0)
        # A separable kernel (the Gaussians): two 1D passes, 15x faster than ndimage's 2D.
        self._sep = separable_factors(kernel)

    def _grid(self, Y):
        m = Y.shape[1]
        if self.valid is None:
            return Y.reshape(self.shape + (m,))
        g = np.zeros(self.shape + (m,), Y.dtype)
        g[self.valid] = Y
        return g

    def _flat(self, g):
        return g.reshape(-1, g.shape[-1]) if self.valid is None else g[self.valid]

    def apply(self, Y):
        """``B Y`` for ``Y`` ``(N, m)``: ``(N, m)`` float32.

        Examples
        --------
        >>> import numpy as np
        >>> B = ScanBlur((1, 3), np.array([[0.25, 0.5, 0.25]]))
        >>> B.apply(np.array([[0.], [4.], [0.]])).ravel().tolist()
        [1.3333333730697632, 2.0, 1.3333333730697632]
        """
        Y = np.asarray(Y, np.float32)
        if self._sep is not None:  # a convolution: the correlation with reversed factors
            g = correlate_separable(self._grid(Y), self._sep[0][::-1], self._sep[1][::-1],
                                    self._inv_grid)
            return self._flat(g)
        g = ndimage.convolve(self._grid(Y), self.kernel[:, :, None], mode="constant")
        return self._flat(g) * self._inv[:, None]

    def adjoint(self, Y):
        """``B^T Y`` for ``Y`` ``(N, m)``: ``(N, m)`` float32.

        Examples
        --------
        >>> import numpy as np
        >>> B = ScanBlur((1, 3), np.array([[0.25, 0.5, 0.25]]))
        >>> B.adjoint(np.array([[0.], [4.], [0.]])).ravel().tolist()
        [1.0, 2.0, 1.0]
        """
        Y = np.asarray(Y, np.float32) * self._inv[:, None]
        if self._sep is not None:
            return self._flat(correlate_separable(self._grid(Y), *self._sep))
        g = ndimage.correlate(self._grid(Y), self.kernel[:, :, None], mode="constant")
        return self._flat(g)


class _BlurredData:
    """The products of ``B X`` from those of ``X``: ``(B X) A = B (X A)``,
    ``(B X)^T Y = X^T (B^T Y)``; the products of ``X`` itself are kept for the raw error."""

    def __init__(self, data, blur):
        self.data = data
        self.blur = blur
        self.shape = data.shape

    def matmat(self, A):
        """``((B X) A, X A)``: ``A`` ``(F, m)`` -> two ``(N, m)`` float32 arrays (blurred and raw)."""
        raw = self.data.matmat(A)
        return raw if self.blur is None else self.blur.apply(raw), raw

    def rmatmat(self, Y):
        """``(B X)^T Y = X^T (B^T Y)``: ``Y`` ``(N, m)`` -> ``(F, m)`` float32."""
        return self.data.rmatmat(Y if self.blur is None else self.blur.adjoint(Y))


def _ring_stats(D, labels, n_rings):
    """Ring means ``(m, n_rings)`` of ``D`` ``(m, F)``."""
    m = D.shape[0]
    counts = np.bincount(labels, minlength=n_rings).astype(np.float64)
    rows = np.repeat(np.arange(m), D.shape[1])
    sums = np.bincount(rows * n_rings + np.tile(labels, m), weights=D.ravel(),
                       minlength=m * n_rings).reshape(m, n_rings)
    return sums / np.maximum(counts, 1)


def azimuthal_variation(D, labels):
    """Relative azimuthal variation of diffractions: ``||d - ring means||_2 / ||ring means||_2``.

    ``0`` for a rotationally symmetric (amorphous) diffraction, of order one for spot
    patterns.

    Parameters
    ----------
    D : numpy.ndarray
        ``(m, F)`` non-negative diffractions over the kept pixels.
    labels : numpy.ndarray of int
        ``(F,)`` ring index of every pixel (``RingBinning.labels``).

    Returns
    -------
    numpy.ndarray
        ``(m,)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([0, 0, 1, 1])
    >>> azimuthal_variation(np.array([[1., 1., 2., 2.], [2., 0., 0., 4.]]), labels).round(2)
    array([0., 1.])
    """
    D = np.asarray(D, np.float64)
    labels = np.asarray(labels)
    mu = _ring_stats(D, labels, int(labels.max()) + 1)[:, labels]
    return np.linalg.norm(D - mu, axis=1) / np.maximum(np.linalg.norm(mu, axis=1), 1e-300)


def ringlike_components(D, labels, factor=2.0, floor=0.1):
    """Indices of the ring-like (amorphous) diffractions of every restart: ``(R, k)`` bool.

    A component is ring-like when its :func:`azimuthal_variation` is at most
    ``max(factor * smallest, floor)`` of its restart: the most ring-like component always
    is, several amorphous components (large k) are too, spot patterns (variation ~1) and
    spot patterns on a halo (~0.15-0.3) are not.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([0, 0, 1, 1])
    >>> D = np.array([[[1., 1., 2., 2.], [2., 0., 0., 4.]]])
    >>> ringlike_components(D, labels)
    array([[ True, False]])
    """
    R, k, F = D.shape
    v = azimuthal_variation(D.reshape(R * k, F), labels).reshape(R, k)
    return v <= np.maximum(factor * v.min(axis=1, keepdims=True), floor)


def _hals_diffractions(D, MtX, MtM, sweeps, project_w=None, sel=None, penalty=0.0, P=None):
    """HALS sweeps: every row of ``D`` ``(R, k, F)`` in turn is the exact non-negative
    least-squares row given the others (Cichocki & Phan 2009, eq. 10).

    With ``project_w`` and the penalized rows ``sel`` ``(R, k)``, such a row minimizes
    ``a ||d||^2 - 2 b.d + penalty * a * ||[d]_W - d||^2`` (``a = (M^T M)_jj``, ``b`` the
    row's share of ``M^T X``) over the candidates: the current row, its HALS update, the
    projection of that update and the point halfway, so no row update raises ``J``.
    ``P`` ``(R, k, F)``: ``[D]_W`` when known (else computed).  Returns the rows and their
    projections (``None`` without ``project_w``; rows of no penalized component are not
    kept current there).
    """
    with _serial_blas():
        return _hals_diffraction_rows(D, MtX, MtM, sweeps, project_w, sel, penalty, P)


def _hals_diffraction_rows(D, MtX, MtM, sweeps, project_w, sel, penalty, P):
    """The sweeps of :func:`_hals_diffractions` (BLAS threads as the caller set them)."""
    D = np.array(D, dtype=np.float32, order="C")
    MtX = np.ascontiguousarray(MtX, dtype=np.float32)
    R, k, F = D.shape
    diag = np.maximum(np.einsum("rjj->rj", MtM), _EPS)
    if project_w is None or not sel.any():
        # Unpenalized rows only: every pixel is independent, one kernel call for all sweeps.
        hals_rows(D, MtM, MtX, diag, 0, k, sweeps)
        return D, (P if project_w is not None else None)
    P = (project_w(D.reshape(R * k, F)).reshape(R, k, F) if P is None else P.copy())
    penalized = np.flatnonzero(sel.any(axis=0))
    for _ in range(sweeps):
        start = 0
        for j in penalized:
            hals_rows(D, MtM, MtX, diag, start, j)  # the unpenalized rows before j
            start = j + 1
            b = MtX[:, j] - np.matmul(MtM[:, j:j + 1, :], D)[:, 0] + MtM[:, j, j:j + 1] * D[:, j]
            new = np.maximum(b / diag[:, j:j + 1], 0)
            a = diag[:, j].astype(np.float64)
            on = sel[:, j]
            # Candidates (4, R, F): the current row (its projection known), its HALS update,
            # the update's projection and the point halfway; three projections per row.
            p_new = project_w(new)
            half_new = 0.5 * (new + p_new)
            P2 = project_w(np.concatenate([p_new, half_new])).reshape(2, R, -1)
            cands = np.stack([D[:, j], new, p_new, half_new])
            proj = np.stack([P[:, j], p_new, P2[0], P2[1]])
            diff = proj - cands
            # float32 sums (3-4x faster than float64 ones here): a wrong choice between two
            # candidates within rounding of each other is caught by the float64 check of J
            # over the whole stack after the sweeps.
            dist = np.einsum("crf,crf->cr", diff, diff).astype(np.float64)
            quad = a * np.einsum("crf,crf->cr", cands, cands).astype(np.float64)
            lin = np.einsum("rf,crf->cr", b, cands).astype(np.float64)
            vals = quad - 2.0 * lin + penalty * a * np.where(on, dist, 0.0)
            best = vals.argmin(axis=0)
            D[:, j] = cands[best, np.arange(R)]
            P[:, j] = proj[best, np.arange(R)]
        hals_rows(D, MtM, MtX, diag, start, k)
    return D, P


def _hals_maps(M, XDt, DDt, extra, sweeps):
    """HALS columns of ``M`` ``(R, N, k)``: each the exact minimizer of
    ``||BX - M D||^2 + sum_j extra_j ||m_j||^2`` given the others (every probe position
    independent: the kernel of the diffraction rows on the transposed maps)."""
    den = np.maximum(np.einsum("rjj->rj", DDt) + extra, _EPS).astype(np.float32)
    Mt = np.ascontiguousarray(M.transpose(0, 2, 1), dtype=np.float32)
    hals_rows(Mt, DDt, np.ascontiguousarray(XDt.transpose(0, 2, 1), dtype=np.float32), den,
              0, M.shape[2], sweeps)
    return np.ascontiguousarray(Mt.transpose(0, 2, 1))


def fit_hals(data, k, *, blur=None, project_w=None, ring_labels=None, penalty=1.0,
             continuity_components="ringlike", n_restarts=10, max_iter=500, tol=1e-4,
             rng=None, init_iter=10, inner_sweeps=2, init_maps=None, init_components=None,
             progress=None):
    """Fit every restart with the monotone solver and keep the lowest objective.

    Parameters
    ----------
    data : DataOperator
        ``X`` ``(N, F)`` (``matmat``/``rmatmat``/``stats``).
    k : int
        Number of components.
    blur : ScanBlur, optional
        ``B`` of the map constraint; ``None``: no map constraint.
    project_w : callable, optional
        ``[.]_W`` on ``(m, F)`` stacks; ``None``: no diffraction constraint.
    ring_labels : numpy.ndarray of int, optional
        ``(F,)`` ring index per pixel (needed with ``continuity_components="ringlike"``).
    penalty : float, default 1.0
        ``lam`` of the continuity penalty (dimensionless: relative to the fit term of the
        same component).
    continuity_components : {"ringlike", "all"}
        Components ``S`` the continuity penalty acts on, chosen after the initialization.
    n_restarts, max_iter, tol
        Restarts (iterated together), iterations, and the stopping rule of the paper: for
        every restart, the L1 changes of the diffractions and of the maps over an iteration,
        relative to their L1 norms, both below ``tol`` (``0``: run ``max_iter``).
    rng : numpy.random.RandomState
    init_iter : int, default 10
        Unpenalized HALS iterations of the initialization (random maps, then these), after
        which ``S`` is fixed; they are not part of ``history``.
    inner_sweeps : int, default 2
        HALS sweeps per factor per iteration (cheap next to the products with the data).
    init_maps : numpy.ndarray, optional
        ``(N, k)`` warm start of the first restart.
    init_components : numpy.ndarray, optional
        ``(k, F)`` diffractions of the warm start (with ``init_maps``): the unpenalized
        initialization iterations are then skipped.
    progress : callable, optional
        Wraps the iteration range (a progress bar).

    Returns
    -------
    maps : numpy.ndarray
        ``(N, k)`` float32 of the kept restart.
    components : numpy.ndarray
        ``(k, F)`` float32, unit sum.
    info : dict
        ``n_iter``, ``restart_objectives`` ``(R,)``, ``restart_errors`` ``(R,)`` (raw
        Frobenius error against ``X``), ``history`` (``objective`` -- ``J`` relative to
        ``||B X||^2``, ``mse`` against ``X``, ``w_change``, ``h_change``), ``ringlike``
        ``(k,)`` bool.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(36, 2) @ rng.rand(2, 25)).astype(np.float32)
    >>> M, D, info = fit_hals(as_operator(X), 2, n_restarts=2, max_iter=50, rng=rng)
    >>> bool(np.all(np.diff(info["history"]["objective"]) <= 1e-6))
    True
    """
    args = dict(blur=blur, project_w=project_w, ring_labels=ring_labels, penalty=penalty,
                continuity_components=continuity_components, n_restarts=n_restarts,
                max_iter=max_iter, tol=tol, rng=rng, init_iter=init_iter,
                inner_sweeps=inner_sweeps, init_maps=init_maps,
                init_components=init_components, progress=progress)
    if data.is_sketch:  # every product is small: BLAS threads would only spin
        with _serial_blas():
            return _fit_hals(data, k, **args)
    return _fit_hals(data, k, **args)


def _fit_hals(data, k, *, blur, project_w, ring_labels, penalty, continuity_components,
              n_restarts, max_iter, tol, rng, init_iter, inner_sweeps, init_maps,
              init_components, progress):
    """The body of :func:`fit_hals`."""
    rng = np.random.RandomState(0) if rng is None else rng
    bdata = _BlurredData(data, blur)
    N, F = data.shape
    R = n_restarts
    X2, mean = data.stats()
    # ||B X||^2 is only an offset of J; it is measured from the products at the end so that
    # the history is relative to it (one extra pass is avoided for unblurred data).
    scale = np.sqrt(max(mean, _EPS) / k)
    M = (rng.random_sample((R, N, k)) * scale).astype(np.float32)
    if init_maps is not None:
        M[0] = np.maximum(np.asarray(init_maps, np.float32), 0)
    D = np.zeros((R, k, F), np.float32)
    if init_components is not None:
        D[0] = np.maximum(np.asarray(init_components, np.float32), 0)
        init_iter = 0

    def products_t(M):
        """``M^T (B X)`` of every restart: ``M`` ``(R, N, k)`` -> ``(R, k, F)``."""
        mt = M.transpose(0, 2, 1).reshape(R * k, N).T
        return np.ascontiguousarray(bdata.rmatmat(mt).T).reshape(R, k, F)

    def products(D):
        """``(B X) D^T`` and ``X D^T`` of every restart: ``D`` ``(R, k, F)`` -> two ``(R, N, k)``."""
        b, raw = bdata.matmat(D.reshape(R * k, F).T)
        tr = lambda a: np.ascontiguousarray(a.reshape(N, R, k).transpose(1, 0, 2))
        return tr(b), tr(raw)

    def gram(Dc):
        """``D D^T`` of every restart in float64 ``(R, k, k)``."""
        D64 = Dc.astype(np.float64)
        return D64 @ D64.transpose(0, 2, 1)

    def fit_terms(MtX, MtM, Dc, G):
        """Fit term ``||B X - M D||^2 - ||B X||^2`` per restart ``(R,)`` float64 from the
        products (``G``: ``gram(Dc)``)."""
        quad = np.einsum("rij,rij->r", MtM, G)
        return quad - 2.0 * dot_rows(MtX, Dc)  # J minus ||B X||^2

    sel = np.zeros((R, k), bool)
    use_w = project_w is not None

    def distances(Dc, P=None):
        """``||[d_j]_W - d_j||^2`` on the penalized rows ``(R, k)`` (``P`` ``(R, k, F)``:
        ``[Dc]_W`` where known) and ``[Dc]_W`` (zero on the other rows: never read)."""
        if not use_w or not sel.any():
            return np.zeros((R, k)), None
        if P is None:
            P = np.zeros_like(Dc)
            P[sel] = project_w(Dc[sel])
        diff = P[sel] - Dc[sel]
        d = np.zeros((R, k))
        d[sel] = np.einsum("sf,sf->s", diff, diff, dtype=np.float64)
        return d, P

    def objective_w(MtX, MtM, Dc, dist, G):
        """``J - ||B X||^2`` per restart ``(R,)`` for diffractions ``Dc`` ``(R, k, F)`` at
        the current maps, their penalized distances ``dist`` ``(R, k)`` and ``gram(Dc)``
        given."""
        return fit_terms(MtX, MtM, Dc, G) + penalty * (np.einsum("rjj->rj", MtM) * dist).sum(1)

    def normalize(D, M):
        """Unit-sum rows of ``D`` ``(R, k, F)``, the inverse factor on ``M`` ``(R, N, k)``
        (``J`` unchanged), and the row sums ``(R, k)``."""
        s = D.sum(axis=2)
        s = np.where(s > 0, s, 1).astype(np.float32)
        return D / s[:, :, None], M * s[:, None, :], s

    # Initialization: unpenalized HALS iterations from random maps, then fix S.
    for _ in range(init_iter):
        MtX = products_t(M)
        D = _hals_diffractions(D, MtX, M.transpose(0, 2, 1) @ M, 1)[0]
        D, M, _ = normalize(D, M)
        XDt, _ = products(D)
        M = _hals_maps(M, XDt, D @ D.transpose(0, 2, 1), 0.0, 1)
    if use_w:
        if continuity_components == "all" or ring_labels is None:
            sel[:] = True
        else:
            sel[:] = ringlike_components(D, ring_labels)

    hist = np.full((max_iter, 4, R), np.nan)
    n_iter = 0
    iterations = range(max_iter) if progress is None else progress(range(max_iter))
    dist, P = distances(D)  # [D]_W carried from one iteration to the next
    M64 = M.astype(np.float64)
    MtM = M64.transpose(0, 2, 1) @ M64  # of the current maps, carried over as well
    G = gram(D)  # D D^T in float64, carried over as well
    for it in iterations:
        MtX = products_t(M)
        Du, Pu = _hals_diffractions(D, MtX, MtM.astype(np.float32), inner_sweeps,
                                    project_w if use_w else None, sel, penalty, P)
        # Row by row the update cannot raise J; the whole-stack check guards the rounding.
        Gu = gram(Du)
        vals = np.stack([objective_w(MtX, MtM, Du, distances(Du, Pu)[0], Gu),
                         objective_w(MtX, MtM, D, dist, G)])
        best = vals.argmin(axis=0)
        D_new = np.where((best == 0)[:, None, None], Du, D)
        D_new, M, sums = normalize(D_new, M)
        XDt, XDt_raw = products(D_new)
        # The Gram of the normalized rows from the kept rows' Gram instead of a second
        # product (a fifth of an iteration at k = 30): the float32 rounding of D / s is
        # independent from pixel to pixel and averages out in the sums (~1e-9 relative).
        s64 = sums.astype(np.float64)
        G = np.where((best == 0)[:, None, None], Gu, G) / (s64[:, :, None] * s64[:, None, :])
        dist, P = distances(D_new)
        M_new = _hals_maps(M, XDt, G.astype(np.float32), penalty * dist, inner_sweeps)
        M64 = M_new.astype(np.float64)
        MtM = M64.transpose(0, 2, 1) @ M64
        quad = np.einsum("rij,rij->r", MtM, G)
        J = quad - 2.0 * dot_rows(M_new, XDt) + penalty * (np.einsum("rjj->rj", MtM) * dist).sum(1)
        raw = X2 - 2.0 * dot_rows(M_new, XDt_raw) + quad
        hist[it, 0] = J
        hist[it, 1] = np.maximum(raw, 0) / (N * F)
        # As in the paper's history, no W change at the first iteration (its predecessor is
        # the initialization's).
        hist[it, 2] = l1_rows(D_new, D) if it else np.nan
        hist[it, 3] = l1_rows(M_new, M)
        D, M = D_new, M_new
        n_iter = it + 1
        if tol > 0 and it > 0:
            # The paper's convergence quantities (step 7): L1 changes of W and H relative to
            # their L1 norms (unit-sum diffractions: ||W||_1 = k), for every restart.
            rel_w = hist[it, 2] / k
            rel_h = hist[it, 3] / np.maximum(np.abs(M).reshape(R, -1).sum(1), _EPS)
            if (rel_w < tol).all() and (rel_h < tol).all():
                break
    hist = hist[:n_iter]
    J_final = hist[-1, 0]
    best = int(np.argmin(J_final))
    # ||B X||^2 for reporting J as a relative objective: at a stationary point of the
    # unpenalized fit, ||B X||^2 >= ||M D||^2; use the raw data norm, which bounds it (B
    # averages), so that the reported values stay positive and comparable across runs.
    objective = (hist[:, 0, best] + X2) / max(X2, _EPS)
    history = {
        "objective": objective,
        "mse": hist[:, 1, best].copy(),
        "w_change": hist[:, 2, best].copy(),
        "h_change": hist[:, 3, best].copy(),
    }
    info = {
        "n_iter": n_iter,
        "restart_objectives": J_final,
        "restart_errors": np.sqrt(hist[-1, 1] * N * F),
        "history": history,
        "ringlike": sel[best].copy(),
    }
    return M[best], D[best], info


def fit_monotone(data, k, *, rank, project_w, project_h, rng, n_restarts=10, max_iter=500,
                 tol=1e-4, init_iter=50, refine_iter=5, power_iterations=2, penalty=1.0,
                 continuity_components="ringlike", unique=None, init_maps=None,
                 show_progressbar=False):
    """The default solver: initialization, monotone iterations, refinement, uniqueness.

    1. ``rank`` given: sketch the data (compressed mode; :func:`~stemnmf_hs.decomposition.
       _operators.sketch`).
    2. ``init_iter`` iterations of the paper's ALS over all restarts
       (:func:`~stemnmf_hs.decomposition._solver.fit_batched`); the restart with the lowest
       error (against the sketch in compressed mode: no pass over the data) continues
       (``init_iter=0``: every restart runs :func:`fit_hals` from random maps).
    3. :func:`fit_hals` (``max_iter`` monotone iterations; on the sketch in compressed mode,
       then ``refine_iter`` on the data).
    4. ``unique`` (``None``: ``"noise"`` when the continuity constraint is on):
       :func:`remove_shared_rings` with the ring-median rule (``"noise"``: its noise-aware
       form, ``noise_z=NOISE_Z``);
       ``info["uniqueness_change"]`` is the relative change of
       ``maps @ components`` (:func:`product_change`).
    5. Components sorted by the L2 norm of their maps (the paper's step 9).

    Parameters
    ----------
    data : DataOperator
        ``(N, F)``.
    k : int
    rank : int or None
        Sketch rank (compressed mode) or ``None``.
    project_w : DiffractionProjection
        ``[.]_W`` (its ``binning`` is ``None`` without the continuity constraint).
    project_h : MapProjection
        ``[.]_H`` (its ``shape`` is ``None`` without the map constraint).
    rng : numpy.random.RandomState
    n_restarts, max_iter, tol, init_iter, refine_iter, power_iterations, penalty,
    continuity_components, unique, init_maps, show_progressbar
        As the parameters of :class:`~stemnmf_hs.ConstrainedNMF`.

    Returns
    -------
    maps : numpy.ndarray
        ``(N, k)`` float32.
    components : numpy.ndarray
        ``(k, F)`` float32, unit sum.
    info : dict
        ``n_iter``, ``error`` (Frobenius, against the data), ``restart_errors``,
        ``history``, ``timings``, ``ringlike`` ``(k,)`` and ``uniqueness_change``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> from stemnmf_hs.decomposition._constraints import (
    ...     make_diffraction_projection, make_map_projection)
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(36, 2) @ rng.rand(2, 25)).astype(np.float32)
    >>> pw = make_diffraction_projection(None, 25)
    >>> ph = make_map_projection("smooth", 36, navigation_shape=(6, 6))
    >>> M, D, info = fit_monotone(as_operator(X), 2, rank=None, project_w=pw,
    ...                           project_h=ph, rng=rng, n_restarts=2, max_iter=20,
    ...                           init_iter=5)
    >>> M.shape, D.shape, bool(np.all(np.diff(info["history"]["objective"]) <= 1e-7))
    ((36, 2), (2, 25), True)
    """
    timings = dict.fromkeys(("init", "sketch", "iterations", "scoring", "refinement",
                             "polish"), 0.0)
    t0 = time.perf_counter()
    binning = project_w.binning
    blur = None
    if project_h.shape is not None:
        blur = ScanBlur(project_h.shape, project_h.kernel, project_h.valid)
    common = dict(
        blur=blur,
        project_w=None if binning is None else project_w,
        ring_labels=None if binning is None else binning.labels,
        penalty=penalty,
        continuity_components=continuity_components,
    )
    work = data
    if rank is not None:
        work = sketch(data, rank, power_iterations, rng)
        t0 = lap(timings, "sketch", t0)
    # Initialization: the paper's protocol for a few iterations over every restart (it
    # explores well, and its maps are best early on: issue 13), keeping the restart with
    # the lowest error; then the monotone iterations continue that restart.
    bar = (lambda it: progress(it, True)) if show_progressbar else None
    if init_iter == 0:  # every restart from random maps, monotone throughout
        maps, components, info = fit_hals(
            work, k, n_restarts=n_restarts, max_iter=max_iter, tol=tol,
            rng=rng, init_maps=init_maps, progress=bar, **common,
        )
    else:
        warm_maps, warm_components, warm = fit_batched(
            work, k, n_restarts=n_restarts, solver="als",
            max_iter=min(init_iter, max_iter), tol=0, project_w=project_w,
            project_h=project_h, rng=rng, init_maps=init_maps, refine_iter=0,
            show_progressbar=show_progressbar, score_on_data=False,
        )
        t0 = lap(timings, "init", t0)
        maps, components, info = fit_hals(
            work, k, n_restarts=1, max_iter=max_iter, tol=tol, rng=rng,
            init_maps=warm_maps, init_components=warm_components, progress=bar, **common,
        )
        info["history"]["init_mse"] = warm["history"]["mse"]
        info["restart_errors"] = warm["restart_errors"]
    t0 = lap(timings, "iterations", t0)
    if work.is_sketch and refine_iter > 0:
        hist0, n0 = info["history"], info["n_iter"]
        maps, components, info = fit_hals(
            work.exact, k, n_restarts=1, max_iter=refine_iter, tol=0, rng=rng,
            init_maps=maps, init_components=components, **common,
        )
        info["history"] = {key: np.concatenate([hist0[key], info["history"].get(key, [])])
                           for key in hist0}
        info["n_iter"] += n0
        t0 = lap(timings, "refinement", t0)
    ringlike = info["ringlike"]
    if unique is None:
        unique = "noise" if binning is not None else False
    change = 0.0
    if unique:
        if not ringlike.any() and binning is not None:
            ringlike = np.zeros(k, bool)
            ringlike[np.argmin(azimuthal_variation(components, binning.labels))] = True
        if ringlike.any():
            old = (maps, components)
            with _serial_blas():  # (k, k) Grams: threads would only spin
                components, maps, _ = remove_shared_rings(
                    components, maps, ringlike, quantile=0.5,
                    labels=None if binning is None else binning.labels,
                    noise_z=NOISE_Z if unique == "noise" else 0.0)
                change = product_change(old, (maps, components))
        t0 = lap(timings, "polish", t0)
    # Step 9 of the paper: sort by the L2 norm of the maps.
    order = np.argsort(-np.linalg.norm(maps.astype(np.float64), axis=0), kind="stable")
    info["ringlike"] = ringlike[order]
    info["uniqueness_change"] = change
    info["timings"] = timings
    n_samples, n_features = data.shape
    error = np.sqrt(info["history"]["mse"][-1] * n_samples * n_features)
    sketch_only = work.is_sketch and refine_iter == 0
    if sketch_only or change > 0:
        # The error of the final factors: after exact iterations, one pass over the data
        # when the uniqueness rule moved them; a fit that never read the data after its
        # sketch takes the cross term from the sketch and the data's energy (cached since
        # the first pass) -- within a fraction of a percent of the exact error, where the
        # sketch's own error leaves out the noise outside its range (8x too small on the
        # benchmark scan).  A k sweep gets the exact error from its loss pass.
        products = work if sketch_only else data.exact
        error = np.sqrt(max(
            data.exact.stats()[0]
            - 2.0 * np.einsum("nk,nk->", maps, products.matmat(components.T),
                              dtype=np.float64)
            + np.einsum("ij,ij->", maps.T.astype(np.float64) @ maps,
                        components.astype(np.float64) @ components.T), 0.0))
        lap(timings, "polish", t0)  # this pass is the polish's (pass counters, timings)
    info["error"] = float(error)
    info["restart_errors"] = np.array(info["restart_errors"], dtype=np.float64)
    info["restart_errors"][np.argmin(info["restart_errors"])] = error
    return (np.ascontiguousarray(maps[:, order]), np.ascontiguousarray(components[order]),
            info)


def product_change(old, new):
    """Relative change ``||M2 D2 - M1 D1||_F / ||M1 D1||_F`` without forming the products.

    From the ``k x k`` Gram matrices: ``||A - B||^2 = <A, A> - 2 <A, B> + <B, B>`` with
    ``<M1 D1, M2 D2> = tr((M1^T M2)(D2 D1^T))``, so memory stays ``O((N + F) k)``.

    Parameters
    ----------
    old, new : tuple of numpy.ndarray
        ``(maps (N, k), diffractions (k, F))`` each.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> M, D = np.eye(2), np.array([[1., 0.], [0., 2.]])
    >>> round(product_change((M, D), (M, 2 * D)), 6)
    1.0
    """
    (M1, D1), (M2, D2) = [(np.asarray(m, np.float64), np.asarray(d, np.float64))
                          for m, d in (old, new)]

    def inner(Ma, Da, Mb, Db):
        """``<Ma Da, Mb Db>_F`` from the ``k x k`` Grams (float)."""
        return float(np.einsum("ij,ji->", Ma.T @ Mb, Db @ Da.T))

    a = inner(M1, D1, M1, D1)
    diff = a - 2.0 * inner(M1, D1, M2, D2) + inner(M2, D2, M2, D2)
    return float(np.sqrt(max(diff, 0.0) / max(a, 1e-300)))
