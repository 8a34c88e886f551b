"""Ground-truth matching and figures of merit for decompositions of simulated scans.

Arrays only (numpy and scipy).  Diffractions are ``(k, ny, nx)`` or ``(k, n_pixels)``
stacks; non-finite pixels (masked pixels read ``nan`` in the signal API's factors) are left
out of every comparison.  Maps are ``(k, ny, nx)`` or ``(k, n_positions)``.

The functions serve the validation suite (:mod:`stemnmf_hs.data._cases`,
``benchmarks/validation.py``) and the command line's comparison with a simulation's truth.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cosine",
    "crystal_cosine",
    "dark_spot_ratio",
    "map_correlation",
    "match_ground_truth",
    "score_decomposition",
    "spot_mask_from_truth",
    "truth_assignment",
]


def _flat(a):
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(1, -1)


def _cosine_matrix(F, T):
    """``(len(F), len(T))`` cosines over the pixels finite in every row of both."""
    F, T = _flat(F), _flat(T)
    if F.shape[1] != T.shape[1]:
        raise ValueError(
            f"factors have {F.shape[1]} pixels per component but the truth has {T.shape[1]}"
        )
    valid = np.isfinite(F).all(axis=0) & np.isfinite(T).all(axis=0)
    F, T = F[:, valid], T[:, valid]
    norms = np.linalg.norm(F, axis=1)[:, None] * np.linalg.norm(T, axis=1)[None, :]
    cos = np.divide(F @ T.T, norms, out=np.zeros((len(F), len(T))), where=norms > 0)
    return np.clip(cos, -1.0, 1.0)


def match_ground_truth(factors, truth):
    """Match factors to ground-truth diffractions by cosine similarity.

    Parameters
    ----------
    factors : numpy.ndarray
        ``(k, ny, nx)`` or ``(k, n_pixels)`` diffractions; non-finite pixels (masked) are
        left out of the comparison.
    truth : numpy.ndarray
        ``(m, ny, nx)`` or ``(m, n_pixels)`` ground-truth diffractions.

    Returns
    -------
    list of tuple
        ``(factor_index, truth_index or None, cosine or nan)`` for every factor, in factor
        order; the assignment (``scipy.optimize.linear_sum_assignment``, the Hungarian
        method) maximizes the total cosine similarity, so with ``k > m`` some factors stay
        unmatched.

    See Also
    --------
    truth_assignment : the same assignment seen from the truth.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.eye(3)
    >>> match_ground_truth(truth[[2, 0, 1]], truth)
    [(0, 2, 1.0), (1, 0, 1.0), (2, 1, 1.0)]
    """
    from scipy.optimize import linear_sum_assignment

    cos = _cosine_matrix(factors, truth)
    rows, cols = linear_sum_assignment(-cos)
    best = dict(zip(rows.tolist(), cols.tolist()))
    return [
        (i, best.get(i), float(cos[i, best[i]]) if i in best else float("nan"))
        for i in range(len(cos))
    ]


def truth_assignment(factors, truth):
    """For every true component, the index of the factor matched to it.

    Hungarian assignment (``scipy.optimize.linear_sum_assignment``) maximizing the total
    cosine similarity between factors and true diffractions, as in
    :func:`match_ground_truth`.

    Parameters
    ----------
    factors : numpy.ndarray
        ``(k, ny, nx)`` or ``(k, n_pixels)`` diffractions (non-finite pixels ignored).
    truth : numpy.ndarray
        ``(m, ny, nx)`` or ``(m, n_pixels)`` true diffractions.

    Returns
    -------
    numpy.ndarray of int
        ``(m,)``: ``perm[j]`` is the factor matched to true component ``j``, ``-1`` where
        ``k < m`` leaves it unmatched.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.eye(3)
    >>> truth_assignment(truth[[2, 0, 1]], truth).tolist()
    [1, 2, 0]
    >>> truth_assignment(truth[[2]], truth).tolist()
    [-1, -1, 0]
    """
    from scipy.optimize import linear_sum_assignment

    cos = _cosine_matrix(factors, truth)
    rows, cols = linear_sum_assignment(-cos)
    perm = np.full(cos.shape[1], -1, dtype=int)
    perm[cols] = rows
    return perm


def cosine(a, b):
    """Cosine similarity of two diffractions (or any two arrays of the same size).

    Parameters
    ----------
    a, b : array_like
        Same number of elements; pixels non-finite in either are left out.

    Returns
    -------
    float
        ``a . b / (|a| |b|)``; ``0`` when either is zero.

    Examples
    --------
    >>> import numpy as np
    >>> cosine([1.0, 0.0, np.nan], [2.0, 0.0, 5.0])
    1.0
    >>> round(cosine([1.0, 0.0], [1.0, 1.0]), 4)
    0.7071
    """
    return float(_cosine_matrix(np.ravel(a)[None], np.ravel(b)[None])[0, 0])


def crystal_cosine(factor, truth, amorphous):
    """Cosine of a crystal diffraction with its truth, the truth's amorphous part removed.

    ``factor`` and ``truth`` are scaled to unit sum, then the same multiple ``c a`` of the
    amorphous diffraction ``a`` is subtracted from both, ``c`` being the largest
    non-negative multiple of ``a`` that the truth contains (``min(truth / a)`` over the
    pixels where ``a`` exceeds 0.1 % of its maximum).  The comparison thus rests on the
    crystal's own spots, not on a diffuse background it shares with the matrix; a factor
    that carries *more* of the amorphous rings than its truth (NMF cannot tell ``w_c`` from
    ``w_c + x w_amorphous`` when the maps compensate) keeps the excess and scores lower.
    For a truth without such a background (``c = 0``, e.g. kinematic spots) this is the
    plain :func:`cosine` of the unit-sum patterns.  (An orthogonal projection would not do:
    a smooth ring pattern has so small an L2 norm that projecting it out of a spot pattern
    removes any amount of rings.)  A factor equal to its truth scores 1.

    Parameters
    ----------
    factor, truth : array_like
        The crystal diffraction and its true diffraction, same size.
    amorphous : array_like
        The true amorphous diffraction, same size.  Pixels non-finite in any of the three
        are left out.

    Returns
    -------
    float
        Cosine in ``[-1, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> amorphous = np.array([1.0, 1.0, 1.0, 0.0])
    >>> crystal = np.array([0.5, 0.5, 0.5, 1.0])     # spots on a diffuse background
    >>> crystal_cosine(crystal, crystal, amorphous)
    1.0
    >>> ringed = crystal + 2.0 * amorphous          # carries the matrix's rings
    >>> round(cosine(ringed, crystal), 3), round(crystal_cosine(ringed, crystal, amorphous), 3)
    (0.808, 0.585)
    """
    f, t, a = (np.ravel(np.asarray(v, dtype=np.float64)) for v in (factor, truth, amorphous))
    if not f.size == t.size == a.size:
        raise ValueError(
            f"factor has {f.size} pixels, truth {t.size} and amorphous {a.size}; "
            "they must match"
        )
    valid = np.isfinite(f) & np.isfinite(t) & np.isfinite(a)
    f, t, a = f[valid], t[valid], a[valid]
    fs, ts = f.sum(), t.sum()
    if fs <= 0 or ts <= 0 or not (a > 0).any():
        return cosine(f, t)
    f, t = f / fs, t / ts
    support = a > 1e-3 * a.max()
    c = max(float(np.min(t[support] / a[support])), 0.0)
    return cosine(f - c * a, t - c * a)


def map_correlation(a, b):
    """Pearson correlation of two maps.

    Parameters
    ----------
    a, b : array_like
        Maps of the same size (positions non-finite in either are left out).

    Returns
    -------
    float
        ``r`` in ``[-1, 1]``; ``nan`` when either map is constant.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.arange(16.0).reshape(4, 4)
    >>> map_correlation(m, 3 * m + 1)
    1.0
    >>> map_correlation(m, -m)
    -1.0
    """
    x, y = (np.ravel(np.asarray(v, dtype=np.float64)) for v in (a, b))
    valid = np.isfinite(x) & np.isfinite(y)
    x, y = x[valid] - x[valid].mean(), y[valid] - y[valid].mean()
    den = np.sqrt((x @ x) * (y @ y))
    return float(np.clip(x @ y / den, -1.0, 1.0)) if den > 0 else float("nan")


def dark_spot_ratio(amorphous_factor, truth_amorphous, spot_mask):
    """How much an amorphous factor dips on the crystals' Bragg spots (paper Fig. 6a).

    The true amorphous profile is scaled to the factor by least squares on the pixels off
    the spots; the ratio is the factor's mean on the spot pixels over the scaled profile's
    mean there.  1 means no dark spots; below about 0.95 the factor shows the crystals'
    spots as holes (a crystal diffraction subtracted from the amorphous one).

    Parameters
    ----------
    amorphous_factor : array_like
        ``(ny, nx)`` (or flat) amorphous diffraction found by the decomposition.
    truth_amorphous : array_like
        The true amorphous diffraction, same size.
    spot_mask : array_like of bool
        Same size, ``True`` on the crystals' spot pixels (e.g. where the summed true crystal
        diffractions exceed 10 % of their maximum).  Non-finite pixels of either diffraction
        are left out.

    Returns
    -------
    float
        The ratio; ``nan`` when no spot pixel or no off-spot pixel is left.

    Raises
    ------
    ValueError
        If the three arrays differ in size.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.ones(10)
    >>> spots = np.zeros(10, bool); spots[:2] = True
    >>> dark_spot_ratio(2 * truth, truth, spots)
    1.0
    >>> holed = 2 * truth; holed[:2] = 1.0
    >>> dark_spot_ratio(holed, truth, spots)
    0.5
    """
    f, t = (np.ravel(np.asarray(v, dtype=np.float64)) for v in (amorphous_factor,
                                                                  truth_amorphous))
    spots = np.ravel(np.asarray(spot_mask, dtype=bool))
    if not f.size == t.size == spots.size:
        raise ValueError(
            f"amorphous_factor has {f.size} pixels, truth_amorphous {t.size} and "
            f"spot_mask {spots.size}; they must match"
        )
    valid = np.isfinite(f) & np.isfinite(t)
    on, off = spots & valid, ~spots & valid
    if not on.any() or not off.any() or t[off] @ t[off] == 0:
        return float("nan")
    scale = (f[off] @ t[off]) / (t[off] @ t[off])
    den = scale * t[on].mean()
    return float(f[on].mean() / den) if den > 0 else float("nan")


def spot_mask_from_truth(crystal_diffractions, fraction=0.1, signal_mask=None, size=7):
    """Bragg-spot pixels of the true crystal diffractions.

    The summed crystal diffractions minus their running median over ``size`` x ``size``
    pixels (which removes diffuse backgrounds of real patterns and keeps the spots) is
    thresholded at ``fraction`` of its maximum over the pixels outside ``signal_mask``.
    A spot touching ``signal_mask`` (8-connected) is the tail of the masked direct beam, not
    a Bragg spot, and is left out: real crystal patterns' direct beams are wider than the
    mask (on the real-pattern case 17 of 64 "spot" pixels sat at 3-4 px from the centre,
    where the crystals are 30x brighter than the matrix and no factor is determined).

    Parameters
    ----------
    crystal_diffractions : array_like
        ``(k_c, ny, nx)`` true crystal diffractions (non-finite pixels count as zero).
    fraction : float, default 0.1
        Threshold relative to the largest spot excess.
    signal_mask : array_like of bool, optional
        ``(ny, nx)``, ``True`` on excluded pixels (the direct beam); never spots, nor is a
        spot that touches them.
    size : int, default 7
        Window of the running median, pixels.

    Returns
    -------
    numpy.ndarray of bool
        ``(ny, nx)``.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.full((1, 9, 9), 0.5); c[0, 4, 4] = 2.0; c[0, 1, 1] = 1.5
    >>> np.argwhere(spot_mask_from_truth(c)).tolist()
    [[1, 1], [4, 4]]
    >>> mask = np.zeros((9, 9), bool); mask[4, 4] = True
    >>> np.argwhere(spot_mask_from_truth(c, signal_mask=mask)).tolist()
    [[1, 1]]
    >>> c[0, 4, 5] = 2.0  # the beam's tail beside the mask: not a spot
    >>> np.argwhere(spot_mask_from_truth(c, signal_mask=mask)).tolist()
    [[1, 1]]
    """
    from scipy import ndimage

    s = np.nan_to_num(np.asarray(crystal_diffractions, dtype=np.float64)).sum(axis=0)
    excess = s - ndimage.median_filter(s, size=size, mode="nearest")
    valid = np.ones(s.shape, bool) if signal_mask is None else ~np.asarray(signal_mask, bool)
    if not valid.any():
        return np.zeros(s.shape, bool)
    spots = (excess > fraction * excess[valid].max()) & valid
    if signal_mask is not None and (~valid).any():
        labels, _ = ndimage.label(spots, structure=np.ones((3, 3), bool))
        touching = np.unique(labels[ndimage.binary_dilation(~valid, np.ones((3, 3), bool))])
        spots &= ~np.isin(labels, touching[touching > 0])
    return spots


#: Cosine with the true matrix diffraction above which a factor counts as a piece of the
#: matrix in ``score_decomposition``'s ``matrix_map_r``.
MATRIX_COSINE = 0.9


def score_decomposition(factors, maps, truth_diffractions, truth_maps, amorphous_index=0,
                        spot_mask=None, amorphous_reference=None):
    """All figures of merit of one decomposition against its ground truth.

    Parameters
    ----------
    factors : numpy.ndarray
        ``(k, ny, nx)`` diffractions found (masked pixels ``nan`` or excluded by the caller).
    maps : numpy.ndarray
        ``(k, n_positions)`` or ``(k, sy, sx)`` maps found.
    truth_diffractions : numpy.ndarray
        ``(m, ny, nx)`` true diffractions.
    truth_maps : numpy.ndarray
        ``(m, ...)`` true maps, same positions as ``maps``.
    amorphous_index : int, default 0
        Which true component is the amorphous matrix.
    spot_mask : numpy.ndarray of bool, optional
        Spot pixels for :func:`dark_spot_ratio`; default :func:`spot_mask_from_truth` of the
        crystal truths, pixels non-finite in ``factors`` (masked) excluded.
    amorphous_reference : numpy.ndarray, optional
        The amorphous profile :func:`dark_spot_ratio` compares with (e.g. the rotational
        average of a truth that itself has holes at the spots); default the true amorphous
        diffraction.

    Returns
    -------
    dict
        ``perm`` (factor index per true component, :func:`truth_assignment`),
        ``amorphous_cosine``, ``crystal_cosines`` (per crystal, :func:`crystal_cosine`),
        ``amorphous_map_r``, ``crystal_map_r`` (per crystal, :func:`map_correlation`),
        ``dark_spot_ratio``; figures of unmatched components are ``nan``.
        ``matrix_components`` (factor indices whose diffraction has a cosine of at least
        :data:`MATRIX_COSINE` with the true matrix, the matched one always included) and
        ``matrix_map_r``, the correlation of their summed maps with the true matrix map:
        where a fit splits the matrix over two factors (e.g. at k = truth when a weak
        crystal is not detectable), the matrix the clustering reports.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, H = rng.random((3, 4, 4)), rng.random((3, 25))
    >>> r = score_decomposition(W[[1, 0, 2]], H[[1, 0, 2]], W, H)
    >>> r["perm"].tolist(), r["amorphous_cosine"], min(r["crystal_map_r"])
    ([1, 0, 2], 1.0, 1.0)
    """
    T = np.asarray(truth_diffractions, dtype=np.float64)
    F = np.asarray(factors, dtype=np.float64)
    M = _flat(maps)
    TM = _flat(truth_maps)
    m = len(T)
    perm = truth_assignment(F.reshape(len(F), -1), T.reshape(m, -1))
    a = amorphous_index
    crystals = [j for j in range(m) if j != a]
    if spot_mask is None:
        excluded = ~np.isfinite(F.reshape((len(F),) + T.shape[1:])).all(axis=0)
        spot_mask = (spot_mask_from_truth(T[crystals], signal_mask=excluded) if crystals
                     else np.zeros(T[0].shape, bool))
    nan = float("nan")

    def fac(j):
        """The factor ``(n_pixels,)`` matched to true component ``j``, or ``None`` when unmatched."""
        return F[perm[j]] if perm[j] >= 0 else None

    out = {"perm": perm}
    out["amorphous_cosine"] = cosine(fac(a), T[a]) if perm[a] >= 0 else nan
    out["crystal_cosines"] = [
        crystal_cosine(fac(j), T[j], T[a]) if perm[j] >= 0 else nan for j in crystals
    ]
    out["amorphous_map_r"] = map_correlation(M[perm[a]], TM[a]) if perm[a] >= 0 else nan
    # the matrix as a scientist reads it when the fit splits it over several factors (the
    # clustering joins them): the summed maps of every factor shaped like the true matrix
    split = [i for i in range(len(F))
             if i == perm[a] or cosine(F[i], T[a]) >= MATRIX_COSINE]
    out["matrix_components"] = split
    out["matrix_map_r"] = (map_correlation(M[split].sum(axis=0), TM[a]) if split else nan)
    out["crystal_map_r"] = [
        map_correlation(M[perm[j]], TM[j]) if perm[j] >= 0 else nan for j in crystals
    ]
    ref = T[a] if amorphous_reference is None else amorphous_reference
    out["dark_spot_ratio"] = (dark_spot_ratio(fac(a), ref, spot_mask) if perm[a] >= 0
                              else nan)
    return out
