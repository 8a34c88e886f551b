"""The protocol loop of the constrained NMF: batched restarts, ALS and MU steps, sketched ALS.

Kimoto et al. 2025 (Sci. Rep. 15:39143), "Protocol of constrained NMF", steps 2-9, in the
transposed notation of scikit-learn (see :mod:`stemnmf_hs.decomposition._nmf`): the maps ``M``
``(R, N, k)`` and diffractions ``D`` ``(R, k, F)`` of all ``R`` restarts are iterated together,
so the two products with the data of one iteration are single matrix products over the
components of every restart (one pass over ``X`` serves them all).  The data are a
:class:`~stemnmf_hs.decomposition._operators.DataOperator`; the projections come from
:mod:`stemnmf_hs.decomposition._constraints`.

:func:`fit_batched` is the entry (the estimator's ``fit``); one private function per step
(the updates of eqs. 3-4 and 7-8, the error, the convergence test) as in scikit-learn's
``sklearn/decomposition/_nmf.py``.  With a sketch the ALS iterations run in
:func:`_iterate_sketched_als`, the restarts split over threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from ._kernels import l1_rows as _l1_rows  # a module name: tests take the numpy path
from ._operators import sketch
from ._passes import mark_stage

__all__ = ["fit_batched", "nnls_maps"]

_EPS = np.finfo(np.float32).eps
#: Relative ridge added to the k x k Gram matrices before inversion (guards rank loss when a
#: component vanishes; negligible against float32 rounding otherwise).
_RIDGE = 1e-6


def _batched_gram_inverse(gram):
    """Inverse of a stack of ``(R, k, k)`` Gram matrices, computed in float64."""
    g = gram.astype(np.float64)
    k = g.shape[-1]
    scale = np.trace(g, axis1=1, axis2=2) / k
    scale = np.where(scale > 0, scale, 1.0)
    g = g + (_RIDGE * scale)[:, None, None] * np.eye(k)
    return np.linalg.inv(g)


def _products_with_data_t(data, maps):
    """``maps^T X`` for all restarts in one product: ``(R, k, n_features)``.

    Parameters: ``data`` a data operator ``(N, F)``; ``maps`` ``(R, N, k)``.
    """
    R, N, k = maps.shape
    mt = maps.transpose(0, 2, 1).reshape(R * k, N)
    return data.rmatmat(mt.T).T.reshape(R, k, -1)


def _products_with_data(data, diffractions):
    """``X D^T`` for all restarts in one product: ``(R, N, k)``.

    Parameters: ``data`` a data operator ``(N, F)``; ``diffractions`` ``(R, k, F)``.
    """
    R, k, F = diffractions.shape
    xd = data.matmat(diffractions.reshape(R * k, F).T)  # (N, R*k)
    return xd.reshape(xd.shape[0], R, k).transpose(1, 0, 2)


def _update_diffractions_als(MtX, MtM):
    """Eq. 7 (``W = X H^T (H H^T)^-1``) in transposed form: ``D = (M^T M)^-1 M^T X``."""
    return (_batched_gram_inverse(MtM).astype(MtX.dtype)) @ MtX


def _update_maps_als(XDt, DDt):
    """Eq. 8 (``H = (W^T W)^-1 W^T X``) in transposed form: ``M = X D^T (D D^T)^-1``."""
    return XDt @ _batched_gram_inverse(DDt).astype(XDt.dtype)


def _update_diffractions_mu(D, MtX, MtM):
    """Eq. 3 (``W <- W * X H^T / W H H^T``) in transposed form."""
    return D * MtX / np.maximum(MtM @ D, _EPS)


def _update_maps_mu(M, XDt, DDt):
    """Eq. 4 (``H <- H * W^T X / W^T W H``) in transposed form."""
    return M * XDt / np.maximum(M @ DDt, _EPS)


def _normalize_diffractions(D):
    """Scale every diffraction to unit sum (L1); returns ``(D, norms)`` with ``norms (R, k)``.

    With unit-sum diffractions the maps are in the units of the data (electrons per probe
    position).  Zero diffractions stay zero.
    """
    norms = D.sum(axis=2)
    safe = np.where(norms > 0, norms, 1).astype(D.dtype)
    return D / safe[:, :, None], norms


def _l1_change(new, old):
    """``||new - old||_1`` of every restart, ``(R,)`` float64.

    float32 pairwise summation (relative error ~1e-7), about 3x faster than accumulating the
    float32 differences in float64; these changes only feed ``history_`` and ``tol``.  A
    numba kernel does it without the temporary difference array when available.
    """
    if (_l1_rows is not None and new.dtype == old.dtype == np.float32
            and new.flags.c_contiguous and old.flags.c_contiguous):
        return _l1_rows(new, old)
    d = np.subtract(new, old)
    np.abs(d, out=d)
    return d.reshape(d.shape[0], -1).sum(axis=1).astype(np.float64)


def _squared_error(X2, M, XDt, D, DDt=None, MtM=None):
    """``||X - M D||_F^2`` per restart from products already at hand: ``(R,)`` float64.

    ``||X||^2 - 2 <M, X D^T> + <M^T M, D D^T>`` (no extra pass over ``X``).
    """
    # float32 pairwise summation of the elementwise products: relative error ~1e-7 (the
    # float64-accumulating einsum costs twice as much on large scans).
    cross = np.multiply(M, XDt).reshape(M.shape[0], -1).sum(axis=1).astype(np.float64)
    if MtM is None:
        MtM = M.transpose(0, 2, 1) @ M
    if DDt is None:
        DDt = D @ D.transpose(0, 2, 1)
    quad = np.einsum("rij,rij->r", MtM, DDt, dtype=np.float64)
    return np.maximum(X2 - 2.0 * cross + quad, 0.0)


def nnls_maps(XDt, components, n_iter=300):
    """Non-negative least-squares maps on fixed diffractions, from ``X D^T``.

    Accelerated projected gradient (FISTA, Beck & Teboulle 2009) started from the clipped
    least-squares solution, vectorized over all samples; needs the data only through
    ``X D^T``.

    Parameters
    ----------
    XDt : numpy.ndarray
        ``(N, k)``: ``X @ components.T``.
    components : numpy.ndarray
        ``(k, F)`` diffractions.
    n_iter : int, default 300
        Gradient steps.

    Returns
    -------
    numpy.ndarray
        ``(N, k)`` non-negative maps minimizing ``||X - maps @ components||_F``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition._solver import nnls_maps
    >>> D = np.eye(2, 3, dtype=np.float32)
    >>> X = np.array([[2.0, -1.0, 5.0]], np.float32)
    >>> nnls_maps(X @ D.T, D)
    array([[2., 0.]], dtype=float32)
    """
    G = components @ components.T
    Ginv = _batched_gram_inverse(G[None])[0].astype(XDt.dtype)
    M = np.maximum(XDt @ Ginv, 0)
    lipschitz = float(np.linalg.eigvalsh(G.astype(np.float64)).max())
    if lipschitz <= 0:
        return np.zeros_like(XDt)
    step = np.float32(1.0 / lipschitz).astype(XDt.dtype)
    Y, t = M.copy(), 1.0
    for _ in range(n_iter):
        M_new = np.maximum(Y - step * (Y @ G - XDt), 0)
        t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        Y = M_new + ((t - 1.0) / t_new) * (M_new - M)
        M, t = M_new, t_new
    return M

def progress(iterable, show):
    """``iterable`` wrapped in a tqdm progress bar when ``show``."""
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="Constrained NMF", unit="it", leave=False)


def fit_batched(
    data,
    k,
    *,
    n_restarts,
    solver,
    max_iter,
    tol,
    project_w,
    project_h,
    rng,
    show_progressbar=False,
    polish_maps=False,
    init_maps=None,
    sketch_rank=None,
    power_iterations=2,
    refine_iter=0,
    score_on_data=True,
):
    """Run every restart of the protocol together; keep the best (paper steps 2-9).

    Parameters
    ----------
    data : DataOperator
        ``(N, F)`` float32 data, seen only through its two products (``_operators.py``).
    k : int
        Number of components.
    sketch_rank : int, optional
        Sketch ``data`` at this rank (with ``power_iterations``) after drawing the initial
        maps, so that the exact and the compressed modes start from the same maps for the
        same seed.
    refine_iter : int
        With sketched data: exact iterations continuing the kept restart on the data.
    score_on_data : bool
        With sketched data: score every restart with one exact pass over the data (its
        exact map update and error; the paper's step 8 on the data).  ``False``: keep the
        restart with the lowest error against the sketch, reported as that error plus the
        data's energy outside the sketch (``||X||^2 - ||Q B||^2``, known since the sketch
        pass), and leave the maps as the sketch gave them -- for a caller that goes on
        iterating on the sketch (:func:`~._descent.fit_monotone`), where the exact pass
        would cost one read of the data per fit for a ranking the sketch already gives.
    project_w : DiffractionProjection
        ``[.]_W`` on ``(m, F)`` stacks (``_constraints.py``).
    project_h : MapProjection
        ``[.]_H``; the solver calls its ``stack`` on the ``(R, N, k)`` layout.
    polish_maps : bool
        Replace the kept maps by the exact non-negative least-squares maps on the final
        diffractions (only meaningful without a map constraint).
    init_maps : numpy.ndarray, optional
        ``(N, k)`` non-negative initial maps for the first restart (a warm start); the other
        restarts start from random maps.

    Returns
    -------
    maps : numpy.ndarray
        ``(N, k)`` float32.
    components : numpy.ndarray
        ``(k, F)`` float32, unit sum, sorted by decreasing map L2 norm (step 9).
    info : dict
        ``n_iter``, ``error`` and ``restart_errors`` (Frobenius, against the full data),
        ``history``, and ``timings``: wall seconds of the stages ``"init"`` (initial maps and
        data statistics), ``"sketch"``, ``"iterations"``, ``"scoring"`` (the exact pass that
        scores every restart of a sketched fit), ``"refinement"`` (``refine_iter``) and
        ``"polish"`` (exact maps without ``[.]_H``); stages that did not run take ``0.0``.

    Notes
    -----
    With sketched data the iterations run against ``Q B`` (ALS: ``_iterate_sketched_als``,
    whose diffractions stay in ring-sorted pixel order); then one exact pass ``X D^T`` over
    the data serves every restart: each gets one exact map update and its exact error, and
    the restart with the lowest exact error is kept.  So the kept maps, the constraints and
    every reported error refer to the full data.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> from stemnmf_hs.decomposition._constraints import DiffractionProjection, MapProjection
    >>> from stemnmf_hs.decomposition._solver import fit_batched
    >>> X = np.random.default_rng(0).random((20, 2)) @ np.random.default_rng(1).random((2, 9))
    >>> maps, components, info = fit_batched(
    ...     as_operator(X), 2, n_restarts=2, solver="als", max_iter=30, tol=0,
    ...     project_w=DiffractionProjection(), project_h=MapProjection(),
    ...     rng=np.random.RandomState(0))
    >>> maps.shape, components.shape, info["n_iter"], sorted(info["timings"])[:2]
    ((20, 2), (2, 9), 30, ['init', 'iterations'])
    """
    timings = dict.fromkeys(_STAGES, 0.0)
    clock = time.perf_counter()
    N, F = data.shape
    R = n_restarts
    dtype = np.dtype(np.float32)
    mean = data.stats()[1]
    scale = np.sqrt(max(mean, _EPS) / k)
    # Step 2: non-negative random maps for every restart.
    M = (rng.random_sample((R, N, k)) * scale).astype(dtype)
    if init_maps is not None:
        M[0] = np.maximum(np.asarray(init_maps, dtype=dtype), 0)
    D = None
    if solver == "mu":
        D = (rng.random_sample((R, k, F)) * scale).astype(dtype)
        D, norms = _normalize_diffractions(D)
        M *= norms[:, None, :].astype(dtype)
    clock = lap(timings, "init", clock)
    if sketch_rank is not None:
        data = sketch(data, sketch_rank, power_iterations, rng)
        clock = lap(timings, "sketch", clock)
    apply_h = project_h.stack

    def update_maps(M_, XDt, DDt):
        """Steps 5-6: map update (eq. 8 or eq. 4) and ``[.]_H``."""
        if solver == "als":
            return apply_h(_update_maps_als(XDt, DDt))
        return apply_h(_update_maps_mu(M_, XDt, DDt))

    hist = np.full((max_iter, 3, R), np.nan)
    if solver == "als" and data.is_sketch:
        M, D, err, n_iter = _iterate_sketched_als_threads(
            data, M, project_w, apply_h, max_iter, tol, hist, show_progressbar
        )
    else:
        M, D, err, n_iter = _iterate(
            data, M, D, solver, project_w, update_maps,
            progress(range(max_iter), show_progressbar), tol, hist,
        )
        n_iter = np.full(R, n_iter)
    clock = lap(timings, "iterations", clock)

    exact = data.exact
    if exact is not data and not score_on_data:
        # Step 8 against the sketch: M lies in the range of Q up to [.]_H and the clip, so
        # <M, (X - Q B) D^T> ~ 0 and the sketch error differs from the exact one by the
        # restart-independent energy outside the sketch.
        err = err + max(exact.stats()[0] - data.stats()[0], 0.0)
    elif exact is not data:
        # Step 8 on the full data: one exact pass X D^T for every restart, the exact map
        # update of each, and its exact error.
        XDt = _products_with_data(exact, D)
        DDt = D @ D.transpose(0, 2, 1)
        M = update_maps(M, XDt, DDt)
        err = _squared_error(exact.stats()[0], M, XDt, D, DDt)
        clock = lap(timings, "scoring", clock)
    # Step 8: keep the best restart by final error.
    best = int(np.argmin(err))
    M_best, D_best = M[best], D[best]
    restart_errors = np.sqrt(err)
    n_iter = n_iter[best]
    history = hist[:n_iter, :, best]
    if exact is not data and refine_iter > 0:
        # Continue the kept restart on the data: removes the sketch's bias.
        h = np.full((refine_iter, 3, 1), np.nan)
        M1, D1, err1, n1 = _iterate(
            exact, M_best[None], D_best[None], solver, project_w, update_maps,
            range(refine_iter), tol, h,
        )
        M_best, D_best = M1[0], D1[0]
        restart_errors[best] = np.sqrt(err1[0])
        history = np.concatenate([history, h[:n1, :, 0]])
        n_iter += n1
        clock = lap(timings, "refinement", clock)
    if polish_maps:
        # Without [.]_H the clipped least-squares maps only approximate the non-negative
        # least-squares maps on the final diffractions: finish them exactly, so that
        # fit_transform(X) == transform(X) (one exact product X D^T).
        XDt = _products_with_data(exact, D_best[None])
        M_best = nnls_maps(XDt[0], D_best)
        DDt = D_best[None] @ D_best[None].transpose(0, 2, 1)
        err_best = _squared_error(exact.stats()[0], M_best[None], XDt, D_best[None], DDt)[0]
        restart_errors[best] = np.sqrt(err_best)
        clock = lap(timings, "polish", clock)
    # Step 9: sort by the L2 norm of the maps.
    order = np.argsort(-np.linalg.norm(M_best.astype(np.float64), axis=0), kind="stable")
    history = {
        "mse": history[:, 0].copy(),
        "w_change": history[:, 1].copy(),
        "h_change": history[:, 2].copy(),
    }
    info = {
        "n_iter": int(n_iter),
        "error": float(restart_errors[best]),
        "restart_errors": restart_errors,
        "history": history,
        "timings": timings,
    }
    return (
        np.ascontiguousarray(M_best[:, order]),
        np.ascontiguousarray(D_best[order]),
        info,
    )


#: Stages of :func:`fit_batched` whose wall time ``info["timings"]`` reports.
_STAGES = ("init", "sketch", "iterations", "scoring", "refinement", "polish")


def lap(timings, stage, since):
    """Add the seconds since ``since`` to ``timings[stage]``; returns the current clock.

    Also closes the stage for the pass counters (:func:`~._passes.mark_stage`): the passes
    over the data made since the previous ``lap`` are this stage's.
    """
    now = time.perf_counter()
    timings[stage] += now - since
    mark_stage(stage)
    return now


def _converged(tol, dw, dh, diffraction_sums, M):
    """Every restart's relative L1 changes of W and H below ``tol`` (``False`` if ``tol=0``).

    ``diffraction_sums`` ``(R, k)``: the rows are normalized to unit sum, so ``||W||_1`` is
    the number of non-zero rows; ``M`` ``(R, N, k)`` non-negative maps (summed only when
    ``tol > 0``).
    """
    if not tol > 0:
        return False
    rel_w = dw / np.maximum((diffraction_sums > 0).sum(axis=1), _EPS)
    rel_h = dh / np.maximum(M.sum(axis=(1, 2), dtype=np.float64), _EPS)
    return bool((rel_w < tol).all() and (rel_h < tol).all())


def _iterate(data, M, D, solver, project_w, update_maps, iterations, tol, hist):
    """Protocol steps 3-7 on any data operator, every restart at once.

    Returns ``(M (R, N, k), D (R, k, F), err (R,), n_iter)`` with ``err`` the squared errors
    against ``data``; ``hist`` ``(max_iter, 3, R)`` receives MSE and L1 changes.
    """
    R, N, k = M.shape
    F = data.shape[1]
    X2 = data.stats()[0]
    n_iter = 0
    err = dw = None
    MtM = M.transpose(0, 2, 1) @ M
    for it in iterations:
        # Steps 3-4: diffractions, [.]_W, unit-sum normalization.  MtM is M^T M of the
        # current maps, carried over from the error of the previous iteration.
        MtX = _products_with_data_t(data, M)
        if solver == "als":
            D_new = _update_diffractions_als(MtX, MtM)
        else:
            D_new = _update_diffractions_mu(D, MtX, MtM)
        del MtX
        D_new = project_w(D_new.reshape(R * k, F)).reshape(R, k, F)
        D_new, norms = _normalize_diffractions(D_new)
        if solver == "mu":  # keep the product unchanged by the normalization
            M = M * norms[:, None, :].astype(M.dtype)
        # Steps 5-6: maps and [.]_H.
        XDt = _products_with_data(data, D_new)
        DDt = D_new @ D_new.transpose(0, 2, 1)
        M_new = update_maps(M, XDt, DDt)
        MtM_new = M_new.transpose(0, 2, 1) @ M_new
        # Step 7: MSE and L1 norms of the changes.
        err = _squared_error(X2, M_new, XDt, D_new, DDt, MtM_new)
        hist[it, 0] = err / (N * F)
        dh = _l1_change(M_new, M)
        hist[it, 2] = dh
        if D is not None:
            dw = _l1_change(D_new, D)
            hist[it, 1] = dw
        D, M, MtM = D_new, M_new, MtM_new
        n_iter = it + 1
        if it > 0 and _converged(tol, dw, dh, norms, M):
            break
    return M, D, err, n_iter


def _blas_threads():
    """Threads of the BLAS library numpy uses (1 when unknown)."""
    counts = [info.get("num_threads", 1) for info in threadpool_info()
              if info.get("user_api") == "blas"]
    return max(1, min(counts)) if counts else 1


def _iterate_sketched_als_threads(data, M, project_w, apply_h, max_iter, tol, hist,
                                  show_progressbar):
    """:func:`_iterate_sketched_als` with the restarts split over the BLAS threads.

    Against the sketch every product is small (``l`` ~ 2k), where a multithreaded BLAS call
    mostly synchronizes its threads and the fused ``[.]_W`` kernel is serial.  The restarts
    are therefore split into as many groups as BLAS has threads; each group runs in its own
    thread (the products and the kernels release the GIL) with single-threaded BLAS.  The
    arithmetic of every restart is unchanged; each group stops on its own ``tol``.

    A ``KeyboardInterrupt`` (Ctrl-C) reaches the main thread while it waits for the groups;
    they then stop at their next iteration, so the pool closes within one iteration.

    Returns ``(M, D, err, n_iter)`` as :func:`_iterate_sketched_als`, ``n_iter`` ``(R,)``.
    """
    R = M.shape[0]
    n_groups = min(R, _blas_threads())
    bounds = np.linspace(0, R, n_groups + 1).astype(int)
    if n_groups == 1:
        out = _iterate_sketched_als(data, M, project_w, apply_h,
                                    progress(range(max_iter), show_progressbar), tol, hist)
        return out[:3] + (np.full(R, out[3]),)
    stop = threading.Event()
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_groups) as pool:
        futures = [
            pool.submit(
                _iterate_sketched_als, data, M[a:b], project_w, apply_h,
                _until(stop, progress(range(max_iter), show_progressbar and g == 0)), tol,
                hist[:, :, a:b],
            )
            for g, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
        try:
            parts = [f.result() for f in futures]
        except BaseException:
            # Ctrl-C in the main thread (or an error in a group): the other groups stop at
            # their next iteration instead of running to max_iter before the pool closes.
            stop.set()
            raise
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([np.full(b - a, p[3]) for p, (a, b) in zip(parts, itertools.pairwise(bounds))]),
    )


def _until(event, iterations):
    """The iterations, ending early once ``event`` is set."""
    for it in iterations:
        if event.is_set():
            return
        yield it


def _iterate_sketched_als(data, M, project_w, apply_h, iterations, tol, hist):
    """Protocol steps 3-7 (ALS, eqs. 7-8) against the sketch ``X ~= Q B``, every restart.

    The products are re-associated so that no ``(R k, F)`` intermediate other than the
    diffractions themselves is formed:

    * ``D = [(M^T M)^-1 (M^T Q)] B`` -- one ``(R k, l) @ (l, F)`` product;
    * ``[.]_W``, unit-sum normalization and ``||W(i+1) - W(i)||_1`` in one fused sweep, in
      ring-sorted pixel order (``B``'s columns are permuted once);
    * ``M = Q [(B D^T) (D D^T)^-1]`` -- one ``(N, l) @ (l, k)`` product per restart, then
      ``[.]_H``;
    * the error's cross term ``<M, Q B D^T> = <M^T Q, (B D^T)^T>`` from ``M^T Q``, which the
      next iteration's diffraction update needs anyway.

    Returns ``(M (R, N, k), D (R, k, F), err (R,), n_iter)``; ``D`` in the data's pixel
    order, ``err`` the squared errors against the sketch.
    """
    R, N, k = M.shape
    F = data.shape[1]
    Q, B = data.Q, data.B
    order = project_w.order
    if order is not None:
        B = np.ascontiguousarray(B[:, order])
    X2 = data.stats()[0]
    dtype = M.dtype
    # Reused buffers: fresh scan- or pattern-sized temporaries cost page faults every
    # iteration (~0.15 ms per MB).
    bufs = [np.zeros((R * k, F), dtype), np.zeros((R * k, F), dtype)]
    raw = np.empty((R, N, k), dtype)
    maps_bufs = [np.empty((R, N, k), dtype), np.empty((R, N, k), dtype)]
    MtQ = np.matmul(M.transpose(0, 2, 1), Q)  # (R, k, l)
    MtM = M.transpose(0, 2, 1) @ M
    err = None
    n_iter = 0
    for it in iterations:
        # Steps 3-4: eq. 7 on the sketch, [.]_W, unit sum, L1 change (fused).
        D_flat, D_old = bufs[it % 2], bufs[(it + 1) % 2]
        C = _batched_gram_inverse(MtM).astype(dtype) @ MtQ
        np.matmul(C.reshape(R * k, -1), B, out=D_flat)
        sums, dw_rows = project_w.project_normalize(D_flat, D_old)
        D = D_flat.reshape(R, k, F)
        # Steps 5-6: eq. 8 on the sketch, [.]_H.
        BDt = (B @ D_flat.T).reshape(-1, R, k).transpose(1, 0, 2)  # (R, l, k)
        DDt = D @ D.transpose(0, 2, 1)
        P = BDt @ _batched_gram_inverse(DDt).astype(dtype)
        np.matmul(Q, P, out=raw)
        M_new = apply_h(raw, out=maps_bufs[it % 2])
        MtM_new = M_new.transpose(0, 2, 1) @ M_new
        MtQ_new = np.matmul(M_new.transpose(0, 2, 1), Q)
        # Step 7: MSE and L1 norms of the changes.
        cross = np.einsum("rkl,rlk->r", MtQ_new, BDt, dtype=np.float64)
        quad = np.einsum("rij,rij->r", MtM_new, DDt, dtype=np.float64)
        err = np.maximum(X2 - 2.0 * cross + quad, 0.0)
        hist[it, 0] = err / (N * F)
        dh = _l1_change(M_new, M)
        hist[it, 2] = dh
        dw = dw_rows.reshape(R, k).sum(axis=1)
        if it > 0:
            hist[it, 1] = dw
        M, MtM, MtQ = M_new, MtM_new, MtQ_new
        n_iter = it + 1
        if it > 0 and _converged(tol, dw, dh, sums.reshape(R, k), M):
            break
    D = bufs[(n_iter - 1) % 2].reshape(R, k, F)
    if order is not None:
        unsorted = np.empty_like(D)
        unsorted[:, :, order] = D
        D = unsorted
    return M, D, err, n_iter
