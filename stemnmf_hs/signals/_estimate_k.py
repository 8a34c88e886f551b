"""``s.estimate_number_of_components``: the two-level choice of k of Cao et al. 2025."""

from __future__ import annotations

import numpy as np

from .. import model_selection as _ms
from ..decomposition._sweep import sweep_n_components
from ..overlap import representative_diffractions
from ._model_selection import NumberOfComponentsEstimate

__all__ = ["NumberOfComponentsMixin"]


class NumberOfComponentsMixin:
    """Adds :meth:`estimate_number_of_components` to the ``nmf_diffraction`` signals."""

    def estimate_number_of_components(
        self,
        k_range=range(2, 21),
        *,
        solver="als",
        n_restarts=2,
        max_iter=100,
        tol=1e-3,
        warm_start=True,
        compression="auto",
        half_width=_ms.DEFAULT_HALF_WIDTH,
        ssim_threshold=_ms.DEFAULT_SSIM_THRESHOLD,
        gmsd_threshold=_ms.DEFAULT_GMSD_THRESHOLD,
        rule="first_duplicate",
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

        The sweep reuses work: each fit starts its first restart from the previous fit's
        maps plus one new map (``warm_start``), uses fewer restarts and iterations than a
        final fit by default, and with ``compression`` all fits share one sketch of the data
        (computed at the rank the largest ``k`` needs).  On a lazy signal the data are
        streamed (one extra pass per ``k`` for the loss).

        Parameters
        ----------
        k_range : iterable of int, default ``range(2, 21)``
            Numbers of components to fit, at least 3 values, each between 1 and
            ``min(probe positions, pattern pixels)``; sorted here.
        solver : {"als", "mu"}, default "als"
            Solver of the sweep's fits (see :class:`~stemnmf_hs.ConstrainedNMF`).  With more
            components than distinct diffractions, the clipped least-squares updates of the
            projected ALS oscillate and the loss of a short fit can rise from one ``k`` to
            the next; the knee is therefore located on the running minimum of the loss
            (:func:`stemnmf_hs.model_selection.find_knee`).  ``"mu"`` lowers the loss
            monotonically but separates the components less well in few iterations
            (measured on :func:`stemnmf_hs.data.simulated_crystal_mixture`).
        n_restarts : int, default 2
            Restarts per fit (a final fit uses the paper's 10).
        max_iter : int, default 100
            Iterations per fit (a final fit uses the paper's 500).
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
        from .nmf_diffraction2d import prepare_estimator, solver_data

        ks = np.unique(np.asarray(list(k_range), dtype=int))
        if ks.size < 3:
            raise ValueError(
                f"k_range must hold at least 3 numbers of components to find a knee; got "
                f"{ks.tolist()}. Use e.g. range(2, 21)."
            )
        opts = dict(kwargs, solver=solver, n_restarts=n_restarts, max_iter=max_iter, tol=tol,
                    compression=compression, show_progressbar=False)
        template, nav_mask, sig_mask, clip = prepare_estimator(
            self, opts, k_max=int(ks[-1])
        )
        if show_progressbar is None:
            from hyperspy.defaults_parser import preferences

            show_progressbar = bool(preferences.General.show_progressbar)
        data = solver_data(self, nav_mask, sig_mask, clip)
        sweep = sweep_n_components(template, data, ks, warm_start=warm_start,
                                   show_progressbar=show_progressbar)
        sig_shape = template.signal_shape
        representatives = {}
        for k, comps, maps in zip(ks, sweep["components"], sweep["maps"]):
            full = np.zeros((int(k), int(np.prod(sig_shape))), dtype=np.float32)
            if sig_mask is None:
                full[:] = comps
            else:
                full[:, ~sig_mask.ravel()] = comps
            representatives[int(k)] = representative_diffractions(
                full.reshape((int(k),) + tuple(sig_shape)), maps.T
            )
        units = getattr(self.metadata.Signal, "quantity", "") if self.metadata.has_item(
            "Signal.quantity") else ""
        result = NumberOfComponentsEstimate(
            ks, sweep["loss"], representatives, ssim_threshold=ssim_threshold,
            gmsd_threshold=gmsd_threshold, half_width=half_width, rule=rule,
            loss_units=units,
        )
        result.sweep = {key: sweep[key] for key in ("k", "loss", "error", "n_iter")}
        return result
