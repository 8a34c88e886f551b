"""Methods on decomposed scans: similarity, rotation, clustering, overlap and component maps.

A mixin of :class:`~stemnmf_hs.signals.NMFDiffraction2D`: each method reads the
decomposition (or a :class:`ClusterResult`) as arrays, calls a math module
(:mod:`stemnmf_hs.similarity`, :mod:`stemnmf_hs.clustering`, :mod:`stemnmf_hs.overlap`) and
wraps the result in a signal with the scan's calibrated axes.

Plotting
--------
Every ``plot_*`` method (and :meth:`ClusterResult.plot`, :meth:`ClusterResult.plot_dendrogram`)
returns the :class:`matplotlib.figure.Figure` it drew, so that ``fig.savefig(...)`` works; the
one exception is :meth:`ComponentAnalysisMixin.plot_overlap_map` with widgets, which returns the
widget box whose ``.figure`` is the figure.  The figures share one visual language:

* colour maps :data:`DIFFRACTION_CMAP` (diffractions, power-law scaled), :data:`MAP_CMAP`
  (maps), :data:`SIGNED_CMAP` (factors with negative values, e.g. PCA: blue is negative),
  :data:`MATRIX_CMAP` (k x k matrices), :data:`LABEL_COLOURS` (component / cluster index) and
  :data:`OVERLAP_LEVEL_COLOURS` (overlap levels, Cao et al. 2025, Fig. 5);
* images drawn on the calibrated axes of the signal (``"x (nm)"``, ``"kx (1/Å)"``; ``px``
  where an axis carries no units) with a scale bar
  (:class:`mpl_toolkits.axes_grid1.anchored_artists.AnchoredSizeBar`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import clustering, overlap, similarity
from ._build import component_matrix, image_like, stack_like

__all__ = [
    "DIFFRACTION_CMAP",
    "LABEL_COLOURS",
    "MAP_CMAP",
    "MATRIX_CMAP",
    "OVERLAP_BELOW_COLOUR",
    "OVERLAP_LEVEL_COLOURS",
    "SIGNED_CMAP",
    "ClusterResult",
    "ComponentAnalysisMixin",
    "overlap_level_colours",
]

#: Colour map of diffractions (non-negative factors), drawn with ``PowerNorm(gamma)``.
DIFFRACTION_CMAP = "inferno"
#: Colour map of maps (loadings) and of the summed-weight background of the overlap map.
MAP_CMAP = "viridis"
#: Diverging colour map of factors or maps holding negative values (PCA): blue < 0 < red.
SIGNED_CMAP = "RdBu_r"
#: Colour map of k x k component matrices (similarity).
MATRIX_CMAP = "cividis"
#: Colour of component (or cluster) ``i``: ``LABEL_COLOURS[i % 10]`` (matplotlib "tab10").
LABEL_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
#: Colours of the overlap levels 75, 80, 85, 90 and 95 % (Cao et al. 2025, Fig. 5: "red
#: (75%), orange (80%), yellow (85%), and blue (95%)"; the paper names no colour for 90 %,
#: green is used between yellow and blue).
OVERLAP_LEVEL_COLOURS = ("#e41a1c", "#ff7f00", "#ffd92f", "#4daf4a", "#377eb8")
#: Colour of weight ratios between the slider value and the lowest threshold (interactive
#: overlap map with the slider moved below the lowest threshold only).
OVERLAP_BELOW_COLOUR = "#984ea3"


def overlap_level_colours(n_levels):
    """Colours of ``n_levels`` increasing overlap thresholds, red to blue.

    Parameters
    ----------
    n_levels : int
        Number of thresholds (>= 1).

    Returns
    -------
    list of str or tuple
        ``(n_levels,)`` matplotlib colours: exactly :data:`OVERLAP_LEVEL_COLOURS` for the
        paper's five thresholds, otherwise samples of the same red-orange-yellow-green-blue
        sequence (Cao et al. 2025, Fig. 5).

    Raises
    ------
    ValueError
        If ``n_levels < 1``.
    """
    n = int(n_levels)
    if n < 1:
        raise ValueError(f"n_levels must be at least 1; got {n_levels!r}.")
    if n == len(OVERLAP_LEVEL_COLOURS):
        return list(OVERLAP_LEVEL_COLOURS)
    from matplotlib.colors import LinearSegmentedColormap

    ramp = LinearSegmentedColormap.from_list("overlap", OVERLAP_LEVEL_COLOURS)
    return [tuple(c) for c in ramp(np.linspace(0, 1, n) if n > 1 else [0.0])]


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
    """

    labels: np.ndarray
    linkage: np.ndarray
    factors: object
    loadings: object
    similarity: np.ndarray
    rotation: object = None

    @property
    def n_clusters(self):
        """Number of clusters."""
        return int(self.labels.max()) + 1

    def _members(self):
        """Component indices under every node of the linkage (leaves, then merges)."""
        k = len(self.labels)
        members = [{i} for i in range(k)]
        for a, b in np.asarray(self.linkage)[:, :2].astype(int):
            members.append(members[a] | members[b])
        return members

    def plot_dendrogram(self, ax=None, gamma=0.3):
        """Dendrogram of the components with the averaged diffraction of every cluster.

        Kimoto et al. 2025, Fig. 9c-d: branches inside a cluster take the cluster's colour
        (:data:`LABEL_COLOURS`), links above the cut are grey; the insets above show the
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
        """
        import matplotlib.pyplot as plt
        from scipy.cluster.hierarchy import dendrogram

        n = self.n_clusters
        k = len(self.labels)
        if ax is None:
            fig = plt.figure(figsize=(max(6.0, 1.9 * n), 6.2))
            ax = fig.add_axes([0.1, 0.08, 0.86, 0.5])
        fig = ax.figure
        members = self._members()
        labels = np.asarray(self.labels)

        def link_colour(node):
            """Colour of linkage node ``node``: its cluster's colour, grey if mixed."""
            clusters = np.unique(labels[sorted(members[node])])
            return _label_colour(clusters[0]) if clusters.size == 1 else "0.45"

        tree = dendrogram(self.linkage, ax=ax, labels=[f"w{i}" for i in range(k)],
                          link_color_func=link_colour)
        for tick in ax.get_xticklabels():
            idx = int(tick.get_text()[1:])
            tick.set_color(_label_colour(labels[idx]))
        metric = "cosine similarity (eq. 9)" if self.rotation is None else (
            "diffraction similarity (eq. 10)")
        ax.set_ylabel(f"1 - {metric}")
        ax.set_xlabel("component")
        order = list(dict.fromkeys(int(labels[leaf]) for leaf in tree["leaves"]))
        data = np.asarray(self.factors.data, dtype=float)
        sig_axes = self.factors.axes_manager.signal_axes
        width = 1.0 / n
        for slot, c in enumerate(order):
            inset = ax.inset_axes([slot * width + 0.04 * width, 1.06, 0.92 * width, 0.62])
            _draw_diffraction(inset, data[c], sig_axes, gamma=gamma, labels=False)
            members_c = np.flatnonzero(labels == c)
            inset.set_title(f"cluster {c}: " + ",".join(f"w{m}" for m in members_c),
                            fontsize=8, color=_label_colour(c))
            inset.set_xticks([])
            inset.set_yticks([])
            for spine in inset.spines.values():
                spine.set_edgecolor(_label_colour(c))
                spine.set_linewidth(2)
        return fig

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
        """
        return _component_grid(
            np.asarray(self.factors.data, dtype=float), self.factors.axes_manager.signal_axes,
            np.asarray(self.loadings.data, dtype=float), self.loadings.axes_manager.signal_axes,
            prefix=("cluster", "cluster"), gamma=gamma,
            title=f"{self.n_clusters} clusters of {len(self.labels)} components",
        )


class ComponentAnalysisMixin:
    """Analysis of the components of a decomposed 4D-STEM scan (see module docstring)."""

    # ------------------------------------------------------------------ arrays
    def _decomposition_arrays(self):
        """``(factors (k, ky, kx), maps (k, y, x), signal_mask or None)`` of the fit."""
        lr = self.learning_results
        if lr.factors is None or lr.loadings is None:
            raise ValueError(
                "This signal has no decomposition yet: run "
                "s.decomposition(algorithm='constrained_nmf', output_dimension=k) first."
            )
        am = self.axes_manager
        k = lr.factors.shape[1]
        if lr.output_dimension:
            k = min(k, int(lr.output_dimension))
        sig_shape = tuple(am._signal_shape_in_array)
        nav_shape = tuple(am._navigation_shape_in_array)
        factors = np.asarray(lr.factors[:, :k]).T.reshape((k,) + sig_shape)
        maps = np.asarray(lr.loadings[:, :k]).T.reshape((k,) + nav_shape)
        mask = getattr(lr, "signal_mask", None)
        mask = None if mask is None else np.asarray(mask, dtype=bool).reshape(sig_shape)
        return factors, maps, mask

    def _source_arrays(self, source):
        """Arrays of the raw components (``source=None``) or of a :class:`ClusterResult`."""
        factors, maps, mask = self._decomposition_arrays()
        if source is None:
            return factors, maps, mask
        if isinstance(source, ClusterResult):
            return np.asarray(source.factors.data), np.asarray(source.loadings.data), mask
        raise TypeError(
            f"source must be None (the decomposition's components) or a ClusterResult from "
            f"s.cluster_components(); got {type(source).__name__}."
        )

    def _pattern_center(self, center=None):
        """Pattern centre in pixels: given, else the fit's, else the calibration's."""
        if center is not None:
            return tuple(float(c) for c in center)
        fit = self.metadata.get_item("Signal.ConstrainedNMF.parameters.center", None)
        if fit is not None and fit != "None":
            return tuple(float(c) for c in fit)
        from .nmf_diffraction2d import calibrated_center

        return calibrated_center(self)

    def _nav_axes(self):
        return self.axes_manager.navigation_axes

    # ------------------------------------------------------------------ similarity
    def _similarity_arrays(self, metric, center, n_azimuthal, source):
        factors, _, mask = self._source_arrays(source)
        stack = np.nan_to_num(factors, nan=0.0)
        if metric == "cosine":
            return similarity.cosine_similarity(stack.reshape(len(stack), -1)), None
        if metric != "polar":
            raise ValueError(f"metric must be 'polar' (eq. 10) or 'cosine' (eq. 9); got {metric!r}.")
        return similarity.polar_cross_correlation(
            stack, center=self._pattern_center(center), signal_mask=mask,
            n_azimuthal=n_azimuthal,
        )

    def get_component_similarity(self, metric="polar", center=None, n_azimuthal=360,
                                 source=None):
        """k x k similarity of the component diffractions.

        Parameters
        ----------
        metric : {"polar", "cosine"}, default "polar"
            ``"polar"``: the rotation-invariant diffraction similarity of Kimoto et al. 2025,
            eq. 10 (r-phi transform about the pattern centre, cross-correlation along phi at
            zero radial shift; 1 for a pattern and any rotation of itself).  ``"cosine"``:
            eq. 9.
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
        """
        _, rot = self._similarity_arrays("polar", center, n_azimuthal, source)
        return component_matrix(rot, "Component rotation", "degree")

    def cluster_components(self, n_clusters=None, distance_threshold=None, method="average",
                           metric="polar", center=None, n_azimuthal=360):
        """Hierarchical clustering of the components on ``1 - similarity`` (Fig. 9c-d).

        Parameters
        ----------
        n_clusters : int, optional
            Number of clusters (scipy ``fcluster`` criterion "maxclust").
        distance_threshold : float, optional
            Cut the dendrogram at this ``1 - similarity``; the default when neither is given
            is documented in :func:`stemnmf_hs.clustering.cluster_components`.
        method : str, default "average"
            scipy linkage method.
        metric : {"polar", "cosine"}, default "polar"
            Similarity, see :meth:`get_component_similarity`.
        center : tuple of float, optional
            Pattern centre in pixels.
        n_azimuthal : int, default 360
            Azimuthal samples of the polar transform.

        Returns
        -------
        ClusterResult
            ``labels``, ``linkage``, ``factors`` (rotation-corrected averaged diffraction per
            cluster, reciprocal axes), ``loadings`` (summed maps per cluster, scan axes) and
            ``plot_dendrogram()``.

        Raises
        ------
        ValueError
            Without a decomposition, with fewer than two components, or on invalid clustering
            parameters.
        """
        factors, maps, mask = self._decomposition_arrays()
        sim, rot = self._similarity_arrays(metric, center, n_azimuthal, None)
        labels, link = clustering.cluster_components(
            sim, n_clusters=n_clusters, distance_threshold=distance_threshold, method=method
        )
        rotation = rot if rot is not None else np.zeros_like(sim)
        merged_d, merged_m = clustering.merge_components(
            np.nan_to_num(factors, nan=0.0), np.nan_to_num(maps, nan=0.0), labels, rotation,
            self._pattern_center(center), factors.shape[1:],
        )
        if mask is not None:
            merged_d = np.where(mask, np.nan, merged_d)
        title = self.metadata.General.title
        return ClusterResult(
            labels=np.asarray(labels),
            linkage=np.asarray(link),
            factors=stack_like(merged_d, self.axes_manager.signal_axes,
                               f"Cluster diffractions of {title}", "cluster"),
            loadings=stack_like(merged_m, self._nav_axes(), f"Cluster maps of {title}",
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
        """
        _, maps, _ = self._source_arrays(source)
        ratio = overlap.weight_ratio(maps, exclude=exclude, min_weight=min_weight)
        return image_like(ratio, self._nav_axes(), "Weight ratio (2nd / 1st)")

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
        """
        ratio = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                          source=source).data
        level = overlap.overlap_level(ratio, thresholds)
        return image_like(level, self._nav_axes(), "Overlap level")

    def plot_overlap_map(self, thresholds=overlap.DEFAULT_THRESHOLDS, exclude=None,
                         min_weight=None, source=None, ax=None, interactive=None,
                         scalebar=True):
        """Colour-coded overlap levels over the summed weights (Cao et al. 2025, Fig. 5).

        Every probe position whose weight ratio (2nd / 1st, see
        :meth:`get_weight_ratio_map`) reaches a threshold is coloured by the highest
        threshold reached, in the paper's colours (:data:`OVERLAP_LEVEL_COLOURS`: red 75 %,
        orange 80 %, yellow 85 %, green 90 %, blue 95 %; other thresholds get colours from
        :func:`overlap_level_colours`), over the summed maps of the ranked (not excluded)
        components in grey.  Axes are the scan's calibrated axes, with a scale bar.

        With widgets, a threshold slider (``0.5 ... 1``, step 0.01; from the lowest threshold
        if that is below 0.5) hides the positions whose ratio is below its value, so any cut
        can be explored; positions between the slider and the lowest threshold (slider moved
        below it) show in :data:`OVERLAP_BELOW_COLOUR`.

        Parameters
        ----------
        thresholds, exclude, min_weight, source
            As in :meth:`get_overlap_map`.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure when ``None``.
        interactive : bool or None, default None
            ``None`` (auto): the slider when ``ipywidgets`` is importable *and* the code runs
            in a Jupyter kernel with the ipympl backend (``%matplotlib widget``); a static
            figure otherwise (e.g. ``%matplotlib inline``, scripts, ``MPLBACKEND=Agg``).
            ``True``: always the slider (needs ipywidgets; outside ipympl the figure is
            redrawn into an ``ipywidgets.Output`` at every change).  ``False``: always
            static.
        scalebar : bool, default True
            Draw a scale bar in the scan units.

        Returns
        -------
        matplotlib.figure.Figure or ipywidgets.VBox
            The figure (static); with widgets a ``VBox`` (slider above the figure) whose
            ``.figure`` is the matplotlib figure, ``.slider`` the ``FloatSlider`` and
            ``.update(value)`` redraws for a slider value.

        Raises
        ------
        ImportError
            If ``interactive=True`` and ipywidgets is not installed.
        ValueError
            As :meth:`get_overlap_map`.
        """
        from matplotlib.colors import BoundaryNorm, ListedColormap

        t = [float(v) for v in thresholds]
        overlap.overlap_level(np.zeros(1), t)  # validates the thresholds
        widgets = _use_widgets(interactive)
        ratio = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                          source=source).data
        _, maps, _ = self._source_arrays(source)
        keep = np.ones(len(maps), bool)
        if exclude is not None:
            keep[np.atleast_1d(np.asarray(exclude, dtype=int))] = False
        total = np.nansum(maps[keep], axis=0)
        cmap = ListedColormap(overlap_level_colours(len(t)), name="overlap_levels")
        cmap.set_under(OVERLAP_BELOW_COLOUR)
        norm = BoundaryNorm(t + [1.0 + 1e-9], cmap.N)
        live = widgets and _ipympl_backend()  # the canvas itself is a widget (ipympl)
        fig, ax = _new_axes(ax, (6.4, 5.0), pyplot=not widgets or live, show=not widgets)
        axes = self._nav_axes()
        extent = _extent(axes, total.shape)
        ax.imshow(total, cmap="gray", extent=extent, interpolation="nearest")
        im = ax.imshow(_overlap_shown(ratio, t[0]), cmap=cmap, norm=norm, extent=extent,
                       alpha=0.9, interpolation="nearest")
        fig.colorbar(im, ax=ax, ticks=t, extend="min" if widgets else "neither",
                     label="weight ratio 2nd / 1st (level reached)")
        _label_axes(ax, axes, ("x", "y"))
        if scalebar:
            _add_scalebar(ax, axes[0], extent)
        ax.set_title("Overlap map")
        if not widgets:
            return fig
        return _overlap_widget(fig, ax, im, ratio, t)

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
        """
        _, maps, _ = self._source_arrays(source)
        labels = overlap.dominant_component(maps, exclude=exclude)
        return image_like(labels, self._nav_axes(), "Component map")

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
        """
        factors, maps, _ = self._source_arrays(source)
        labels = overlap.dominant_component(maps, exclude=exclude).ravel()
        k = factors.shape[0]
        am = self.axes_manager
        flat = self.data.reshape((am.navigation_size, am.signal_size))
        means, _ = overlap.class_means(flat, labels, k)
        if self._lazy:
            means = means.compute()
        sig_shape = tuple(am._signal_shape_in_array)
        means = np.asarray(means).reshape((k,) + sig_shape)
        rep = overlap.representative_diffractions(factors, maps)
        axes = am.signal_axes
        return (stack_like(means, axes, "Mean raw pattern per component"),
                stack_like(rep, axes, "Representative diffraction w_k max(h_k)"))

    # ------------------------------------------------------------------ plots
    def plot_components(self, source=None, n_components=None, gamma=0.3, title=None):
        """Diffractions over maps of every component, on calibrated axes.

        Works on any decomposition in ``learning_results`` (constrained NMF, primitive NMF,
        HyperSpy's SVD/PCA, ...): factors with negative values (PCA) are drawn with
        :data:`SIGNED_CMAP` on a symmetric scale so that the unphysical negative intensities
        show in blue; non-negative ones with :data:`DIFFRACTION_CMAP` (``PowerNorm(gamma)``)
        and :data:`MAP_CMAP`.

        Parameters
        ----------
        source : ClusterResult, optional
            Plot the merged clusters instead of the raw components.
        n_components : int, optional
            Plot the first ``n_components`` only (default all).
        gamma : float, default 0.3
            Power-law scaling of the diffractions (signed: ``sign(x) |x|^gamma``).
        title : str, optional
            Figure title; default the signal's title and the algorithm.

        Returns
        -------
        matplotlib.figure.Figure
            Two rows of ``k`` panels: diffractions ``w_k`` (reciprocal axes) and maps ``h_k``
            (scan axes), each with a scale bar.

        Raises
        ------
        ValueError
            Without a decomposition.
        """
        factors, maps, _ = self._source_arrays(source)
        if n_components is not None:
            factors, maps = factors[: int(n_components)], maps[: int(n_components)]
        if title is None:
            algo = getattr(self.learning_results, "decomposition_algorithm", None)
            title = f"{self.metadata.General.title or 'Decomposition'}"
            if isinstance(algo, str):
                title += f" ({algo})"
        prefix = ("cluster", "cluster") if source is not None else ("w", "h")
        return _component_grid(factors, self.axes_manager.signal_axes, maps, self._nav_axes(),
                               prefix=prefix, gamma=gamma, title=title)

    def plot_convergence(self, axes=None, label=None, reference_mse=None,
                         reference_label="reference"):
        """Convergence curves of the constrained NMF (Kimoto et al. 2025, Fig. 7).

        Reads ``metadata.Signal.ConstrainedNMF.history`` (written by
        ``decomposition(algorithm="constrained_nmf")`` and saved with the signal): the MSE,
        and the L1 changes ``||W(i+1) - W(i)||_1`` and ``||H(i+1) - H(i)||_1`` per iteration of
        the kept restart.

        Parameters
        ----------
        axes : sequence of 3 matplotlib.axes.Axes, optional
            Draw into these (e.g. ``fig.axes`` of a previous call, to overlay two fits); a new
            figure when ``None``.
        label : str, optional
            Legend label of these curves (default the solver and constraints).
        reference_mse : float, optional
            MSE drawn as a dashed line in the first panel, e.g. that of PCA with the same
            number of components (the paper's Fig. 7a), in the same units (counts²).
        reference_label : str, default "reference"
            Legend label of ``reference_mse``.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ValueError
            If the signal holds no constrained-NMF history.
        """
        import matplotlib.pyplot as plt

        hist = self.metadata.get_item("Signal.ConstrainedNMF.history", None)
        if hist is None:
            raise ValueError(
                "This signal holds no convergence history: run "
                "s.decomposition(algorithm='constrained_nmf', output_dimension=k) first."
            )
        if label is None:
            par = self.metadata.get_item("Signal.ConstrainedNMF.parameters", None)
            label = "constrained NMF"
            if par is not None:
                cons = [c for c in (par.get_item("diffraction_constraint"),
                                    par.get_item("map_constraint")) if c not in (None, "None")]
                label = f"{par.get_item('solver', 'als').upper()}" + (
                    f" + {' + '.join(cons)}" if cons else " (primitive)")
        if axes is None:
            fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
        axes = list(axes)
        fig = axes[0].figure
        panels = (("mse", "MSE (counts²)", False),
                  ("w_change", "||W(i+1) - W(i)||₁ (diffractions)", True),
                  ("h_change", "||H(i+1) - H(i)||₁ (maps, counts)", True))
        for a, (key, name, log) in zip(axes, panels):
            y = np.asarray(hist.get_item(key), dtype=float)
            it = np.arange(1, y.size + 1)
            ok = np.isfinite(y) & ((y > 0) if log else True)
            a.plot(it[ok], y[ok], ".-", ms=3, label=label)
            if log and ok.any():
                a.set_yscale("log")
            a.set_title(name, fontsize=10)
            a.set_xlabel("iteration")
            a.grid(True, alpha=0.3)
        if reference_mse is not None:
            axes[0].axhline(float(reference_mse), ls="--", color="k", lw=1,
                            label=reference_label)
        axes[0].legend(fontsize=8)
        return fig

    def plot_component_similarity(self, metric="polar", center=None, n_azimuthal=360,
                                  source=None, ax=None, annotate=True):
        """The k x k similarity of the component diffractions as an annotated matrix.

        Parameters
        ----------
        metric, center, n_azimuthal, source
            As in :meth:`get_component_similarity`.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure when ``None``.
        annotate : bool, default True
            Write the values into the cells (for ``k <= 12``).

        Returns
        -------
        matplotlib.figure.Figure
            The matrix in :data:`MATRIX_CMAP` on ``[0, 1]``, rows and columns labelled
            ``w0 ... w{k-1}`` (or ``c0 ...`` for clusters).

        Raises
        ------
        ValueError
            As :meth:`get_component_similarity`.
        """
        sim = self.get_component_similarity(metric=metric, center=center,
                                            n_azimuthal=n_azimuthal, source=source).data
        k = sim.shape[0]
        fig, ax = _new_axes(ax, (1.0 + 0.55 * k + 1.2, 1.0 + 0.55 * k))
        im = ax.imshow(sim, cmap=MATRIX_CMAP, vmin=0, vmax=1, interpolation="nearest")
        names = [("c" if source is not None else "w") + str(i) for i in range(k)]
        ax.set_xticks(range(k), names)
        ax.set_yticks(range(k), names)
        for i, tick in enumerate(ax.get_xticklabels()):
            tick.set_color(_label_colour(i))
        for i, tick in enumerate(ax.get_yticklabels()):
            tick.set_color(_label_colour(i))
        if annotate and k <= 12:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="k" if sim[i, j] > 0.6 else "w")
        eq = {"polar": "diffraction similarity, eq. 10", "cosine": "cosine similarity, eq. 9"}
        ax.set_title(eq.get(metric, metric), fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8, label="similarity")
        return fig

    def plot_component_map(self, exclude=None, source=None, ax=None, scalebar=True):
        """Dominant component at every probe position, in the component colours.

        Parameters
        ----------
        exclude, source
            As in :meth:`get_component_map`.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into; a new figure when ``None``.
        scalebar : bool, default True
            Draw a scale bar in the scan units.

        Returns
        -------
        matplotlib.figure.Figure
            Component ``i`` in ``LABEL_COLOURS[i]`` (:data:`LABEL_COLOURS`) on the scan's
            calibrated axes, with a legend.

        Raises
        ------
        ValueError
            As :meth:`get_component_map`.
        """
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch

        labels = self.get_component_map(exclude=exclude, source=source).data
        _, maps, _ = self._source_arrays(source)
        k = maps.shape[0]
        cmap = ListedColormap([_label_colour(i) for i in range(k)])
        norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
        fig, ax = _new_axes(ax, (6.4, 5.0))
        axes = self._nav_axes()
        extent = _extent(axes, labels.shape)
        ax.imshow(labels, cmap=cmap, norm=norm, extent=extent, interpolation="nearest")
        name = "cluster" if source is not None else "w"
        sep = " " if source is not None else ""
        present = np.unique(labels)
        ax.legend(handles=[Patch(color=_label_colour(i), label=f"{name}{sep}{i}")
                           for i in present],
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        _label_axes(ax, axes, ("x", "y"))
        if scalebar:
            _add_scalebar(ax, axes[0], extent)
        ax.set_title("Component map (dominant component)")
        return fig

    def plot_component_mean_patterns(self, exclude=None, source=None, gamma=0.3):
        """Mean raw pattern of every component's positions next to its NMF representative.

        Cao et al. 2025, "Comparing NMF results with the raw dataset": the top row shows the
        mean of the raw patterns assigned to each component (:meth:`get_component_map`), the
        bottom row the reconstruction ``w_k max(h_k)``; both rows of a column share one
        intensity scale.

        Parameters
        ----------
        exclude, source
            As in :meth:`get_component_mean_patterns`.
        gamma : float, default 0.3
            Power-law scaling.

        Returns
        -------
        matplotlib.figure.Figure
            ``2 x k`` panels on the reciprocal-space axes, with scale bars.

        Raises
        ------
        ValueError
            Without a decomposition.
        """
        import matplotlib.pyplot as plt

        means, reps = self.get_component_mean_patterns(exclude=exclude, source=source)
        m = np.asarray(means.data, dtype=float)
        r = np.asarray(reps.data, dtype=float)
        labels = self.get_component_map(exclude=exclude, source=source).data
        counts = np.bincount(labels.ravel(), minlength=m.shape[0])
        k = m.shape[0]
        axes = self.axes_manager.signal_axes
        fig, axs = plt.subplots(2, k, figsize=(2.7 * k + 0.6, 5.8), squeeze=False,
                                layout="constrained")
        name = "cluster " if source is not None else "w"
        for i in range(k):
            vmax = np.nanmax(np.concatenate([np.ravel(m[i]), np.ravel(r[i]), [0.0]]))
            _draw_diffraction(axs[0, i], m[i], axes, gamma=gamma, vmax=vmax)
            axs[0, i].set_title(f"mean raw, {name}{i} ({counts[i]} pos.)", fontsize=9,
                                color=_label_colour(i))
            _draw_diffraction(axs[1, i], r[i], axes, gamma=gamma, vmax=vmax)
            axs[1, i].set_title(f"{name}{i}: w max(h)", fontsize=9, color=_label_colour(i))
        fig.suptitle("Mean raw patterns (top) vs NMF representatives (bottom)")
        return fig

    def plot_scan(self, navigator="component", exclude=None, source=None,
                  thresholds=overlap.DEFAULT_THRESHOLDS, min_weight=None, **kwargs):
        """The raw scan in HyperSpy's explorer, navigated on a component or overlap map.

        HyperSpy's own two-window plot: the navigator shows the chosen map on the scan
        axes, the signal window the raw pattern under the cursor (interactive with a GUI
        or ipympl backend; a static snapshot with Agg).

        Parameters
        ----------
        navigator : {"component", "overlap", "weight_ratio"} or hyperspy signal
            ``"component"``: :meth:`get_component_map` in :data:`LABEL_COLOURS`;
            ``"overlap"``: :meth:`get_overlap_map` (``thresholds``) in
            :data:`OVERLAP_LEVEL_COLOURS` (dark grey: no level); ``"weight_ratio"``:
            :meth:`get_weight_ratio_map` in :data:`MAP_CMAP` on ``[0, 1]``; or any navigator
            HyperSpy accepts.
        exclude, source, thresholds, min_weight
            Passed to the map.
        **kwargs
            Passed to :meth:`hyperspy.api.signals.BaseSignal.plot` (``navigator_kwds``,
            ``norm``, ``cmap``, ...).

        Returns
        -------
        matplotlib.figure.Figure
            The navigator's figure (the map with the cursor); the pattern's figure is
            ``s._plot.signal_plot.figure``.

        Raises
        ------
        ValueError
            On an unknown navigator name, or as the map methods.
        """
        from matplotlib.colors import ListedColormap

        nav_kwds = dict(kwargs.pop("navigator_kwds", {}) or {})
        if isinstance(navigator, str):
            if navigator == "component":
                nav = self.get_component_map(exclude=exclude, source=source)
                k = self._source_arrays(source)[1].shape[0]
                nav_kwds.setdefault("cmap", ListedColormap(
                    [_label_colour(i) for i in range(k)]))
                nav_kwds.setdefault("vmin", -0.5)
                nav_kwds.setdefault("vmax", k - 0.5)
            elif navigator == "overlap":
                nav = self.get_overlap_map(thresholds, exclude=exclude, min_weight=min_weight,
                                           source=source)
                # HyperSpy takes no norm instance: a fine colour table on [0, 1] whose bins
                # take the colour of the level they reach (dark grey below the lowest).
                t = np.asarray(thresholds, dtype=float)
                colours = ["0.15"] + list(overlap_level_colours(len(t)))
                bins = np.searchsorted(t, (np.arange(1000) + 0.5) / 1000, side="right")
                nav_kwds.setdefault("cmap", ListedColormap([colours[b] for b in bins]))
                nav_kwds.setdefault("vmin", 0.0)
                nav_kwds.setdefault("vmax", 1.0)
            elif navigator == "weight_ratio":
                nav = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                                source=source)
                nav_kwds.setdefault("cmap", MAP_CMAP)
                nav_kwds.setdefault("vmin", 0.0)
                nav_kwds.setdefault("vmax", 1.0)
            else:
                raise ValueError(
                    "navigator must be 'component', 'overlap', 'weight_ratio' or a signal; "
                    f"got {navigator!r}."
                )
        else:
            nav = navigator
        kwargs.setdefault("norm", "power")
        kwargs.setdefault("gamma", 0.3)
        kwargs.setdefault("cmap", DIFFRACTION_CMAP)
        _close_hyperspy_plot(self)
        self.plot(navigator=nav, navigator_kwds=nav_kwds, **kwargs)
        return _root_figure(self._plot.navigator_plot.figure)


# ---------------------------------------------------------------------------- plot helpers
def _label_colour(i):
    """Colour of component or cluster ``i`` (:data:`LABEL_COLOURS`, cycled)."""
    return LABEL_COLOURS[int(i) % len(LABEL_COLOURS)]


def _root_figure(fig):
    """The top-level :class:`~matplotlib.figure.Figure` of a figure or subfigure."""
    from matplotlib.figure import Figure

    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def _close_hyperspy_plot(signal):
    """Close a signal's previous HyperSpy plot without closing unrelated figures.

    HyperSpy 2.5's ``BlittedFigure.close`` forgets its figure and then calls
    ``plt.close(None)``, which closes whichever pyplot figure is active.  When the plot's own
    figures were already closed (Jupyter's inline backend closes every figure after a cell),
    re-plotting the signal therefore closed the two most recent *other* figures.  Here the
    plot is closed with ``plt.close(None)`` disabled, then its own figures explicitly.
    """
    import matplotlib.pyplot as plt

    old = getattr(signal, "_plot", None)
    if old is None:
        return
    figs = [_root_figure(p.figure) for p in (getattr(old, "signal_plot", None),
                                             getattr(old, "navigator_plot", None))
            if p is not None and getattr(p, "figure", None) is not None]
    original = plt.close

    def close(fig=None):
        """``plt.close`` that closes only a named figure (HyperSpy 2.5 closes the active)."""
        if fig is not None:
            original(fig)

    plt.close = close
    try:
        old.close()
    finally:
        plt.close = original
    for fig in figs:
        plt.close(fig)


def _new_axes(ax, figsize, pyplot=True, show=True):
    """``(figure, axes)``: the given axes' or a new figure.

    ``pyplot=False`` makes a figure pyplot does not manage (the inline backend will not show
    it by itself); ``show=False`` makes a pyplot figure with interactive mode off (ipympl does
    not display its canvas on creation).
    """
    if ax is not None:
        return _root_figure(ax.figure), ax
    if pyplot:
        import matplotlib.pyplot as plt

        if show:
            return plt.subplots(figsize=figsize, layout="constrained")
        with plt.ioff():
            return plt.subplots(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _units(axis):
    """Units of a HyperSpy axis, ``""`` when undefined."""
    u = getattr(axis, "units", None)
    return u if isinstance(u, str) and u and u != "<undefined>" else ""


def _axis_label(axis, fallback):
    """``"name (units)"`` of a HyperSpy axis; ``px`` for an uncalibrated one."""
    name = getattr(axis, "name", None)
    name = name if isinstance(name, str) and name and name != "<undefined>" else fallback
    return f"{name} ({_units(axis) or 'px'})"


def _label_axes(ax, axes, fallback=("x", "y"), fontsize=None):
    ax.set_xlabel(_axis_label(axes[0], fallback[0]), fontsize=fontsize)
    ax.set_ylabel(_axis_label(axes[1], fallback[1]), fontsize=fontsize)


def _extent(axes, shape):
    """imshow ``extent`` (left, right, bottom, top) of an ``(ny, nx)`` image on two axes."""
    ny, nx = shape
    try:
        ax_x, ax_y = axes
        if not (ax_x.is_uniform and ax_y.is_uniform):
            raise AttributeError
        sx, sy = float(ax_x.scale), float(ax_y.scale)
        x0, y0 = float(ax_x.offset), float(ax_y.offset)
    except (AttributeError, ValueError, TypeError):
        sx = sy = 1.0
        x0 = y0 = 0.0
    return [x0 - sx / 2, x0 + (nx - 0.5) * sx, y0 + (ny - 0.5) * sy, y0 - sy / 2]


def _nice_length(span):
    """A round length (1, 2 or 5 x 10^n) of about a fifth of ``span``."""
    target = abs(float(span)) / 5.0
    if not np.isfinite(target) or target <= 0:
        return 1.0
    exp = np.floor(np.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**exp <= target * 1.0001:
            return float(m * 10**exp)
    return float(10**exp)


def _add_scalebar(ax, axis, extent, color="white", fontsize=8):
    """A scale bar in the units of ``axis`` (px when uncalibrated), lower right."""
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    span = abs(extent[1] - extent[0])
    length = _nice_length(span)
    units = _units(axis) or "px"
    bar = AnchoredSizeBar(ax.transData, length, f"{length:g} {units}", "lower right",
                          pad=0.3, borderpad=0.3, color=color, frameon=False,
                          size_vertical=abs(extent[2] - extent[3]) * 0.012,
                          fontproperties=FontProperties(size=fontsize))
    bar.set_label("scalebar")
    ax.add_artist(bar)
    return bar


def _signed(img):
    """Whether an image holds significant negative values (a signed factorization)."""
    finite = img[np.isfinite(img)]
    if not finite.size:
        return False
    return bool(finite.min() < -1e-6 * max(np.abs(finite).max(), 1e-300))


def _draw_diffraction(ax, img, axes, gamma=0.3, vmax=None, labels=True, scalebar=True):
    """One diffraction on calibrated reciprocal axes (NaN = masked, grey)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, PowerNorm

    img = np.asarray(img, dtype=float)
    extent = _extent(axes, img.shape)
    if _signed(img):
        shown = np.sign(img) * np.abs(img) ** gamma
        lim = float(np.nanmax(np.abs(shown))) or 1.0
        cmap = plt.get_cmap(SIGNED_CMAP).copy()
        norm = Normalize(-lim, lim)
    else:
        shown = np.clip(img, 0, None)
        top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 0.0
        top = float(vmax) if vmax is not None and vmax > 0 else top
        cmap = plt.get_cmap(DIFFRACTION_CMAP).copy()
        norm = PowerNorm(gamma, vmin=0, vmax=top or 1.0)
    cmap.set_bad("0.5")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, extent=extent,
                   interpolation="nearest")
    if labels:
        _label_axes(ax, axes, ("kx", "ky"), fontsize=8)
        ax.tick_params(labelsize=7)
    if scalebar:
        _add_scalebar(ax, axes[0], extent)
    return im


def _draw_map(ax, img, axes, labels=True, scalebar=True):
    """One map on calibrated scan axes (signed maps on a symmetric diverging scale)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    img = np.asarray(img, dtype=float)
    extent = _extent(axes, img.shape)
    if _signed(img):
        lim = float(np.nanmax(np.abs(img))) or 1.0
        cmap, norm = plt.get_cmap(SIGNED_CMAP).copy(), Normalize(-lim, lim)
    else:
        top = float(np.nanmax(img)) if np.isfinite(img).any() else 1.0
        cmap, norm = plt.get_cmap(MAP_CMAP).copy(), Normalize(0, top or 1.0)
    cmap.set_bad("0.5")
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cmap, norm=norm, extent=extent,
                   interpolation="nearest")
    if labels:
        _label_axes(ax, axes, ("x", "y"), fontsize=8)
        ax.tick_params(labelsize=7)
    if scalebar:
        _add_scalebar(ax, axes[0], extent)
    return im


def _component_grid(factors, f_axes, maps, m_axes, prefix=("w", "h"), gamma=0.3, title=""):
    """Figure of ``k`` diffractions (top row) over their maps (bottom row)."""
    import matplotlib.pyplot as plt

    k = factors.shape[0]
    fig, axs = plt.subplots(2, k, figsize=(2.7 * k + 0.6, 5.8), squeeze=False,
                            layout="constrained")
    sep = " " if len(prefix[0]) > 1 else ""
    for i in range(k):
        _draw_diffraction(axs[0, i], factors[i], f_axes, gamma=gamma)
        axs[0, i].set_title(f"{prefix[0]}{sep}{i}", fontsize=10, color=_label_colour(i))
        im = _draw_map(axs[1, i], maps[i], m_axes)
        axs[1, i].set_title(f"{prefix[1]}{sep}{i}", fontsize=10, color=_label_colour(i))
        cb = fig.colorbar(im, ax=axs[1, i], shrink=0.7, location="bottom")
        cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------- widgets
def _ipympl_backend():
    """Whether matplotlib draws through ipympl (``%matplotlib widget``): canvases are widgets."""
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    return "ipympl" in backend or backend == "widget"


def _in_kernel():
    """Whether the code runs in a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _use_widgets(interactive):
    """Resolve ``interactive`` (None = auto, True, False) to a bool; see plot_overlap_map."""
    if interactive is not None and not isinstance(interactive, (bool, np.bool_)):
        raise TypeError(f"interactive must be None, True or False; got {interactive!r}.")
    if interactive is False:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        if interactive:
            raise ImportError(
                "interactive=True needs ipywidgets (pip install ipywidgets); use "
                "interactive=None or False for a static figure."
            ) from None
        return False
    return True if interactive else (_in_kernel() and _ipympl_backend())


def _overlap_shown(ratio, cut):
    """The weight ratio masked below ``cut`` (and where it is 0: no significant overlap)."""
    return np.ma.masked_where(~(ratio >= cut) | (ratio <= 0), ratio)


def _overlap_widget(fig, ax, im, ratio, thresholds):
    """Slider box around an overlap-map figure (see plot_overlap_map)."""
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=thresholds[0], min=min(0.5, thresholds[0]), max=1.0,
                                 step=0.01, description="ratio ≥", continuous_update=False,
                                 readout_format=".2f")
    live = _ipympl_backend() and hasattr(fig.canvas, "layout")
    out = None if live else widgets.Output()

    def update(value):
        """Redraw the overlap map for weight-ratio threshold ``value`` (0-1)."""
        im.set_data(_overlap_shown(ratio, float(value)))
        ax.set_title(f"Overlap map (weight ratio ≥ {float(value):.2f})")
        if live:
            fig.canvas.draw_idle()
        elif _in_kernel():
            from IPython.display import display

            with out:
                out.clear_output(wait=True)
                display(fig)

    slider.observe(lambda change: update(change["new"]), names="value")
    box = widgets.VBox([slider, fig.canvas if live else out])
    box.figure, box.slider, box.update = fig, slider, update
    update(slider.value)
    return box
