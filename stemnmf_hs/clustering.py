"""Hierarchical clustering of factorized components and rotation-corrected merging.

Math module: arrays in, arrays out; never imports HyperSpy.

Source: K. Kimoto et al., "Nonnegative matrix factorization with domain-specific constraints
for 4D-STEM", Sci. Rep. 15, 39143 (2025): the diffraction similarity of eqs. (10)-(11)
(:func:`stemnmf_hs.similarity.polar_cross_correlation`) replaces a conventional distance in
SciPy's hierarchical clustering; clusters are summarized by averaged diffractions after
phi-rotation correction (Fig. 9c, d, dendrograms and insets).

The linkage matrix returned by :func:`cluster_components` can be drawn with
:func:`scipy.cluster.hierarchy.dendrogram`.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from .polar import as_pattern_stack
from .similarity import rotate_patterns

__all__ = ["DEFAULT_DISTANCE_THRESHOLD", "LINKAGE_METHODS", "SPECTRUM_DISTANCE_THRESHOLD",
           "cluster_components", "default_distance_threshold", "merge_components"]

#: Distance ``1 - similarity`` below which components are merged when neither
#: ``n_clusters`` nor ``distance_threshold`` is given (similarity >= 0.9).
DEFAULT_DISTANCE_THRESHOLD = 0.1

#: Distance ``1 - similarity`` of the default cut for the phase-free angular spectrum
#: similarity (:func:`stemnmf_hs.similarity.angular_spectrum_similarity`, similarity >= 0.62),
#: the default of the signal method ``cluster_components()``.  Chosen from the dendrograms
#: (average linkage) of k = 30 decompositions (2 restarts, 100 iterations, seed 0) of three
#: scans with known truth.  The merge heights that must lie below / above the cut were:
#:
#: ============================  ===========================  ==========================
#: scan (true components)        last merge inside a class    first merge across classes
#: ============================  ===========================  ==========================
#: ``real_pattern_case(1e5)``    0.33 (0.31 with newer fit)   0.40 (0.42)
#: ``simulated_precipitates(0)`` 0.26 (0.23)                  0.48 (0.55)
#: ``abtem_case(1e5)``           0.36 (0.30)                  0.56 (0.40)
#: ============================  ===========================  ==========================
#:
#: so every cut in ``(0.36, 0.40)`` gives the rotation-invariant classes (3, 4, 4).  With
#: eq. 10 (``metric="polar"``) no single cut does: the abTEM glass fragments are 0.6-0.77
#: similar to each other and as similar to the particles (see the signal method).
SPECTRUM_DISTANCE_THRESHOLD = 0.38

_DEFAULT_THRESHOLDS = {"polar": DEFAULT_DISTANCE_THRESHOLD,
                       "cosine": DEFAULT_DISTANCE_THRESHOLD,
                       "spectrum": SPECTRUM_DISTANCE_THRESHOLD}

#: Linkage methods accepted by :func:`scipy.cluster.hierarchy.linkage`.
LINKAGE_METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")


def default_distance_threshold(metric):
    """Default dendrogram cut ``1 - similarity`` of a similarity metric.

    Parameters
    ----------
    metric : {"polar", "cosine", "spectrum"}
        ``"polar"`` (eq. 10, the paper's similarity) and ``"cosine"`` (eq. 9):
        :data:`DEFAULT_DISTANCE_THRESHOLD` (0.1); ``"spectrum"``
        (:func:`stemnmf_hs.similarity.angular_spectrum_similarity`):
        :data:`SPECTRUM_DISTANCE_THRESHOLD` (0.38).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On an unknown metric.

    Examples
    --------
    >>> from stemnmf_hs.clustering import default_distance_threshold
    >>> default_distance_threshold("polar"), default_distance_threshold("spectrum")
    (0.1, 0.38)
    """
    try:
        return _DEFAULT_THRESHOLDS[metric]
    except (KeyError, TypeError):
        raise ValueError(
            f"metric must be one of {tuple(_DEFAULT_THRESHOLDS)}, got {metric!r}."
        ) from None


def _relabel_first_appearance(raw):
    """Map arbitrary labels to 0, 1, ... in order of first appearance."""
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def cluster_components(similarity, n_clusters=None, distance_threshold=None, method="average"):
    """Agglomerative clustering of components from a similarity matrix.

    The distance is ``1 - similarity`` (after symmetrizing, clipping to ``[0, 2]`` and
    zeroing the diagonal), condensed with :func:`scipy.spatial.distance.squareform` and
    clustered with :func:`scipy.cluster.hierarchy.linkage`; flat clusters come from
    :func:`scipy.cluster.hierarchy.fcluster` (criterion ``"maxclust"`` for ``n_clusters``,
    ``"distance"`` for ``distance_threshold``).

    Parameters
    ----------
    similarity : array_like
        ``(k, k)`` similarity matrix, 1 = identical, e.g. the diffraction similarity of
        :func:`stemnmf_hs.similarity.polar_cross_correlation` (eq. 10) or the cosine
        similarity (eq. 9).
    n_clusters : int, optional
        Number of flat clusters, ``1 <= n_clusters <= k``.  SciPy's ``maxclust`` may return
        fewer clusters when merge heights tie.
    distance_threshold : float, optional
        Largest cophenetic distance ``1 - similarity`` (``>= 0``) inside a flat cluster.
        Exactly one of ``n_clusters`` / ``distance_threshold`` may be given; with neither,
        ``distance_threshold = DEFAULT_DISTANCE_THRESHOLD = 0.1`` (similarity >= 0.9).
    method : str, default "average"
        One of :data:`LINKAGE_METHODS`.  ``"centroid"``, ``"median"`` and ``"ward"`` assume
        Euclidean distances, which ``1 - similarity`` is not; prefer ``"average"``,
        ``"complete"``, ``"single"`` or ``"weighted"``.

    Returns
    -------
    labels : numpy.ndarray
        ``(k,)`` int64 cluster index of every component, ``0 .. n_found - 1``, numbered in
        order of first appearance along the component axis (component 0 is in cluster 0).
    linkage_matrix : numpy.ndarray
        ``(k - 1, 4)`` SciPy linkage matrix (merge heights in units of ``1 - similarity``),
        for :func:`scipy.cluster.hierarchy.dendrogram`.

    Raises
    ------
    ValueError
        If ``similarity`` is not a square finite ``(k, k)`` matrix with ``k >= 2``, both
        ``n_clusters`` and ``distance_threshold`` are given, ``n_clusters`` is not an integer
        in ``[1, k]``, ``distance_threshold`` is not a finite number ``>= 0``, or ``method``
        is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.clustering import cluster_components
    >>> similarity = np.array([[1.0, 0.95, 0.1], [0.95, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> labels, linkage = cluster_components(similarity, n_clusters=2)
    >>> labels
    array([0, 0, 1])
    >>> linkage.shape
    (2, 4)
    >>> cluster_components(similarity, distance_threshold=0.1)[0]
    array([0, 0, 1])
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be a square (k, k) matrix, got shape {sim.shape}.")
    k = sim.shape[0]
    if k < 2:
        raise ValueError(
            f"hierarchical clustering needs at least 2 components, got k = {k}; with one "
            "component there is nothing to cluster (its label is 0)."
        )
    if not np.all(np.isfinite(sim)):
        raise ValueError("similarity contains NaN or infinite values.")
    if not isinstance(method, str) or method not in LINKAGE_METHODS:
        raise ValueError(f"method must be one of {LINKAGE_METHODS}, got {method!r}.")
    if n_clusters is not None and distance_threshold is not None:
        raise ValueError(
            f"give either n_clusters ({n_clusters!r}) or distance_threshold "
            f"({distance_threshold!r}), not both."
        )
    if n_clusters is not None:
        if isinstance(n_clusters, (bool, np.bool_)) or not isinstance(
            n_clusters, (int, np.integer)
        ) or not 1 <= n_clusters <= k:
            raise ValueError(
                f"n_clusters must be an integer between 1 and the number of components "
                f"k = {k}, got {n_clusters!r}."
            )
    else:
        if distance_threshold is None:
            distance_threshold = DEFAULT_DISTANCE_THRESHOLD
        if isinstance(distance_threshold, (bool, np.bool_)) or not np.isscalar(
            distance_threshold
        ) or not np.isfinite(distance_threshold) or distance_threshold < 0:
            raise ValueError(
                "distance_threshold must be a finite number >= 0 (a distance "
                f"1 - similarity), got {distance_threshold!r}."
            )

    dist = np.clip(1.0 - 0.5 * (sim + sim.T), 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method=method)
    if n_clusters is not None:
        raw = fcluster(z, t=int(n_clusters), criterion="maxclust")
    else:
        raw = fcluster(z, t=float(distance_threshold), criterion="distance")
    return _relabel_first_appearance(raw), z


def merge_components(
    diffractions,
    maps,
    labels,
    rotation,
    center=None,
    signal_shape=None,
    weights=None,
    signal_mask=None,
    order=1,
):
    """Rotation-corrected average diffraction and summed map of every cluster.

    For every cluster the reference member is the one with the largest weight (by default
    the L2 norm of its map; ties -> lowest index).  Every member ``m`` is rotated onto the
    reference by ``rotation[ref, m]`` degrees with
    :func:`stemnmf_hs.similarity.rotate_patterns` (counter-clockwise as displayed, the
    convention of :func:`stemnmf_hs.similarity.polar_cross_correlation`), then the rotated
    members are averaged with the weights (plain mean if all weights of a cluster are 0).
    The maps of the members are summed.

    Parameters
    ----------
    diffractions : array_like
        ``(k, ny, nx)`` stack, or unfolded ``(k, ny * nx)`` / ``(k, n_kept)`` (masked) rows.
    maps : array_like
        ``(k, ...)`` maps (loadings), component axis first, any trailing shape (e.g.
        ``(k, ny_scan, nx_scan)``).
    labels : array_like of int
        ``(k,)`` cluster labels, e.g. from :func:`cluster_components`.
    rotation : array_like
        ``(k, k)`` degrees, ``rotation[i, j]`` rotates pattern ``j`` onto pattern ``i``
        (from :func:`stemnmf_hs.similarity.polar_cross_correlation`).
    center : tuple of float, optional
        ``(cx, cy)`` rotation centre in pixels, column first; geometric centre when ``None``.
    signal_shape : tuple of int, optional
        ``(ny, nx)``; required for unfolded diffractions.
    weights : array_like, optional
        ``(k,)`` non-negative averaging weights; default the L2 norms of the maps.
    signal_mask : array_like of bool, optional
        ``(ny, nx)``, ``True`` = excluded pixel; needed to refold ``(k, n_kept)`` rows.
        Masked pixels are 0 before rotation.
    order : int, default 1
        Spline order of the rotation (1 = bilinear).

    Returns
    -------
    merged_diffractions : numpy.ndarray
        ``(n_clusters, ny, nx)`` float64; row ``c`` belongs to the ``c``-th smallest label
        (cluster ``c`` for labels from :func:`cluster_components`).  Pixels rotated in from
        outside the pattern (the corners) are 0.
    merged_maps : numpy.ndarray
        ``(n_clusters, ...)`` sums of the members' maps, trailing shape of ``maps``.

    Raises
    ------
    ValueError
        If shapes disagree (``k`` of diffractions, maps, labels, rotation, weights), labels
        are not integers, ``rotation``/``weights`` are not finite, or weights are negative.

    Notes
    -----
    Kimoto et al. 2025, Fig. 9c, d ("integrated factorized diffractions after rotation
    correction").  Diffractions are averaged, not summed, so a cluster of unit-normalized
    components stays normalized-like; the intensity scale lives in the summed maps.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.clustering import merge_components
    >>> diffractions = np.ones((3, 8, 8))
    >>> maps = np.ones((3, 4, 4))
    >>> merged, summed = merge_components(diffractions, maps, labels=[0, 0, 1],
    ...                                   rotation=np.zeros((3, 3)))
    >>> merged.shape, summed.shape
    ((2, 8, 8), (2, 4, 4))
    >>> summed[:, 0, 0]
    array([2., 1.])
    """
    stack = as_pattern_stack(diffractions, signal_shape, signal_mask)
    k = stack.shape[0]
    maps = np.asarray(maps)
    if maps.ndim < 1 or maps.shape[0] != k:
        raise ValueError(
            f"maps must have the component axis first with k = {k} entries, got shape "
            f"{maps.shape}."
        )
    if not (np.issubdtype(maps.dtype, np.number) and not np.iscomplexobj(maps)):
        raise ValueError(f"maps must be real numbers, got dtype {maps.dtype}.")
    lab = np.asarray(labels)
    if lab.shape != (k,):
        raise ValueError(f"labels must have shape ({k},), got {lab.shape}.")
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise ValueError(f"labels must be integers, got {labels!r}.")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {lab.dtype}.")
    rot = np.asarray(rotation, dtype=np.float64)
    if rot.shape != (k, k):
        raise ValueError(f"rotation must have shape ({k}, {k}) degrees, got {rot.shape}.")
    if not np.all(np.isfinite(rot)):
        raise ValueError("rotation contains NaN or infinite values.")
    flat_maps = np.asarray(maps, dtype=np.float64).reshape(k, -1)
    if weights is None:
        w = np.sqrt(np.einsum("kn,kn->k", flat_maps, flat_maps))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {w.shape}.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be finite and >= 0, got {weights!r}.")

    uniq, inv = np.unique(lab, return_inverse=True)
    inv = inv.ravel()
    n = uniq.size
    onehot = np.zeros((n, k), dtype=np.float64)
    onehot[inv, np.arange(k)] = 1.0

    # Reference of every cluster: largest weight, ties -> lowest index.
    ref = np.empty(n, dtype=np.int64)
    for c in range(n):  # loop over clusters (few), not pixels
        members = np.flatnonzero(inv == c)
        ref[c] = members[np.argmax(w[members])]
    angles = rot[ref[inv], np.arange(k)]
    rotated = rotate_patterns(stack, angles, center=center, order=order)  # one call

    avg = onehot * w[None, :]
    totals = avg.sum(axis=1)
    empty = totals <= 0
    avg[empty] = onehot[empty]
    avg /= avg.sum(axis=1, keepdims=True)
    merged_diff = (avg @ rotated.reshape(k, -1)).reshape((n,) + stack.shape[1:])
    out_dtype = np.result_type(maps.dtype, np.float32)
    merged_maps = (onehot @ flat_maps).reshape((n,) + maps.shape[1:]).astype(out_dtype)
    return merged_diff, merged_maps
