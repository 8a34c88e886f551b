"""The estimator of the constrained NMF of Kimoto et al. 2025 (Sci. Rep. 15:39143).

:class:`ConstrainedNMF` (scikit-learn API: parameters declared once in
``_parameter_constraints`` and validated by ``_fit_context``, cross-parameter rules in
``_check_params``) and its functional form :func:`constrained_nmf`, as scikit-learn's
``NMF`` and ``non_negative_factorization``.  The estimator composes the projections of
``_constraints.py``, the data operators of ``_operators.py``, the default monotone solver of
``_descent.py`` and the paper's protocol loop of ``_solver.py``; it holds no numerics of its
own.

Notation.  The paper factorizes ``X_paper (n_uv, n_xy) ~= W (n_uv, k) H (k, n_xy)`` with the
diffractions ``w_k`` in the columns of ``W`` and the maps ``h_k`` in the rows of ``H``.  This
module follows scikit-learn and HyperSpy instead: ``X`` is ``(n_samples = n_navigation,
n_features = n_signal)``, the *diffractions* are ``components_`` ``(k, n_features)``
(``= W.T``) and the *maps* are the transform output ``(n_samples, k)`` (``= H.T``).

Every restart is iterated together (``_solver.py``).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from ._constraints import make_diffraction_projection, make_map_projection
from ._descent import fit_monotone
from ._operators import DataOperator, as_operator, is_dask, sketch_rank
from ._passes import count_passes
from ._solver import fit_batched, nnls_maps

__all__ = ["ConstrainedNMF", "check_n_components", "constrained_nmf"]

_EPS = np.finfo(np.float32).eps


class ConstrainedNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Non-negative matrix factorization with 4D-STEM constraints (Kimoto et al. 2025).

    Factorizes ``X (n_samples, n_features) ~= maps (n_samples, k) @ components_ (k,
    n_features)`` by alternating least squares with projections (the paper's protocol, steps
    1-9, eqs. 7-8) or by multiplicative updates (eqs. 3-4).  A sample is one diffraction
    pattern (one probe position) unfolded in C order; ``n_samples`` is the number of probe
    positions.  After each update the diffractions are projected by ``[.]_W`` (continuity
    along rings about the pattern centre, or plain non-negativity) and normalized to unit sum,
    and the maps by ``[.]_H`` (convolution with a kernel given by the spatial resolution, or
    plain non-negativity).

    Parameters
    ----------
    n_components : int, optional
        Number of components ``k`` (the paper's ``n_k``).  ``None``: ``n_features``, as in
        scikit-learn.
    solver : {"hals", "als", "mu"}, default "hals"
        ``"hals"``: the monotone solver (:mod:`~stemnmf_hs.decomposition._descent`): the
        constraints written as one objective, ``||B X - M D||^2 + continuity_penalty *
        sum_j ||m_j||^2 ||[d_j]_W - d_j||^2`` with ``B`` the map kernel applied over the
        scan, minimized by hierarchical alternating least squares whose every step keeps or
        lowers it (``history_["objective"]`` never rises).  The default: on the validation
        cases of ``docs/validation.md`` it matches or beats the paper's ALS and primitive
        NMF, and it does not walk away from the answer with more iterations.
        ``"als"``: projected alternating least squares, eqs. 7-8 (the paper's protocol,
        "solve, clip, project"; not a descent method).  ``"mu"``: multiplicative updates,
        eqs. 3-4; constraints act as projections after each update.
    diffraction_constraint : {"continuity"} or None, default "continuity"
        ``"continuity"``: ``[.]_W`` of the paper (needs ``signal_shape``); ``None``:
        non-negativity only.
    map_constraint : {"smooth"} or None, default "smooth"
        ``"smooth"``: ``[.]_H`` of the paper (needs ``navigation_shape``); ``None``:
        non-negativity only.
    signal_shape : tuple of int, optional
        ``(ny, nx)`` pattern shape in pixels (array order).
    navigation_shape : tuple of int, optional
        ``(ny, nx)`` scan shape in probe positions (array order).
    signal_mask : array_like of bool, optional
        ``(ny, nx)`` of the patterns, ``True`` for pixels absent from ``X`` (e.g. the direct
        beam); ``X`` then holds the ``(~signal_mask).sum()`` other pixels in C order.
    navigation_mask : array_like of bool, optional
        ``(ny, nx)`` of the scan, ``True`` for positions absent from ``X``.
    center : tuple of float, optional
        ``(cx, cy)`` pattern centre in pixels (column, row), as pyxem's
        ``s.calibration.center``; the geometric centre when ``None``.
    ring_width : float, default 1.0
        Width of the rings of ``[.]_W``, pixels.
    outlier_factor : float, default 2.0
        Ring values above ``outlier_factor`` times the ring mean are Bragg-spot outliers for
        ``[.]_W`` (the paper: 2).
    continuity_components : {"ringlike", "all"}, optional
        Components that ``[.]_W`` acts on.  ``"all"``: every component (the paper).
        ``"ringlike"``: the rotationally symmetric (amorphous) ones only, chosen after the
        initialization by their azimuthal variation; real crystal diffractions carry diffuse
        intensity between their spots, which the projection turns into an amorphous-like
        ring baseline (issue 13: on experimental patterns this cost the amorphous map
        0.2 in correlation).  ``None`` (default): ``"ringlike"`` with ``solver="hals"``,
        ``"all"`` with the paper's ``"als"`` and ``"mu"``.
    continuity_penalty : float, default 1.0
        ``solver="hals"`` only: weight of the continuity penalty relative to the fit term of
        the same component (``[.]_W`` is a penalty, not a projection, there).
    unique_components : bool or "noise", optional
        Remove from every other component the largest multiple of an amorphous (ring-like)
        diffraction it contains and move that intensity to the amorphous map
        (:func:`~stemnmf_hs.decomposition._uniqueness.remove_shared_rings`, ring-median
        rule): NMF cannot tell ``d_c`` from ``d_c + a d_amorphous`` when the
        maps compensate, and crystal diffractions otherwise carry the amorphous rings.  The
        product ``maps @ components_`` changes only by the clipped remainder (relative
        change ~1e-3, recorded in ``uniqueness_change_``).  ``"noise"``: the rule's
        noise-aware form (a ring whose ratio dips within its noise does not set the
        multiple; ``noise_z`` of
        :func:`~stemnmf_hs.decomposition._uniqueness.remove_shared_rings` gives its
        measurements); ``True``: the strict form (the smallest ring ratio), which the k
        sweep uses.  ``None`` (default): ``"noise"`` with ``solver="hals"`` and a
        diffraction constraint, off otherwise (the paper's variants stay as published).
        Measured with the CLI defaults on the built-in simulation: the amorphous map
        inside the precipitates within 0.043 of its true fraction (strict: 0.110), crystal
        cosines 0.94-0.98 (strict: 0.93-0.97); docs/validation.md.
    map_kernel : array_like, optional
        ``(ky, kx)`` user kernel for ``[.]_H``.  Default: the paper's 3x3 Gaussian
        (sigma = 0.57 scan pixels: 2 nm probe FWHM at a 1.5 nm step).
    probe_fwhm, scan_step : float, optional
        Probe FWHM and scan step in the same length unit (``scan_step`` may be ``(step_y,
        step_x)``): the kernel becomes a Gaussian of ``sigma = probe_fwhm / 2.355 /
        scan_step`` pixels.
    n_restarts : int, default 10
        Random initializations (paper step 8: ten); the one with the lowest final squared
        error is kept.  All restarts are iterated together.
    max_iter : int, default 500
        Iterations per restart (paper: 500).
    tol : float, default 1e-4
        Early stop when, for every restart, the L1 norms of the changes of the diffractions
        and of the maps relative to their L1 norms both fall below ``tol`` (the paper's Fig. 7
        convergence quantities).  ``0`` runs exactly ``max_iter`` iterations.
    compression : {"auto"} or int or None, default None
        ``None``: the iterations use the data themselves (exact mode; with a dask array,
        two streamed passes per iteration).  An int ``l``: the iterations use a rank-``l``
        randomized sketch ``X ~= Q B`` computed once (Halko, Martinsson & Tropp 2011,
        Algorithm 4.4; the compressed NMF of Tepper & Sapiro 2016), ``2 + 2 *
        power_iterations`` passes over the data, after which every iteration costs
        ``O((n_samples + n_features) * l * k)`` instead of ``O(n_samples * n_features * k)``.
        ``[.]_W`` and ``[.]_H`` still act on the full-size diffractions and maps.  The
        initial maps are the exact mode's for the same ``random_state`` (the sketch is drawn
        after them).  After the iterations one exact pass over the data gives every restart
        its exact map update and error; the restart with the lowest exact error is kept, so
        ``reconstruction_err_`` and ``restart_errors_`` refer to the data.  The restarts run
        in as many threads as the BLAS library has (each with single-threaded BLAS), since
        products with the small sketch gain little from a multithreaded BLAS.  ``"auto"``:
        ``l = min(k + 10, n_samples, n_features)``, the oversampling of ten recommended by
        Halko et al. (section 4.2); the refinement iterations absorb what the sketch misses
        (on the benchmark scan, ``l = k + 10`` and ``2k + 10`` ended within 1 % of the exact
        mode alike, ``k + 10`` 1.3x faster).
    power_iterations : int, default 2
        Power (subspace) iterations of the sketch; ignored when ``compression=None``.
    refine_iter : int or "auto", default "auto"
        Compressed mode only: exact iterations (two passes over the data each) that continue
        the kept restart on the data after the iterations on the sketch.  They remove the
        sketch's bias: on the benchmark scan (58 x 58 x 128 x 128, k = 30, sketch rank 70,
        seed 1) the compressed error was 1.5 % above the exact mode's before them, 0.4 %
        after one, 0.16 % after three and 0.05 % after ten.  ``0`` keeps the sketch solution
        (with its one exact map update).  ``"auto"``: in proportion to the iterations they
        follow, ``min(5, max(1, max_iter // 50))`` -- 5 for the paper's 500, 1 for a short
        run of 50, whose own error is not settled to the 0.1 % that more would buy (see
        ``refine_iter_``).
    init_iter : int or "auto", default "auto"
        ``solver="hals"`` only: iterations of the paper's protocol (ALS with the same
        constraints) over all ``n_restarts`` that initialize it; the restart with the lowest
        error is then continued by the monotone iterations (``max_iter`` of them).  The
        initialization's errors are in ``history_["init_mse"]`` and ``restart_errors_``.
        ``0``: every restart runs the monotone iterations from random maps (more prone to
        poor local minima on the validation cases: amorphous map r 0.94 instead of 0.997 on
        the real-pattern case).  ``"auto"``: ``min(50, max(10, max_iter // 4))`` -- 50 from
        ``max_iter=200`` up (the validation's and the paper's runs), 12 for a short run of
        50, where 50 initial iterations of every restart would cost more than the run
        itself.  A tenth of the run (20 at 200) was measured and rejected: the real-pattern
        case's dark-spot ratio fell from 0.952-0.975 to 0.935-0.951 (see ``init_iter_``).
    random_state : int, RandomState instance or None, default None
        Seed of the random initial maps (paper step 2) and of the sketch.
    show_progressbar : bool, default False
        Show a progress bar over iterations.

    Attributes
    ----------
    components_ : numpy.ndarray
        ``(n_components, n_features)`` float32 diffractions, each summing to 1, sorted by
        decreasing L2 norm of their maps (paper step 9).
    n_components_ : int
        Number of components.
    n_iter_ : int
        Iterations run by the kept restart (in compressed mode including ``refine_iter``).
    reconstruction_err_ : float
        Frobenius norm ``||X - maps @ components_||`` of the kept restart; in compressed
        mode with ``refine_iter=0`` and ``solver="hals"`` from the data's energy and the
        sketch's cross term ``<Q B, maps @ components_>`` (no pass over the data for it;
        0.24 % above the exact error on the benchmark scan, k = 30).
    history_ : dict of numpy.ndarray
        Per-iteration convergence of the kept restart, each ``(n_iter_,)``: ``"mse"``, the mean
        squared error over all matrix elements (in compressed mode against the sketch
        ``Q B``, then against the data for the ``refine_iter`` last); ``"w_change"`` and
        ``"h_change"``, the L1 norms ``||W(i+1) - W(i)||_1`` and ``||H(i+1) - H(i)||_1``
        (paper step 7, Fig. 7; ``nan`` at the first iteration).
    restart_errors_ : numpy.ndarray
        ``(n_restarts,)`` final Frobenius errors ``||X - maps @ components||`` of every
        restart (the kept restart's entry is ``reconstruction_err_``).  In compressed mode
        the default solver ranks its restarts on the sketch: the other entries are their
        errors against ``Q B`` plus the data's energy outside the sketch; the paper's
        ``solver="als"`` scores them against the data.
    timings_ : dict of float
        Wall seconds of the stages of the last fit: ``"init"`` (initial maps, data
        statistics), ``"sketch"``, ``"iterations"``, ``"scoring"`` (the exact pass that
        scores every restart of a compressed ``solver="als"`` fit), ``"refinement"`` (``refine_iter``) and
        ``"polish"`` (exact maps without ``[.]_H``); ``0.0`` for a stage that did not run.
    passes_ : dict of int
        Passes over the data of the last fit by stage (as ``timings_``; ``"other"`` for
        passes outside a timed stage): what sets the time of a scan larger than memory
        (:func:`~stemnmf_hs.decomposition.count_passes`).
    init_iter_ : int
        ALS iterations of the initialization run by the last fit (``init_iter`` resolved;
        ``0`` for the paper's solvers).
    refine_iter_ : int
        Exact refinement iterations of the last fit (``refine_iter`` resolved; ``0`` when
        the fit was not compressed).
    sketch_rank_ : int or None
        Rank ``l`` of the sketch in compressed mode (or of a sketch passed as ``X``), ``None``
        in exact mode.
    n_features_in_ : int
        Number of features seen in ``fit``.

    Raises
    ------
    ValueError
        From ``fit``: negative or non-finite values, ``n_components`` larger than
        ``min(n_samples, n_features)``, a constraint without the shape it needs, shapes
        and masks that do not match ``X``, a sketch rank below ``n_components`` or above
        ``min(n_samples, n_features)``, or ``init_maps`` of the wrong shape.

    Notes
    -----
    ``X`` may be a data operator made by :func:`~stemnmf_hs.decomposition.as_operator` (an
    :class:`~stemnmf_hs.decomposition.InMemoryOperator` or
    :class:`~stemnmf_hs.decomposition.DaskOperator` of checked data, or a
    :class:`~stemnmf_hs.decomposition.SketchedOperator`, on which the fit iterates as it is
    and which it never sketches again): callers that prepare the data once (masking,
    unfolding, a sketch shared by several fits) pass it without a second check.

    ``X`` may be a dask array (``(n_samples, n_features)``, chunked along ``n_samples``): the
    fit then streams the chunks on every product with the data and never holds the whole
    matrix, on whatever dask scheduler is active (a ``dask.distributed.Client`` included);
    the maps ``(n_samples, k)`` and diffractions ``(k, n_features)`` of every restart are
    held in memory.  The same seed gives the same result as on the in-memory array, up to
    float32 summation order.

    Ctrl-C (``KeyboardInterrupt``) stops a fit in every mode within about a second (for dask
    data, plus the time to read one chunk): no single product with the data reads more than
    128 MiB of it, the restarts iterated in threads stop at their next iteration, and an
    interrupted dask product cancels its chunk tasks.
    The fitted attributes are set only when a fit completes, so an interrupted fit leaves
    those of the previous one.

    Implements Kimoto, Uesugi, Harano, Kikkawa, Cretu, Shibazaki, Shiga & Togo, "Nonnegative
    matrix factorization incorporating domain specific constraints for four dimensional
    scanning transmission electron microscopy", Sci. Rep. 15, 39143 (2025): "Protocol of
    constrained NMF" steps 1-9, eqs. 3-4 and 7-8, and the two constraint sections.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs import ConstrainedNMF
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((64, 3)) @ rng.random((3, 100))  # 8x8 scan of 10x10 patterns
    >>> est = ConstrainedNMF(3, signal_shape=(10, 10), navigation_shape=(8, 8),
    ...                      n_restarts=2, max_iter=50, random_state=0)
    >>> maps = est.fit_transform(X)
    >>> maps.shape, est.components_.shape
    ((64, 3), (3, 100))
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions({"hals", "als", "mu"})],
        "continuity_components": [StrOptions({"ringlike", "all"}), None],
        "continuity_penalty": [Interval(Real, 0, None, closed="left")],
        "unique_components": ["boolean", StrOptions({"noise"}), None],
        "diffraction_constraint": [StrOptions({"continuity"}), None],
        "map_constraint": [StrOptions({"smooth"}), None],
        "signal_shape": [tuple, list, None],
        "navigation_shape": [tuple, list, None],
        "signal_mask": ["array-like", None],
        "navigation_mask": ["array-like", None],
        "center": [tuple, list, "array-like", None],
        "ring_width": [Interval(Real, 0, None, closed="neither")],
        "outlier_factor": [Interval(Real, 1, None, closed="left")],
        "map_kernel": ["array-like", None],
        "probe_fwhm": [Interval(Real, 0, None, closed="neither"), None],
        "scan_step": [Interval(Real, 0, None, closed="neither"), tuple, list, None],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "compression": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"),
                        None],
        "power_iterations": [Interval(Integral, 0, None, closed="left")],
        "refine_iter": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "init_iter": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "show_progressbar": ["boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        solver="hals",
        diffraction_constraint="continuity",
        map_constraint="smooth",
        signal_shape=None,
        navigation_shape=None,
        signal_mask=None,
        navigation_mask=None,
        center=None,
        ring_width=1.0,
        outlier_factor=2.0,
        continuity_components=None,
        continuity_penalty=1.0,
        unique_components=None,
        map_kernel=None,
        probe_fwhm=None,
        scan_step=None,
        n_restarts=10,
        max_iter=500,
        tol=1e-4,
        compression=None,
        power_iterations=2,
        refine_iter="auto",
        init_iter="auto",
        random_state=None,
        show_progressbar=False,
    ):
        self.n_components = n_components
        self.solver = solver
        self.diffraction_constraint = diffraction_constraint
        self.map_constraint = map_constraint
        self.signal_shape = signal_shape
        self.navigation_shape = navigation_shape
        self.signal_mask = signal_mask
        self.navigation_mask = navigation_mask
        self.center = center
        self.ring_width = ring_width
        self.outlier_factor = outlier_factor
        self.continuity_components = continuity_components
        self.continuity_penalty = continuity_penalty
        self.unique_components = unique_components
        self.map_kernel = map_kernel
        self.probe_fwhm = probe_fwhm
        self.scan_step = scan_step
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.compression = compression
        self.power_iterations = power_iterations
        self.refine_iter = refine_iter
        self.init_iter = init_iter
        self.random_state = random_state
        self.show_progressbar = show_progressbar

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # ------------------------------------------------------------------ validation
    def _check_params(self, shape):
        """Cross-parameter rules for data of ``shape``; returns ``(k, project_w, project_h)``."""
        n_samples, n_features = shape
        k = n_features if self.n_components is None else int(self.n_components)
        check_n_components(k, shape)
        project_w = make_diffraction_projection(
            self.diffraction_constraint, n_features, signal_shape=self.signal_shape,
            center=self.center, ring_width=self.ring_width, signal_mask=self.signal_mask,
            outlier_factor=self.outlier_factor,
        )
        project_h = make_map_projection(
            self.map_constraint, n_samples, navigation_shape=self.navigation_shape,
            navigation_mask=self.navigation_mask, map_kernel=self.map_kernel,
            probe_fwhm=self.probe_fwhm, scan_step=self.scan_step,
        )
        return k, project_w, project_h

    def _iteration_budget(self, compressed):
        """``(init_iter, refine_iter)`` with ``"auto"`` resolved for this ``max_iter``."""
        init, refine = self.init_iter, self.refine_iter
        if init == "auto":
            init = min(50, max(10, self.max_iter // 4))
        if refine == "auto":
            refine = min(5, max(1, self.max_iter // 50))
        return (int(init) if self.solver == "hals" else 0,
                int(refine) if compressed else 0)

    def _operator(self, X, name, reset):
        """``X`` as a data operator, checked; sets or checks ``n_features_in_``."""
        if isinstance(X, DataOperator) or is_dask(X):
            data = as_operator(X, name=name)
            if reset:
                self.n_features_in_ = data.shape[1]
            elif data.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {data.shape[1]} features, but ConstrainedNMF is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return data
        X = validate_data(self, X, dtype=np.float32, order="C", reset=reset)
        check_non_negative(X, name)
        return as_operator(X, check_values=False)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, init_maps=None):
        """Learn the diffractions (and maps) of ``X``.

        Parameters
        ----------
        X : array_like, dask.array.Array or DataOperator
            ``(n_samples, n_features)`` non-negative data, one unfolded pattern per row (see
            :meth:`fit_transform`).
        y : Ignored
        init_maps : array_like, optional
            ``(n_samples, n_components)`` non-negative maps to start the first restart from
            (a warm start, e.g. from a fit with fewer components); the other restarts start
            from random maps.

        Returns
        -------
        self : ConstrainedNMF

        Raises
        ------
        ValueError
            See the class docstring.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs import ConstrainedNMF
        >>> X = np.random.default_rng(0).random((16, 2)) @ np.ones((2, 9))
        >>> est = ConstrainedNMF(2, diffraction_constraint=None, map_constraint=None,
        ...                      n_restarts=1, max_iter=10, tol=0, random_state=0).fit(X)
        >>> est.components_.shape, est.n_iter_
        ((2, 9), 10)
        """
        self.fit_transform(X, init_maps=init_maps)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, init_maps=None):
        """Learn the factorization of ``X`` and return its maps.

        Parameters
        ----------
        X : array_like, dask.array.Array or DataOperator
            ``(n_samples, n_features)`` non-negative data, one unfolded pattern per row.  A
            dask array is streamed chunk by chunk (chunk it along ``n_samples``) and is
            never loaded whole.  A data operator
            (:func:`~stemnmf_hs.decomposition.as_operator`) is used as prepared, its values
            not checked again; a sketch is iterated on as it is.
        y : Ignored
        init_maps : array_like, optional
            ``(n_samples, n_components)`` non-negative initial maps of the first restart.

        Returns
        -------
        numpy.ndarray
            ``(n_samples, n_components)`` float32 maps (the paper's ``H.T``), in the units of
            ``X`` (the diffractions sum to one), with ``[.]_H`` applied.

        Raises
        ------
        ValueError
            See the class docstring.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs import ConstrainedNMF
        >>> from stemnmf_hs.decomposition import as_operator
        >>> X = np.random.default_rng(0).random((16, 2)) @ np.ones((2, 9))
        >>> est = ConstrainedNMF(2, diffraction_constraint=None, map_constraint=None,
        ...                      n_restarts=1, max_iter=10, random_state=0)
        >>> maps = est.fit_transform(as_operator(X))  # prepared data: checked once
        >>> maps.shape, sorted(est.timings_)
        ((16, 2), ['init', 'iterations', 'polish', 'refinement', 'scoring', 'sketch'])
        """
        data = self._operator(X, "ConstrainedNMF (input X)", reset=True)
        k, project_w, project_h = self._check_params(data.shape)
        if init_maps is not None:
            init_maps = np.asarray(init_maps, dtype=np.float32)
            if init_maps.shape != (data.shape[0], k) or not np.isfinite(init_maps).all():
                raise ValueError(
                    f"init_maps must be finite with shape (n_samples, n_components) = "
                    f"{(data.shape[0], k)}; got shape {init_maps.shape}."
                )
        rank = None if data.is_sketch else sketch_rank(self.compression, k, data.shape)
        rng = check_random_state(self.random_state)
        self.init_iter_, self.refine_iter_ = self._iteration_budget(
            compressed=data.is_sketch or rank is not None)
        with count_passes() as passes:
            if self.solver == "hals":
                maps, components, info = self._fit_hals(data, k, rank, project_w, project_h,
                                                        rng, init_maps)
            else:
                maps, components, info = self._fit_paper(data, k, rank, project_w, project_h,
                                                         rng, init_maps)
        self.passes_ = dict(passes.by_stage)
        self.components_ = components
        self.n_components_ = k
        self.n_iter_ = info["n_iter"]
        self.reconstruction_err_ = info["error"]
        self.restart_errors_ = info["restart_errors"]
        self.history_ = info["history"]
        self.timings_ = info["timings"]
        self.sketch_rank_ = data.rank if data.is_sketch else rank
        return maps

    def _fit_hals(self, data, k, rank, project_w, project_h, rng, init_maps):
        """``solver="hals"``: :func:`~stemnmf_hs.decomposition._descent.fit_monotone`."""
        maps, components, info = fit_monotone(
            data, k, rank=rank, project_w=project_w, project_h=project_h, rng=rng,
            n_restarts=self.n_restarts, max_iter=self.max_iter, tol=self.tol,
            init_iter=self.init_iter_, refine_iter=self.refine_iter_,
            power_iterations=self.power_iterations, penalty=self.continuity_penalty,
            continuity_components=self.continuity_components or "ringlike",
            unique=self.unique_components, init_maps=init_maps,
            show_progressbar=self.show_progressbar,
        )
        self.ringlike_ = info["ringlike"]
        self.uniqueness_change_ = info["uniqueness_change"]
        return maps, components, info

    def _fit_paper(self, data, k, rank, project_w, project_h, rng, init_maps):
        """``solver="als"`` / ``"mu"``: the paper's protocol (:func:`fit_batched`)."""
        self.ringlike_ = None
        self.uniqueness_change_ = 0.0
        return fit_batched(
            data,
            k,
            sketch_rank=rank,
            power_iterations=self.power_iterations,
            refine_iter=self.refine_iter_,
            n_restarts=self.n_restarts,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            project_w=project_w,
            project_h=project_h,
            rng=rng,
            show_progressbar=self.show_progressbar,
            polish_maps=self.map_constraint is None,
            init_maps=init_maps,
        )

    def transform(self, X):
        """Maps of new data on the learned diffractions.

        Non-negative least squares (accelerated projected gradient), row by row; ``[.]_H``
        is not applied, since new data need not lie on the fitted scan grid.

        Parameters
        ----------
        X : array_like or dask.array.Array
            ``(n_samples, n_features)`` non-negative data.

        Returns
        -------
        numpy.ndarray or dask.array.Array
            ``(n_samples, n_components)`` float32 maps (lazy for a dask ``X``).

        Raises
        ------
        ValueError
            On negative or non-finite values or a feature count other than in ``fit``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs import ConstrainedNMF
        >>> X = np.random.default_rng(0).random((16, 2)) @ np.ones((2, 9))
        >>> est = ConstrainedNMF(2, diffraction_constraint=None, map_constraint=None,
        ...                      n_restarts=1, max_iter=10, random_state=0).fit(X)
        >>> est.transform(X[:3]).shape
        (3, 2)
        """
        check_is_fitted(self)
        data = self._operator(X, "ConstrainedNMF.transform (input X)", reset=False)
        if data.lazy:
            X = data.exact.X
            return X.map_blocks(
                _chunk_nnls_maps, self.components_,
                chunks=(X.chunks[0], (self.components_.shape[0],)), dtype=np.float32,
            )
        return nnls_maps(data.exact.matmat(self.components_.T), self.components_)

    def inverse_transform(self, X):
        """Patterns reconstructed from maps.

        Parameters
        ----------
        X : array_like
            ``(n_samples, n_components)`` maps.

        Returns
        -------
        numpy.ndarray
            ``(n_samples, n_features)`` float32, ``X @ components_``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs import ConstrainedNMF
        >>> X = np.random.default_rng(0).random((16, 2)) @ np.ones((2, 9))
        >>> est = ConstrainedNMF(2, diffraction_constraint=None, map_constraint=None,
        ...                      n_restarts=1, max_iter=10, random_state=0)
        >>> est.inverse_transform(est.fit_transform(X)).shape
        (16, 9)
        """
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float32)
        return X @ self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[0]


def _chunk_nnls_maps(x, components):
    """Maps of one chunk of patterns (runs on the dask workers)."""
    x = x.astype(np.float32, copy=False)
    return nnls_maps(x @ components.T, components)


def check_n_components(k, shape):
    """Refuse a number of components the data cannot hold: the one rule for the k bounds.

    Parameters
    ----------
    k : int
        Number of components.
    shape : tuple of int
        ``(n_samples, n_features)`` of the data.

    Raises
    ------
    ValueError
        Unless ``1 <= k <= min(n_samples, n_features)``.

    Examples
    --------
    >>> from stemnmf_hs.decomposition import check_n_components
    >>> check_n_components(3, (10, 4))
    >>> check_n_components(5, (10, 4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n_components=5 is larger than the data allow: at most min(n_samples, ...
    """
    n_samples, n_features = (int(n) for n in shape)
    if k < 1:
        raise ValueError(f"n_components={k} must be at least 1.")
    if k > min(n_samples, n_features):
        raise ValueError(
            f"n_components={k} is larger than the data allow: at most "
            f"min(n_samples, n_features) = min({n_samples}, {n_features}) = "
            f"{min(n_samples, n_features)}. Choose a smaller number of components."
        )


def constrained_nmf(X, n_components=None, *, init_maps=None, **params):
    """Constrained NMF of ``X`` in one call (the functional form of :class:`ConstrainedNMF`).

    As scikit-learn's :func:`~sklearn.decomposition.non_negative_factorization` to its
    ``NMF``: builds ``ConstrainedNMF(n_components, **params)``, fits it on ``X`` (through
    the same parameter validation) and returns the factors with the fitted estimator.

    Parameters
    ----------
    X : array_like, dask.array.Array or DataOperator
        ``(n_samples, n_features)`` non-negative data (see
        :meth:`ConstrainedNMF.fit_transform`).
    n_components : int, optional
        Number of components ``k``.
    init_maps : array_like, optional
        ``(n_samples, n_components)`` warm start of the first restart.
    **params
        Any other parameter of :class:`ConstrainedNMF` (``solver``, ``signal_shape``,
        ``navigation_shape``, ``n_restarts``, ``max_iter``, ``compression``, ...).

    Returns
    -------
    maps : numpy.ndarray
        ``(n_samples, k)`` float32 maps (the paper's ``H.T``), in the units of ``X``.
    diffractions : numpy.ndarray
        ``(k, n_features)`` float32 unit-sum diffractions (``estimator.components_``).
    estimator : ConstrainedNMF
        The fitted estimator (``n_iter_``, ``reconstruction_err_``, ``history_``,
        ``timings_``, ...).

    Raises
    ------
    ValueError
        As :meth:`ConstrainedNMF.fit`.

    See Also
    --------
    ConstrainedNMF

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import constrained_nmf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((64, 3)) @ rng.random((3, 100))  # 8x8 scan of 10x10 patterns
    >>> maps, diffractions, est = constrained_nmf(
    ...     X, 3, signal_shape=(10, 10), navigation_shape=(8, 8), n_restarts=2,
    ...     max_iter=20, random_state=0)
    >>> maps.shape, diffractions.shape, est.n_iter_ <= 20
    ((64, 3), (3, 100), True)
    """
    est = ConstrainedNMF(n_components, **params)
    maps = est.fit_transform(X, init_maps=init_maps)
    return maps, est.components_, est
