"""Constrained non-negative matrix factorization of Kimoto et al. 2025 (Sci. Rep. 15:39143).

Notation.  The paper factorizes ``X_paper (n_uv, n_xy) ~= W (n_uv, k) H (k, n_xy)`` with the
diffractions ``w_k`` in the columns of ``W`` and the maps ``h_k`` in the rows of ``H``.  This
module follows scikit-learn and HyperSpy instead: ``X`` is ``(n_samples = n_navigation,
n_features = n_signal)``, the *diffractions* are ``components_`` ``(k, n_features)``
(``= W.T``) and the *maps* are the transform output ``(n_samples, k)`` (``= H.T``).

Every restart is iterated together: the two products with the data matrix of one iteration
are single matrix products over the components of all restarts, so one pass over ``X`` serves
every restart.
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

from ..polar import RingBinning
from ._constraints import (
    _separable,
    continuity_projection,
    project_normalize_sorted,
    resolve_map_kernel,
    ring_order,
    smooth_maps,
    smooth_maps_stack,
)
from ._data import DaskData, InMemoryData, SketchedData, is_dask, sketch

__all__ = ["ConstrainedNMF"]

_EPS = np.finfo(np.float32).eps
#: Relative ridge added to the k x k Gram matrices before inversion (guards rank loss when a
#: component vanishes; negligible against float32 rounding otherwise).
_RIDGE = 1e-6


def _batched_gram_inverse(gram):
    """Inverse of a stack of ``(R, k, k)`` Gram matrices, computed in float64."""
    g = gram.astype(np.float64)
    k = g.shape[-1]
    scale = np.trace(g, axis1=1, axis2=2) / k
    scale = np.where(scale > 0, scale, 1.0)
    g = g + (_RIDGE * scale)[:, None, None] * np.eye(k)
    return np.linalg.inv(g)


def _products_with_data_t(data, maps):
    """``maps^T X`` for all restarts in one product: ``(R, k, n_features)``.

    Parameters: ``data`` solver data ``(N, F)`` (see ``_data.py``); ``maps`` ``(R, N, k)``.
    """
    R, N, k = maps.shape
    mt = maps.transpose(0, 2, 1).reshape(R * k, N)
    return data.left(mt).reshape(R, k, -1)


def _products_with_data(data, diffractions):
    """``X D^T`` for all restarts in one product: ``(R, N, k)``.

    Parameters: ``data`` solver data ``(N, F)``; ``diffractions`` ``(R, k, F)``.
    """
    R, k, F = diffractions.shape
    xd = data.right(diffractions.reshape(R * k, F).T)  # (N, R*k)
    return xd.reshape(xd.shape[0], R, k).transpose(1, 0, 2)


def _update_diffractions_als(MtX, MtM):
    """Eq. 7 (``W = X H^T (H H^T)^-1``) in transposed form: ``D = (M^T M)^-1 M^T X``."""
    return (_batched_gram_inverse(MtM).astype(MtX.dtype)) @ MtX


def _update_maps_als(XDt, DDt):
    """Eq. 8 (``H = (W^T W)^-1 W^T X``) in transposed form: ``M = X D^T (D D^T)^-1``."""
    return XDt @ _batched_gram_inverse(DDt).astype(XDt.dtype)


def _update_diffractions_mu(D, MtX, MtM):
    """Eq. 3 (``W <- W * X H^T / W H H^T``) in transposed form."""
    return D * MtX / np.maximum(MtM @ D, _EPS)


def _update_maps_mu(M, XDt, DDt):
    """Eq. 4 (``H <- H * W^T X / W^T W H``) in transposed form."""
    return M * XDt / np.maximum(M @ DDt, _EPS)


def _normalize_diffractions(D):
    """Scale every diffraction to unit sum (L1); returns ``(D, norms)`` with ``norms (R, k)``.

    With unit-sum diffractions the maps are in the units of the data (electrons per probe
    position).  Zero diffractions stay zero.
    """
    norms = D.sum(axis=2)
    safe = np.where(norms > 0, norms, 1).astype(D.dtype)
    return D / safe[:, :, None], norms


def _l1_change(new, old):
    """``||new - old||_1`` of every restart, ``(R,)`` float64.

    float32 pairwise summation (relative error ~1e-7), about 3x faster than accumulating the
    float32 differences in float64; these changes only feed ``history_`` and ``tol``.  A
    numba kernel does it without the temporary difference array when available.
    """
    if (_l1_rows is not None and new.dtype == old.dtype == np.float32
            and new.flags.c_contiguous and old.flags.c_contiguous):
        R = new.shape[0]
        out = np.empty(R, np.float64)
        _l1_rows(new.reshape(R, -1), old.reshape(R, -1), out)
        return out
    d = np.subtract(new, old)
    np.abs(d, out=d)
    return d.reshape(d.shape[0], -1).sum(axis=1).astype(np.float64)


try:  # numba comes with pyxem
    import numba as _numba
except ImportError:  # pragma: no cover
    _l1_rows = None
else:

    @_numba.njit(cache=True, nogil=True, fastmath=True)
    def _l1_rows(a, b, out):  # pragma: no cover
        """``out[r] = sum |a[r] - b[r]|`` (float32 blocks of 4096, float64 over blocks)."""
        R, n = a.shape
        for r in range(R):
            total = 0.0
            for s in range(0, n, 4096):
                x = a[r, s:s + 4096]
                y = b[r, s:s + 4096]
                acc = np.float32(0.0)
                for j in range(x.size):
                    acc += abs(x[j] - y[j])
                total += acc
            out[r] = total


def _squared_error(X2, M, XDt, D, DDt=None, MtM=None):
    """``||X - M D||_F^2`` per restart from products already at hand: ``(R,)`` float64.

    ``||X||^2 - 2 <M, X D^T> + <M^T M, D D^T>`` (no extra pass over ``X``).
    """
    # float32 pairwise summation of the elementwise products: relative error ~1e-7 (the
    # float64-accumulating einsum costs twice as much on large scans).
    cross = np.multiply(M, XDt).reshape(M.shape[0], -1).sum(axis=1).astype(np.float64)
    if MtM is None:
        MtM = M.transpose(0, 2, 1) @ M
    if DDt is None:
        DDt = D @ D.transpose(0, 2, 1)
    quad = np.einsum("rij,rij->r", MtM, DDt, dtype=np.float64)
    return np.maximum(X2 - 2.0 * cross + quad, 0.0)


def _nnls_maps(XDt, components, n_iter=300):
    """Non-negative least-squares maps on fixed diffractions, from ``X D^T``.

    Accelerated projected gradient (FISTA, Beck & Teboulle 2009) started from the clipped
    least-squares solution, vectorized over all samples; needs the data only through
    ``X D^T``.

    Parameters: ``XDt`` ``(N, k)`` (``X @ components.T``), ``components`` ``(k, F)``.
    Returns ``(N, k)``.
    """
    G = components @ components.T
    Ginv = _batched_gram_inverse(G[None])[0].astype(XDt.dtype)
    M = np.maximum(XDt @ Ginv, 0)
    lipschitz = float(np.linalg.eigvalsh(G.astype(np.float64)).max())
    if lipschitz <= 0:
        return np.zeros_like(XDt)
    step = np.float32(1.0 / lipschitz).astype(XDt.dtype)
    Y, t = M.copy(), 1.0
    for _ in range(n_iter):
        M_new = np.maximum(Y - step * (Y @ G - XDt), 0)
        t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        Y = M_new + ((t - 1.0) / t_new) * (M_new - M)
        M, t = M_new, t_new
    return M


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
    solver : {"als", "mu"}, default "als"
        ``"als"``: projected alternating least squares, eqs. 7-8 (the paper's protocol).
        ``"mu"``: multiplicative updates, eqs. 3-4; constraints act as projections after each
        update.
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
    refine_iter : int, default 5
        Compressed mode only: exact iterations (two passes over the data each) that continue
        the kept restart on the data after the iterations on the sketch.  They remove the
        sketch's bias: on the benchmark scan (58 x 58 x 128 x 128, k = 30, sketch rank 70,
        seed 1) the compressed error was 1.5 % above the exact mode's before them, 0.4 %
        after one, 0.16 % after three and 0.05 % after ten.  ``0`` keeps the sketch solution
        (with its one exact map update).
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
        Frobenius norm ``||X - maps @ components_||`` of the kept restart.
    history_ : dict of numpy.ndarray
        Per-iteration convergence of the kept restart, each ``(n_iter_,)``: ``"mse"``, the mean
        squared error over all matrix elements (in compressed mode against the sketch
        ``Q B``, then against the data for the ``refine_iter`` last); ``"w_change"`` and
        ``"h_change"``, the L1 norms ``||W(i+1) - W(i)||_1`` and ``||H(i+1) - H(i)||_1``
        (paper step 7, Fig. 7; ``nan`` at the first iteration).
    restart_errors_ : numpy.ndarray
        ``(n_restarts,)`` final Frobenius errors ``||X - maps @ components||`` of every
        restart, against the data in both modes.
    sketch_rank_ : int or None
        Rank ``l`` of the sketch in compressed mode, ``None`` in exact mode.
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
    ``X`` may be a dask array (``(n_samples, n_features)``, chunked along ``n_samples``): the
    fit then streams the chunks on every product with the data and never holds the whole
    matrix, on whatever dask scheduler is active (a ``dask.distributed.Client`` included);
    the maps ``(n_samples, k)`` and diffractions ``(k, n_features)`` of every restart are
    held in memory.  The same seed gives the same result as on the in-memory array, up to
    float32 summation order.

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
        "solver": [StrOptions({"als", "mu"})],
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
        "refine_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "show_progressbar": ["boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        solver="als",
        diffraction_constraint="continuity",
        map_constraint="smooth",
        signal_shape=None,
        navigation_shape=None,
        signal_mask=None,
        navigation_mask=None,
        center=None,
        ring_width=1.0,
        outlier_factor=2.0,
        map_kernel=None,
        probe_fwhm=None,
        scan_step=None,
        n_restarts=10,
        max_iter=500,
        tol=1e-4,
        compression=None,
        power_iterations=2,
        refine_iter=5,
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
        self.map_kernel = map_kernel
        self.probe_fwhm = probe_fwhm
        self.scan_step = scan_step
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.compression = compression
        self.power_iterations = power_iterations
        self.refine_iter = refine_iter
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
        if k > min(n_samples, n_features):
            raise ValueError(
                f"n_components={k} is larger than the data allow: at most "
                f"min(n_samples, n_features) = min({n_samples}, {n_features}) = "
                f"{min(n_samples, n_features)}. Choose a smaller number of components."
            )
        project_w = _make_diffraction_projection(self, n_features)
        project_h = _make_map_projection(self, n_samples)
        return k, project_w, project_h

    def _sketch_rank(self, k, shape):
        """Sketch rank ``l`` of ``compression`` (``None`` in exact mode)."""
        if self.compression is None:
            return None
        limit = min(shape)
        if self.compression == "auto":
            return min(k + 10, limit)
        rank = int(self.compression)
        if not k <= rank <= limit:
            raise ValueError(
                f"compression={rank} is not a usable sketch rank: it must lie between "
                f"n_components={k} and min(n_samples, n_features)={limit}. Use "
                "compression='auto' (k + 10) or None for the exact mode."
            )
        return rank

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, init_maps=None):
        """Learn the diffractions (and maps) of ``X``.

        Parameters
        ----------
        X : array_like or dask.array.Array
            ``(n_samples, n_features)`` non-negative data, one unfolded pattern per row.
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
        """
        self.fit_transform(X, init_maps=init_maps)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, init_maps=None):
        """Learn the factorization of ``X`` and return its maps.

        Parameters
        ----------
        X : array_like or dask.array.Array
            ``(n_samples, n_features)`` non-negative data, one unfolded pattern per row.  A
            dask array is streamed chunk by chunk (chunk it along ``n_samples``) and is
            never loaded whole.
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
        """
        if is_dask(X):
            data = DaskData(_check_dask_input(X, "ConstrainedNMF (input X)"))
            self.n_features_in_ = data.shape[1]
        else:
            X = validate_data(self, X, dtype=np.float32, order="C")
            check_non_negative(X, "ConstrainedNMF (input X)")
            data = InMemoryData(X)
        return self._fit_data(data, init_maps)

    def _fit_data(self, data, init_maps=None):
        """Fit on validated solver data (``_data.InMemoryData`` / ``DaskData``)."""
        k, project_w, project_h = self._check_params(data.shape)
        if init_maps is not None:
            init_maps = np.asarray(init_maps, dtype=np.float32)
            if init_maps.shape != (data.shape[0], k) or not np.isfinite(init_maps).all():
                raise ValueError(
                    f"init_maps must be finite with shape (n_samples, n_components) = "
                    f"{(data.shape[0], k)}; got shape {init_maps.shape}."
                )
        rank = self._sketch_rank(k, data.shape)
        rng = check_random_state(self.random_state)
        maps, components, info = _fit_batched(
            data,
            k,
            sketch_rank=rank,
            power_iterations=self.power_iterations,
            refine_iter=self.refine_iter,
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
        self.components_ = components
        self.n_components_ = k
        self.n_iter_ = info["n_iter"]
        self.reconstruction_err_ = info["error"]
        self.restart_errors_ = info["restart_errors"]
        self.history_ = info["history"]
        self.sketch_rank_ = rank
        return maps

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
        """
        check_is_fitted(self)
        if is_dask(X):
            X = _check_dask_input(X, "ConstrainedNMF.transform (input X)")
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but ConstrainedNMF is expecting "
                    f"{self.n_features_in_} features as input."
                )
            X = DaskData(X).X
            return X.map_blocks(
                _chunk_nnls_maps, self.components_,
                chunks=(X.chunks[0], (self.components_.shape[0],)), dtype=np.float32,
            )
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        check_non_negative(X, "ConstrainedNMF.transform (input X)")
        return _nnls_maps(X @ self.components_.T, self.components_)

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
    return _nnls_maps(x @ components.T, components)


def _check_dask_input(X, name):
    """Shape and dtype checks of a dask data matrix, and one streamed value check.

    Unsigned-integer data need no pass; float or signed data are checked for non-finite and
    negative values in a single pass before the fit.

    Raises
    ------
    ValueError
        On a shape other than 2D, a non-real dtype, NaN/inf or negative values.
    """
    import dask

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2D (n_samples, n_features); got shape {X.shape}.")
    if X.dtype.kind not in "uifb":
        raise ValueError(f"{name} must hold real numbers; got dtype {X.dtype}.")
    if X.dtype.kind in "ub":
        return X
    # min and max in one pass: NaN propagates into both, inf shows in one of them.
    vmin, vmax = (float(v) for v in dask.compute(X.min(), X.max()))
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise ValueError(f"{name} holds NaN or infinite values (min {vmin}, max {vmax}).")
    if vmin < 0:
        raise ValueError(f"Negative values in data passed to {name} (minimum {vmin:g}).")
    return X


class _DiffractionProjection:
    """``[.]_W`` of an estimator, for ``(m, n_features)`` stacks of diffractions.

    Calling it projects diffractions in the data's pixel order.  :attr:`order` and
    :meth:`project_normalize` serve the compressed solver, which keeps its diffractions in
    ring-sorted pixel order (every ring contiguous) and fuses the projection with the unit-sum
    normalization and the L1 change.
    """

    def __init__(self, binning=None, outlier_factor=2.0):
        self.binning = binning
        self.outlier_factor = float(outlier_factor)
        self.order = None if binning is None else ring_order(binning)[0]

    def __call__(self, D):
        """Project ``(m, n_features)`` diffractions in the data's pixel order."""
        if self.binning is None:
            return np.maximum(D, 0)
        return continuity_projection(D, self.binning, self.outlier_factor)

    def project_normalize(self, D, old):
        """In place on ring-ordered ``D (m, n_features)``: project, normalize to unit sum.

        Returns ``(sums, l1)``, each ``(m,)`` float64: the row sums before normalization and
        ``||D_new - old||_1`` per row (see ``project_normalize_sorted``).
        """
        return project_normalize_sorted(D, self.binning, self.outlier_factor, old)


def _make_diffraction_projection(est, n_features):
    """The ``[.]_W`` of ``est`` for ``(m, n_features)`` stacks, after validating geometry."""
    if est.diffraction_constraint is None:
        return _DiffractionProjection()
    if est.signal_shape is None:
        raise ValueError(
            "diffraction_constraint='continuity' needs the pattern geometry: pass "
            "signal_shape=(ny, nx) (and center=(cx, cy) if the pattern centre is not the "
            "middle), or use diffraction_constraint=None."
        )
    shape = tuple(int(n) for n in est.signal_shape)
    if len(shape) != 2:
        raise ValueError(f"signal_shape must be (ny, nx); got {est.signal_shape!r}.")
    binning = RingBinning(shape, est.center, est.ring_width, est.signal_mask)
    if binning.labels.size != n_features:
        masked = "" if est.signal_mask is None else " minus the masked pixels"
        raise ValueError(
            f"X has {n_features} features but signal_shape {shape}{masked} gives "
            f"{binning.labels.size}; pass the pattern shape and signal_mask of the data."
        )
    return _DiffractionProjection(binning, est.outlier_factor)


def _make_map_projection(est, n_samples):
    """The ``[.]_H`` callable for ``(m, n_samples)`` stacks, after validating geometry."""
    if est.map_constraint is None:
        return lambda M: np.maximum(M, 0)
    if est.navigation_shape is None:
        raise ValueError(
            "map_constraint='smooth' needs the scan geometry: pass navigation_shape=(ny, nx), "
            "or use map_constraint=None."
        )
    shape = tuple(int(n) for n in est.navigation_shape)
    if len(shape) != 2:
        raise ValueError(f"navigation_shape must be (ny, nx); got {est.navigation_shape!r}.")
    valid = None
    expected = int(np.prod(shape))
    if est.navigation_mask is not None:
        nmask = np.asarray(est.navigation_mask, dtype=bool)
        if nmask.shape != shape:
            raise ValueError(
                f"navigation_mask has shape {nmask.shape} but the scan is {shape}; give a "
                "boolean mask of the scan shape."
            )
        valid = ~nmask
        expected = int(valid.sum())
    if expected != n_samples:
        raise ValueError(
            f"X has {n_samples} samples but navigation_shape {shape} (with its mask) gives "
            f"{expected}; pass the scan shape and navigation_mask of the data."
        )
    kernel = resolve_map_kernel(est.map_kernel, est.probe_fwhm, est.scan_step)

    def project(M):
        """``[.]_H`` of a ``(m, n_positions)`` stack of maps (Kimoto et al. 2025)."""
        return smooth_maps(M, shape, kernel, valid)

    if valid is None and _separable(kernel) is not None:
        # The same projection on the solver's (R, N, k) layout, without transposes.
        project.stack = lambda M3, out=None: smooth_maps_stack(M3, shape, kernel, out=out)
    return project


def _progress(iterable, show):
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="Constrained NMF", unit="it", leave=False)


def _fit_batched(
    data,
    k,
    *,
    n_restarts,
    solver,
    max_iter,
    tol,
    project_w,
    project_h,
    rng,
    show_progressbar=False,
    polish_maps=False,
    init_maps=None,
    sketch_rank=None,
    power_iterations=2,
    refine_iter=0,
):
    """Run every restart of the protocol together; keep the best (paper steps 2-9).

    Parameters
    ----------
    data : InMemoryData, DaskData or SketchedData
        ``(N, F)`` float32 data, seen only through its two products (``_data.py``).
    k : int
        Number of components.
    sketch_rank : int, optional
        Sketch ``data`` at this rank (with ``power_iterations``) after drawing the initial
        maps, so that the exact and the compressed modes start from the same maps for the
        same seed.
    refine_iter : int
        With sketched data: exact iterations continuing the kept restart on the data.
    project_w : _DiffractionProjection
        ``[.]_W`` on ``(m, F)`` stacks.
    project_h : callable
        ``[.]_H`` on ``(m, N)`` stacks (optionally with a ``stack`` attribute acting on the
        solver's ``(R, N, k)`` layout).
    polish_maps : bool
        Replace the kept maps by the exact non-negative least-squares maps on the final
        diffractions (only meaningful without a map constraint).
    init_maps : numpy.ndarray, optional
        ``(N, k)`` non-negative initial maps for the first restart (a warm start); the other
        restarts start from random maps.

    Returns
    -------
    maps : numpy.ndarray
        ``(N, k)`` float32.
    components : numpy.ndarray
        ``(k, F)`` float32, unit sum, sorted by decreasing map L2 norm (step 9).
    info : dict
        ``n_iter``, ``error`` and ``restart_errors`` (Frobenius, against the full data),
        ``history``.

    Notes
    -----
    With sketched data the iterations run against ``Q B`` (ALS: ``_iterate_sketched_als``,
    whose diffractions stay in ring-sorted pixel order); then one exact pass ``X D^T`` over
    the data serves every restart: each gets one exact map update and its exact error, and
    the restart with the lowest exact error is kept.  So the kept maps, the constraints and
    every reported error refer to the full data.
    """
    N, F = data.shape
    R = n_restarts
    dtype = np.dtype(np.float32)
    mean = data.stats()[1]
    scale = np.sqrt(max(mean, _EPS) / k)
    # Step 2: non-negative random maps for every restart.
    M = (rng.random_sample((R, N, k)) * scale).astype(dtype)
    if init_maps is not None:
        M[0] = np.maximum(np.asarray(init_maps, dtype=dtype), 0)
    D = None
    if solver == "mu":
        D = (rng.random_sample((R, k, F)) * scale).astype(dtype)
        D, norms = _normalize_diffractions(D)
        M *= norms[:, None, :].astype(dtype)
    if sketch_rank is not None:
        data = sketch(data, sketch_rank, power_iterations, rng)

    apply_h = _stack_projection(project_h, k)

    def update_maps(M_, XDt, DDt):
        """Steps 5-6: map update (eq. 8 or eq. 4) and ``[.]_H``."""
        if solver == "als":
            return apply_h(_update_maps_als(XDt, DDt))
        return apply_h(_update_maps_mu(M_, XDt, DDt))

    hist = np.full((max_iter, 3, R), np.nan)
    if solver == "als" and isinstance(data, SketchedData):
        M, D, err, n_iter = _iterate_sketched_als_threads(
            data, M, project_w, apply_h, max_iter, tol, hist, show_progressbar
        )
    else:
        M, D, err, n_iter = _iterate(
            data, M, D, solver, project_w, update_maps,
            _progress(range(max_iter), show_progressbar), tol, hist,
        )
        n_iter = np.full(R, n_iter)

    exact = data.exact
    if exact is not data:
        # Step 8 on the full data: one exact pass X D^T for every restart, the exact map
        # update of each, and its exact error.
        XDt = _products_with_data(exact, D)
        DDt = D @ D.transpose(0, 2, 1)
        M = update_maps(M, XDt, DDt)
        err = _squared_error(exact.stats()[0], M, XDt, D, DDt)
    # Step 8: keep the best restart by final error.
    best = int(np.argmin(err))
    M_best, D_best = M[best], D[best]
    restart_errors = np.sqrt(err)
    n_iter = n_iter[best]
    history = hist[:n_iter, :, best]
    if exact is not data and refine_iter > 0:
        # Continue the kept restart on the data: removes the sketch's bias.
        h = np.full((refine_iter, 3, 1), np.nan)
        M1, D1, err1, n1 = _iterate(
            exact, M_best[None], D_best[None], solver, project_w, update_maps,
            range(refine_iter), tol, h,
        )
        M_best, D_best = M1[0], D1[0]
        restart_errors[best] = np.sqrt(err1[0])
        history = np.concatenate([history, h[:n1, :, 0]])
        n_iter += n1
    if polish_maps:
        # Without [.]_H the clipped least-squares maps only approximate the non-negative
        # least-squares maps on the final diffractions: finish them exactly, so that
        # fit_transform(X) == transform(X) (one exact product X D^T).
        XDt = _products_with_data(exact, D_best[None])
        M_best = _nnls_maps(XDt[0], D_best)
        DDt = D_best[None] @ D_best[None].transpose(0, 2, 1)
        err_best = _squared_error(exact.stats()[0], M_best[None], XDt, D_best[None], DDt)[0]
        restart_errors[best] = np.sqrt(err_best)
    # Step 9: sort by the L2 norm of the maps.
    order = np.argsort(-np.linalg.norm(M_best.astype(np.float64), axis=0), kind="stable")
    history = {
        "mse": history[:, 0].copy(),
        "w_change": history[:, 1].copy(),
        "h_change": history[:, 2].copy(),
    }
    info = {
        "n_iter": int(n_iter),
        "error": float(restart_errors[best]),
        "restart_errors": restart_errors,
        "history": history,
    }
    return (
        np.ascontiguousarray(M_best[:, order]),
        np.ascontiguousarray(D_best[order]),
        info,
    )


def _stack_projection(project_h, k):
    """``[.]_H`` on the solver's ``(R, N, k)`` maps: ``apply(M, out=None)``.

    ``out`` is a hint: a fast path may write the result there (callers use the returned
    array).
    """
    stack = getattr(project_h, "stack", None)
    if stack is not None:
        return stack

    def apply(M, out=None):
        """``[.]_H`` through the ``(R * k, N)`` stack layout and back."""
        r, N = M.shape[:2]
        flat = M.transpose(0, 2, 1).reshape(r * k, N)
        return np.ascontiguousarray(project_h(flat).reshape(r, k, N).transpose(0, 2, 1))

    return apply


def _converged(tol, dw, dh, diffraction_sums, M):
    """Every restart's relative L1 changes of W and H below ``tol`` (``False`` if ``tol=0``).

    ``diffraction_sums`` ``(R, k)``: the rows are normalized to unit sum, so ``||W||_1`` is
    the number of non-zero rows; ``M`` ``(R, N, k)`` non-negative maps (summed only when
    ``tol > 0``).
    """
    if not tol > 0:
        return False
    rel_w = dw / np.maximum((diffraction_sums > 0).sum(axis=1), _EPS)
    rel_h = dh / np.maximum(M.sum(axis=(1, 2), dtype=np.float64), _EPS)
    return bool((rel_w < tol).all() and (rel_h < tol).all())


def _iterate(data, M, D, solver, project_w, update_maps, iterations, tol, hist):
    """Protocol steps 3-7 on any solver data, every restart at once.

    Returns ``(M (R, N, k), D (R, k, F), err (R,), n_iter)`` with ``err`` the squared errors
    against ``data``; ``hist`` ``(max_iter, 3, R)`` receives MSE and L1 changes.
    """
    R, N, k = M.shape
    F = data.shape[1]
    X2 = data.stats()[0]
    n_iter = 0
    err = dw = None
    MtM = M.transpose(0, 2, 1) @ M
    for it in iterations:
        # Steps 3-4: diffractions, [.]_W, unit-sum normalization.  MtM is M^T M of the
        # current maps, carried over from the error of the previous iteration.
        MtX = _products_with_data_t(data, M)
        if solver == "als":
            D_new = _update_diffractions_als(MtX, MtM)
        else:
            D_new = _update_diffractions_mu(D, MtX, MtM)
        del MtX
        D_new = project_w(D_new.reshape(R * k, F)).reshape(R, k, F)
        D_new, norms = _normalize_diffractions(D_new)
        if solver == "mu":  # keep the product unchanged by the normalization
            M = M * norms[:, None, :].astype(M.dtype)
        # Steps 5-6: maps and [.]_H.
        XDt = _products_with_data(data, D_new)
        DDt = D_new @ D_new.transpose(0, 2, 1)
        M_new = update_maps(M, XDt, DDt)
        MtM_new = M_new.transpose(0, 2, 1) @ M_new
        # Step 7: MSE and L1 norms of the changes.
        err = _squared_error(X2, M_new, XDt, D_new, DDt, MtM_new)
        hist[it, 0] = err / (N * F)
        dh = _l1_change(M_new, M)
        hist[it, 2] = dh
        if D is not None:
            dw = _l1_change(D_new, D)
            hist[it, 1] = dw
        D, M, MtM = D_new, M_new, MtM_new
        n_iter = it + 1
        if it > 0 and _converged(tol, dw, dh, norms, M):
            break
    return M, D, err, n_iter


def _blas_threads():
    """Threads of the BLAS library numpy uses (1 when unknown)."""
    from threadpoolctl import threadpool_info

    counts = [info.get("num_threads", 1) for info in threadpool_info()
              if info.get("user_api") == "blas"]
    return max(1, min(counts)) if counts else 1


def _iterate_sketched_als_threads(data, M, project_w, apply_h, max_iter, tol, hist,
                                  show_progressbar):
    """:func:`_iterate_sketched_als` with the restarts split over the BLAS threads.

    Against the sketch every product is small (``l`` ~ 2k), where a multithreaded BLAS call
    mostly synchronizes its threads and the fused ``[.]_W`` kernel is serial.  The restarts
    are therefore split into as many groups as BLAS has threads; each group runs in its own
    thread (the products and the kernels release the GIL) with single-threaded BLAS.  The
    arithmetic of every restart is unchanged; each group stops on its own ``tol``.

    Returns ``(M, D, err, n_iter)`` as :func:`_iterate_sketched_als`, ``n_iter`` ``(R,)``.
    """
    R = M.shape[0]
    n_groups = min(R, _blas_threads())
    bounds = np.linspace(0, R, n_groups + 1).astype(int)
    if n_groups == 1:
        out = _iterate_sketched_als(data, M, project_w, apply_h,
                                    _progress(range(max_iter), show_progressbar), tol, hist)
        return out[:3] + (np.full(R, out[3]),)
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_groups) as pool:
        futures = [
            pool.submit(
                _iterate_sketched_als, data, M[a:b], project_w, apply_h,
                _progress(range(max_iter), show_progressbar and g == 0), tol,
                hist[:, :, a:b],
            )
            for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        ]
        parts = [f.result() for f in futures]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([np.full(b - a, p[3]) for p, a, b in zip(parts, bounds[:-1], bounds[1:])]),
    )


def _iterate_sketched_als(data, M, project_w, apply_h, iterations, tol, hist):
    """Protocol steps 3-7 (ALS, eqs. 7-8) against the sketch ``X ~= Q B``, every restart.

    The products are re-associated so that no ``(R k, F)`` intermediate other than the
    diffractions themselves is formed:

    * ``D = [(M^T M)^-1 (M^T Q)] B`` -- one ``(R k, l) @ (l, F)`` product;
    * ``[.]_W``, unit-sum normalization and ``||W(i+1) - W(i)||_1`` in one fused sweep, in
      ring-sorted pixel order (``B``'s columns are permuted once);
    * ``M = Q [(B D^T) (D D^T)^-1]`` -- one ``(N, l) @ (l, k)`` product per restart, then
      ``[.]_H``;
    * the error's cross term ``<M, Q B D^T> = <M^T Q, (B D^T)^T>`` from ``M^T Q``, which the
      next iteration's diffraction update needs anyway.

    Returns ``(M (R, N, k), D (R, k, F), err (R,), n_iter)``; ``D`` in the data's pixel
    order, ``err`` the squared errors against the sketch.
    """
    R, N, k = M.shape
    F = data.shape[1]
    Q, B = data.Q, data.B
    order = project_w.order
    if order is not None:
        B = np.ascontiguousarray(B[:, order])
    X2 = data.stats()[0]
    dtype = M.dtype
    # Reused buffers: fresh scan- or pattern-sized temporaries cost page faults every
    # iteration (~0.15 ms per MB).
    bufs = [np.zeros((R * k, F), dtype), np.zeros((R * k, F), dtype)]
    raw = np.empty((R, N, k), dtype)
    maps_bufs = [np.empty((R, N, k), dtype), np.empty((R, N, k), dtype)]
    MtQ = np.matmul(M.transpose(0, 2, 1), Q)  # (R, k, l)
    MtM = M.transpose(0, 2, 1) @ M
    err = None
    n_iter = 0
    for it in iterations:
        # Steps 3-4: eq. 7 on the sketch, [.]_W, unit sum, L1 change (fused).
        D_flat, D_old = bufs[it % 2], bufs[(it + 1) % 2]
        C = _batched_gram_inverse(MtM).astype(dtype) @ MtQ
        np.matmul(C.reshape(R * k, -1), B, out=D_flat)
        sums, dw_rows = project_w.project_normalize(D_flat, D_old)
        D = D_flat.reshape(R, k, F)
        # Steps 5-6: eq. 8 on the sketch, [.]_H.
        BDt = (B @ D_flat.T).reshape(-1, R, k).transpose(1, 0, 2)  # (R, l, k)
        DDt = D @ D.transpose(0, 2, 1)
        P = BDt @ _batched_gram_inverse(DDt).astype(dtype)
        np.matmul(Q, P, out=raw)
        M_new = apply_h(raw, out=maps_bufs[it % 2])
        MtM_new = M_new.transpose(0, 2, 1) @ M_new
        MtQ_new = np.matmul(M_new.transpose(0, 2, 1), Q)
        # Step 7: MSE and L1 norms of the changes.
        cross = np.einsum("rkl,rlk->r", MtQ_new, BDt, dtype=np.float64)
        quad = np.einsum("rij,rij->r", MtM_new, DDt, dtype=np.float64)
        err = np.maximum(X2 - 2.0 * cross + quad, 0.0)
        hist[it, 0] = err / (N * F)
        dh = _l1_change(M_new, M)
        hist[it, 2] = dh
        dw = dw_rows.reshape(R, k).sum(axis=1)
        if it > 0:
            hist[it, 1] = dw
        M, MtM, MtQ = M_new, MtM_new, MtQ_new
        n_iter = it + 1
        if it > 0 and _converged(tol, dw, dh, sums.reshape(R, k), M):
            break
    D = bufs[(n_iter - 1) % 2].reshape(R, k, F)
    if order is not None:
        unsorted = np.empty_like(D)
        unsorted[:, :, order] = D
        D = unsorted
    return M, D, err, n_iter
