"""Overlap and component maps from NMF weights (Cao et al. 2025, "Overlapping estimation").

Math module: arrays in, arrays out; never imports HyperSpy.  ``maps`` are the NMF loadings
as a stack ``(k, *scan_shape)`` (component first); every function is vectorized over
components and positions.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLDS",
    "class_means",
    "dominant_component",
    "overlap_level",
    "representative_diffractions",
    "weight_ratio",
]

#: Overlap thresholds of Cao et al. 2025, Fig. 5.
DEFAULT_THRESHOLDS = (0.75, 0.80, 0.85, 0.90, 0.95)


def _included(k, exclude):
    """Boolean ``(k,)`` of the components taking part in the ranking."""
    keep = np.ones(k, bool)
    if exclude is not None:
        idx = np.atleast_1d(np.asarray(exclude, dtype=int))
        if idx.size and (idx.min() < -k or idx.max() >= k):
            raise ValueError(
                f"exclude={list(idx)} names components outside 0..{k - 1}; give component "
                "indices of the decomposition."
            )
        keep[idx] = False
    return keep


def weight_ratio(maps, exclude=None, min_weight=None):
    """Second-highest over highest NMF weight at every probe position.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(k, *scan_shape)`` non-negative weights (NMF loadings), any unit.
    exclude : int or sequence of int, optional
        Components left out of the ranking (e.g. the amorphous or background component, as
        Cao et al. do for their background).
    min_weight : float, optional
        Positions whose highest weight is below this get ratio 0: a ratio of two noise values
        is not an overlap.  Default: 10 % of the 99th percentile of the highest weight over
        the scan.

    Returns
    -------
    numpy.ndarray
        ``scan_shape`` float ratios in ``[0, 1]``: 1 = two components equally strong, 0 = a
        single component (or no significant weight).

    Raises
    ------
    ValueError
        If fewer than two components remain after ``exclude`` or an index is out of range.

    Notes
    -----
    Cao et al. 2025, "Overlapping estimation" and Fig. 5: the ratio of the second to the
    first NMF weight marks positions where crystals overlap along the beam.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.overlap import weight_ratio
    >>> maps = np.array([[[4.0, 4.0]], [[1.0, 4.0]], [[0.0, 0.0]]])
    >>> weight_ratio(maps)
    array([[0.25, 1.  ]])
    >>> weight_ratio(maps, exclude=2)
    array([[0.25, 1.  ]])
    """
    maps = np.asarray(maps, dtype=np.float64)
    keep = _included(maps.shape[0], exclude)
    if keep.sum() < 2:
        raise ValueError(
            f"weight_ratio needs at least two components after exclude={exclude!r}; the "
            f"decomposition has {maps.shape[0]}."
        )
    w = np.nan_to_num(maps[keep], nan=0.0)
    top2 = -np.partition(-w, 1, axis=0)[:2]  # (2, *scan): highest, second highest
    first, second = top2[0], top2[1]
    if min_weight is None:
        min_weight = 0.1 * np.percentile(first, 99) if first.size else 0.0
    ratio = np.divide(second, first, out=np.zeros_like(first), where=first > 0)
    ratio[first <= min_weight] = 0.0
    return np.clip(ratio, 0.0, 1.0)


def overlap_level(ratio, thresholds=DEFAULT_THRESHOLDS):
    """Highest threshold every position's weight ratio reaches.

    Parameters
    ----------
    ratio : numpy.ndarray
        ``scan_shape`` weight ratios from :func:`weight_ratio`.
    thresholds : sequence of float
        Increasing thresholds in ``(0, 1]`` (Cao et al. 2025, Fig. 5: 0.75 ... 0.95).

    Returns
    -------
    numpy.ndarray
        ``scan_shape`` float: the highest threshold reached, 0 where none is.

    Raises
    ------
    ValueError
        If the thresholds are empty, not strictly increasing or outside ``(0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.overlap import overlap_level
    >>> overlap_level(np.array([0.5, 0.78, 0.93, 1.0]))
    array([0.  , 0.75, 0.9 , 0.95])
    """
    t = np.asarray(thresholds, dtype=float)
    if t.ndim != 1 or t.size == 0 or (np.diff(t) <= 0).any() or t[0] <= 0 or t[-1] > 1:
        raise ValueError(
            f"thresholds must be strictly increasing values in (0, 1]; got {thresholds!r}."
        )
    idx = np.searchsorted(t, np.asarray(ratio), side="right")  # thresholds <= ratio
    levels = np.concatenate([[0.0], t])
    return levels[idx]


def dominant_component(maps, exclude=None):
    """Index of the strongest component at every probe position.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(k, *scan_shape)`` weights.
    exclude : int or sequence of int, optional
        Components never chosen.

    Returns
    -------
    numpy.ndarray
        ``scan_shape`` int component indices (of the full decomposition).

    Raises
    ------
    ValueError
        If ``exclude`` leaves no component.

    Notes
    -----
    Cao et al. 2025, "Comparing NMF results with the raw dataset": each pattern is assigned
    to the component with the highest weight.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.overlap import dominant_component
    >>> maps = np.array([[[5.0, 1.0]], [[2.0, 3.0]]])
    >>> dominant_component(maps)
    array([[0, 1]])
    >>> dominant_component(maps, exclude=0)
    array([[1, 1]])
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=-np.inf)
    keep = _included(maps.shape[0], exclude)
    if not keep.any():
        raise ValueError("exclude leaves no component to choose from.")
    maps[~keep] = -np.inf
    return np.argmax(maps, axis=0)


def class_means(patterns, labels, n_classes):
    """Mean of the patterns assigned to every class, in one matrix product.

    Parameters
    ----------
    patterns : numpy.ndarray or dask.array.Array
        ``(n_positions, n_pixels)`` unfolded patterns.
    labels : numpy.ndarray
        ``(n_positions,)`` int class of every pattern; negative labels are ignored.
    n_classes : int
        Number of classes ``k``.

    Returns
    -------
    means : numpy.ndarray or dask.array.Array
        ``(k, n_pixels)`` float mean patterns (zeros for an empty class).
    counts : numpy.ndarray
        ``(k,)`` number of patterns per class.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.overlap import class_means
    >>> patterns = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    >>> means, counts = class_means(patterns, labels=[0, 0, 1], n_classes=3)
    >>> means
    array([[2., 1.],
           [0., 5.],
           [0., 0.]])
    >>> counts
    array([2, 1, 0])
    """
    labels = np.asarray(labels).ravel()
    onehot = (labels[None, :] == np.arange(n_classes)[:, None]).astype(np.float32)
    counts = onehot.sum(axis=1)
    sums = onehot @ patterns
    scale = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return sums * scale[:, None], counts.astype(int)


def representative_diffractions(diffractions, maps):
    """The representative diffraction ``w_k * max(h_k)`` of every component.

    Parameters
    ----------
    diffractions : numpy.ndarray
        ``(k, *signal_shape)`` factors.
    maps : numpy.ndarray
        ``(k, *scan_shape)`` loadings.

    Returns
    -------
    numpy.ndarray
        ``(k, *signal_shape)``: each diffraction scaled by the maximum of its map, i.e. the
        component's contribution where it is strongest (Cao et al. 2025).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.overlap import representative_diffractions
    >>> diffractions = np.ones((2, 3, 3)) / 9
    >>> maps = np.array([[[9.0, 0.0]], [[0.0, 18.0]]])
    >>> representative_diffractions(diffractions, maps)[:, 0, 0]
    array([1., 2.])
    """
    d = np.asarray(diffractions, dtype=np.float64)
    m = np.asarray(maps, dtype=np.float64).reshape(d.shape[0], -1)
    peak = np.nanmax(np.where(np.isfinite(m), m, -np.inf), axis=1)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return d * peak.reshape((-1,) + (1,) * (d.ndim - 1))
