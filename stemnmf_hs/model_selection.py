"""Choice of the number of NMF components: K-component loss, knee, IQA of components.

Cao et al. 2025, section "K-Component loss and image quality assessment" and Fig. 3, choose
the number of components ``k`` in two decisions:

1. **K-component loss** (Fig. 3a): the mean absolute reconstruction error
   ``L(k) = mean |V - W_k H_k|`` falls with ``k`` and flattens once the components cover the
   data; its knee is a first choice of ``k`` and ``knee +/- 4`` the *range of interest*
   (:func:`k_component_loss`, :func:`find_knee`, :func:`range_of_interest`).
2. **Image quality assessment** (Fig. 3b-e): within that range the representative
   diffractions of the components (``w_k`` scaled by the maximum of its map ``h_k``,
   :func:`stemnmf_hs.overlap.representative_diffractions`) are compared pairwise with SSIM,
   PSNR, GMSD and MDSI (:func:`iqa_matrices`); the chosen ``k`` is the most components that
   are all distinct diffractions (:func:`suggest_k`).

:func:`select_k` runs the whole pipeline (knee -> range -> IQA -> rule) on a loss curve and
the representative diffractions of the fits; ``s.estimate_number_of_components`` only wraps
its :class:`KSelection` in signals.

Math module: arrays in, arrays and dicts out; never imports HyperSpy.  One topic (the choice
of k, with the calibration of its defaults in :func:`suggest_k`), hence a little over 600
lines.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from . import iqa
from .decomposition import k_component_loss  # the one implementation, streamed for dask
from .heldout import (  # noqa: F401  (re-exported: the k pipeline's public names)
    DEFAULT_TEST_FRACTION,
    ELECTRON_GAIN_RANGE,
    HELDOUT_METRICS,
    HELDOUT_RULES,
    CountModel,
    count_model,
    estimate_gain,
    heldout_choice,
    heldout_pass,
    heldout_scores,
    thin_counts,
)

__all__ = [
    "DEFAULT_GMSD_THRESHOLD",
    "DEFAULT_HALF_WIDTH",
    "DEFAULT_SSIM_THRESHOLD",
    "DEFAULT_TEST_FRACTION",
    "CountModel",
    "KSelection",
    "combine_k",
    "count_model",
    "duplicate_pairs",
    "estimate_gain",
    "find_knee",
    "heldout_choice",
    "heldout_pass",
    "heldout_scores",
    "iqa_matrices",
    "k_component_loss",
    "range_of_interest",
    "select_k",
    "suggest_k",
    "thin_counts",
]

#: Half width of the range of interest around the knee (Cao et al. 2025, Fig. 3: k +/- 4).
DEFAULT_HALF_WIDTH = 4
#: Two components are duplicates when their SSIM exceeds this (see :func:`suggest_k`).
DEFAULT_SSIM_THRESHOLD = 0.90
#: Two components are duplicates when their GMSD is below this (see :func:`suggest_k`).
DEFAULT_GMSD_THRESHOLD = 0.07

_RULES = ("first_duplicate", "largest_distinct")


# ---------------------------------------------------------------------------- the knee
def _check_curve(k_values, loss):
    k = np.asarray(k_values)
    y = np.asarray(loss, dtype=np.float64)
    if k.ndim != 1 or y.ndim != 1 or k.shape != y.shape:
        raise ValueError(
            f"k_values and loss must be 1D arrays of equal length; got shapes {k.shape} "
            f"and {y.shape}."
        )
    if k.size < 3:
        raise ValueError(
            f"A knee needs at least 3 points of the loss curve; got {k.size}. Fit more "
            "numbers of components (e.g. k_range=range(2, 16))."
        )
    if not (np.all(np.isfinite(k.astype(np.float64))) and np.all(np.isfinite(y))):
        raise ValueError("k_values and loss must be finite; drop the failed fits "
                         "(NaN or infinite loss) first.")
    kf = k.astype(np.float64)
    if not np.array_equal(kf, np.round(kf)):
        raise ValueError(f"k_values must be whole numbers of components; got {k.tolist()}.")
    if np.any(np.diff(kf) <= 0):
        raise ValueError(
            f"k_values must be strictly increasing; got {k.tolist()}. Sort the curve by k "
            "(and drop repeated k) first."
        )
    return kf.astype(np.int64), y


def _chord_knee(k, y):
    """Index of the point farthest below the chord of the normalized curve (Kneedle)."""
    xn = (k - k[0]) / (k[-1] - k[0])
    span = y.max() - y.min()
    if span == 0:
        return 0, 0.0
    yn = (y - y.min()) / span
    # the chord from the first to the last point; for a convex decreasing curve the
    # points lie below it, and the vertical gap is proportional to the distance.
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    gap = chord - yn
    i = int(np.argmax(gap))
    return i, float(gap[i])


def find_knee(k_values, loss, sensitivity=1.0, return_method=False):
    """Knee of the K-component loss curve: where adding components stops paying off.

    The Kneedle algorithm (Satopaa, Albrecht, Irwin & Raghavan, ICDCS Workshops 2011) of
    the ``kneed`` package, ``KneeLocator(k, loss, S=sensitivity, curve="convex",
    direction="decreasing")``.  When ``kneed`` finds no knee (e.g. a noisy curve whose
    difference curve never falls below its threshold) the fallback is Kneedle's core idea
    without its threshold: on the curve normalized to the unit square, the point farthest
    below the chord joining the first and last points.  A straight or concave curve has no
    such point; then the smallest ``k`` is returned with a warning.

    The knee is located on the running minimum of the loss, ``min(loss[:i + 1])``: a fit
    with ``k`` components can always reproduce one with fewer (a zero map), so the best
    attainable loss never rises with ``k``.  A measured rise means the fit did not improve
    on a smaller ``k`` -- with the constrained NMF typically because the smoothing of the
    maps refuses to fit noise with the extra components, or because the sweep's short fits
    did not converge -- and the flat part of the envelope is where adding components stops
    paying off.  The raw curve is what the result objects keep and plot.

    Cao et al. 2025, Fig. 2c and 3a: "the curve is flatter after k = 10, indicating that the
    NMF reaches its performance limit".

    Parameters
    ----------
    k_values : array_like of int
        ``(n,)`` numbers of components, strictly increasing, ``n >= 3``.
    loss : array_like of float
        ``(n,)`` K-component loss of every fit (:func:`k_component_loss`), data unit per
        pixel; a convex decreasing curve is expected.
    sensitivity : float, default 1.0
        Kneedle's ``S``: larger values wait for a more pronounced flattening.
    return_method : bool, default False
        Also return how the knee was found.

    Returns
    -------
    knee : int
        One of ``k_values``.
    method : str
        Only with ``return_method``: ``"kneed"``, ``"chord"`` (fallback) or ``"none"`` (no
        knee; the smallest ``k``).

    Raises
    ------
    ValueError
        On fewer than 3 points, non-finite values, non-integer ``k`` or ``k_values`` not
        strictly increasing.

    Examples
    --------
    >>> from stemnmf_hs.model_selection import find_knee
    >>> k = [1, 2, 3, 4, 5, 6]
    >>> loss = [10.0, 4.0, 2.0, 1.8, 1.7, 1.65]
    >>> find_knee(k, loss)
    3
    >>> find_knee(k, loss, return_method=True)
    (3, 'kneed')
    """
    from kneed import KneeLocator

    k, y = _check_curve(k_values, loss)
    y = np.minimum.accumulate(y)
    knee = None
    if y.max() > y.min():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kneed warns when it finds no knee
            knee = KneeLocator(k, y, S=float(sensitivity), curve="convex",
                               direction="decreasing").knee
    if knee is not None:
        result, method = round(float(knee)), "kneed"
    else:
        i, gap = _chord_knee(k, y)
        if gap > 1e-9:  # on the unit square; rounding of a straight line is ~1e-16
            result, method = int(k[i]), "chord"
        else:
            warnings.warn(
                "The K-component loss curve is flat, straight or concave: it has no knee. "
                f"Returning the smallest k ({int(k[0])}); extend k_range to smaller k.",
                stacklevel=2,
            )
            result, method = int(k[0]), "none"
    return (result, method) if return_method else result


def range_of_interest(knee, k_values, half_width=DEFAULT_HALF_WIDTH):
    """The numbers of components within ``half_width`` of the knee.

    Cao et al. 2025, Fig. 3a-b: "the diffraction pattern selected by the most intense value
    between the k - 4 and k + 4 clustering is used for calculating IQA".

    Parameters
    ----------
    knee : int
        Knee of the loss curve (:func:`find_knee`).
    k_values : array_like of int
        ``(n,)`` numbers of components that were fitted.
    half_width : int, default 4
        Half width of the range, in components.

    Returns
    -------
    numpy.ndarray
        ``(m,)`` int64, the ``k_values`` with ``|k - knee| <= half_width``, increasing: the
        range ``knee +/- half_width`` clipped to the fitted ``k``.

    Raises
    ------
    ValueError
        If ``half_width`` is negative or not whole, or the knee lies outside the fitted
        range.

    Examples
    --------
    >>> from stemnmf_hs.model_selection import range_of_interest
    >>> range_of_interest(3, range(1, 11), half_width=2)
    array([1, 2, 3, 4, 5])
    >>> range_of_interest(9, range(1, 11))
    array([ 5,  6,  7,  8,  9, 10])
    """
    k = np.sort(np.unique(np.asarray(k_values, dtype=np.int64)))
    if k.ndim != 1 or k.size == 0:
        raise ValueError("k_values must be a non-empty 1D array of numbers of components.")
    if not isinstance(half_width, Integral) or half_width < 0:
        raise ValueError(f"half_width must be a whole number >= 0; got {half_width!r}.")
    if not k[0] <= knee <= k[-1]:
        raise ValueError(
            f"knee={knee!r} lies outside the fitted numbers of components {k[0]}..{k[-1]}."
        )
    return k[np.abs(k - knee) <= half_width]


# ----------------------------------------------------------------------- IQA per k
def iqa_matrices(representatives, data_range=None, metrics=iqa.METRICS):
    """Pairwise SSIM, PSNR, GMSD and MDSI of the representative diffractions of one fit.

    Cao et al. 2025, Fig. 3b-e: "the three matrices represent the result of the evaluation
    of each current diffraction pattern with the others".

    Parameters
    ----------
    representatives : array_like
        ``(k, ny, nx)`` representative diffractions ``w_k * max(h_k)`` of one fit with ``k``
        components (:func:`stemnmf_hs.overlap.representative_diffractions`), data unit.
    data_range : float, optional
        Common span of the values; default :func:`stemnmf_hs.iqa.common_data_range`, the
        maximum of the stack, so that all pairs of this fit share one scale.
    metrics : sequence of str, default ("ssim", "psnr", "gmsd", "mdsi")

    Returns
    -------
    dict
        Metric name -> ``(k, k)`` float64 symmetric matrix: SSIM (1 on the diagonal), PSNR in
        dB (capped at :data:`stemnmf_hs.iqa.PSNR_CAP_DB`), GMSD and MDSI (0 on the
        diagonal).

    Raises
    ------
    ValueError
        On a stack that is not ``(k, ny, nx)``, images under 11 x 11 px (SSIM), non-finite
        values, an all-zero stack or an unknown metric.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import iqa_matrices
    >>> rng = np.random.default_rng(0)
    >>> mats = iqa_matrices(rng.random((3, 16, 16)), metrics=("ssim", "gmsd"))
    >>> mats["ssim"].shape, mats["gmsd"].diagonal()
    ((3, 3), array([0., 0., 0.]))
    """
    return iqa.pairwise(representatives, metrics=metrics, data_range=data_range)


def _off_diagonal(matrix, reduce):
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape[0] < 2:
        return np.nan
    return float(reduce(m[~np.eye(m.shape[0], dtype=bool)]))


def duplicate_pairs(matrices, ssim_threshold=DEFAULT_SSIM_THRESHOLD,
                    gmsd_threshold=DEFAULT_GMSD_THRESHOLD):
    """Pairs of components of one fit that are the same diffraction.

    A pair ``(i, j)`` is a duplicate when ``SSIM_ij > ssim_threshold`` **or**
    ``GMSD_ij < gmsd_threshold`` (see :func:`suggest_k` for the reasoning).

    Parameters
    ----------
    matrices : dict
        Metric name -> ``(k, k)`` matrix, with at least ``"ssim"`` and ``"gmsd"``
        (:func:`iqa_matrices`).
    ssim_threshold, gmsd_threshold : float
        Thresholds; ``None`` switches that criterion off.

    Returns
    -------
    numpy.ndarray
        ``(n_pairs, 2)`` int indices ``i < j`` of the duplicate pairs.

    Raises
    ------
    ValueError
        If a needed matrix is missing or not square, or both thresholds are ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import duplicate_pairs
    >>> ssim = np.array([[1.0, 0.95, 0.2], [0.95, 1.0, 0.3], [0.2, 0.3, 1.0]])
    >>> gmsd = np.array([[0.0, 0.10, 0.20], [0.10, 0.0, 0.03], [0.20, 0.03, 0.0]])
    >>> duplicate_pairs({"ssim": ssim, "gmsd": gmsd})
    array([[0, 1],
           [1, 2]])
    >>> duplicate_pairs({"ssim": ssim, "gmsd": gmsd}, ssim_threshold=None)
    array([[1, 2]])
    """
    flags = _duplicate_mask(matrices, ssim_threshold, gmsd_threshold)
    i, j = np.nonzero(np.triu(flags, 1))
    return np.stack([i, j], axis=1)


def _duplicate_mask(matrices, ssim_threshold, gmsd_threshold):
    if ssim_threshold is None and gmsd_threshold is None:
        raise ValueError("Give at least one of ssim_threshold and gmsd_threshold.")
    needed = [m for m, t in (("ssim", ssim_threshold), ("gmsd", gmsd_threshold))
              if t is not None]
    missing = [m for m in needed if m not in matrices]
    if missing:
        raise ValueError(f"The IQA matrices lack {missing}; compute them with iqa_matrices.")
    k = None
    flags = None
    for name, thr, op in (("ssim", ssim_threshold, np.greater),
                          ("gmsd", gmsd_threshold, np.less)):
        if thr is None:
            continue
        m = np.asarray(matrices[name], dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or (k is not None and m.shape[0] != k):
            raise ValueError(f"The {name} matrix must be square (k, k); got {m.shape}.")
        k = m.shape[0]
        f = op(m, thr)
        flags = f if flags is None else flags | f
    np.fill_diagonal(flags, False)
    return flags


def _lowers_loss(ks, loss_k_values, loss):
    """``(m,)`` bool: the loss at each ``k`` is below that of every smaller fitted ``k``."""
    if loss is None:
        return np.ones(ks.size, bool)
    lk, ly = _check_curve(loss_k_values, loss)
    out = np.zeros(ks.size, bool)
    for i, k in enumerate(ks):
        hit = np.flatnonzero(lk == k)
        if hit.size == 0:
            raise ValueError(f"loss_k_values lack k = {int(k)} of the range of interest.")
        j = int(hit[0])
        out[i] = j == 0 or ly[j] < ly[:j].min()
    return out


def suggest_k(k_values, iqa_by_k, ssim_threshold=DEFAULT_SSIM_THRESHOLD,
              gmsd_threshold=DEFAULT_GMSD_THRESHOLD, rule="first_duplicate",
              loss_k_values=None, loss=None):
    """The number of components after which new components duplicate old ones.

    Cao et al. 2025 (Fig. 3b-e) pick, within the range of interest, the ``k`` whose
    representative diffractions are all mutually different ("to determine the number of
    most different orientation pattern forms, namely the ideal component"): past the true
    number of distinct diffractions NMF can only split a diffraction between components, so
    two components of the same fit become the same pattern.

    **Duplicate pair.**  Components ``i != j`` of one fit are duplicates when
    ``SSIM_ij > ssim_threshold`` or ``GMSD_ij < gmsd_threshold``; a fit is *distinct* when it
    has no duplicate pair.  GMSD is the decisive criterion: the positions of Bragg spots and
    rings are edges, and a split diffraction keeps them (GMSD near 0) while another crystal,
    orientation or the amorphous halo moves them (GMSD ~ 0.09-0.25).  SSIM also reacts to the
    shared smooth background and to the intensity ratio of the two halves of a split, so it
    separates the two cases poorly; it only acts as a safety net for near-identical pairs.

    **Rule** (``rule="first_duplicate"``, default): scanning the range of interest upwards,
    the suggestion is the last ``k`` before the first fit with a duplicate pair, i.e. the
    largest ``k`` such that it and every smaller ``k`` of the range are distinct ("adding a
    component starts producing duplicates").  ``rule="largest_distinct"`` takes the largest
    distinct ``k`` of the range even past a duplicate (useful when one fit at small ``k`` fell
    into a poor local minimum; risky when an over-complete fit puts noise into distinct junk
    components).  If the smallest ``k`` of the range already has duplicates, it is returned
    with that reason; if no ``k`` has any, the largest ``k`` is returned and the reason says
    the range may be too small.

    **New diffraction lowers the loss.**  With the K-component loss curve of the sweep
    (``loss_k_values``, ``loss``), a fit also stops counting as new when its loss is not
    below the loss of every fit with fewer components: a component that carries new
    diffraction lowers ``mean |V - W H|``, while the constrained fits (smoothed maps) of
    more components than there are diffractions cannot use the extra component and end at
    an equal or higher loss -- often with a junk component that is distinct but not
    diffraction.  A ``k`` then *qualifies* when it is distinct and lowers the loss, and the
    rules above run on "qualifies" instead of "distinct".  On
    :func:`stemnmf_hs.data.simulated_crystal_mixture` scans (truth 3, 6 and 8, three seeds
    each, constrained ALS sweeps) the duplicate criterion alone missed by 2 in 3 of 9 cases,
    the combined one found every truth.

    **Calibration of the defaults.**  Simulated scans with a known number of distinct
    diffractions (truth 4), fitted for every ``k`` by :class:`~stemnmf_hs.ConstrainedNMF`
    without constraints (2 restarts) and by scikit-learn's NMF:
    :func:`stemnmf_hs.data.simulate_precipitates` (amorphous + 3 crystals, Poisson noise) at
    64 x 64 px (9/3/1 % crystallinity, 1e4 and 2e3 e-/pattern; 30/20/10 %), 128 x 128 px, and
    a 24 x 24 scan binned to 32 x 32 px (20/10/5 %, 10 seeds); and the overlapping-grains
    scan (amorphous + crystal A in two orientations + crystal B) at 64 and 96 px.

    ===========================  =========================  ==========================
    smallest off-diagonal GMSD   fits with ``k <= truth``   fits with ``k > truth``
    ===========================  =========================  ==========================
    32 x 32 px (binned)          0.086 - 0.105              0.003 - 0.049
    64 - 128 px                  0.154 - 0.242              0.003 - 0.062
    largest off-diagonal SSIM    0.03 - 0.77                0.44 - 0.96
    ===========================  =========================  ==========================

    GMSD separates the two groups at every size and dose; the default 0.07 lies in the gap
    between the worst duplicate (0.062) and the worst distinct fit (0.086), at about their
    geometric mean.  Distinct components of small (binned) patterns have smaller GMSD, so
    keep patterns at 32 px or more.  SSIM overlaps between the groups; 0.90 (Cao et al.'s
    "excellent" bound) is above every distinct fit seen, so it only adds safety.

    Parameters
    ----------
    k_values : array_like of int
        ``(m,)`` numbers of components of the range of interest (:func:`range_of_interest`).
    iqa_by_k : dict
        ``k -> {metric: (k, k) matrix}`` (:func:`iqa_matrices`) for every ``k`` of
        ``k_values``; ``"ssim"`` and ``"gmsd"`` are needed, ``"psnr"`` and ``"mdsi"`` are
        reported when present.
    ssim_threshold : float or None, default 0.90
        Duplicate when SSIM is above; ``None`` ignores SSIM.
    gmsd_threshold : float or None, default 0.07
        Duplicate when GMSD is below; ``None`` ignores GMSD.
    rule : {"first_duplicate", "largest_distinct"}
        See above.
    loss_k_values, loss : array_like, optional
        ``(n,)`` every fitted ``k`` of the sweep (increasing, including those below the range)
        and its K-component loss; switches on the loss criterion.

    Returns
    -------
    dict
        ``"suggested_k"`` (int), ``"reason"`` (str), ``"rule"``, ``"thresholds"``
        (``{"ssim": ..., "gmsd": ...}``) and per-``k`` arrays of shape ``(m,)`` aligned with
        ``"k_values"``: ``"distinct"`` (bool), ``"lowers_loss"`` (bool, all True without
        ``loss``), ``"qualifies"`` (``distinct & lowers_loss``), ``"n_duplicate_pairs"`` (int),
        ``"max_ssim"``, ``"min_gmsd"``, ``"max_psnr"`` (dB), ``"min_mdsi"`` (off-diagonal
        extremes; NaN for ``k = 1`` or an absent metric), so that another rule can be applied.

    Raises
    ------
    ValueError
        On empty or unsorted ``k_values``, a ``k`` missing from ``iqa_by_k``, matrices of the
        wrong size, an unknown rule or both thresholds ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import suggest_k
    >>> def matrices(k, duplicate):
    ...     gmsd = np.full((k, k), 0.2)
    ...     np.fill_diagonal(gmsd, 0.0)
    ...     if duplicate:
    ...         gmsd[0, 1] = gmsd[1, 0] = 0.01
    ...     return {"ssim": np.eye(k), "gmsd": gmsd}
    >>> iqa_by_k = {2: matrices(2, False), 3: matrices(3, False), 4: matrices(4, True)}
    >>> res = suggest_k([2, 3, 4], iqa_by_k)
    >>> res["suggested_k"], res["distinct"].tolist()
    (3, [True, True, False])
    >>> res["reason"]
    'k = 4 has duplicate components: the first fit that adds no new diffraction; ...'
    """
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {_RULES}; got {rule!r}.")
    ks = np.asarray(k_values, dtype=np.int64)
    if ks.ndim != 1 or ks.size == 0:
        raise ValueError("k_values must be a non-empty 1D sequence of numbers of components.")
    if np.any(np.diff(ks) <= 0):
        raise ValueError(f"k_values must be strictly increasing; got {ks.tolist()}.")
    missing = [int(k) for k in ks if int(k) not in iqa_by_k]
    if missing:
        raise ValueError(f"iqa_by_k has no matrices for k = {missing}; compute them with "
                         "iqa_matrices for every k of the range of interest.")

    n = ks.size
    crit = {
        "distinct": np.zeros(n, bool),
        "n_duplicate_pairs": np.zeros(n, np.int64),
        "max_ssim": np.full(n, np.nan),
        "min_gmsd": np.full(n, np.nan),
        "max_psnr": np.full(n, np.nan),
        "min_mdsi": np.full(n, np.nan),
    }
    for idx, k in enumerate(ks):
        mats = iqa_by_k[int(k)]
        for name in ("ssim", "gmsd", "psnr", "mdsi"):
            if name in mats:
                m = np.asarray(mats[name])
                if m.shape != (k, k):
                    raise ValueError(
                        f"The {name} matrix of k = {k} has shape {m.shape}; expected ({k}, {k})."
                    )
        for key, name, red in (("max_ssim", "ssim", np.max), ("min_gmsd", "gmsd", np.min),
                               ("max_psnr", "psnr", np.max), ("min_mdsi", "mdsi", np.min)):
            if name in mats:
                crit[key][idx] = _off_diagonal(mats[name], red)
        flags = _duplicate_mask(mats, ssim_threshold, gmsd_threshold)
        crit["n_duplicate_pairs"][idx] = int(np.triu(flags, 1).sum())
        crit["distinct"][idx] = crit["n_duplicate_pairs"][idx] == 0

    crit["lowers_loss"] = _lowers_loss(ks, loss_k_values, loss)
    crit["qualifies"] = crit["distinct"] & crit["lowers_loss"]
    distinct = crit["qualifies"]

    def why(i):
        """Why ``ks[i]`` adds no new diffraction (``str``; duplicates or no lower loss)."""
        k = int(ks[i])
        if not crit["distinct"][i]:
            return f"k = {k} has duplicate components"
        return f"k = {k} does not lower the loss below that of fewer components"

    if not distinct[0]:
        best = int(ks[0])
        reason = (f"{why(0)}, already the smallest k of the range; the true number may be "
                  "smaller: extend the range to smaller k.")
    elif distinct.all():
        best = int(ks[-1])
        reason = (f"every k of the range up to {best} has mutually distinct components"
                  + (" and lowers the loss" if loss is not None else "")
                  + "; the true number may be larger: extend the range to larger k.")
    elif rule == "first_duplicate":
        first_dup = int(np.argmin(distinct))
        best = int(ks[first_dup - 1])
        reason = (f"{why(first_dup)}: the first fit that adds no new diffraction; "
                  f"k = {best} is the last that does.")
    else:
        best = int(ks[np.flatnonzero(distinct)[-1]])
        reason = (f"k = {best} is the largest k of the range with all components distinct"
                  + (" and a lower loss than fewer components." if loss is not None else "."))

    return {
        "suggested_k": best,
        "reason": reason,
        "rule": rule,
        "thresholds": {"ssim": ssim_threshold, "gmsd": gmsd_threshold},
        "k_values": ks,
        **crit,
    }


#: Per-``k`` criteria of :func:`suggest_k` kept on a :class:`KSelection`.
CRITERIA = ("distinct", "lowers_loss", "qualifies", "n_duplicate_pairs", "max_ssim",
            "min_gmsd", "max_psnr", "min_mdsi")


@dataclass
class KSelection:
    """Every number the choice of ``k`` used (see :func:`select_k`).

    Attributes
    ----------
    suggested_k : int
    reason : str
        Why (which ``k`` first produced duplicates, or why the range may be too small).
    rule : str
    thresholds : dict
        ``{"ssim": ..., "gmsd": ...}``.
    k_values : numpy.ndarray
        ``(n,)`` int fitted ``k``.
    loss : numpy.ndarray
        ``(n,)`` float64 K-component loss.
    knee : int
    knee_method : str
        "kneed", "chord", "none" or "given".
    half_width : int
    roi_k_values : numpy.ndarray
        ``(m,)`` int ``k`` of the range of interest.
    representatives : dict
        ``k -> (k, ny, nx)`` float64 representative diffractions of the range.
    iqa : dict
        ``k -> {metric -> (k, k) matrix}`` for every ``k`` of the range.
    criteria : dict
        Per-``k`` ``(m,)`` arrays of :func:`suggest_k` (:data:`CRITERIA`).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import select_k
    >>> rng = np.random.default_rng(0)
    >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
    >>> sel = select_k(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1)
    >>> type(sel).__name__, sel.knee, sel.roi_k_values.tolist()
    ('KSelection', 2, [1, 2, 3])
    >>> sorted(sel.iqa[2])
    ['gmsd', 'mdsi', 'psnr', 'ssim']
    """

    suggested_k: int
    reason: str
    rule: str
    thresholds: dict
    k_values: np.ndarray
    loss: np.ndarray
    knee: int
    knee_method: str
    half_width: int
    roi_k_values: np.ndarray
    representatives: dict = field(repr=False)
    iqa: dict = field(repr=False)
    criteria: dict = field(repr=False)

    @property
    def range_of_interest(self):
        """``(k_min, k_max)`` of the range of interest.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.model_selection import select_k
        >>> rng = np.random.default_rng(0)
        >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
        >>> select_k(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1).range_of_interest
        (1, 3)
        """
        return int(self.roi_k_values[0]), int(self.roi_k_values[-1])


def select_k(k_values, loss, representatives, *, ssim_threshold=DEFAULT_SSIM_THRESHOLD,
             gmsd_threshold=DEFAULT_GMSD_THRESHOLD, half_width=DEFAULT_HALF_WIDTH,
             rule="first_duplicate", knee=None, data_range=None, use_loss=True):
    """The whole choice of ``k``: knee, range of interest, IQA of each fit, rule.

    Cao et al. 2025, Fig. 3: :func:`find_knee` on the loss curve (unless ``knee`` is
    given), :func:`range_of_interest` ``knee +/- half_width``, :func:`iqa_matrices` of the
    representative diffractions of every fit in the range, then :func:`suggest_k`.

    Parameters
    ----------
    k_values : array_like of int
        ``(n,)`` fitted numbers of components, strictly increasing, ``n >= 3``.
    loss : array_like of float
        ``(n,)`` K-component loss of every fit, data unit per pixel.
    representatives : dict
        ``k -> (k, ny, nx)`` representative diffractions ``w_k * max(h_k)``
        (:func:`stemnmf_hs.overlap.representative_diffractions`) for at least every ``k`` of
        the range of interest; other entries are ignored.
    ssim_threshold, gmsd_threshold : float or None
        Duplicate-pair thresholds of :func:`suggest_k`; ``None`` switches one off.
    half_width : int, default 4
    rule : {"first_duplicate", "largest_distinct"}
    knee : int, optional
        Impose the knee instead of locating it.
    data_range : float, optional
        Common IQA data range of every fit; default each fit's own stack maximum.
    use_loss : bool, default True
        A ``k`` must also lower the loss below that of every smaller ``k`` to count.

    Returns
    -------
    KSelection

    Raises
    ------
    ValueError
        Too few or unsorted ``k``, non-finite loss, a ``knee`` that was not fitted,
        representatives missing for a ``k`` of the range or of the wrong shape.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 7)}
    >>> sel = select_k(range(1, 7), [9.0, 5.0, 2.0, 1.9, 1.8, 1.7], reps)
    >>> sel.knee, sel.range_of_interest, sel.suggested_k
    (3, (1, 6), 6)
    """
    ks, y = _check_curve(k_values, loss)
    if knee is None:
        knee, knee_method = find_knee(ks, y, return_method=True)
    elif int(knee) not in set(ks.tolist()):
        raise ValueError(f"knee={knee!r} is not one of the fitted k {ks.tolist()}.")
    else:
        knee, knee_method = int(knee), "given"
    roi = range_of_interest(knee, ks, half_width)
    missing = [int(k) for k in roi if int(k) not in representatives]
    if missing:
        raise ValueError(
            f"representatives lack the fits k = {missing} of the range of interest "
            f"({int(roi[0])}, {int(roi[-1])}); give w_k * max(h_k) for every k of the range."
        )
    reps = {}
    for k in roi:
        rep = np.asarray(representatives[int(k)], dtype=np.float64)
        if rep.ndim != 3 or rep.shape[0] != k:
            raise ValueError(
                f"representatives[{k}] must be a stack (k={k}, ny, nx); got {rep.shape}."
            )
        reps[int(k)] = rep
    mats = {k: iqa_matrices(rep, data_range=data_range) for k, rep in reps.items()}
    res = suggest_k(roi, mats, ssim_threshold=ssim_threshold, gmsd_threshold=gmsd_threshold,
                    rule=rule, loss_k_values=ks if use_loss else None,
                    loss=y if use_loss else None)
    return KSelection(
        suggested_k=res["suggested_k"], reason=res["reason"], rule=res["rule"],
        thresholds=res["thresholds"], k_values=ks, loss=y, knee=int(knee),
        knee_method=knee_method, half_width=int(half_width), roi_k_values=roi,
        representatives=reps, iqa=mats, criteria={key: res[key] for key in CRITERIA},
    )


def combine_k(selection, heldout=None, representatives=None, heldout_rule="min"):
    """The suggested ``k``: the held-out choice checked by Cao's duplicate criterion.

    The rule (documented on :meth:`stemnmf_hs.signals.NMFDiffraction2D.estimate_number_of_components`):

    1. Count data (a held-out score exists): start from the held-out choice -- the ``k``
       of lowest held-out score (``heldout_rule="min"``) or the smallest ``k`` within one
       standard error of it (``"one_se"``).  A component that fits noise of the train half
       raises the score on the independent test half, so the score does not reward noise
       fitting at any dose, where the K-component loss ``mean |V - W H|`` does (below one
       count per pixel it can rise with a better fit).
    2. Cao's IQA check: if that fit holds a near-duplicate pair of representative
       diffractions (SSIM above / GMSD below the thresholds of :func:`suggest_k`), step
       down to the largest smaller ``k`` whose components are all distinct (a split of
       one diffraction into two lowers the score without adding a phase).
    3. The knee as a floor: if the knee of the K-component loss (Cao's level one) is
       larger, the largest ``k`` up to the knee whose components are all distinct (the
       check of step 2) is taken instead.  The held-out score pays for every parameter of
       a component: below about 0.1 count per pixel a new component's diffraction, fitted
       to a few electrons per pixel, costs more held-out deviance than a weak phase gains,
       so the score undershoots (Kimoto-like scan at 1e3 electrons per pattern: lowest at
       k = 2 by 10 standard errors, truth 4); the knee of the loss does not pay for
       parameters and still bends at the phases, and the IQA check keeps it from counting
       a split diffraction twice.
    4. Without a held-out score (data that are not counts): Cao's choice
       (:func:`select_k`).

    Measured (``benchmarks/validation.py --k``, k = 2..10, sweep defaults: the monotone
    ``"hals"`` solver, 2 restarts, 10 ALS then 20 monotone iterations, test fraction 0.2;
    truth 4, 5, 4, 5 for Kimoto-like, multislice, real-pattern and kinematic scans):
    suggested ``k`` within 1 of the truth in 8 of 8 case-doses from 1e4 electrons per
    pattern up and in 3 of 4 at 1e3 (kinematic: 3 for 5), for each of the seeds 0, 1 and
    2; without step 3, 8 of 8 and 2 of 4 (Kimoto-like 2), with the paper's ALS in the
    sweep 7 of 8 (kinematic at 1e4: 3) and 2 of 4.  Step 3 was chosen on these cases
    (no case was held back to test it).
    Cao's rule alone (on the same fits, seed 0): 8 of 8 and 0 of 4.  The held-out minimum
    alone overshoots on the multislice scan (7-10 at 1e4-1e5: multislice is not a sum of 5
    patterns, the score keeps finding structure) and the real-pattern scan (6-10); the IQA
    check brings both back to the truth.  The one-standard-error choice equalled the
    minimum in every case-dose of that table (it differed once, 6 vs 8, with a test
    fraction of 0.5), so the default is the minimum.  With a test fraction of 0.5 instead
    of 0.2, 1 of 4 at 1e3 (a fit on half the counts misses the weak crystals).

    Parameters
    ----------
    selection : KSelection
        Cao's criteria (:func:`select_k`).
    heldout : dict, optional
        :func:`heldout_choice` of the same ``k_values``; ``None``: Cao's choice.
    representatives : dict, optional
        ``k -> (k, ny, nx)`` representative diffractions of every fitted ``k`` (for the
        IQA check outside the range of interest).
    heldout_rule : {"min", "one_se"}, default "min"

    Returns
    -------
    dict
        ``"suggested_k"``, ``"reason"``, ``"choices"`` (criterion -> its own ``k``:
        ``"knee"``, ``"cao"``, and with a held-out score ``"heldout_min"`` and
        ``"heldout_one_se"``), ``"distinct"`` (``k -> bool`` of the IQA checks made).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import combine_k, heldout_choice, select_k
    >>> rng = np.random.default_rng(0)
    >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
    >>> sel = select_k(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1)
    >>> rows = np.array([[3.0, 3.1], [2.0, 2.1], [1.5, 1.52], [1.6, 1.7]])
    >>> out = combine_k(sel, heldout_choice(range(1, 5), rows), reps)
    >>> out["suggested_k"], out["choices"]["cao"], out["choices"]["heldout_min"]
    (3, 3, 3)
    """
    if heldout_rule not in HELDOUT_RULES:
        raise ValueError(f"heldout_rule must be one of {HELDOUT_RULES}; got {heldout_rule!r}.")
    choices = {"knee": int(selection.knee), "cao": int(selection.suggested_k)}
    if heldout is None:
        return {"suggested_k": int(selection.suggested_k), "choices": choices, "distinct": {},
                "reason": selection.reason}
    choices["heldout_min"] = int(heldout["k_min"])
    choices["heldout_one_se"] = int(heldout["k_one_se"])
    start = choices["heldout_min" if heldout_rule == "min" else "heldout_one_se"]
    ks = [int(k) for k in selection.k_values if int(k) <= start]
    distinct = {}

    def is_distinct(k):
        """Whether the fit with ``k`` components has no near-duplicate pair (Cao's SSIM/GMSD thresholds); ``True`` when its IQA matrices are unknown."""
        if k in selection.iqa:
            mats = selection.iqa[k]
        elif representatives is not None and k in representatives:
            mats = iqa_matrices(np.asarray(representatives[k], dtype=np.float64),
                                metrics=("ssim", "gmsd"))
        else:
            return True
        flags = _duplicate_mask(mats, selection.thresholds["ssim"],
                                selection.thresholds["gmsd"])
        return not flags.any()

    what = ("lowest held-out score" if heldout_rule == "min" else
            "smallest k within one standard error of the lowest held-out score")

    def largest_distinct(candidates):
        """The largest of ``candidates`` whose fit has distinct components (checks recorded
        in ``distinct``), else ``None``."""
        for kk in sorted(candidates, reverse=True):
            distinct[kk] = is_distinct(kk)
            if distinct[kk]:
                return kk
        return None

    best = largest_distinct(ks)
    if best is None:
        best = ks[0]
    if best == start:
        reason = (f"k = {start} has the {what} (Poisson deviance of the test half) and "
                  "mutually distinct components")
    else:
        reason = (f"k = {start} has the {what} but near-duplicate components (Cao's IQA); "
                  f"k = {best} is the largest smaller k with distinct components")
    raised = largest_distinct([int(v) for v in selection.k_values
                               if best < int(v) <= choices["knee"]])
    if raised is not None:
        best = raised
        reason += (f"; raised to k = {best}, the largest k up to the knee of the "
                   f"K-component loss (k = {choices['knee']}) with distinct components "
                   "(the held-out score undershoots below ~0.1 count per pixel)")
    reason += f"; Cao's criteria alone: k = {choices['cao']} ({selection.reason})"
    return {"suggested_k": int(best), "choices": choices, "distinct": distinct,
            "reason": reason}
