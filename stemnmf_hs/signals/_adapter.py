"""The signal <-> arrays boundary: the one module that touches HyperSpy's internals.

Everything the ``nmf_diffraction`` methods need from a signal and give back to one:

* **checks** of a request before any computation and the **pattern centre** live in
  :mod:`._checks` (:func:`check_scan_dimensions`, :func:`check_output_dimension`,
  :func:`check_values`, :func:`mask_array`, :func:`calibrated_center`, :func:`fit_center`,
  :func:`is_lazy`), imported here so that every name stays importable from this module;
* **arrays** of a signal: :func:`prepare_estimator` (geometry, masks and centre of the scan
  in an estimator), :func:`solver_data` (the unfolded, masked data), :func:`decomposition_arrays`
  (factors and maps of ``learning_results``), :func:`plot_axes` (calibrated axes as the plain
  :class:`stemnmf_hs.plotting.Axis` descriptions);
* **signals** from arrays with the input's calibrated axes: :func:`stack_like`,
  :func:`image_like`, :func:`component_matrix`, :func:`loss_signal`;
* **learning_results**: :func:`constrained_decomposition` fills them as HyperSpy's own
  ``decomposition`` does.

Public HyperSpy API wherever one exists (``axes_manager.signal_shape[::-1]`` for the array
order).  Private HyperSpy names used, for want of a public one:

* ``LazySignal.decomposition`` / ``BaseSignal.decomposition`` reached through the classes
  (HyperSpy's own method, which the subclass overrides);
* ``learning_results._object`` (where HyperSpy keeps the fitted estimator): removed, since
  HDF5/zarr cannot store it; the parameters are kept in ``metadata.Signal.ConstrainedNMF``;
* ``signal._plot`` (to close a previous plot, :func:`close_plot`); a signal around new data
  is built through the public constructor (:func:`with_new_data`); whether a signal is lazy
  is asked publicly (:func:`is_lazy`: ``isinstance`` of ``hs.signals.LazySignal``).

Data flow: this module imports the math modules and :mod:`stemnmf_hs.plotting`, never the
signal classes or mixins.  Longer than 600 lines because it is one topic, the boundary with
HyperSpy, kept in one place on purpose so that a HyperSpy change touches one file.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
from signal import SIGINT, getsignal
from signal import signal as set_signal_handler

import numpy as np
from hyperspy.signal import BaseSignal

from .. import plotting
from .._validation import (
    check_center,
    check_probe_fwhm,
)
from ..decomposition import ConstrainedNMF, DaskOperator, InMemoryOperator
from ._checks import (  # noqa: F401 - kept importable from here (callers and tests)
    ALGORITHM,
    calibrated_center,
    calibration_center,
    check_output_dimension,
    check_scan_dimensions,
    check_values,
    fit_center,
    is_lazy,
    mask_array,
)

__all__ = [
    "ALGORITHM",
    "calibrated_center",
    "check_output_dimension",
    "check_scan_dimensions",
    "check_values",
    "close_plot",
    "component_matrix",
    "constrained_decomposition",
    "data_units",
    "decomposition_arrays",
    "default_progressbar",
    "estimator_parameters",
    "expand_rows",
    "fit_center",
    "fit_history",
    "fit_stop",
    "image_like",
    "is_constrained",
    "loss_signal",
    "mask_array",
    "navigator_figure",
    "plot_axes",
    "prepare_estimator",
    "solver_data",
    "stack_like",
]

_ESTIMATOR_PARAMS = frozenset(ConstrainedNMF().get_params())
#: Geometry the signal supplies to the estimator; users override ``center`` only.
_GEOMETRY = frozenset({"signal_shape", "navigation_shape", "signal_mask", "navigation_mask"})


def is_constrained(algorithm):
    """Whether ``algorithm`` asks for the constrained NMF (its name or an estimator)."""
    return (isinstance(algorithm, str) and algorithm == ALGORITHM) or isinstance(
        algorithm, ConstrainedNMF
    )


def hyperspy_decomposition(signal):
    """HyperSpy's own ``decomposition`` (lazy or in-memory) bound to ``signal``."""
    if is_lazy(signal):
        from hyperspy._signals.lazy import LazySignal

        return LazySignal.decomposition.__get__(signal)
    return BaseSignal.decomposition.__get__(signal)


def constrained_decomposition(signal, parent, opts):
    """Validate, build the estimator, fit, and store the results on ``signal``.

    The signal is changed only once the fit is complete, in one step that Ctrl-C does not
    split: an interrupted decomposition re-raises ``KeyboardInterrupt`` (with a note) and
    leaves ``learning_results``, data and metadata as they were.
    """
    hs_names = set(inspect.signature(parent).parameters) - {"kwargs"}
    estimator, nav_mask, sig_mask, clip_negative = prepare_estimator(signal, opts, hs_names)
    return_info = bool(opts.pop("return_info", False))
    print_info = opts.pop("print_info", True)
    hs_only = _hyperspy_options(signal, opts)
    if is_lazy(signal) and hs_only:
        raise ValueError(
            f"decomposition(algorithm='{ALGORITHM}') on a lazy signal streams the data and "
            f"does not support HyperSpy's options {hs_only}; leave them at their defaults, "
            "or s.compute() first."
        )
    try:
        if hs_only:
            results = _hyperspy_route(signal, estimator, nav_mask, sig_mask, clip_negative,
                                      print_info, opts)
        else:
            results = _direct_decomposition(signal, estimator, nav_mask, sig_mask,
                                            clip_negative)
    except KeyboardInterrupt as exc:
        exc.add_note("The constrained NMF was interrupted; the signal is unchanged.")
        raise
    metadata, note = _fit_record(estimator)
    with _deferred_interrupt():  # all of the results or none
        signal.learning_results.__dict__.pop("_object", None)
        signal.learning_results.__dict__.update(results)
        for key, value in metadata.items():
            signal.metadata.set_item(key, value)
    if print_info and not hs_only:
        mode = "lazy, streamed" if is_lazy(signal) else "in memory"
        print(f"Decomposition info:\n  algorithm={ALGORITHM} ({mode})\n"
              f"  output_dimension={results['output_dimension']}\n  estimator: {estimator!r}")
    if note is not None:  # a rising MSE alone is noted on the convergence figure, not warned
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(note + " s.plot_convergence() shows the curves.", ConvergenceWarning,
                      stacklevel=3)  # the caller of s.decomposition
    return estimator if return_info else None


def _hyperspy_route(signal, estimator, nav_mask, sig_mask, clip_negative, print_info, opts):
    """HyperSpy's own decomposition (for its options: reproject, ...) on an in-memory working
    copy; returns the ``learning_results`` attributes it computed (``signal`` untouched)."""
    work = _working_copy(signal, clip_negative)
    # HyperSpy wants numpy masks in its axes order: it flattens the navigation mask after a
    # transpose and the signal mask as it is; these forms give the array-order masks.
    am = signal.axes_manager
    hyperspy_decomposition(work)(
        algorithm=estimator,
        output_dimension=int(estimator.n_components),
        navigation_mask=None if nav_mask is None else nav_mask.T,
        signal_mask=None if sig_mask is None else sig_mask.reshape(am.signal_shape),
        return_info=True,
        print_info=print_info,
        **opts,
    )
    results = dict(work.learning_results.__dict__)
    results.pop("_object", None)
    results["decomposition_algorithm"] = ALGORITHM
    return results


def _direct_decomposition(signal, estimator, nav_mask, sig_mask, clip_negative):
    """Fit the estimator on the scan's solver data; returns the ``learning_results``
    attributes (``signal`` untouched).

    In memory the data are unfolded to ``(n_positions, n_pixels)`` float32 with the masked
    positions and pixels dropped -- at most one float32 copy, none for unmasked float32 data;
    a lazy scan becomes a dask matrix chunked along the scan that the estimator streams.
    Factors and loadings are stored as HyperSpy's own decomposition stores them (``nan``
    where masked), so its accessors and plots work.
    """
    data = solver_data(signal, nav_mask, sig_mask, clip_negative)
    loadings = estimator.fit_transform(data)
    factors = estimator.components_.T
    if sig_mask is not None:
        factors = expand_rows(factors, sig_mask.ravel())
    if nav_mask is not None:
        loadings = expand_rows(loadings, nav_mask.ravel())
    return {
        "decomposition_algorithm": ALGORITHM,
        "output_dimension": int(estimator.n_components_),
        "poissonian_noise_normalized": False,
        "explained_variance": None, "explained_variance_ratio": None,
        "number_significant_components": None,
        "centre": None, "mean": None, "unmixing_matrix": None, "bss_algorithm": None,
        "signal_mask": sig_mask, "navigation_mask": nav_mask,
        "factors": factors, "loadings": loadings,
    }


@contextlib.contextmanager
def _deferred_interrupt():
    """A block in which Ctrl-C (SIGINT) waits until the block is done, then takes effect.

    For the few statements that store a finished fit on the signal: an interrupt then leaves
    all of the results or none.  Outside the main thread (where Python delivers signals), or
    under a SIGINT handler not set from Python, it changes nothing.
    """
    previous = getsignal(SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    held = []
    set_signal_handler(SIGINT, lambda *args: held.append(args))
    try:
        yield
    finally:
        set_signal_handler(SIGINT, previous)
        if held and callable(previous):
            previous(*held[0])


def _hyperspy_options(signal, opts):
    """Names of HyperSpy-only ``decomposition`` keywords set to other than their defaults."""
    params = inspect.signature(hyperspy_decomposition(signal)).parameters
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

    A lazy signal gives a streamed :class:`~stemnmf_hs.decomposition.DaskOperator` (nothing
    computed); an in-memory one an :class:`~stemnmf_hs.decomposition.InMemoryOperator`: on
    the data themselves for unmasked float32 data (the unfolding is a view) and for other
    dtypes (e.g. uint16 counts, converted block by block in each product, never as a whole
    float32 copy); a float32 copy of the unmasked part for masked float32 data or
    ``clip_negative``.
    ``ConstrainedNMF.fit`` takes either as prepared data (values checked by the caller).
    """
    if is_lazy(signal):
        return DaskOperator(_lazy_matrix(signal, nav_mask, sig_mask, clip_negative))
    data = signal.data
    ny, nx, sy, sx = data.shape
    X = data.reshape(ny * nx, sy * sx)
    rows = None if nav_mask is None else np.flatnonzero(~nav_mask.ravel())
    cols = None if sig_mask is None else np.flatnonzero(~sig_mask.ravel())
    if X.dtype != np.float32 and not clip_negative:
        # uint16 counts and other dtypes: converted block by block inside each product
        return InMemoryOperator(X, rows, cols)
    if nav_mask is None and sig_mask is None:
        X = np.ascontiguousarray(X, dtype=np.float32)
    else:
        X = _gather(X, rows, cols)
    if clip_negative:
        if np.shares_memory(X, data):
            X = np.maximum(X, 0)
        else:
            np.maximum(X, 0, out=X)
    return InMemoryOperator(X)


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
    if X.dtype != np.float32 and (clip_negative or X.dtype.kind not in "ub"):
        X = X.astype(np.float32)  # unsigned counts: DaskOperator converts by row blocks
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
    nav_mask = mask_array(nav_mask_in, nav_shape, "navigation_mask")
    sig_mask = mask_array(sig_mask_in, sig_shape, "signal_mask")
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
    else:
        center = check_center(est_kwargs["center"] if center is None else center, sig_shape)
    if est_kwargs.get("probe_fwhm") is not None:
        nav_axes = signal.axes_manager.navigation_axes[::-1]
        if est_kwargs.get("scan_step") is None:
            est_kwargs["scan_step"] = tuple(float(ax.scale) for ax in nav_axes)
        check_probe_fwhm(est_kwargs["probe_fwhm"], est_kwargs["scan_step"], nav_shape,
                         units=plotting.defined(getattr(nav_axes[0], "units", None)))
    if show is None:
        show = default_progressbar()
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


def default_progressbar():
    """HyperSpy's preference for progress bars (``show_progressbar=None``)."""
    from hyperspy.defaults_parser import preferences

    return bool(preferences.General.show_progressbar)


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
    return with_new_data(signal, data)


def with_new_data(signal, data):
    """A new signal of ``signal``'s class, axes and metadata around ``data`` (not copied).

    Built through HyperSpy's public constructor from ``axes_manager.as_dictionary()`` and
    the metadata dictionaries, so only the metadata are copied.  A dask ``data`` on an
    in-memory signal gives the lazy class (``as_lazy``).

    Parameters
    ----------
    signal : hyperspy.signals.BaseSignal
    data : numpy.ndarray or dask.array.Array
        Of ``signal.data.shape`` (array order).

    Returns
    -------
    hyperspy.signals.BaseSignal

    Examples
    --------
    >>> import numpy as np
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.ones((2, 3, 4)))
    >>> s.axes_manager[0].scale = 1.5
    >>> new = with_new_data(s, np.zeros((2, 3, 4)))
    >>> new.axes_manager[0].scale, float(s.data.sum())
    (1.5, 24.0)
    """
    axes = list(signal.axes_manager.as_dictionary().values())
    out = type(signal)(data, axes=axes, metadata=signal.metadata.as_dictionary(),
                       original_metadata=signal.original_metadata.as_dictionary())
    if is_dask_array(data) and not is_lazy(out):
        out = out.as_lazy()
    return out


def is_dask_array(data):
    """Whether ``data`` is a dask array (without importing dask when it is not loaded).

    Examples
    --------
    >>> import numpy as np
    >>> is_dask_array(np.zeros(2))
    False
    """
    return type(data).__module__.split(".")[0] == "dask"


def estimator_parameters(estimator):
    """The estimator's parameters in a form HDF5 and zarr store: plain values, no arrays.

    What ``s.save()`` keeps of a constrained-NMF fit instead of the estimator object (which
    neither format can hold), as HyperSpy keeps its own decomposition parameters as plain
    values of ``learning_results``.  ``None`` reads ``"None"``; tuples stay tuples; the masks
    and a user ``map_kernel`` (arrays, saved elsewhere) are left out.  ``ConstrainedNMF(
    **{k: (None if v == "None" else v) for k, v in params.items()})`` rebuilds the estimator.

    Returns
    -------
    dict
    """
    params = {
        k: v
        for k, v in estimator.get_params().items()
        if k not in ("signal_mask", "navigation_mask", "map_kernel")
        and (v is None or isinstance(v, (int, float, str, bool, tuple)))
    }
    return {k: ("None" if v is None else v) for k, v in params.items()}


def _fit_record(estimator):
    """What the signal's metadata keep of a fit: its convergence and parameters.

    The parameters (:func:`estimator_parameters`) go to ``metadata.Signal.ConstrainedNMF``;
    the estimator object itself is not kept on ``learning_results`` (HDF5/zarr cannot store
    it: saving printed an ``ERROR`` traceback).

    Returns
    -------
    items : dict
        Metadata path -> value.
    note : str or None
        The convergence note when the fit hit ``max_iter`` (to be warned), else ``None``.
    """
    root = "Signal.ConstrainedNMF."
    hist = estimator.history_
    items = {
        root + "parameters": estimator_parameters(estimator),
        root + "n_iter": int(estimator.n_iter_),
        root + "reconstruction_error": float(estimator.reconstruction_err_),
    }
    for key in ("mse", "w_change", "h_change"):
        items[f"{root}history.{key}"] = np.asarray(hist[key])
    errors = np.asarray(getattr(estimator, "restart_errors_", []), dtype=float)
    if errors.size:
        items[root + "restart_errors"] = errors
        items[root + "restart"] = int(np.argmin(errors))
    refine = int(getattr(estimator, "refine_iter_", 0))
    n_main = int(estimator.n_iter_) - refine
    hit_limit = n_main >= int(estimator.max_iter)
    note = plotting.convergence_note(np.asarray(hist["mse"])[:n_main], hit_limit,
                                     estimator.max_iter)
    items[root + "hit_max_iter"] = bool(hit_limit)
    items[root + "convergence_note"] = note
    return items, (note if hit_limit else None)


def fit_stop(signal):
    """Where the constrained-NMF fit stopped, for :func:`stemnmf_hs.figures.convergence_figure`.

    Returns
    -------
    dict or None
        ``n_iter``, ``hit_limit``, ``restart``, ``n_restarts`` and ``note`` from the metadata
        (``None`` when the signal holds no fit, or a file saved before these were kept).
    """
    md = signal.metadata
    n_iter = md.get_item("Signal.ConstrainedNMF.n_iter", None)
    if n_iter is None:
        return None
    errors = md.get_item("Signal.ConstrainedNMF.restart_errors", None)
    return {
        "n_iter": int(n_iter),
        "hit_limit": bool(md.get_item("Signal.ConstrainedNMF.hit_max_iter", False)),
        "restart": md.get_item("Signal.ConstrainedNMF.restart", None),
        "n_restarts": None if errors is None else int(np.size(errors)),
        "note": str(md.get_item("Signal.ConstrainedNMF.convergence_note", "") or ""),
    }


# ---------------------------------------------------------------------------- signals
def stack_like(data, axes, title="", navigation_name="component"):
    """A ``Signal2D`` stack ``(n | b, a)`` whose image axes copy calibrated ``axes``.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n, a, b)`` in array order (rows, columns).
    axes : sequence of hyperspy axes
        The two image axes in HyperSpy order ``(x, y)``: the scan's navigation axes for maps,
        its signal axes for diffractions.
    title : str
        Signal title.
    navigation_name : str
        Name of the stacking axis.

    Returns
    -------
    hyperspy.signals.Signal2D
    """
    s = image_like(data, axes, title)
    s.axes_manager.navigation_axes[0].name = navigation_name
    return s


def image_like(data, axes, title=""):
    """A single ``Signal2D`` image ``(| b, a)`` with calibrated ``axes`` (see stack_like)."""
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(data))
    _copy_axes(s.axes_manager.signal_axes, axes)
    s.metadata.General.title = title
    return s


def component_matrix(matrix, title, units=""):
    """A ``Signal2D`` ``(| k, k)`` component-by-component matrix, axes named "component".

    Parameters
    ----------
    matrix : numpy.ndarray
        ``(k, k)``.
    title : str
        Signal title.
    units : str
        Quantity units of the values (e.g. "degree").
    """
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(matrix))
    for ax, name in zip(s.axes_manager.signal_axes, ("component j", "component i")):
        ax.name = name
    s.metadata.General.title = title
    if units:
        s.metadata.set_item("Signal.quantity", f"{title} ({units})")
    return s


def _copy_axes(new_axes, old_axes):
    for new, old in zip(new_axes, old_axes):
        for attr in ("scale", "offset", "units", "name"):
            setattr(new, attr, getattr(old, attr))


def loss_signal(k_values, loss, units=""):
    """The K-component loss curve as a ``Signal1D`` over "number of components".

    Parameters
    ----------
    k_values : numpy.ndarray
        ``(n,)`` int, increasing: a uniform axis (offset ``k_min``, scale the step) when
        evenly spaced, else a non-uniform one.
    loss : numpy.ndarray
        ``(n,)``.
    units : str
        Data units, shown in the quantity ``"K-component loss (units)"``.

    Returns
    -------
    hyperspy.signals.Signal1D
    """
    import hyperspy.api as hs

    ks = np.asarray(k_values)
    steps = np.diff(ks)
    s = hs.signals.Signal1D(np.array(loss, dtype=float))
    ax = s.axes_manager.signal_axes[0]
    if np.all(steps == steps[0]):
        ax.scale = float(steps[0])
        ax.offset = float(ks[0])
    else:
        s = hs.signals.Signal1D(
            np.array(loss, dtype=float),
            axes=[{"axis": ks.astype(float), "name": "number of components"}],
        )
        ax = s.axes_manager.signal_axes[0]
    ax.name = "number of components"
    s.metadata.General.title = "K-component loss"
    unit = f" ({units})" if units else ""
    s.metadata.set_item("Signal.quantity", f"K-component loss{unit}")
    return s


# ---------------------------------------------------------------------------- arrays
def expand_rows(values, mask, fill=np.nan):
    """Rows of ``values`` spread back over the rows a mask left out, which read ``fill``.

    The numpy form of how HyperSpy stores masked decompositions (``nan`` rows).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_kept, k)``.
    mask : numpy.ndarray of bool
        ``(n_rows,)``, ``True`` where a row was left out; ``(~mask).sum() == n_kept``.
    fill : float, default nan

    Returns
    -------
    numpy.ndarray
        ``(n_rows, k)``, the dtype of ``values``.
    """
    values = np.asarray(values)
    out = np.full((mask.size,) + values.shape[1:], fill, dtype=values.dtype)
    out[~mask] = values
    return out


def decomposition_arrays(signal):
    """``(factors (k, ky, kx), maps (k, y, x), signal_mask or None)`` of a decomposition.

    Raises
    ------
    ValueError
        If the signal holds no decomposition.
    """
    lr = signal.learning_results
    if lr.factors is None or lr.loadings is None:
        raise ValueError(
            "This signal has no decomposition yet: run "
            "s.decomposition(algorithm='constrained_nmf', output_dimension=k) first."
        )
    am = signal.axes_manager
    k = lr.factors.shape[1]
    if lr.output_dimension:
        k = min(k, int(lr.output_dimension))
    sig_shape = tuple(am.signal_shape[::-1])
    nav_shape = tuple(am.navigation_shape[::-1])
    factors = np.asarray(lr.factors[:, :k]).T.reshape((k,) + sig_shape)
    maps = np.asarray(lr.loadings[:, :k]).T.reshape((k,) + nav_shape)
    mask = getattr(lr, "signal_mask", None)
    mask = None if mask is None else np.asarray(mask, dtype=bool).reshape(sig_shape)
    return factors, maps, mask


def fit_history(signal):
    """``(history dict, default legend label)`` of the constrained-NMF fit in the metadata.

    Raises
    ------
    ValueError
        If the signal holds no constrained-NMF history.
    """
    hist = signal.metadata.get_item("Signal.ConstrainedNMF.history", None)
    if hist is None:
        raise ValueError(
            "This signal holds no convergence history: run "
            "s.decomposition(algorithm='constrained_nmf', output_dimension=k) first."
        )
    par = signal.metadata.get_item("Signal.ConstrainedNMF.parameters", None)
    label = "constrained NMF"
    if par is not None:
        cons = [c for c in (par.get_item("diffraction_constraint"),
                            par.get_item("map_constraint")) if c not in (None, "None")]
        label = f"{par.get_item('solver', 'als').upper()}" + (
            f" + {' + '.join(cons)}" if cons else " (primitive)")
    history = {key: hist.get_item(key) for key in ("mse", "w_change", "h_change")
               if hist.has_item(key)}
    return history, label


def data_units(signal):
    """Units of the data: the parenthesized end of ``metadata.Signal.quantity``, or ``""``."""
    return plotting.quantity_units(signal.metadata.get_item("Signal.quantity", ""))


def plot_axes(axes):
    """Plain :class:`~stemnmf_hs.plotting.Axis` descriptions of a pair of HyperSpy axes.

    Non-uniform (or unreadable) axes are described in pixels, keeping names and units.
    Units as figures show them (:func:`stemnmf_hs.plotting.display_axis`): ``Å⁻¹`` for
    pyxem's ``A^{-1}``, real-space lengths in nm (a ``.blo`` file's cm converted).

    Parameters
    ----------
    axes : sequence of 2 hyperspy axes
        ``(x, y)``: e.g. ``axes_manager.signal_axes``.

    Returns
    -------
    tuple of Axis
    """
    try:
        if not all(ax.is_uniform for ax in axes):
            raise AttributeError
        calib = [(float(ax.scale), float(ax.offset)) for ax in axes]
    except (AttributeError, ValueError, TypeError):
        calib = [(1.0, 0.0)] * len(axes)
    return tuple(
        plotting.display_axis(
            plotting.Axis(plotting.defined(getattr(ax, "name", None)), scale, offset,
                          plotting.defined(getattr(ax, "units", None))))
        for ax, (scale, offset) in zip(axes, calib)
    )


def close_plot(signal):
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
    figs = [plotting.root_figure(p.figure)
            for p in (getattr(old, "signal_plot", None), getattr(old, "navigator_plot", None))
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


def navigator_figure(signal):
    """The top-level figure of the navigator of the signal's current HyperSpy plot."""
    return plotting.root_figure(signal._plot.navigator_plot.figure)
