"""The ``nmf_diffraction`` signal type: 4D-STEM scans with constrained-NMF methods.

The classes only.  :class:`NMFDiffraction2D` composes the method mixins
(:mod:`._analysis`: ``get_*``, ``cluster_*``, ``estimate_number_of_components``;
:mod:`._plots`: ``plot_*``; :mod:`._preprocessing`) and overrides ``decomposition``, which
:mod:`._adapter` (the boundary with HyperSpy) validates, runs and records.
:class:`LazyNMFDiffraction2D` is the dask-backed twin.
"""

from __future__ import annotations

import inspect

from pyxem.signals import Diffraction2D, LazyDiffraction2D

from ._adapter import (  # noqa: F401 - calibrated_center kept importable from here
    calibrated_center,
    constrained_decomposition,
    hyperspy_decomposition,
    is_constrained,
)
from ._analysis import ComponentAnalysisMixin, NumberOfComponentsMixin
from ._indexing import IndexingMixin
from ._plots import ComponentPlotMixin
from ._preprocessing import PreprocessingMixin

__all__ = ["LazyNMFDiffraction2D", "NMFDiffraction2D"]


class NMFDiffraction2D(
    NumberOfComponentsMixin, PreprocessingMixin, ComponentAnalysisMixin, ComponentPlotMixin,
    IndexingMixin, Diffraction2D,
):
    """4D-STEM scan (2 navigation + 2 signal dimensions) with constrained-NMF analysis.

    A pyxem :class:`~pyxem.signals.Diffraction2D` whose ``decomposition`` also accepts
    ``algorithm="constrained_nmf"`` (Kimoto et al., Sci. Rep. 15, 39143, 2025).  Get one with
    ``s.set_signal_type("nmf_diffraction")`` on a loaded scan.

    Data axes: ``(scan_y, scan_x, ky, kx)`` in array order; HyperSpy's navigation axes are the
    scan (e.g. nm) and the signal axes reciprocal space (e.g. Å⁻¹).

    Examples
    --------
    >>> import numpy as np
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.ones((4, 5, 16, 16), dtype=np.float32))
    >>> s.set_signal_type("nmf_diffraction")
    >>> s
    <NMFDiffraction2D, title: , dimensions: (5, 4|16, 16)>
    >>> s.as_lazy()
    <LazyNMFDiffraction2D, title: , dimensions: (5, 4|16, 16)>
    """

    _signal_type = "nmf_diffraction"

    def decomposition(self, *args, **kwargs):
        """Decompose the scan; ``algorithm="constrained_nmf"`` runs the constrained NMF.

        Every other ``algorithm`` goes to HyperSpy's
        :meth:`~hyperspy.api.signals.BaseSignal.decomposition` unchanged.  With
        ``algorithm="constrained_nmf"`` (or a :class:`~stemnmf_hs.ConstrainedNMF` instance),
        the factors are the diffractions ``w_k`` and the loadings the maps ``h_k`` of Kimoto
        et al. 2025 (protocol steps 1-9); both land in ``s.learning_results`` so that
        ``get_decomposition_factors()``, ``get_decomposition_loadings()``,
        ``get_decomposition_model()`` and ``plot_decomposition_results()`` work, and the
        results are saved with ``s.save()``.

        Parameters
        ----------
        algorithm : str or object
            ``"constrained_nmf"``, a ``ConstrainedNMF`` instance (its unset geometry is filled
            from the signal), or any algorithm HyperSpy accepts.
        output_dimension : int
            Number of components ``k`` (required for ``"constrained_nmf"``), ``1 <= k <=
            min(n_positions, n_pixels)``.
        navigation_mask : numpy.ndarray of bool or BaseSignal, optional
            ``(scan_y, scan_x)``, ``True`` at probe positions to leave out.
        signal_mask : numpy.ndarray of bool or BaseSignal, optional
            ``(ky, kx)``, ``True`` at pattern pixels to leave out (the direct beam); they take
            no part in the fit or in the continuity constraint and read ``nan`` in the
            factors.
        center : tuple of float, optional
            ``(cx, cy)`` pattern centre in pixels for the continuity constraint.  Default:
            ``s.calibration.center`` (pyxem's convention: where the signal axes are zero);
            if the axes are uncalibrated (zero offsets) or the centre falls outside the
            pattern, the geometric centre is used with a warning.
        clip_negative : bool, default False
            Negative values (e.g. after a background subtraction) are refused unless this is
            ``True``; then they are set to zero in a working copy, never in the signal.
        show_progressbar : bool, optional
            Progress bar over iterations; default HyperSpy's preference.
        **kwargs
            ``ConstrainedNMF`` parameters (``solver``, ``diffraction_constraint``,
            ``map_constraint``, ``map_kernel``, ``probe_fwhm``, ``scan_step``,
            ``outlier_factor``, ``ring_width``, ``n_restarts``, ``max_iter``, ``tol``,
            ``compression``, ``power_iterations``, ``refine_iter``, ``random_state``) and, in memory,
            HyperSpy's own keywords (``print_info``, ``return_info``,
            ``reproject``, ...); a lazy signal takes ``print_info`` and ``return_info``
            only, since it streams the data (see :class:`LazyNMFDiffraction2D`).
            ``probe_fwhm`` is in the units of the navigation axes; the
            scan step is then read from them unless given.

        Returns
        -------
        None or ConstrainedNMF
            The fitted estimator when ``return_info=True`` (its ``history_`` holds the
            convergence curves), else ``None``.

        Raises
        ------
        ValueError
            Before any computation: a scan that is not 2 navigation + 2 signal dimensions,
            ``output_dimension`` missing, < 1 or above ``min(n_positions, n_pixels)``, masks
            of the wrong shape or masking everything, negative values (unless
            ``clip_negative=True``), NaN or infinite values.
        TypeError
            On a keyword neither ``ConstrainedNMF`` nor HyperSpy knows.

        See Also
        --------
        stemnmf_hs.ConstrainedNMF : the estimator, with every parameter documented.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_precipitates
        >>> s, truth = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4, n_restarts=1,
        ...                 max_iter=5, random_state=0, print_info=False,
        ...                 show_progressbar=False)
        >>> s.get_decomposition_factors().axes_manager.signal_shape
        (32, 32)
        >>> s.get_decomposition_loadings().axes_manager.signal_shape
        (24, 24)
        """
        parent = hyperspy_decomposition(self)
        bound = inspect.signature(parent).bind(*args, **kwargs)
        if not is_constrained(bound.arguments.get("algorithm")):
            return parent(*args, **kwargs)
        opts = dict(bound.arguments)
        extra = opts.pop("kwargs", {})
        opts.update(extra)
        return constrained_decomposition(self, parent, opts)


class LazyNMFDiffraction2D(LazyDiffraction2D, NMFDiffraction2D):
    """Lazy (dask-backed) :class:`NMFDiffraction2D` for scans larger than memory.

    ``hs.load(..., lazy=True)`` of an ``nmf_diffraction`` file or ``s.as_lazy()`` gives one.
    ``decomposition(algorithm="constrained_nmf", ...)`` never loads the whole scan: it
    validates lazily (one pass over the data, none for unsigned integers), then streams the
    navigation chunks on every product with the data (two passes per iteration in exact
    mode; with ``compression``, ``2 + 2 * power_iterations`` passes for the sketch, then
    ``2 * refine_iter`` for the exact refinement, and with the paper's ``solver="als"`` one
    more to score every restart).  Peak memory is a few chunks plus the maps and
    diffractions of every restart.  The chunks are processed by the active dask scheduler, so with a
    ``dask.distributed.Client`` they run on its workers.  The same seed gives the same
    components as the in-memory decomposition, up to float32 summation order.

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_precipitates
    >>> s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    >>> lazy = s.as_lazy()
    >>> lazy
    <LazyNMFDiffraction2D, title: Simulated precipitates (Kimoto et al. 2025), dimensions: (24, 24|32, 32)>
    >>> lazy.decomposition(algorithm="constrained_nmf", output_dimension=3, n_restarts=1,
    ...                    max_iter=3, random_state=0, print_info=False,
    ...                    show_progressbar=False)
    >>> lazy.learning_results.factors.shape
    (1024, 3)
    """

    _lazy = True

    def decomposition(self, *args, **kwargs):
        """Decompose the scan; see :meth:`NMFDiffraction2D.decomposition` (same parameters)."""
        return NMFDiffraction2D.decomposition(self, *args, **kwargs)

    decomposition.__doc__ = NMFDiffraction2D.decomposition.__doc__
