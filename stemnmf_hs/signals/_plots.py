"""Plot methods of decomposed scans: components, convergence, similarity, maps, the scan.

A mixin of :class:`~stemnmf_hs.signals.NMFDiffraction2D`.  Each method gets its arrays from
the analysis methods (:mod:`._analysis`) or :mod:`._adapter`, the plain axis descriptions
from :func:`._adapter.plot_axes`, and draws with :mod:`stemnmf_hs.figures` and
:mod:`stemnmf_hs.plotting`, the figures' one visual language (shared with the result objects
and the console command).

Every ``plot_*`` method returns the :class:`matplotlib.figure.Figure` it drew, so that
``fig.savefig(...)`` works; the one exception is :meth:`ComponentPlotMixin.plot_overlap_map`
with widgets, which returns the widget box whose ``.figure`` is the figure.
"""

from __future__ import annotations

import numpy as np

from .. import figures, overlap, plotting
from ._adapter import (
    close_plot,
    data_units,
    fit_history,
    fit_stop,
    navigator_figure,
    plot_axes,
)
from ._results import source_arrays

__all__ = ["ComponentPlotMixin"]


class ComponentPlotMixin:
    """Figures of the components of a decomposed 4D-STEM scan (see module docstring).

    Examples
    --------
    >>> from stemnmf_hs.signals import NMFDiffraction2D
    >>> from stemnmf_hs.signals._plots import ComponentPlotMixin
    >>> issubclass(NMFDiffraction2D, ComponentPlotMixin)
    True
    """

    def _scan_axes(self):
        """Plain descriptions of the scan axes ``(x, y)``."""
        return plot_axes(self.axes_manager.navigation_axes)

    def _pattern_axes(self):
        """Plain descriptions of the reciprocal axes ``(kx, ky)``."""
        return plot_axes(self.axes_manager.signal_axes)

    def plot_components(self, source=None, n_components=None, gamma=0.3, title=None):
        """Diffractions over maps of every component, on calibrated axes.

        Works on any decomposition in ``learning_results`` (constrained NMF, primitive NMF,
        HyperSpy's SVD/PCA, ...): factors with negative values (PCA) are drawn with
        :data:`~stemnmf_hs.plotting.SIGNED_CMAP` on a symmetric scale so that the unphysical negative intensities
        show in blue; non-negative ones with :data:`~stemnmf_hs.plotting.DIFFRACTION_CMAP` (``PowerNorm(gamma)``)
        and :data:`~stemnmf_hs.plotting.MAP_CMAP`.

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

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_components()
        >>> len(fig.axes) >= 8
        True
        >>> plt.close(fig)
        """
        factors, maps, _ = source_arrays(self, source)
        if n_components is not None:
            factors, maps = factors[: int(n_components)], maps[: int(n_components)]
        if title is None:
            algo = getattr(self.learning_results, "decomposition_algorithm", None)
            title = f"{self.metadata.General.title or 'Decomposition'}"
            if isinstance(algo, str):
                title += f" ({algo})"
        prefix = ("cluster", "cluster") if source is not None else ("w", "h")
        # constrained-NMF diffractions sum to 1, so a map holds the data's units per position
        units = data_units(self)
        algo = getattr(self.learning_results, "decomposition_algorithm", None)
        m_label = (f"weight ({units})" if units and algo == "constrained_nmf"
                   else plotting.MAP_LABEL)
        return figures.component_grid(factors, self._pattern_axes(), maps, self._scan_axes(),
                                      prefix=prefix, gamma=gamma, title=title,
                                      m_label=m_label)

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
            In a new figure, a dotted line marks the iteration where the fit stopped; the
            title names the restart kept and why it stopped (tolerance or ``max_iter``), and a
            note below says what to try when the fit did not settle.

        Raises
        ------
        ValueError
            If the signal holds no constrained-NMF history.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_convergence(label="HALS, 5 iterations")
        >>> len(fig.axes)
        3
        >>> plt.close(fig)
        """
        history, default_label = fit_history(self)
        return figures.convergence_figure(
            history, axes=axes, label=default_label if label is None else label,
            reference_mse=reference_mse, reference_label=reference_label,
            stop=fit_stop(self) if axes is None else None,
        )

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
            The matrix in :data:`~stemnmf_hs.plotting.MATRIX_CMAP` on ``[0, 1]``, rows and columns labelled
            ``w0 ... w{k-1}`` (or ``c0 ...`` for clusters).

        Raises
        ------
        ValueError
            As :meth:`get_component_similarity`.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_component_similarity(metric="cosine")
        >>> fig.axes[0].get_title()
        'cosine similarity, eq. 9'
        >>> plt.close(fig)
        """
        sim = self.get_component_similarity(metric=metric, center=center,
                                            n_azimuthal=n_azimuthal, source=source).data
        names = [("c" if source is not None else "w") + str(i) for i in range(sim.shape[0])]
        eq = {"polar": "diffraction similarity, eq. 10", "cosine": "cosine similarity, eq. 9"}
        return figures.similarity_figure(sim, names, eq.get(metric, metric), ax=ax,
                                         annotate=annotate)

    def plot_overlap_map(self, thresholds=overlap.DEFAULT_THRESHOLDS, exclude=None,
                         min_weight=None, source=None, ax=None, interactive=None,
                         scalebar=True):
        """Colour-coded overlap levels over the summed weights (Cao et al. 2025, Fig. 5).

        Every probe position whose weight ratio (2nd / 1st, see
        :meth:`get_weight_ratio_map`) reaches a threshold is coloured by the highest
        threshold reached, in the paper's colours (:data:`~stemnmf_hs.plotting.OVERLAP_LEVEL_COLOURS`: red 75 %,
        orange 80 %, yellow 85 %, green 90 %, blue 95 %; other thresholds get colours from
        :func:`~stemnmf_hs.plotting.overlap_level_colours`), over the summed maps of the ranked (not excluded)
        components in grey.  Axes are the scan's calibrated axes, with a scale bar.

        With widgets, a threshold slider (``0.5 ... 1``, step 0.01; from the lowest threshold
        if that is below 0.5) hides the positions whose ratio is below its value, so any cut
        can be explored; positions between the slider and the lowest threshold (slider moved
        below it) show in :data:`~stemnmf_hs.plotting.OVERLAP_BELOW_COLOUR`.

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

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_overlap_map(exclude=0, interactive=False)
        >>> type(fig).__name__
        'Figure'
        >>> plt.close(fig)
        """
        t = [float(v) for v in thresholds]
        overlap.overlap_level(np.zeros(1), t)  # validates the thresholds
        widgets = plotting.use_widgets(interactive)
        ratio = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                          source=source).data
        _, maps, _ = source_arrays(self, source)
        keep = np.ones(len(maps), bool)
        if exclude is not None:
            keep[np.atleast_1d(np.asarray(exclude, dtype=int))] = False
        total = np.nansum(maps[keep], axis=0)
        return plotting.overlap_map_figure(ratio, total, t, self._scan_axes(), ax=ax,
                                           widgets=widgets, scalebar=scalebar)

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
            Component ``i`` in ``LABEL_COLOURS[i]`` (:data:`~stemnmf_hs.plotting.LABEL_COLOURS`) on the scan's
            calibrated axes, with a legend.

        Raises
        ------
        ValueError
            As :meth:`get_component_map`.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_component_map(scalebar=False)
        >>> type(fig).__name__
        'Figure'
        >>> plt.close(fig)
        """
        labels = self.get_component_map(exclude=exclude, source=source).data
        k = source_arrays(self, source)[1].shape[0]
        return figures.component_map_figure(
            labels, k, self._scan_axes(), name="cluster" if source is not None else "w",
            ax=ax, scalebar=scalebar,
        )

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

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_component_mean_patterns()
        >>> type(fig).__name__
        'Figure'
        >>> plt.close(fig)
        """
        means, reps = self.get_component_mean_patterns(exclude=exclude, source=source)
        labels = self.get_component_map(exclude=exclude, source=source).data
        counts = np.bincount(labels.ravel(), minlength=means.data.shape[0])
        units = data_units(self)
        return figures.mean_patterns_figure(
            means.data, reps.data, counts, self._pattern_axes(),
            name="cluster " if source is not None else "w", gamma=gamma,
            label=f"intensity ({units})" if units else plotting.DIFFRACTION_LABEL,
        )

    def plot_scan(self, navigator="component", exclude=None, source=None,
                  thresholds=overlap.DEFAULT_THRESHOLDS, min_weight=None, **kwargs):
        """The raw scan in HyperSpy's explorer, navigated on a component or overlap map.

        HyperSpy's own two-window plot: the navigator shows the chosen map on the scan
        axes, the signal window the raw pattern under the cursor (interactive with a GUI
        or ipympl backend; a static snapshot with Agg).

        Parameters
        ----------
        navigator : {"component", "overlap", "weight_ratio"} or hyperspy signal
            ``"component"``: :meth:`get_component_map` in :data:`~stemnmf_hs.plotting.LABEL_COLOURS`;
            ``"overlap"``: :meth:`get_overlap_map` (``thresholds``) in
            :data:`~stemnmf_hs.plotting.OVERLAP_LEVEL_COLOURS` (dark grey: no level); ``"weight_ratio"``:
            :meth:`get_weight_ratio_map` in :data:`~stemnmf_hs.plotting.MAP_CMAP` on ``[0, 1]``; or any navigator
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

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=3, solver="als",
        ...                 n_restarts=1, max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> fig = s.plot_scan(navigator="weight_ratio")
        >>> type(fig).__name__
        'Figure'
        >>> plt.close("all")
        """
        nav_kwds = dict(kwargs.pop("navigator_kwds", {}) or {})
        if isinstance(navigator, str):
            if navigator == "component":
                nav = self.get_component_map(exclude=exclude, source=source)
                k = source_arrays(self, source)[1].shape[0]
                nav_kwds.setdefault("cmap", plotting.component_cmap(k))
                nav_kwds.setdefault("vmin", -0.5)
                nav_kwds.setdefault("vmax", k - 0.5)
            elif navigator == "overlap":
                nav = self.get_overlap_map(thresholds, exclude=exclude, min_weight=min_weight,
                                           source=source)
                # HyperSpy takes no norm instance: a fine colour table on [0, 1].
                nav_kwds.setdefault("cmap", plotting.overlap_lookup_cmap(thresholds))
                nav_kwds.setdefault("vmin", 0.0)
                nav_kwds.setdefault("vmax", 1.0)
            elif navigator == "weight_ratio":
                nav = self.get_weight_ratio_map(exclude=exclude, min_weight=min_weight,
                                                source=source)
                nav_kwds.setdefault("cmap", plotting.MAP_CMAP)
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
        kwargs.setdefault("cmap", plotting.DIFFRACTION_CMAP)
        close_plot(self)
        self.plot(navigator=nav, navigator_kwds=nav_kwds, **kwargs)
        return navigator_figure(self)
