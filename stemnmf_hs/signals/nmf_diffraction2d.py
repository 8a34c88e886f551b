"""The ``nmf_diffraction`` signal type: 4D-STEM scans with constrained-NMF methods.

The only place (with :mod:`stemnmf_hs.signals._build`) that knows HyperSpy: methods validate
their input, turn the signal into arrays, shapes, masks and calibration, call the math modules
and wrap the results in signals with the input's calibrated axes.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from hyperspy.signal import BaseSignal
from pyxem.signals import Diffraction2D, LazyDiffraction2D

from ..decomposition import ConstrainedNMF
from ..polar import default_center
from ._components import ClusterResult, ComponentAnalysisMixin
from ._estimate_k import NumberOfComponentsMixin
from ._preprocessing import PreprocessingMixin

__all__ = ["ClusterResult", "LazyNMFDiffraction2D", "NMFDiffraction2D"]

#: Name under which HyperSpy's ``decomposition`` dispatches to :class:`ConstrainedNMF`.
ALGORITHM = "constrained_nmf"
_ESTIMATOR_PARAMS = frozenset(ConstrainedNMF().get_params())
#: Geometry the signal supplies to the estimator; users override ``center`` only.
_GEOMETRY = frozenset({"signal_shape", "navigation_shape", "signal_mask", "navigation_mask"})


def _is_constrained(algorithm):
    return (isinstance(algorithm, str) and algorithm == ALGORITHM) or isinstance(
        algorithm, ConstrainedNMF
    )


class NMFDiffraction2D(
    NumberOfComponentsMixin, PreprocessingMixin, ComponentAnalysisMixin, Diffraction2D
):
    """4D-STEM scan (2 navigation + 2 signal dimensions) with constrained-NMF analysis.

    A pyxem :class:`~pyxem.signals.Diffraction2D` whose ``decomposition`` also accepts
    ``algorithm="constrained_nmf"`` (Kimoto et al., Sci. Rep. 15, 39143, 2025).  Get one with
    ``s.set_signal_type("nmf_diffraction")`` on a loaded scan.

    Data axes: ``(scan_y, scan_x, ky, kx)`` in array order; HyperSpy's navigation axes are the
    scan (e.g. nm) and the signal axes reciprocal space (e.g. Å⁻¹).
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
        >>> s, truth = simulated_precipitates(seed=0)
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=4,
        ...                 n_restarts=2, max_iter=30, random_state=0, print_info=False)
        >>> s.get_decomposition_factors().axes_manager.signal_shape
        (128, 128)
        """
        parent = _hyperspy_decomposition(self)
        bound = inspect.signature(parent).bind(*args, **kwargs)
        if not _is_constrained(bound.arguments.get("algorithm")):
            return parent(*args, **kwargs)
        opts = dict(bound.arguments)
        extra = opts.pop("kwargs", {})
        opts.update(extra)
        return _constrained_decomposition(self, parent, opts)



class LazyNMFDiffraction2D(LazyDiffraction2D, NMFDiffraction2D):
    """Lazy (dask-backed) :class:`NMFDiffraction2D` for scans larger than memory.

    ``hs.load(..., lazy=True)`` of an ``nmf_diffraction`` file or ``s.as_lazy()`` gives one.
    ``decomposition(algorithm="constrained_nmf", ...)`` never loads the whole scan: it
    validates lazily (one pass over the data, none for unsigned integers), then streams the
    navigation chunks on every product with the data (two passes per iteration in exact
    mode; with ``compression``, ``2 + 2 * power_iterations`` passes for the sketch, then
    one to score every restart and ``2 * refine_iter`` for the exact refinement).  Peak memory is a few chunks plus the maps and diffractions of every
    restart.  The chunks are processed by the active dask scheduler, so with a
    ``dask.distributed.Client`` they run on its workers.  The same seed gives the same
    components as the in-memory decomposition, up to float32 summation order.
    """

    _lazy = True

    def decomposition(self, *args, **kwargs):
        """Decompose the scan; see :meth:`NMFDiffraction2D.decomposition` (same parameters)."""
        return NMFDiffraction2D.decomposition(self, *args, **kwargs)

    decomposition.__doc__ = NMFDiffraction2D.decomposition.__doc__


# ---------------------------------------------------------------------------- helpers
def _hyperspy_decomposition(signal):
    """HyperSpy's own ``decomposition`` (lazy or in-memory) bound to ``signal``."""
    if signal._lazy:
        from hyperspy._signals.lazy import LazySignal

        return LazySignal.decomposition.__get__(signal)
    return BaseSignal.decomposition.__get__(signal)


def _constrained_decomposition(signal, parent, opts):
    """Validate, build the estimator, run HyperSpy's decomposition on a working copy."""
    hs_names = set(inspect.signature(parent).parameters) - {"kwargs"}
    estimator, nav_mask, sig_mask, clip_negative = prepare_estimator(signal, opts, hs_names)
    k = estimator.n_components
    return_info = bool(opts.pop("return_info", False))
    print_info = opts.pop("print_info", True)
    hs_only = _hyperspy_options(signal, opts)
    if signal._lazy and hs_only:
        raise ValueError(
            f"decomposition(algorithm='{ALGORITHM}') on a lazy signal streams the data and "
            f"does not support HyperSpy's options {hs_only}; leave them at their defaults, "
            "or s.compute() first."
        )
    if not hs_only:
        _direct_decomposition(signal, estimator, nav_mask, sig_mask, clip_negative,
                              print_info)
        _record_fit(signal, estimator)
        return estimator if return_info else None
    # HyperSpy's own options (reproject, ...) in memory: its decomposition on a working copy.
    work = _working_copy(signal, clip_negative)
    # HyperSpy wants numpy masks in its axes order: it flattens the navigation mask after a
    # transpose and the signal mask as it is; these forms give the array-order masks.
    am = signal.axes_manager
    _hyperspy_decomposition(work)(
        algorithm=estimator,
        output_dimension=int(k),
        navigation_mask=None if nav_mask is None else nav_mask.T,
        signal_mask=None if sig_mask is None else sig_mask.reshape(am.signal_shape),
        return_info=True,
        print_info=print_info,
        **opts,
    )
    lr = work.learning_results
    lr.decomposition_algorithm = ALGORITHM
    signal.learning_results.__dict__.update(lr.__dict__)
    _record_fit(signal, estimator)
    return estimator if return_info else None


def _direct_decomposition(signal, estimator, nav_mask, sig_mask, clip_negative, print_info):
    """Fit the estimator on the scan's solver data and fill ``learning_results``.

    In memory the data are unfolded to ``(n_positions, n_pixels)`` float32 with the masked
    positions and pixels dropped -- at most one float32 copy, none for unmasked float32 data;
    a lazy scan becomes a dask matrix chunked along the scan that the estimator streams.
    Factors and loadings are stored as HyperSpy's own decomposition stores them (``nan``
    where masked), so its accessors and plots work.
    """
    from hyperspy.learn._mva import _nan_expand_rows

    data = solver_data(signal, nav_mask, sig_mask, clip_negative)
    n_nav = int(np.prod(signal.axes_manager._navigation_shape_in_array))
    n_sig = int(np.prod(signal.axes_manager._signal_shape_in_array))
    estimator._validate_params()
    estimator.n_features_in_ = data.shape[1]
    loadings = estimator._fit_data(data)
    factors = estimator.components_.T
    lr = signal.learning_results
    lr.decomposition_algorithm = ALGORITHM
    lr.output_dimension = int(estimator.n_components_)
    lr.poissonian_noise_normalized = False
    lr.explained_variance = lr.explained_variance_ratio = None
    lr.number_significant_components = None
    lr.centre = lr.mean = lr.unmixing_matrix = lr.bss_algorithm = None
    lr._object = estimator
    lr.signal_mask = sig_mask
    lr.navigation_mask = nav_mask
    if sig_mask is not None:
        factors = _nan_expand_rows(factors, sig_mask.ravel(), n_sig)
    if nav_mask is not None:
        loadings = _nan_expand_rows(loadings, nav_mask.ravel(), n_nav)
    lr.factors = factors
    lr.loadings = loadings
    if print_info:
        mode = "lazy, streamed" if signal._lazy else "in memory"
        print(f"Decomposition info:\n  algorithm={ALGORITHM} ({mode})\n"
              f"  output_dimension={lr.output_dimension}\n  estimator: {estimator!r}")


def _hyperspy_options(signal, opts):
    """Names of HyperSpy-only ``decomposition`` keywords set to other than their defaults."""
    params = inspect.signature(_hyperspy_decomposition(signal)).parameters
    given = []
    for name, value in opts.items():
        default = params[name].default if name in params else None
        same = value is default or (
            isinstance(value, (str, int, float, bool)) and type(value) is type(default)
            and value == default
        )
        if not same:
            given.append(name)
    return sorted(given)


def solver_data(signal, nav_mask, sig_mask, clip_negative):
    """The scan as solver data ``(n_valid_positions, n_valid_pixels)`` float32.

    A lazy signal gives streamed :class:`~stemnmf_hs.decomposition._data.DaskData` (nothing
    computed); an in-memory one :class:`~stemnmf_hs.decomposition._data.InMemoryData` holding
    at most one float32 copy (none for unmasked float32 data, whose unfolding is a view).
    """
    from ..decomposition._data import DaskData, InMemoryData

    if signal._lazy:
        return DaskData(_lazy_matrix(signal, nav_mask, sig_mask, clip_negative))
    data = signal.data
    ny, nx, sy, sx = data.shape
    X = data.reshape(ny * nx, sy * sx)
    if nav_mask is None and sig_mask is None:
        X = np.ascontiguousarray(X, dtype=np.float32)
    else:
        X = _gather(X, None if nav_mask is None else np.flatnonzero(~nav_mask.ravel()),
                    None if sig_mask is None else np.flatnonzero(~sig_mask.ravel()))
    if clip_negative:
        if np.shares_memory(X, data):
            X = np.maximum(X, 0)
        else:
            np.maximum(X, 0, out=X)
    return InMemoryData(X)


def _gather(X, rows, cols, block_bytes=1 << 22):
    """``X[rows][:, cols]`` as one float32 array, filled block by block (no other copy)."""
    rows = np.arange(X.shape[0]) if rows is None else rows
    n_cols = X.shape[1] if cols is None else cols.size
    out = np.empty((rows.size, n_cols), dtype=np.float32)
    step = max(1, block_bytes // max(1, X.shape[1] * X.itemsize))
    for start in range(0, rows.size, step):
        block = X[rows[start:start + step]]
        out[start:start + step] = block if cols is None else block[:, cols]
    return out


def _lazy_matrix(signal, nav_mask, sig_mask, clip_negative):
    """Dask ``(n_valid_positions, n_valid_pixels)`` float32 matrix of a lazy 4D scan.

    Nothing is computed; the pattern axes end up in one chunk, the scan chunking is kept.
    """
    import dask.array as da

    data = signal.data
    ny, nx, sy, sx = data.shape
    data = data.rechunk({2: -1, 3: -1})
    X = da.reshape(data, (ny * nx, sy * sx), merge_chunks=True)
    if nav_mask is not None:
        X = X[~nav_mask.ravel()]
    if sig_mask is not None:
        X = X[:, ~sig_mask.ravel()]
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    if clip_negative:
        X = da.maximum(X, 0)
    return X


def prepare_estimator(signal, opts, allowed=(), k_max=None):
    """Validate a constrained-NMF request on ``signal`` and build its estimator.

    Pops from ``opts`` every keyword it uses (algorithm, output_dimension, clip_negative,
    center, show_progressbar, the masks and the ``ConstrainedNMF`` parameters); what remains
    must be in ``allowed`` (the caller's own keywords).

    Parameters
    ----------
    signal : NMFDiffraction2D or LazyNMFDiffraction2D
    opts : dict
        Keywords of the call (modified).
    allowed : collection of str
        Other keyword names the caller accepts.
    k_max : int, optional
        Largest number of components that will be fitted (a sweep); default
        ``output_dimension``.

    Returns
    -------
    estimator : ConstrainedNMF
        With the signal's geometry, centre and masks filled in.
    nav_mask, sig_mask : numpy.ndarray or None
        Array-order boolean masks, ``True`` = left out.
    clip_negative : bool

    Raises
    ------
    ValueError, TypeError
        See :meth:`NMFDiffraction2D.decomposition`.
    """
    algorithm = opts.pop("algorithm", ALGORITHM)
    k = opts.pop("output_dimension", None)
    clip_negative = bool(opts.pop("clip_negative", False))
    center = opts.pop("center", None)
    show = opts.pop("show_progressbar", None)
    nav_mask_in = opts.pop("navigation_mask", None)
    sig_mask_in = opts.pop("signal_mask", None)
    est_kwargs = {n: opts.pop(n) for n in list(opts) if n in _ESTIMATOR_PARAMS}
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise TypeError(
            f"Unexpected keyword(s) {unknown} for the constrained NMF. "
            f"ConstrainedNMF accepts {sorted(_ESTIMATOR_PARAMS - _GEOMETRY)}; this method "
            f"also accepts {sorted(allowed)}."
        )
    given_geometry = sorted(_GEOMETRY & set(est_kwargs))
    if given_geometry:
        raise TypeError(
            f"{given_geometry} are read from the signal's axes; give masks as "
            "navigation_mask/signal_mask."
        )
    if opts.get("normalize_poissonian_noise"):
        raise ValueError(
            "normalize_poissonian_noise=True is not supported with the constrained NMF: the "
            "continuity constraint needs diffractions in counts. Leave it False."
        )

    nav_shape, sig_shape = check_scan_dimensions(signal)
    nav_mask = _mask_array(nav_mask_in, nav_shape, "navigation_mask")
    sig_mask = _mask_array(sig_mask_in, sig_shape, "signal_mask")
    n_pos = int(np.prod(nav_shape)) - (0 if nav_mask is None else int(nav_mask.sum()))
    n_pix = int(np.prod(sig_shape)) - (0 if sig_mask is None else int(sig_mask.sum()))
    if n_pos == 0 or n_pix == 0:
        raise ValueError(
            "The masks leave no data: "
            f"{n_pos} probe positions and {n_pix} pattern pixels remain."
        )
    if isinstance(algorithm, ConstrainedNMF):
        if k is None:
            k = algorithm.n_components
        est_kwargs = {**algorithm.get_params(), **est_kwargs}
    check_output_dimension(k if k_max is None else k_max, n_pos, n_pix)
    check_values(signal, clip_negative)

    if center is None and est_kwargs.get("center") is None:
        center = calibrated_center(signal)
    elif center is None:
        center = est_kwargs["center"]
    if est_kwargs.get("probe_fwhm") is not None and est_kwargs.get("scan_step") is None:
        est_kwargs["scan_step"] = tuple(
            float(ax.scale) for ax in signal.axes_manager.navigation_axes[::-1]
        )
    if show is None:
        from hyperspy.defaults_parser import preferences

        show = bool(preferences.General.show_progressbar)
    est_kwargs.update(
        n_components=None if k is None else int(k),
        signal_shape=sig_shape,
        navigation_shape=nav_shape,
        signal_mask=sig_mask,
        navigation_mask=nav_mask,
        center=tuple(float(c) for c in center),
        show_progressbar=show,
    )
    est_kwargs.setdefault("random_state", None)
    return ConstrainedNMF(**est_kwargs), nav_mask, sig_mask, clip_negative


def check_scan_dimensions(signal):
    """Shapes ``(nav_shape, sig_shape)`` in array order, or an error for non-4D-STEM data.

    Raises
    ------
    ValueError
        If the signal is not 2 navigation + 2 signal dimensions.
    """
    am = signal.axes_manager
    if am.navigation_dimension != 2 or am.signal_dimension != 2:
        raise ValueError(
            f"The constrained NMF needs a 4D-STEM scan with 2 navigation and 2 signal "
            f"dimensions; this signal has {am.navigation_dimension} navigation and "
            f"{am.signal_dimension} signal dimension(s) (shape {am.navigation_shape} | "
            f"{am.signal_shape}). Squeeze length-1 axes with s.squeeze() or use "
            "s.transpose(signal_axes=2) to choose the pattern axes."
        )
    return tuple(am._navigation_shape_in_array), tuple(am._signal_shape_in_array)


def check_output_dimension(k, n_positions, n_pixels):
    """Refuse a number of components the data cannot support.

    Raises
    ------
    ValueError
        If ``k`` is missing, not an integer, < 1 or > ``min(n_positions, n_pixels)``.
    """
    limit = min(n_positions, n_pixels)
    if k is None:
        raise ValueError(
            f"output_dimension (the number of components k) is required for "
            f"algorithm='{ALGORITHM}'; give an integer between 1 and {limit}, e.g. "
            "s.estimate_number_of_components() or the paper's 4 for the simulation."
        )
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not (
        1 <= k <= limit
    ):
        raise ValueError(
            f"output_dimension={k!r} is impossible: the number of components must be an "
            f"integer between 1 and min(probe positions, pattern pixels) = "
            f"min({n_positions}, {n_pixels}) = {limit}."
        )


def check_values(signal, clip_negative=False):
    """Refuse NaN/inf and (unless clipping is allowed) negative values, in one pass.

    Raises
    ------
    ValueError
        Naming how many values are bad and what to do.
    """
    data = signal.data
    if np.issubdtype(data.dtype, np.complexfloating):
        raise ValueError(
            "The data are complex; take s.amplitude or s.power first (NMF needs real "
            "non-negative intensities)."
        )
    if np.issubdtype(data.dtype, np.unsignedinteger) or data.dtype == bool:
        return
    # min and max only (no scan-sized temporaries): NaN propagates into both, inf shows in
    # one of them; the bad values are counted on the error path only.
    vmin, vmax = data.min(), data.max()
    if signal._lazy:
        import dask

        vmin, vmax = dask.compute(vmin, vmax)
    n_bad = n_neg = 0
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        n_bad = int((~_isfinite(data)).sum())
    elif vmin < 0 and not clip_negative:
        n_neg = int((data < 0).sum())
    if int(n_bad):
        raise ValueError(
            f"The data hold {int(n_bad)} NaN or infinite value(s); NMF needs finite "
            "intensities. Replace them first, e.g. s.data = np.nan_to_num(s.data), or leave "
            "those positions/pixels out with navigation_mask/signal_mask."
        )
    if int(n_neg) and not clip_negative:
        raise ValueError(
            f"The data hold {int(n_neg)} negative value(s) (minimum {float(vmin):.6g}); NMF "
            "needs non-negative intensities. Pass clip_negative=True to set them to zero in "
            "a working copy (the signal is not changed), or remove the offset first."
        )


def _isfinite(data):
    """``isfinite`` of a numpy or dask array, computed."""
    out = np.isfinite(data)
    return out.compute() if hasattr(out, "compute") else out


def calibrated_center(signal):
    """Pattern centre ``(cx, cy)`` in pixels from pyxem's calibration, or the middle.

    pyxem puts the centre where the signal axes are zero (``-offset / scale``).  For
    uncalibrated axes (both offsets zero) or a centre outside the pattern, the geometric
    centre is returned with a warning.
    """
    ny, nx = signal.axes_manager._signal_shape_in_array
    axes = signal.axes_manager.signal_axes
    try:
        cx, cy = (float(c) for c in signal.calibration.center)
    except Exception:  # non-uniform or curved-Ewald axes
        cx, cy = (-float(ax.offset) / float(ax.scale) for ax in axes)
    uncalibrated = all(float(ax.offset) == 0 for ax in axes)
    if uncalibrated or not (0 <= cx <= nx - 1 and 0 <= cy <= ny - 1):
        fallback = default_center((ny, nx))
        warnings.warn(
            f"The signal axes put the pattern centre at ({cx:g}, {cy:g}) px, "
            + ("i.e. they are not calibrated" if uncalibrated else "outside the pattern")
            + f"; using the geometric centre {fallback}. Set s.calibration.center (pyxem) or "
            "pass center=(cx, cy) in pixels.",
            UserWarning,
            stacklevel=4,
        )
        return fallback
    return (cx, cy)


def _mask_array(mask, shape, name):
    """A boolean numpy mask of ``shape`` (array order) from an array or signal, or None.

    A navigation mask in HyperSpy's axes order (``navigation_shape``, the transpose) is
    accepted as HyperSpy accepts it.
    """
    if mask is None:
        return None
    if isinstance(mask, BaseSignal):
        mask = mask.data
    mask = np.asarray(mask)
    if name == "navigation_mask" and mask.shape == tuple(shape)[::-1] != tuple(shape):
        mask = mask.T
    if mask.dtype != bool:
        raise ValueError(f"{name} must be boolean (True = leave out); got dtype {mask.dtype}.")
    if mask.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {mask.shape} but the "
            f"{'scan' if name.startswith('nav') else 'patterns'} have shape {tuple(shape)} "
            "(array order: rows, columns); give a boolean mask of that shape."
        )
    return mask


def _working_copy(signal, clip_negative):
    """An in-memory float32 signal whose decomposition cannot touch ``signal``'s data.

    Float32 data are shared through a view (HyperSpy's unfolding then copies nothing); other
    dtypes get the one float32 copy the solver works on.
    """
    data = signal.data
    if clip_negative:
        data = np.clip(data, 0, None)
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    elif data is signal.data:
        data = data.view()
    return signal._deepcopy_with_new_data(data)


def _record_fit(signal, estimator):
    """Store the fit's convergence and parameters in the signal's metadata (saved with it)."""
    params = {
        k: v
        for k, v in estimator.get_params().items()
        if k not in ("signal_mask", "navigation_mask", "map_kernel")
        and (v is None or isinstance(v, (int, float, str, bool, tuple)))
    }
    params = {k: ("None" if v is None else v) for k, v in params.items()}
    signal.metadata.set_item("Signal.ConstrainedNMF.parameters", params)
    hist = estimator.history_
    signal.metadata.set_item("Signal.ConstrainedNMF.n_iter", int(estimator.n_iter_))
    signal.metadata.set_item(
        "Signal.ConstrainedNMF.reconstruction_error", float(estimator.reconstruction_err_)
    )
    for key in ("mse", "w_change", "h_change"):
        signal.metadata.set_item(f"Signal.ConstrainedNMF.history.{key}", np.asarray(hist[key]))
