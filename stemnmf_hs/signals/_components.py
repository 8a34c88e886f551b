"""Methods on decomposed scans: similarity, rotation, clustering, overlap and component maps.

A mixin of :class:`~stemnmf_hs.signals.NMFDiffraction2D`: each method reads the
decomposition (or a :class:`ClusterResult`) as arrays, calls a math module
(:mod:`stemnmf_hs.similarity`, :mod:`stemnmf_hs.clustering`, :mod:`stemnmf_hs.overlap`) and
wraps the result in a signal with the scan's calibrated axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import clustering, overlap, similarity
from ._build import component_matrix, image_like, stack_like

__all__ = ["ComponentAnalysisMixin", "ClusterResult"]


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

    def plot_dendrogram(self, ax=None, gamma=0.3):
        """Dendrogram of the components with the averaged diffraction of every cluster.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw the dendrogram into; a new figure when ``None``.
        gamma : float, default 0.3
            Power-law scaling of the inset diffractions.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from matplotlib.colors import PowerNorm
        from scipy.cluster.hierarchy import dendrogram

        n = self.n_clusters
        if ax is None:
            fig = plt.figure(figsize=(max(6, 1.8 * n), 6))
            ax = fig.add_axes([0.08, 0.08, 0.9, 0.55])
        fig = ax.figure
        dendrogram(self.linkage, ax=ax, labels=[f"w{i}" for i in range(len(self.labels))])
        ax.set_ylabel("1 - similarity")
        data = np.nan_to_num(np.asarray(self.factors.data, dtype=float))
        for c in range(n):
            inset = fig.add_axes([0.08 + 0.9 * c / n, 0.68, 0.9 / n * 0.95, 0.28])
            img = np.clip(data[c], 0, None)
            inset.imshow(img, cmap="inferno", norm=PowerNorm(gamma, vmin=0,
                                                             vmax=img.max() or 1.0))
            members = np.flatnonzero(self.labels == c)
            inset.set_title(f"cluster {c}: " + ",".join(f"w{m}" for m in members), fontsize=8)
            inset.set_axis_off()
        return fig


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
                         min_weight=None, source=None, ax=None):
        """Colour-coded overlap levels over the summed intensity (Cao et al. 2025, Fig. 5).

        Parameters
        ----------
        thresholds, exclude, min_weight, source
            As in :meth:`get_overlap_map`.
        ax : matplotlib.axes.Axes, optional
            Axes to draw into.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from matplotlib.colors import BoundaryNorm, ListedColormap

        level = self.get_overlap_map(thresholds, exclude, min_weight, source).data
        _, maps, _ = self._source_arrays(source)
        total = np.nansum(maps, axis=0)
        t = list(thresholds)
        colours = plt.get_cmap("plasma")(np.linspace(0.15, 0.95, len(t)))
        cmap = ListedColormap(colours)
        norm = BoundaryNorm(t + [1.0000001], cmap.N)
        ax = ax or plt.subplots(figsize=(6, 5))[1]
        axes = self._nav_axes()
        extent = [axes[0].axis[0] - axes[0].scale / 2, axes[0].axis[-1] + axes[0].scale / 2,
                  axes[1].axis[-1] + axes[1].scale / 2, axes[1].axis[0] - axes[1].scale / 2]
        ax.imshow(total, cmap="gray", extent=extent)
        shown = np.ma.masked_where(level <= 0, level)
        im = ax.imshow(shown, cmap=cmap, norm=norm, extent=extent, alpha=0.85)
        ax.figure.colorbar(im, ax=ax, ticks=t, label="weight ratio (2nd / 1st) ≥")
        ax.set_xlabel(f"{axes[0].name} ({axes[0].units})")
        ax.set_ylabel(f"{axes[1].name} ({axes[1].units})")
        ax.set_title("Overlap map")
        return ax.figure

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
