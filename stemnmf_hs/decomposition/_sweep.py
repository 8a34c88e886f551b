"""Sweep of the number of components: one constrained-NMF fit per k, warm-started.

Level one of Cao et al. 2025 ("K-component loss and image quality assessment", Fig. 3a):
fit the NMF for every k of a range and record the K-component loss, the mean absolute
residual ``mean |V - W H|`` over all matrix elements.  Work is reused along the sweep:

* warm starts -- the fit for ``k`` starts its first restart from the maps of the fit for the
  previous ``k`` plus one new map (the other restarts are random), so it converges in a few
  tens of iterations;
* one data operator for every fit -- with ``compression`` the randomized sketch is computed
  once (:func:`~stemnmf_hs.decomposition.sketch`, at the :func:`sketch_rank` the largest
  ``k`` needs), and every fit iterates against it: the estimator's public ``fit_transform``
  takes the sketch as prepared data and does not sketch again;
* fewer restarts and iterations than a final fit (the caller's choice; see
  :func:`sweep_n_components`).

The loss of every fit is :func:`~stemnmf_hs.decomposition.k_component_loss`, streamed
against the data once for all fits after the last one; the same pass gives every fit's exact
Frobenius error.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from ._descent import _serial_blas
from ._nmf import check_n_components
from ._operators import as_operator, k_component_loss, sketch, sketch_rank
from ._passes import record as _record
from ._passes import stage as _stage

__all__ = ["sweep_n_components"]


def sweep_n_components(estimator, data, k_values, *, warm_start=True, show_progressbar=False,
                       score=None):
    """Fit ``estimator`` for every number of components in ``k_values``.

    Parameters
    ----------
    estimator : ConstrainedNMF
        Template (geometry, constraints, restarts, iterations, ``compression``,
        ``random_state``); cloned for every ``k`` with ``n_components=k``.
    data : array_like, dask.array.Array or DataOperator
        ``(N, F)`` data (:func:`~stemnmf_hs.decomposition.as_operator`; an operator is used
        as prepared).
    k_values : sequence of int
        Increasing numbers of components, each ``1 <= k <= min(N, F)``.
    warm_start : bool, default True
        Start the first restart of each fit from the previous fit's maps plus one new random
        map (scaled like the others).
    show_progressbar : bool, default False
        A progress bar over ``k``.
    score : callable, optional
        ``score(fits)``, called once after the last fit with the list of every fit's
        ``(maps, components)``: one pass that returns the dict ``{"loss": (n_k,), "error":
        (n_k,), "scores": [n_k results]}`` in place of the sweep's own loss pass (e.g. the
        held-out score of :func:`stemnmf_hs.model_selection.heldout_pass`, which reads the
        train and test halves of the counts once for both); the results are returned under
        ``"score"``.

    Returns
    -------
    dict
        ``"k"`` ``(n_k,)`` int; ``"loss"`` ``(n_k,)`` float64, the K-component loss ``mean
        |X - maps @ components|`` (data units per pixel); ``"error"`` ``(n_k,)`` Frobenius
        errors ``||X - maps @ components||`` against the data (from the loss's pass; a
        compressed fit's own ``reconstruction_err_`` is estimated from its sketch);
        ``"n_iter"`` ``(n_k,)``; ``"components"`` list of ``(k, F)`` float32 unit-sum
        diffractions; ``"maps"`` list of ``(N, k)`` float32 maps; with ``score``,
        ``"score"`` the list of its results.

    Raises
    ------
    ValueError
        If ``k_values`` is empty, not strictly increasing, or holds an impossible ``k``.

    Notes
    -----
    Cao et al., "Unsupervised machine learning of 4D-STEM ..." (2025), section "K-Component
    loss and image quality assessment": the loss is the mean absolute difference between the
    data and the reconstruction over all matrix elements.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs import ConstrainedNMF
    >>> from stemnmf_hs.decomposition._sweep import sweep_n_components
    >>> X = np.random.default_rng(0).random((30, 3)) @ np.random.default_rng(1).random((3, 12))
    >>> est = ConstrainedNMF(diffraction_constraint=None, map_constraint=None, n_restarts=1,
    ...                      max_iter=30, random_state=0)
    >>> out = sweep_n_components(est, X, [1, 2, 3])
    >>> out["k"].tolist(), bool(out["loss"][0] > out["loss"][-1])
    ([1, 2, 3], True)
    """
    ks = np.asarray(list(k_values), dtype=int)
    data = as_operator(data, name="data")
    if ks.size == 0 or (np.diff(ks) <= 0).any():
        raise ValueError(
            f"k_values must be strictly increasing integers; got {ks.tolist()}."
        )
    check_n_components(int(ks[0]), data.shape)
    check_n_components(int(ks[-1]), data.shape)
    rng = check_random_state(estimator.random_state)
    work = data
    template = clone(estimator)
    rank = None if data.is_sketch else sketch_rank(template.compression, int(ks[-1]),
                                                   data.shape)
    if rank is not None:
        work = sketch(data, rank, template.power_iterations, rng)
    out = {"k": ks, "loss": [], "error": [], "n_iter": [], "components": [], "maps": []}
    iterator = ks
    if show_progressbar:
        from tqdm.auto import tqdm

        iterator = tqdm(ks, desc="Components sweep", unit="k", leave=False)
    maps = None
    for k in iterator:
        est = clone(template).set_params(
            n_components=int(k), random_state=rng.randint(np.iinfo(np.int32).max),
            show_progressbar=False,
        )
        init = None
        if warm_start and maps is not None:
            init = _extend_maps(maps, int(k), rng)
        maps = est.fit_transform(work, init_maps=init)
        out["n_iter"].append(est.n_iter_)
        out["components"].append(est.components_)
        out["maps"].append(maps)
    # Every fit's loss (and score) in one pass after the last fit, on one BLAS thread:
    # the products are thin (k columns) next to the elementwise work, and on two cores
    # shared with other work OpenBLAS's spinning threads made them 2-4x slower (36 x 36 x
    # 128 x 128 benchmark scan).
    fits = list(zip(out["maps"], out["components"]))
    with _serial_blas():
        if score is None:
            out["loss"], out["error"] = k_component_loss(data, fits, return_error=True)
        else:
            with _stage("loss"):
                scored = score(fits)
                _record(data, "loss")
            out["loss"], out["error"], out["score"] = (scored["loss"], scored["error"],
                                                       scored["scores"])
    for key in ("loss", "error"):
        out[key] = np.asarray(out[key], dtype=np.float64)
    out["n_iter"] = np.asarray(out["n_iter"], dtype=int)
    return out


def _extend_maps(maps, k, rng):
    """``(N, k)`` warm start: the previous maps, then random maps of the same mean scale."""
    n, k_prev = maps.shape
    if k_prev >= k:
        return maps[:, :k]
    scale = float(maps.mean()) if maps.size else 1.0
    extra = rng.random_sample((n, k - k_prev)).astype(np.float32) * max(scale, 1e-12)
    return np.concatenate([maps, extra], axis=1)
