"""Analysis methods of decomposed scans: similarity, rotation, clusters, maps, choice of k.

Mixins of :class:`~stemnmf_hs.signals.NMFDiffraction2D`.  Each method reads the
decomposition (or a :class:`~stemnmf_hs.signals.ClusterResult`) as arrays through
:mod:`._adapter`, calls a math module (:mod:`stemnmf_hs.similarity`,
:mod:`stemnmf_hs.clustering`, :mod:`stemnmf_hs.overlap`, :mod:`stemnmf_hs.model_selection`)
and wraps the result in a signal with the scan's calibrated axes or in a result object
(:mod:`._results`).  The ``plot_*`` methods are in :mod:`._plots`.
"""

from __future__ import annotations

import numpy as np

from .. import clustering, overlap, similarity
from .. import model_selection as _ms
from ..decomposition import sweep_n_components
from ..overlap import representative_diffractions
from ._adapter import (
    component_matrix,
    decomposition_arrays,
    default_progressbar,
    expand_rows,
    fit_center,
    image_like,
    is_lazy,
    prepare_estimator,
    solver_data,
    stack_like,
)
from ._results import ClusterResult, NumberOfComponentsEstimate, source_arrays

__all__ = ["ComponentAnalysisMixin", "NumberOfComponentsMixin"]


class ComponentAnalysisMixin:
    """Analysis of the components of a decomposed 4D-STEM scan (see module docstring).

    Examples
    --------
    >>> from stemnmf_hs.signals import NMFDiffraction2D
    >>> from stemnmf_hs.signals._analysis import ComponentAnalysisMixin
    >>> issubclass(NMFDiffraction2D, ComponentAnalysisMixin)
    True
    """

    # ------------------------------------------------------------------ similarity
    def _similarity_arrays(self, metric, center, n_azimuthal, source):
        factors, _, mask = source_arrays(self, source)
        stack = np.nan_to_num(factors, nan=0.0)
        if metric == "cosine":
            return similarity.cosine_similarity(stack.reshape(len(stack), -1)), None
        if metric not in ("polar", "spectrum"):
            raise ValueError(
                "metric must be 'polar' (eq. 10), 'spectrum' (phase-free angular spectrum) "
                f"or 'cosine' (eq. 9); got {metric!r}."
            )
        # eq. 11's rotation is needed by every rotation-corrected merge
        sim, rot = similarity.polar_cross_correlation(
            stack, center=fit_center(self, center), signal_mask=mask,
            n_azimuthal=n_azimuthal,
        )
        if metric == "spectrum":
            sim = similarity.angular_spectrum_similarity(
                stack, center=fit_center(self, center), signal_mask=mask,
                n_azimuthal=n_azimuthal,
            )
        return sim, rot

    def get_component_similarity(self, metric="polar", center=None, n_azimuthal=360,
                                 source=None):
        """k x k similarity of the component diffractions.

        Parameters
        ----------
        metric : {"polar", "spectrum", "cosine"}, default "polar"
            ``"polar"``: the rotation-invariant diffraction similarity of Kimoto et al. 2025,
            eq. 10 (r-phi transform about the pattern centre, cross-correlation along phi at
            zero radial shift; 1 for a pattern and any rotation of itself).  ``"spectrum"``:
            the phase-free angular amplitude spectrum without ring means
            (:func:`stemnmf_hs.similarity.angular_spectrum_similarity`, the default of
            :meth:`cluster_components`).  ``"cosine"``: eq. 9.
        center : tuple of float, optional
            ``(cx, cy)`` pattern centre in pixels; default the decomposition's, else the
            signal's calibration (pyxem convention).
        n_azimuthal : int, default 360
            Azimuthal samples of the polar transform (1° steps).
        source : ClusterResult, optional
            Compare merged cluster diffractions instead of the raw components.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(k, k)`` similarities, both axes "component".

        Raises
        ------
        ValueError
            Without a decomposition, or on an unknown metric.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> sim = s.get_component_similarity(metric="cosine")
        >>> sim
        <Signal2D, title: Component similarity (cosine), dimensions: (|4, 4)>
        >>> sim.data.diagonal().round(3)
        array([1., 1., 1., 1.])
        """
        sim, _ = self._similarity_arrays(metric, center, n_azimuthal, source)
        return component_matrix(sim, f"Component similarity ({metric})", "")

    def get_component_rotation(self, center=None, n_azimuthal=360, source=None):
        """k x k rotation angles between the component diffractions (Kimoto et al., eq. 11).

        ``rotation[i, j]`` is the angle in degrees, in ``(-180, 180]``, by which diffraction
        ``j`` must be rotated counter-clockwise as displayed (row 0 at the top) to best match
        diffraction ``i``; antisymmetric.  Refined below the sampling step ``360 /
        n_azimuthal`` by parabolic interpolation of the correlation peak.  Friedel symmetry
        makes it defined modulo 180° in general.

        Parameters
        ----------
        center, n_azimuthal, source
            As in :meth:`get_component_similarity`.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(k, k)`` angles in degrees.

        Raises
        ------
        ValueError
            Without a decomposition.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> rot = s.get_component_rotation(n_azimuthal=90)
        >>> rot.data.shape, float(abs(rot.data + rot.data.T).max()) < 1e-6
        ((4, 4), True)
        """
        _, rot = self._similarity_arrays("polar", center, n_azimuthal, source)
        return component_matrix(rot, "Component rotation", "degree")

    def cluster_components(self, n_clusters=None, distance_threshold=None, method="average",
                           metric="spectrum", center=None, n_azimuthal=360):
        """Hierarchical clustering of the components on ``1 - similarity`` (Fig. 9c-d).

        The default (``metric="spectrum"``, cut at ``1 - similarity = 0.38``) is built for
        decompositions with many more components than phases, where most components are
        fragments of the matrix (speckle of a glass, Poisson noise of weak components).  The
        paper's rule is ``metric="polar"`` (eq. 10; default cut 0.1, i.e. similarity >= 0.9;
        the paper cuts its dendrograms by eye).  Members are always merged after the eq. 11
        rotation correction, whatever the metric.

        Numbers behind the default, k = 30 fits (``n_restarts=2, max_iter=100,
        random_state=0``) of scans with known truth; "classes" counts a phase and its
        in-plane rotation once, the rotation-invariant clustering cannot tell them apart:

        ==================================  ======  =======  =====================  ===========
        scan                                truth   classes  ``metric="polar"``     default
        ==================================  ======  =======  =====================  ===========
        ``data.real_pattern_case(1e5)``     4       3        14 clusters, the       3, the
                                                             amorphous-like         amorphous-
                                                             factors in 7           like in 1
        ``data.simulated_precipitates(0)``  4       4        7, in 4                4, in 1
        ``data.abtem_case(1e5)``            5       4        27, in 16              4, in 1
        ==================================  ======  =======  =====================  ===========

        (Solver of commit a7e4d15 plus work in progress; with the solver before it, eq. 10
        gave 16, 15 and 29 clusters and the default 3, 4 and 4.)  "Amorphous-like" are the
        factors whose nearest true diffraction (cosine) is the matrix.

        With eq. 10 the glass fragments of the abTEM scan are only 0.6-0.77 similar to each
        other (their speckle has random phases) and as similar to the particles, so no cut
        separates them; their angular amplitude spectra agree (see
        :data:`stemnmf_hs.clustering.SPECTRUM_DISTANCE_THRESHOLD` for the merge heights).

        Parameters
        ----------
        n_clusters : int, optional
            Number of clusters (scipy ``fcluster`` criterion "maxclust").
        distance_threshold : float, optional
            Cut the dendrogram at this ``1 - similarity``.  With neither, the cut of the
            metric, :func:`stemnmf_hs.clustering.default_distance_threshold` (0.38 for
            ``"spectrum"``, 0.1 for ``"polar"`` and ``"cosine"``).
        method : str, default "average"
            scipy linkage method.
        metric : {"spectrum", "polar", "cosine"}, default "spectrum"
            Similarity, see :meth:`get_component_similarity`; ``"polar"`` is the paper's.
        center : tuple of float, optional
            Pattern centre in pixels.
        n_azimuthal : int, default 360
            Azimuthal samples of the polar transform.

        Returns
        -------
        ClusterResult
            ``labels``, ``linkage``, ``factors`` (rotation-corrected averaged diffraction per
            cluster, reciprocal axes), ``loadings`` (summed maps per cluster, scan axes),
            ``similarity`` (of ``metric``), ``rotation`` (eq. 11) and
            ``plot_dendrogram()``.

        Raises
        ------
        ValueError
            Without a decomposition, with fewer than two components, or on invalid clustering
            parameters.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> result = s.cluster_components(n_clusters=2, metric="cosine")
        >>> result.n_clusters, result.labels.shape
        (2, (4,))
        >>> result.factors
        <Signal2D, title: Cluster diffractions of Simulated precipitates (Kimoto et al. 2025), dimensions: (2|32, 32)>
        """
        if n_clusters is None and distance_threshold is None:
            distance_threshold = clustering.default_distance_threshold(metric)
        factors, maps, mask = decomposition_arrays(self)
        sim, rot = self._similarity_arrays(metric, center, n_azimuthal, None)
        labels, link = clustering.cluster_components(
            sim, n_clusters=n_clusters, distance_threshold=distance_threshold, method=method
        )
        rotation = rot if rot is not None else np.zeros_like(sim)
        merged_d, merged_m = clustering.merge_components(
            np.nan_to_num(factors, nan=0.0), np.nan_to_num(maps, nan=0.0), labels, rotation,
            fit_center(self, center), factors.shape[1:],
        )
        if mask is not None:
            merged_d = np.where(mask, np.nan, merged_d)
        title = self.metadata.General.title
        return ClusterResult(
            labels=np.asarray(labels),
            linkage=np.asarray(link),
            factors=stack_like(merged_d, self.axes_manager.signal_axes,
                               f"Cluster diffractions of {title}", "cluster"),
            loadings=stack_like(merged_m, self.axes_manager.navigation_axes, f"Cluster maps of {title}",
                                "cluster"),
            similarity=sim,
            rotation=rot,
        )

    # ------------------------------------------------------------------ overlap maps
    def get_weight_ratio_map(self, exclude=None, min_weight=None, source=None):
        """Second-highest over highest loading at every probe position (Cao et al. 2025).

        Parameters
        ----------
        exclude : int or sequence of int, optional
            Components (or clusters) left out of the ranking, e.g. the amorphous one.
        min_weight : float, optional
            Positions whose highest loading is below this read 0 (no ratio of two noise
            values is reported as overlap); default 10 % of the 99th percentile of the
            highest loading.
        source : ClusterResult, optional
            Use merged cluster maps instead of the raw components.

        Returns
        -------
        hyperspy.signals.Signal2D
            Ratio in ``[0, 1]`` with the scan axes.

        Raises
        ------
        ValueError
            Without a decomposition, or if fewer than two components remain.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> ratio = s.get_weight_ratio_map(exclude=0)
        >>> ratio.axes_manager.signal_shape, bool(((ratio.data >= 0) & (ratio.data <= 1)).all())
        ((24, 24), True)
        """
        _, maps, _ = source_arrays(self, source)
        ratio = overlap.weight_ratio(maps, exclude=exclude, min_weight=min_weight)
        return image_like(ratio, self.axes_manager.navigation_axes, "Weight ratio (2nd / 1st)")

    def get_overlap_map(self, thresholds=overlap.DEFAULT_THRESHOLDS, exclude=None,
                        min_weight=None, source=None):
        """Highest overlap threshold reached at every probe position (Cao et al. 2025, Fig. 5).

        Parameters
        ----------
        thresholds : sequence of float, default (0.75, 0.80, 0.85, 0.90, 0.95)
            Increasing weight-ratio thresholds.
        exclude, min_weight, source
            As in :meth:`get_weight_ratio_map`.

        Returns
        -------
        hyperspy.signals.Signal2D
            The highest threshold reached (0 where none), scan axes.

        Raises
        ------
        ValueError
            On invalid thresholds, or as :meth:`get_weight_ratio_map`.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> levels = s.get_overlap_map(exclude=0)
        >>> levels.axes_manager.signal_shape
        (24, 24)
        >>> set(levels.data.ravel().tolist()) <= {0.0, 0.75, 0.8, 0.85, 0.9, 0.95}
        True
        """
        ratio = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                          source=source).data
        level = overlap.overlap_level(ratio, thresholds)
        return image_like(level, self.axes_manager.navigation_axes, "Overlap level")

    def get_component_map(self, exclude=None, source=None):
        """Index of the dominant component at every probe position.

        Parameters
        ----------
        exclude : int or sequence of int, optional
            Components never chosen.
        source : ClusterResult, optional
            Assign to merged clusters instead of raw components.

        Returns
        -------
        hyperspy.signals.Signal2D
            Integer labels with the scan axes (Cao et al. 2025, "Comparing NMF results with
            the raw dataset").

        Raises
        ------
        ValueError
            Without a decomposition, or if ``exclude`` leaves nothing.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> labels = s.get_component_map()
        >>> labels.axes_manager.signal_shape, int(labels.data.max()) < 4
        ((24, 24), True)
        """
        _, maps, _ = source_arrays(self, source)
        labels = overlap.dominant_component(maps, exclude=exclude)
        return image_like(labels, self.axes_manager.navigation_axes, "Component map")

    def get_component_mean_patterns(self, exclude=None, source=None):
        """Mean raw pattern of every component's positions, and its NMF representative.

        Parameters
        ----------
        exclude, source
            As in :meth:`get_component_map`.

        Returns
        -------
        means : hyperspy.signals.Signal2D
            ``(k | kx, ky)`` mean of the raw patterns assigned to each component (zeros for a
            component that dominates nowhere), reciprocal axes.  Computed with one matrix
            product over the (possibly lazy) data.
        representatives : hyperspy.signals.Signal2D
            ``(k | kx, ky)`` the reconstruction ``w_k * max(h_k)`` (Cao et al. 2025).

        Raises
        ------
        ValueError
            Without a decomposition.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False, show_progressbar=False)
        >>> means, representatives = s.get_component_mean_patterns()
        >>> means.axes_manager.navigation_shape, means.axes_manager.signal_shape
        ((4,), (32, 32))
        >>> representatives.data.shape
        (4, 32, 32)
        """
        factors, maps, _ = source_arrays(self, source)
        labels = overlap.dominant_component(maps, exclude=exclude).ravel()
        k = factors.shape[0]
        am = self.axes_manager
        flat = self.data.reshape((am.navigation_size, am.signal_size))
        means, _ = overlap.class_means(flat, labels, k)
        if is_lazy(self):
            means = means.compute()
        sig_shape = tuple(am.signal_shape[::-1])
        means = np.asarray(means).reshape((k,) + sig_shape)
        rep = overlap.representative_diffractions(factors, maps)
        axes = am.signal_axes
        return (stack_like(means, axes, "Mean raw pattern per component"),
                stack_like(rep, axes, "Representative diffraction w_k max(h_k)"))


class NumberOfComponentsMixin:
    """Adds :meth:`estimate_number_of_components` to the ``nmf_diffraction`` signals.

    Examples
    --------
    >>> from stemnmf_hs.signals import NMFDiffraction2D
    >>> from stemnmf_hs.signals._analysis import NumberOfComponentsMixin
    >>> issubclass(NMFDiffraction2D, NumberOfComponentsMixin)
    True
    """

    def estimate_number_of_components(
        self,
        k_range=range(2, 21),
        *,
        solver="hals",
        n_restarts=2,
        max_iter=None,
        tol=1e-3,
        warm_start=True,
        compression="auto",
        half_width=_ms.DEFAULT_HALF_WIDTH,
        ssim_threshold=_ms.DEFAULT_SSIM_THRESHOLD,
        gmsd_threshold=_ms.DEFAULT_GMSD_THRESHOLD,
        rule="first_duplicate",
        heldout="auto",
        test_fraction=_ms.DEFAULT_TEST_FRACTION,
        gain=None,
        heldout_rule="min",
        show_progressbar=None,
        **kwargs,
    ):
        """Choose the number of components ``k`` from a sweep of constrained-NMF fits.

        Level one (Cao et al. 2025, "K-component loss and image quality assessment", Fig.
        3a): the constrained NMF is fitted for every ``k`` of ``k_range`` and the
        K-component loss ``mean |V - W H|`` over all matrix elements is recorded; the knee
        of that decreasing curve (Kneedle, via ``kneed``) and the range of interest ``knee
        +/- half_width`` (clipped to ``k_range``) follow.  Level two (Fig. 3b-d): for every
        ``k`` of the range, the representative diffraction of each component (``w_k`` scaled
        by the maximum of its map ``h_k``) and the pairwise ``k x k`` SSIM, PSNR, GMSD and
        MDSI matrices between them.  ``suggested_k`` is then chosen by ``rule`` (see
        :func:`stemnmf_hs.model_selection.suggest_k`): the largest ``k`` of the range whose
        components are still mutually distinct, i.e. before adding a component starts to
        produce near-duplicate diffractions (a pair with SSIM above ``ssim_threshold`` or
        GMSD below ``gmsd_threshold``).  Every number the rule used is kept on the result.

        **Held-out score (count data, issue 14).**  Below about one count per pixel the
        K-component loss ``mean |V - W H|`` can rise with a better fit (the mean absolute
        error of a low-mean Poisson count is smallest for a prediction of zero), so Cao's
        rule stops early.  For counts, the data are first split by binomial thinning
        (:func:`stemnmf_hs.model_selection.thin_counts`: every electron goes to the test
        part with probability ``test_fraction``; the two parts are independent Poisson
        scans), every fit of the sweep is made on the train part, and its reconstruction,
        scaled by ``test_fraction / (1 - test_fraction)``, is scored against the test part
        by the Poisson deviance (:func:`~stemnmf_hs.model_selection.heldout_scores`): the
        score falls while components are real and rises once they fit the train part's
        noise.  ``suggested_k`` is then (:func:`~stemnmf_hs.model_selection.combine_k`) the
        ``k`` of lowest held-out score, stepped down to the largest smaller ``k`` whose
        components are all distinct by Cao's IQA criterion if it holds a near-duplicate
        pair, and raised to the largest distinct ``k`` up to the knee of the K-component
        loss where that is larger (the held-out score undershoots below about 0.1 count
        per pixel).  Cao's loss, knee and IQA are computed as before, on the same fits
        (the loss against the train part they were fitted to), and reported beside it:
        ``est.choices`` holds every criterion's own ``k``, ``est.summary()`` the scores and
        why.  Whether the data are counts, and their gain, is decided from the values and
        the variance-to-mean relation of neighbouring patterns
        (:func:`~stemnmf_hs.model_selection.count_model`); data that are not counts
        (normalised, background-subtracted) get a warning saying so and Cao's criteria
        alone.  The sweep is not run twice: every fit's held-out score and train loss come
        from one pass after the last fit (:func:`~stemnmf_hs.model_selection.heldout_pass`;
        a lazy scan's chunks are read and thinned once for both), and the count checks add
        one pass.

        The sweep reuses work: each fit starts its first restart from the previous fit's
        maps plus one new map (``warm_start``), uses fewer restarts and iterations than a
        final fit by default, and with ``compression`` all fits share one sketch of the data
        (computed at the rank the largest ``k`` needs).  On a lazy signal the data are
        streamed: besides the sketch, one pass per ``k`` to score its restarts, and one pass
        after the last fit for every ``k``'s loss.

        Parameters
        ----------
        k_range : iterable of int, default ``range(2, 21)``
            Numbers of components to fit, at least 3 values, each between 1 and
            ``min(probe positions, pattern pixels)``; sorted here.
        solver : {"hals", "als", "mu"}, default "hals"
            Solver of the sweep's fits (see :class:`~stemnmf_hs.ConstrainedNMF`).  ``"hals"``
            (the estimator's default, monotone) chose ``k`` within 1 of the truth on every
            validation case from 1e4 electrons per pattern up (8 of 8), the paper's ALS on
            7 of 8 (kinematic 1e4: 3 for 5; docs/validation.md).  Its sweep runs
            ``max_iter=20`` monotone iterations after ``init_iter=10`` ALS ones, without the
            exact refinement (``refine_iter=0``) and with the strict uniqueness rule
            (``unique_components=True``: the noise-aware default of the decomposition moved
            the knee of the loss at 1e3 electrons per pattern, Kimoto-like scan k = 2 for
            two of three seeds; ConstrainedNMF keywords, all overridable here): measured on the 36 x 36 x 128 x 128 benchmark scan, k = 2..20, 1.40x
            the time of the sweep before the held-out score (ALS, ``heldout=False``) in the
            same run (``benchmarks/bench_k_selection.py --solvers --repeat 3``), with the
            same choices on the validation cases as 30 or 60 iterations.  With ``"als"`` the clipped
            least-squares updates oscillate and the loss of a short fit can rise from one
            ``k`` to the next; the knee is therefore located on the running minimum of the
            loss (:func:`stemnmf_hs.model_selection.find_knee`).  ``"mu"`` lowers the loss
            monotonically but separates the components less well in few iterations.
        n_restarts : int, default 2
            Restarts per fit (a final fit uses the paper's 10).
        max_iter : int, optional
            Iterations per fit (a final fit uses the paper's 500); default 30 for
            ``"hals"``, 100 for the others.
        tol : float, default 1e-3
            Early-stop threshold on the relative L1 changes of W and H (see
            :class:`~stemnmf_hs.ConstrainedNMF`); looser than a final fit's ``1e-4``.
        warm_start : bool, default True
            Warm-start each fit from the previous one.
        compression : {"auto"} or int or None, default "auto"
            Sketch of the data shared by every fit (see
            :class:`~stemnmf_hs.ConstrainedNMF`); ``None`` fits the data themselves.  The
            loss is always measured against the full data.
        half_width : int, default 4
            Half width of the range of interest around the knee (the paper's 4).
        ssim_threshold, gmsd_threshold : float or None
            Near-duplicate thresholds of the rule; ``None`` switches one off.
        rule : {"first_duplicate", "largest_distinct"}
            Decision rule, see :func:`stemnmf_hs.model_selection.suggest_k`.
        heldout : {"auto", True, False}, default "auto"
            Held-out score by binomial thinning for count data (see above); ``"auto"`` and
            ``True`` alike fall back to Cao's criteria with a warning for data that are not
            counts; ``False``: Cao's criteria on fits of the whole data (the previous
            behaviour).
        test_fraction : float, default 0.5
            Share of the counts in the test part.
        gain : float, optional
            Detector gain in data units per electron; default: 1 for whole-number data
            whose variance-to-mean ratio is 0.5-2, the estimated ratio for whole numbers
            above that (see :func:`~stemnmf_hs.model_selection.count_model`).
        heldout_rule : {"min", "one_se"}, default "min"
            Held-out choice the rule starts from: the lowest score, or the smallest ``k``
            within one paired standard error of it.
        show_progressbar : bool, optional
            Progress bar over ``k``; default HyperSpy's preference.
        **kwargs
            :class:`~stemnmf_hs.ConstrainedNMF` parameters (``solver``,
            ``diffraction_constraint``, ``map_constraint``, ``power_iterations``,
            ``random_state``, ...), ``navigation_mask``, ``signal_mask``, ``center`` (px),
            ``clip_negative``, as for :meth:`NMFDiffraction2D.decomposition`.

        Returns
        -------
        NumberOfComponentsEstimate
            ``suggested_k``, ``knee``, ``range_of_interest``, ``loss`` (a ``Signal1D`` over
            the axis "number of components", data units per pixel), ``iqa`` (``k -> metric
            -> (k, k) Signal2D``), ``criteria``, ``thresholds``, ``plot()``; ``sweep`` holds
            the fits (``k``, ``loss``, ``error``, ``n_iter``).

        Raises
        ------
        ValueError
            Before any fit: fewer than 3 values of ``k``, an impossible ``k``, a scan that
            is not 4D-STEM, bad masks or values (as for ``decomposition``).
        TypeError
            On an unknown keyword.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, truth = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(64, 64))
        >>> est = s.estimate_number_of_components(range(2, 9), max_iter=40,
        ...                                       random_state=0, show_progressbar=False)
        >>> est.suggested_k in range(2, 9)
        True
        """
        ks = np.unique(np.asarray(list(k_range), dtype=int))
        if ks.size < 3:
            raise ValueError(
                f"k_range must hold at least 3 numbers of components to find a knee; got "
                f"{ks.tolist()}. Use e.g. range(2, 21)."
            )
        if max_iter is None:
            max_iter = 20 if solver == "hals" else 100
        if solver == "hals":  # the sweep's short monotone fits (see ``solver``)
            kwargs = {"init_iter": 10, "refine_iter": 0, "unique_components": True, **kwargs}
        opts = dict(kwargs, solver=solver, n_restarts=n_restarts, max_iter=max_iter, tol=tol,
                    compression=compression, show_progressbar=False)
        template, nav_mask, sig_mask, clip = prepare_estimator(
            self, opts, k_max=int(ks[-1])
        )
        if show_progressbar is None:
            show_progressbar = default_progressbar()
        data = solver_data(self, nav_mask, sig_mask, clip)
        fit_data, score, held = data, None, {}
        if heldout not in ("auto", True, False):
            raise ValueError(f"heldout must be 'auto', True or False; got {heldout!r}.")
        if heldout:
            held = _heldout_setup(data, template, test_fraction, gain, show_progressbar)
            fit_data, score = held.pop("fit_data", data), held.pop("score", None)
        sweep = sweep_n_components(template, fit_data, ks, warm_start=warm_start,
                                   show_progressbar=show_progressbar, score=score)
        if score is not None:
            held["rows"] = {m: np.stack([r[m] for r in sweep["score"]])
                            for m in _ms.HELDOUT_METRICS}
            # the fits saw the train part: maps in data units for the representatives
            sweep["maps"] = [m / np.float32(1 - test_fraction) for m in sweep["maps"]]
        sig_shape = template.signal_shape
        representatives = {}
        for k, comps, maps in zip(ks, sweep["components"], sweep["maps"]):
            full = np.asarray(comps, dtype=np.float32)
            if sig_mask is not None:
                full = expand_rows(full.T, sig_mask.ravel(), fill=0.0).T
            representatives[int(k)] = representative_diffractions(
                full.reshape((int(k),) + tuple(sig_shape)), maps.T
            )
        result = NumberOfComponentsEstimate(
            ks, sweep["loss"], representatives, ssim_threshold=ssim_threshold,
            gmsd_threshold=gmsd_threshold, half_width=half_width, rule=rule,
            loss_units=self.metadata.get_item("Signal.quantity", ""),
            heldout=held, heldout_rule=heldout_rule,
        )
        result.sweep = {key: sweep[key] for key in ("k", "loss", "error", "n_iter")}
        return result


def _heldout_setup(data, template, test_fraction, gain, show_progressbar=False):
    """Thin the solver data into train and test parts, or say why not (with a warning)."""
    import warnings

    from ..decomposition import as_operator

    cm = _ms.count_model(data.X, gain=gain)
    if not cm.is_counts:
        warnings.warn(f"No held-out score: {cm.message} Choosing k by Cao's criteria "
                      "(K-component loss, knee, IQA) alone.", UserWarning, stacklevel=3)
        return {"count_model": cm}
    train, test = _ms.thin_counts(data.X, test_fraction, random_state=template.random_state,
                                  gain=cm.gain)
    scale = test_fraction / (1 - test_fraction)
    # every fit's score and train loss in one pass: a lazy scan is thinned once for both
    return {"count_model": cm, "test_fraction": test_fraction, "metric": "deviance",
            "fit_data": as_operator(train, check_values=False),
            "score": lambda fits: _ms.heldout_pass(test, fits, scale, train=train,
                                                   show_progressbar=show_progressbar)}
