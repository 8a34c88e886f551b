"""Sweep of the number of components: one constrained-NMF fit per k, warm-started.

Level one of Cao et al. 2025 ("K-component loss and image quality assessment", Fig. 3a):
fit the NMF for every k of a range and record the K-component loss, the mean absolute
residual ``mean |V - W H|`` over all matrix elements.  Work is reused along the sweep:

* warm starts -- the fit for ``k`` starts its first restart from the maps of the fit for the
  previous ``k`` plus one new map (the other restarts are random), so it converges in a few
  tens of iterations;
* one data object for every fit -- with ``compression`` the randomized sketch is computed once,
  at the rank the largest ``k`` needs, and every fit iterates against it;
* fewer restarts and iterations than a final fit (the caller's choice; see
  :func:`sweep_n_components`).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from ._data import sketch

__all__ = ["sweep_n_components"]


def sweep_n_components(estimator, data, k_values, *, warm_start=True, show_progressbar=False):
    """Fit ``estimator`` for every number of components in ``k_values``.

    Parameters
    ----------
    estimator : ConstrainedNMF
        Template (geometry, constraints, restarts, iterations, ``compression``,
        ``random_state``); cloned for every ``k`` with ``n_components=k``.
    data : InMemoryData or DaskData
        ``(N, F)`` validated data (``stemnmf_hs.decomposition._data``).
    k_values : sequence of int
        Increasing numbers of components, each ``1 <= k <= min(N, F)``.
    warm_start : bool, default True
        Start the first restart of each fit from the previous fit's maps plus one new random
        map (scaled like the others).
    show_progressbar : bool, default False
        A progress bar over ``k``.

    Returns
    -------
    dict
        ``"k"`` ``(n_k,)`` int; ``"loss"`` ``(n_k,)`` float64, the K-component loss ``mean
        |X - maps @ components|`` (data units per pixel); ``"error"`` ``(n_k,)`` Frobenius
        errors; ``"n_iter"`` ``(n_k,)``; ``"components"`` list of ``(k, F)`` float32 unit-sum
        diffractions; ``"maps"`` list of ``(N, k)`` float32 maps.

    Raises
    ------
    ValueError
        If ``k_values`` is empty, not strictly increasing, or holds an impossible ``k``.

    Notes
    -----
    Cao et al., "Unsupervised machine learning of 4D-STEM ..." (2025), section "K-Component
    loss and image quality assessment": the loss is the mean absolute difference between the
    data and the reconstruction over all matrix elements.
    """
    ks = np.asarray(list(k_values), dtype=int)
    limit = min(data.shape)
    if ks.size == 0 or (np.diff(ks) <= 0).any() or ks[0] < 1 or ks[-1] > limit:
        raise ValueError(
            f"k_values must be strictly increasing integers between 1 and min(n_positions, "
            f"n_pixels) = {limit}; got {ks.tolist()}."
        )
    rng = check_random_state(estimator.random_state)
    work = data
    template = clone(estimator)
    if template.compression is not None:
        rank = template._sketch_rank(int(ks[-1]), data.shape)
        work = sketch(data, rank, template.power_iterations, rng)
        template.set_params(compression=None)
    out = {"k": ks, "loss": [], "error": [], "n_iter": [], "components": [], "maps": []}
    maps = None
    iterator = ks
    if show_progressbar:
        from tqdm.auto import tqdm

        iterator = tqdm(ks, desc="Components sweep", unit="k", leave=False)
    for k in iterator:
        est = clone(template).set_params(
            n_components=int(k), random_state=rng.randint(np.iinfo(np.int32).max),
            show_progressbar=False,
        )
        init = None
        if warm_start and maps is not None:
            init = _extend_maps(maps, int(k), rng)
        est.n_features_in_ = data.shape[1]
        maps = est._fit_data(work, init)
        out["loss"].append(data.abs_residual_mean(maps, est.components_))
        out["error"].append(est.reconstruction_err_)
        out["n_iter"].append(est.n_iter_)
        out["components"].append(est.components_)
        out["maps"].append(maps)
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
