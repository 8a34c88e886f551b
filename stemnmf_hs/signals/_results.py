"""Result objects of the analysis methods: component clusters and the choice of k.

:class:`ClusterResult` (``s.cluster_components``) and :class:`NumberOfComponentsEstimate`
(``s.estimate_number_of_components``) hold arrays and signals with the scan's axes; their
arithmetic lives in :mod:`stemnmf_hs.clustering` and :mod:`stemnmf_hs.model_selection`, their
figures in :mod:`stemnmf_hs.figures`, their signals come from :mod:`._adapter`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import figures, plotting
from .. import model_selection as _ms
from ._adapter import component_matrix, decomposition_arrays, loss_signal, plot_axes

__all__ = ["ClusterResult", "NumberOfComponentsEstimate", "source_arrays"]


@dataclass
class ClusterResult:
    """Hierarchical clustering of NMF components (Kimoto et al. 2025, Fig. 9c-d).

    Attributes
    ----------
    labels : numpy.ndarray
        ``(k,)`` int cluster of every component.
    linkage : numpy.ndarray
        ``(k - 1, 4)`` scipy linkage matrix on the distance ``1 - similarity``.
    factors : hyperspy.signals.Signal2D
        ``(n_clusters | kx, ky)`` rotation-corrected averaged diffraction per cluster, with
        the scan's reciprocal-space axes.
    loadings : hyperspy.signals.Signal2D
        ``(n_clusters | x, y)`` summed maps per cluster, with the scan axes.
    similarity : numpy.ndarray
        ``(k, k)`` similarity the clustering used.
    rotation : numpy.ndarray or None
        ``(k, k)`` rotations in degrees (``None`` for the cosine metric).

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_precipitates
    >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, solver="als",
    ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
    ...                 show_progressbar=False)
    >>> result = s.cluster_components(n_clusters=2, metric="cosine")
    >>> result.labels.shape, result.linkage.shape, result.similarity.shape
    ((4,), (3, 4), (4, 4))
    >>> result.factors.axes_manager.signal_shape, result.loadings.axes_manager.signal_shape
    ((32, 32), (24, 24))
    """

    labels: np.ndarray
    linkage: np.ndarray
    factors: object
    loadings: object
    similarity: np.ndarray
    rotation: object = None

    @property
    def n_clusters(self):
        """Number of clusters.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> s.cluster_components(n_clusters=2, metric="cosine").n_clusters
        2
        """
        return int(self.labels.max()) + 1

    def plot_dendrogram(self, ax=None, gamma=0.3):
        """Dendrogram of the components with the averaged diffraction of every cluster.

        Kimoto et al. 2025, Fig. 9c-d: branches inside a cluster take the cluster's colour
        (:data:`stemnmf_hs.plotting.LABEL_COLOURS`), links above the cut are grey; the insets above show the
        rotation-corrected averaged diffraction of every cluster (in the order of the leaves)
        on the reciprocal-space calibration, with a scale bar.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw the dendrogram into; a new figure when ``None``.  The insets are
            placed above ``ax`` (in its axes coordinates), so leave room there.
        gamma : float, default 0.3
            Power-law scaling of the inset diffractions.

        Returns
        -------
        matplotlib.figure.Figure
            The figure holding ``ax``.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> import matplotlib.pyplot as plt
        >>> fig = s.cluster_components(n_clusters=2, metric="cosine").plot_dendrogram()
        >>> type(fig).__name__
        'Figure'
        >>> plt.close(fig)
        """
        return figures.dendrogram_figure(
            self.linkage, self.labels, self.factors.data,
            plot_axes(self.factors.axes_manager.signal_axes),
            metric="cosine" if self.rotation is None else "polar", ax=ax, gamma=gamma,
        )

    def plot(self, gamma=0.3):
        """Averaged diffraction and merged map of every cluster, on calibrated axes.

        Parameters
        ----------
        gamma : float, default 0.3
            Power-law scaling of the diffractions.

        Returns
        -------
        matplotlib.figure.Figure
            Two rows: the rotation-corrected averaged diffractions (reciprocal axes) over the
            summed maps (scan axes) of every cluster, each with a scale bar.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> import matplotlib.pyplot as plt
        >>> fig = s.cluster_components(n_clusters=2, metric="cosine").plot()
        >>> fig.get_suptitle()
        '2 clusters of 4 components'
        >>> plt.close(fig)
        """
        return figures.component_grid(
            np.asarray(self.factors.data, dtype=float),
            plot_axes(self.factors.axes_manager.signal_axes),
            np.asarray(self.loadings.data, dtype=float),
            plot_axes(self.loadings.axes_manager.signal_axes),
            prefix=("cluster", "cluster"), gamma=gamma,
            title=f"{self.n_clusters} clusters of {len(self.labels)} components",
        )


class NumberOfComponentsEstimate:
    """Choice of the number of NMF components (Cao et al. 2025, Fig. 3).

    Built from plain arrays: the K-component loss of every fitted ``k`` and the
    representative diffractions of the fits in the range of interest.  The constructor finds
    the knee (:func:`stemnmf_hs.model_selection.find_knee`), the range ``knee +/-
    half_width`` (:func:`~stemnmf_hs.model_selection.range_of_interest`), the pairwise IQA
    matrices of each fit in the range (:func:`~stemnmf_hs.model_selection.iqa_matrices`) and
    the suggestion (:func:`~stemnmf_hs.model_selection.suggest_k`).

    Parameters
    ----------
    k_values : array_like of int
        ``(n,)`` fitted numbers of components, strictly increasing, ``n >= 3``.
    loss : array_like of float
        ``(n,)`` K-component loss ``mean |V - W H|`` of every fit, data unit per pixel.
    representatives : dict
        ``k -> (k, ny, nx)`` representative diffractions ``w_k * max(h_k)``
        (:func:`stemnmf_hs.overlap.representative_diffractions`) for at least every ``k`` of
        the range of interest; other entries are ignored.
    ssim_threshold, gmsd_threshold : float or None
        Duplicate-pair thresholds of :func:`~stemnmf_hs.model_selection.suggest_k` (defaults
        0.90 and 0.07); ``None`` switches a criterion off.
    half_width : int, default 4
        Half width of the range of interest.
    rule : {"first_duplicate", "largest_distinct"}
        Decision rule of :func:`~stemnmf_hs.model_selection.suggest_k`.
    knee : int, optional
        Impose the knee instead of locating it (e.g. read off the plot).
    data_range : float, optional
        Common IQA data range of every fit; default: each fit's own stack maximum.
    loss_units : str, optional
        Unit of the data (e.g. "electrons"), shown on the loss curve; a HyperSpy quantity
        such as "Intensity (electrons)" gives its unit in parentheses.
    use_loss : bool, default True
        A ``k`` must also lower the loss below that of every smaller ``k`` to count as new
        diffraction (see :func:`~stemnmf_hs.model_selection.suggest_k`).
    heldout : dict, optional
        Held-out scores of the same fits: ``"rows"``, metric -> ``(n, n_positions)``
        per-pattern scores (:func:`~stemnmf_hs.model_selection.heldout_scores`),
        ``"metric"`` (default ``"deviance"``), ``"test_fraction"``, ``"count_model"``
        (:class:`~stemnmf_hs.model_selection.CountModel`).  A ``"count_model"`` alone (data
        that are not counts) is kept for :meth:`summary`.  Switches on the combined rule
        (:func:`~stemnmf_hs.model_selection.combine_k`).
    heldout_rule : {"min", "one_se"}, default "min"
        Held-out choice that the combined rule starts from.

    Attributes
    ----------
    suggested_k : int
        The suggestion (:func:`~stemnmf_hs.model_selection.combine_k`: the held-out choice
        checked by Cao's IQA criterion for count data; Cao's choice otherwise).
    reason : str
        Why (which ``k`` first produced duplicates, or why the range may be too small).
    choices : dict
        Every criterion's own ``k``: ``"knee"``, ``"cao"`` (Cao's loss + IQA rule), and for
        count data ``"heldout_min"``, ``"heldout_one_se"``.
    cao_k, cao_reason : int, str
        Cao's choice and its reason.
    heldout_score : dict or None
        ``"score"`` ``(n,)`` mean held-out score per fitted ``k``, ``"se"`` its paired standard
        error, ``"metric"``, ``"test_fraction"``, ``"k_min"``, ``"k_one_se"``, ``"rows"``.
    count_model : CountModel or None
        Whether the data were counts, the gain, the message.
    knee : int
        Knee of the loss curve; ``knee_method`` says how it was found ("kneed", "chord",
        "none", "given").
    range_of_interest : tuple of int
        ``(k_min, k_max)`` of the range; ``roi_k_values`` holds its ``k`` ``(m,)``.
    k_values : numpy.ndarray
        ``(n,)`` int fitted ``k``.
    loss_values : numpy.ndarray
        ``(n,)`` float loss.
    loss : hyperspy.signals.Signal1D
        ``(| n)`` the loss curve; axis "number of components" (offset ``k_min``, scale the
        ``k`` step, non-uniform if the steps differ).
    iqa_arrays : dict
        ``k -> {metric -> (k, k) numpy.ndarray}`` for every ``k`` of the range.
    iqa : dict
        ``k -> {metric -> Signal2D (| k, k)}``, axes "component j" and "component i".
    criteria : dict
        Per-``k`` arrays ``(m,)`` of the rule (``distinct``, ``lowers_loss``,
        ``qualifies``, ``n_duplicate_pairs``,
        ``max_ssim``, ``min_gmsd``, ``max_psnr``, ``min_mdsi``) aligned with ``roi_k_values``.
    thresholds : dict
        ``{"ssim": ..., "gmsd": ...}``.
    rule : str
        The decision rule used.
    representatives : dict
        ``k -> (k, ny, nx)`` arrays used, for the range of interest.

    Raises
    ------
    ValueError
        From the model-selection functions: too few or unsorted ``k``, non-finite loss,
        representatives missing for a ``k`` of the range or of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.signals import NumberOfComponentsEstimate
    >>> rng = np.random.default_rng(0)
    >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
    >>> est = NumberOfComponentsEstimate(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1)
    >>> est.knee, est.range_of_interest, est.suggested_k
    (2, (1, 3), 3)
    >>> est.loss
    <Signal1D, title: K-component loss, dimensions: (|4)>
    >>> est.iqa[2]["ssim"]
    <Signal2D, title: SSIM (k=2), dimensions: (|2, 2)>
    """

    def __init__(self, k_values, loss, representatives, *,
                 ssim_threshold=_ms.DEFAULT_SSIM_THRESHOLD,
                 gmsd_threshold=_ms.DEFAULT_GMSD_THRESHOLD,
                 half_width=_ms.DEFAULT_HALF_WIDTH, rule="first_duplicate", knee=None,
                 data_range=None, loss_units="", use_loss=True, heldout=None,
                 heldout_rule="min"):
        sel = _ms.select_k(k_values, loss, representatives, ssim_threshold=ssim_threshold,
                           gmsd_threshold=gmsd_threshold, half_width=half_width, rule=rule,
                           knee=knee, data_range=data_range, use_loss=use_loss)
        self.selection = sel
        self.k_values = sel.k_values
        self.loss_values = sel.loss
        self.loss_units = plotting.quantity_units(loss_units, bare_units=True)
        self.knee, self.knee_method = sel.knee, sel.knee_method
        self.half_width = sel.half_width
        self.roi_k_values = sel.roi_k_values
        self.range_of_interest = sel.range_of_interest
        self.representatives = sel.representatives
        self.iqa_arrays = sel.iqa
        self.suggested_k = sel.suggested_k
        self.reason = sel.reason
        self.rule = sel.rule
        self.thresholds = sel.thresholds
        self.criteria = sel.criteria
        self.cao_k, self.cao_reason = sel.suggested_k, sel.reason
        heldout = dict(heldout or {})
        self.count_model = heldout.get("count_model")
        self.heldout_score = None
        if heldout.get("rows") is not None:
            metric = heldout.get("metric", "deviance")
            self.heldout_score = dict(
                _ms.heldout_choice(self.k_values, heldout["rows"][metric]), metric=metric,
                test_fraction=heldout.get("test_fraction"), rows=heldout["rows"])
        comb = _ms.combine_k(sel, self.heldout_score, representatives,
                             heldout_rule=heldout_rule)
        self.heldout_rule = heldout_rule
        self.choices = comb["choices"]
        self.suggested_k, self.reason = comb["suggested_k"], comb["reason"]
        self.loss = loss_signal(self.k_values, self.loss_values, self.loss_units)
        self.iqa = {k: {m: component_matrix(mat, f"{plotting.iqa_label(m, False)} (k={k})",
                                            plotting.IQA_UNITS.get(m, ""))
                        for m, mat in mats.items()}
                    for k, mats in self.iqa_arrays.items()}

    # ------------------------------------------------------------------ display
    def __repr__(self):
        k0, k1 = self.range_of_interest
        t = self.thresholds
        dup = " or ".join(
            f"{name} {op} {t[key]}"
            for key, name, op in (("ssim", "SSIM", ">"), ("gmsd", "GMSD", "<"))
            if t[key] is not None
        )
        return (
            f"<NumberOfComponentsEstimate: suggested k = {self.suggested_k} "
            f"(knee {self.knee} [{self.knee_method}], range of interest {k0}-{k1}, "
            f"duplicates: {dup}, rule '{self.rule}')>"
        )

    def summary(self):
        """A table of the per-``k`` criteria as text.

        Returns
        -------
        str
            One line per ``k`` of the range: distinct or not, number of duplicate pairs and
            the off-diagonal extremes of the four metrics.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.signals import NumberOfComponentsEstimate
        >>> rng = np.random.default_rng(0)
        >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
        >>> est = NumberOfComponentsEstimate(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1)
        >>> print(est.summary())
          k distinct lowers  dup  max SSIM  min GMSD  max PSNR  min MDSI
          1     True   True    0       nan       nan       nan       nan
          2     True   True    0     0.052     0.168      7.99     0.433
          3     True   True    0     0.222     0.152      8.15     0.423 <
        every k of the range up to 3 has mutually distinct components and lowers the loss; ...
        """
        head = (f"{'k':>3} {'distinct':>8} {'lowers':>6} {'dup':>4} {'max SSIM':>9} "
                f"{'min GMSD':>9} "
                f"{'max PSNR':>9} {'min MDSI':>9}")
        lines = [head]
        c = self.criteria
        for i, k in enumerate(self.roi_k_values):
            mark = " <" if k == self.suggested_k else ""
            lines.append(
                f"{k:>3} {bool(c['distinct'][i])!s:>8} {bool(c['lowers_loss'][i])!s:>6} "
                f"{c['n_duplicate_pairs'][i]:>4} "
                f"{c['max_ssim'][i]:>9.3f} {c['min_gmsd'][i]:>9.3f} "
                f"{c['max_psnr'][i]:>9.2f} {c['min_mdsi'][i]:>9.3f}{mark}"
            )
        h = self.heldout_score
        if h is not None:
            lines.append(f"held-out {h['metric']} (test fraction {h['test_fraction']}), "
                         "minus the lowest, +/- paired standard error:")
            for k, sc, se in zip(self.k_values, h["score"], h["se"]):
                mark = " <" if k == self.suggested_k else ""
                lines.append(f"{k:>3} {sc - h['score'].min():>10.3e} {se:>9.1e}{mark}")
        if self.count_model is not None:
            lines.append("counts: " + self.count_model.message)
        if len(self.choices) > 2:
            lines.append("choices: " + ", ".join(f"{n} {k}" for n, k in self.choices.items())
                         + f" -> suggested k = {self.suggested_k}")
        lines.append(self.reason)
        return "\n".join(lines)

    def plot(self, k=None, annotate=None, figsize=(13, 8)):
        """Loss curve, duplicate criteria and the four IQA matrices (Cao et al. 2025, Fig. 3).

        Top left: the K-component loss against ``k`` with the knee marked, the range of
        interest shaded and the suggested ``k`` marked (Fig. 3a).  Top right: per ``k`` of
        the range, the largest off-diagonal SSIM and the smallest off-diagonal GMSD with
        their thresholds.  Bottom: the SSIM, PSNR, GMSD and MDSI matrices of one fit with
        colour bars (Fig. 3b-e).

        Parameters
        ----------
        k : int, optional
            Fit whose matrices are drawn; default the suggested ``k``.
        annotate : bool, optional
            Write the values into the matrix cells; default when ``k <= 10``.
        figsize : tuple of float
            Figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ValueError
            If ``k`` is not a fit of the range of interest.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.signals import NumberOfComponentsEstimate
        >>> rng = np.random.default_rng(0)
        >>> reps = {k: rng.random((k, 16, 16)) for k in range(1, 5)}
        >>> est = NumberOfComponentsEstimate(range(1, 5), [9.0, 3.0, 2.5, 2.4], reps, half_width=1)
        >>> import matplotlib.pyplot as plt
        >>> fig = est.plot(k=2)
        >>> type(fig).__name__
        'Figure'
        >>> plt.close(fig)
        """
        k = self.suggested_k if k is None else int(k)
        if k not in self.iqa_arrays:
            raise ValueError(f"k={k} is not in the range of interest "
                             f"{self.roi_k_values.tolist()}; choose one of those.")
        return figures.k_estimate_figure(
            self.k_values, self.loss_values, self.knee, self.range_of_interest,
            self.roi_k_values, self.criteria, self.thresholds, self.iqa_arrays[k], k,
            self.suggested_k, loss_units=self.loss_units, annotate=annotate, figsize=figsize,
        )


def source_arrays(signal, source):
    """``(factors, maps, signal_mask)`` of the raw components (``source=None``) or a cluster.

    Raises
    ------
    ValueError
        If the signal holds no decomposition.
    TypeError
        If ``source`` is neither ``None`` nor a :class:`ClusterResult`.

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_precipitates
    >>> from stemnmf_hs.signals._results import source_arrays
    >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
    ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
    ...                 show_progressbar=False)
    >>> factors, maps, mask = source_arrays(s, None)
    >>> factors.shape, maps.shape, mask is None
    ((3, 32, 32), (3, 24, 24), True)
    """
    factors, maps, mask = decomposition_arrays(signal)
    if source is None:
        return factors, maps, mask
    if isinstance(source, ClusterResult):
        return np.asarray(source.factors.data), np.asarray(source.loadings.data), mask
    raise TypeError(
        f"source must be None (the decomposition's components) or a ClusterResult from "
        f"s.cluster_components(); got {type(source).__name__}."
    )
