"""All pattern geometry: centre, radii, rings and the r-phi transform.

Shared by the continuity constraint (:class:`RingBinning`), the similarity of diffractions
(:func:`polar_transform`, :func:`polar_radii`, and :func:`as_pattern_stack`, the one reading
of a stack of patterns, also used by :mod:`stemnmf_hs.clustering`) and the signal layer
(:func:`default_center`, the one geometric-centre rule).  Rotation of patterns is
:func:`stemnmf_hs.similarity.rotate_patterns`.  Input rules (a centre's two numbers, a radius
``>= 0``, a ``(ny, nx)`` shape) come from :mod:`stemnmf_hs._validation`.

Math module: arrays in, arrays out; never imports HyperSpy.

Conventions
-----------
* A pattern is a 2D array of shape ``(ny, nx)`` (rows, columns), the order of HyperSpy's
  signal data.  A stack of patterns is ``(k, ny, nx)`` or, unfolded, ``(k, ny * nx)`` in
  C order.
* The pattern centre is ``(cx, cy)`` in **pixels**, column first, as pyxem's
  ``s.calibration.center`` returns it.  ``(0, 0)`` is the centre of the first pixel.
* A signal mask is a boolean ``(ny, nx)`` array, ``True`` where a pixel is *excluded*
  (HyperSpy's ``signal_mask`` convention), e.g. the direct beam.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._validation import (
    check_int,
    check_mask,
    check_nonnegative,
    check_real,
    check_shape,
    check_spline_order,
    finite_array,
)

#: Largest n_features * n_rings for which the ring one-hot matrix is held dense (64 MiB).
_DENSE_LIMIT = 1 << 24

__all__ = [
    "RingBinning",
    "as_pattern_stack",
    "default_center",
    "inscribed_radius",
    "polar_radii",
    "polar_transform",
    "radius_map",
    "resolve_center",
]


def default_center(signal_shape):
    """Geometric centre of a pattern.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.

    Returns
    -------
    tuple of float
        ``(cx, cy) = ((nx - 1) / 2, (ny - 1) / 2)`` in pixels.

    Examples
    --------
    >>> default_center((128, 64))
    (31.5, 63.5)
    """
    ny, nx = signal_shape
    return ((nx - 1) / 2.0, (ny - 1) / 2.0)


def resolve_center(center, signal_shape):
    """Validated pattern centre ``(cx, cy)`` in pixels; the geometric centre when ``None``.

    Parameters
    ----------
    center : array_like of 2 float or None
        ``(cx, cy)``, column first (pyxem's ``calibration.center`` convention).
    signal_shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        If ``center`` is not two finite numbers.

    Examples
    --------
    >>> resolve_center(None, (5, 5)), resolve_center([1, 2], (5, 5))
    ((2.0, 2.0), (1.0, 2.0))
    """
    if center is None:
        return default_center(signal_shape)
    c = finite_array(center, ravel=True)
    if c is None:
        raise ValueError(
            f"center must be two finite numbers (cx, cy) in pixels, column first, got "
            f"{center!r}."
        )
    return float(c[0]), float(c[1])


def radius_map(signal_shape, center=None):
    """Distance of every pixel from the pattern centre.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels; the geometric centre when ``None``.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float64 radii in pixels.

    Examples
    --------
    >>> radius_map((3, 3)).tolist()[0]  # first row, centre (1, 1)
    [1.4142135623730951, 1.0, 1.4142135623730951]
    """
    ny, nx = signal_shape
    cx, cy = resolve_center(center, signal_shape)
    yy, xx = np.mgrid[0:ny, 0:nx]
    return np.hypot(xx - cx, yy - cy)


class RingBinning:
    """Assignment of pattern pixels to concentric rings about the pattern centre.

    Pixel ``(y, x)`` belongs to ring ``floor(r / ring_width)`` with ``r`` its distance from
    the centre.  Built once per decomposition and reused every iteration: ring sums of a
    whole stack of patterns are one sparse matrix product.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``, pixels.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels; the geometric centre when ``None``.
    ring_width : float, default 1.0
        Ring width in pixels (Kimoto et al. 2025 use one-pixel radial steps of the r-phi
        transform).
    signal_mask : numpy.ndarray of bool, optional
        ``(ny, nx)``, ``True`` for excluded pixels.  The binning then describes the
        ``n_features = (~signal_mask).sum()`` kept pixels in C order, as HyperSpy hands them
        to an estimator.

    Attributes
    ----------
    labels : numpy.ndarray of int
        ``(n_features,)`` ring index of every kept pixel.
    n_rings : int
        Number of rings that hold at least one kept pixel.
    counts : numpy.ndarray of float
        ``(n_rings,)`` number of kept pixels per ring.

    Raises
    ------
    ValueError
        If ``ring_width`` is not positive or the mask shape differs from ``signal_shape``.

    Examples
    --------
    >>> rings = RingBinning((5, 5))
    >>> rings.n_rings, rings.ring_means(np.ones((1, 25), np.float32)).shape
    (3, (1, 3))
    """

    def __init__(self, signal_shape, center=None, ring_width=1.0, signal_mask=None):
        if not ring_width > 0:
            raise ValueError(f"ring_width must be > 0 pixels, got {ring_width!r}.")
        signal_shape = tuple(int(n) for n in signal_shape)
        r = radius_map(signal_shape, center).ravel()
        signal_mask = check_mask(signal_mask, signal_shape)
        if signal_mask is not None:
            r = r[~signal_mask.ravel()]
        raw = np.floor(r / ring_width).astype(np.int64)
        # Relabel to consecutive ring indices so that empty rings cost nothing.
        _, self.labels = np.unique(raw, return_inverse=True)
        self.labels = self.labels.ravel()
        self.n_rings = int(self.labels.max()) + 1 if self.labels.size else 0
        n = self.labels.size
        onehot = sp.csr_matrix(
            (np.ones(n, dtype=np.float32), (np.arange(n), self.labels)),
            shape=(n, self.n_rings),
        )
        # Small geometries: a dense one-hot turns ring sums into one multithreaded sgemm;
        # large ones keep the sparse matrix (memory ~ n_features, not n_features * n_rings).
        self._onehot = onehot.toarray() if n * self.n_rings <= _DENSE_LIMIT else onehot
        self.counts = np.bincount(self.labels, minlength=self.n_rings).astype(np.float32)

    def ring_sums(self, patterns):
        """Sum of every pattern over every ring.

        Parameters
        ----------
        patterns : numpy.ndarray
            ``(k, n_features)`` unfolded (masked) patterns.

        Returns
        -------
        numpy.ndarray
            ``(k, n_rings)`` ring sums, same dtype family as the input.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.polar import RingBinning
        >>> rings = RingBinning((5, 5), ring_width=1.5)
        >>> rings.ring_sums(np.ones((1, 25)))
        array([[ 9., 16.]])
        >>> rings.counts
        array([ 9., 16.], dtype=float32)
        """
        patterns = np.asarray(patterns)
        if isinstance(self._onehot, np.ndarray):
            return patterns @ self._onehot.astype(patterns.dtype, copy=False)
        # Sparse operand on the left on a C-contiguous dense block (scipy's fast CSR path).
        return np.asarray(self._onehot.T @ np.ascontiguousarray(patterns.T)).T

    def ring_means(self, patterns):
        """Mean of every pattern over every ring.

        Parameters
        ----------
        patterns : numpy.ndarray
            ``(k, n_features)``.

        Returns
        -------
        numpy.ndarray
            ``(k, n_rings)`` ring means.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.polar import RingBinning
        >>> rings = RingBinning((5, 5), ring_width=1.5)
        >>> rings.ring_means(2 * np.ones((1, 25)))
        array([[2., 2.]])
        """
        return self.ring_sums(patterns) / self.counts

    def expand(self, ring_values):
        """Broadcast per-ring values back to pixels.

        Parameters
        ----------
        ring_values : numpy.ndarray
            ``(k, n_rings)``.

        Returns
        -------
        numpy.ndarray
            ``(k, n_features)``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.polar import RingBinning
        >>> rings = RingBinning((3, 3))
        >>> rings.n_rings
        2
        >>> rings.expand(np.array([[10.0, 20.0]])).reshape(3, 3)
        array([[20., 20., 20.],
               [20., 10., 20.],
               [20., 20., 20.]])
        """
        return ring_values[:, self.labels]


def inscribed_radius(center, signal_shape):
    """Default largest radius of the r-phi transform: the largest full circle in the pattern.

    Parameters
    ----------
    center : tuple of float or None
        ``(cx, cy)`` in pixels; the geometric centre when ``None``.
    signal_shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    float
        ``floor(min(cx, cy, nx - 1 - cx, ny - 1 - cy))`` pixels.

    Raises
    ------
    ValueError
        If the centre lies outside the pattern (the default is then undefined).

    Examples
    --------
    >>> inscribed_radius(None, (64, 64)), inscribed_radius((10, 40), (64, 64))
    (31.0, 10.0)
    """
    ny, nx = signal_shape
    cx, cy = resolve_center(center, signal_shape)
    inscribed = min(cx, cy, nx - 1 - cx, ny - 1 - cy)
    if inscribed < 0:
        raise ValueError(
            f"the centre ({cx}, {cy}) lies outside the {ny} x {nx} pattern, so the "
            "default r_max is undefined; give r_max explicitly."
        )
    return float(np.floor(inscribed + 1e-9))


def polar_radii(signal_shape, center=None, n_radial=None, r_max=None):
    """Radii sampled by :func:`polar_transform`, in pixels.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(ny, nx)``.
    center : tuple of float, optional
        ``(cx, cy)``; the geometric centre when ``None``.
    n_radial : int, optional
        Number of radii; default ``floor(r_max) + 1`` (1-px steps from 0).
    r_max : float, optional
        Largest radius; default :func:`inscribed_radius`.

    Returns
    -------
    numpy.ndarray
        ``(n_radial,)`` float64: ``0, 1, ..., floor(r_max)`` or ``linspace(0, r_max,
        n_radial)``.

    Raises
    ------
    ValueError
        If ``r_max`` is negative or not finite, ``n_radial`` not an integer >= 1, or the
        default ``r_max`` is undefined.

    Examples
    --------
    >>> polar_radii((9, 9))
    array([0., 1., 2., 3., 4.])
    >>> polar_radii((9, 9), n_radial=3, r_max=2.0)
    array([0., 1., 2.])
    """
    if r_max is None:
        r_max = inscribed_radius(center, signal_shape)
    else:
        r_max = check_nonnegative(r_max, "r_max")
    if n_radial is None:
        return np.arange(int(np.floor(r_max + 1e-9)) + 1, dtype=np.float64)
    return np.linspace(0.0, r_max, check_int(n_radial, "n_radial", 1))


def as_pattern_stack(diffractions, signal_shape=None, signal_mask=None, name="diffractions"):
    """Refold diffractions to a float64 ``(k, ny, nx)`` stack (masked pixels = 0).

    The one reading of a stack of patterns for :mod:`stemnmf_hs.similarity` and
    :mod:`stemnmf_hs.clustering`: a ``(k, ny, nx)`` stack, or unfolded ``(k, ny * nx)`` rows,
    or ``(k, n_kept)`` rows of the pixels a ``signal_mask`` keeps (HyperSpy's masked
    decomposition).

    Parameters
    ----------
    diffractions : array_like
        ``(k, ny, nx)``, ``(k, ny * nx)`` or ``(k, n_kept)``, real and finite.
    signal_shape : tuple of int, optional
        ``(ny, nx)``; needed for unfolded rows unless ``signal_mask`` gives it.
    signal_mask : array_like of bool, optional
        ``(ny, nx)``, ``True`` for excluded pixels; set to 0 in the stack.
    name : str, default "diffractions"
        How messages name the input.

    Returns
    -------
    numpy.ndarray
        ``(k, ny, nx)`` float64, a copy.

    Raises
    ------
    ValueError
        On shapes that do not fit, no component, or NaN / infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.polar import as_pattern_stack
    >>> mask = np.zeros((2, 2), bool)
    >>> mask[0, 0] = True
    >>> as_pattern_stack(np.ones((1, 3)), signal_mask=mask).tolist()
    [[[0.0, 1.0], [1.0, 1.0]]]
    """
    arr = check_real(diffractions, name)
    if signal_shape is not None:
        signal_shape = check_shape(signal_shape, "signal_shape")
    mask = None
    if signal_mask is not None:
        mask = np.asarray(signal_mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(
                f"signal_mask must be a 2D (ny, nx) boolean array, got shape {mask.shape}."
            )
        if signal_shape is None:
            signal_shape = mask.shape
        mask = check_mask(mask, signal_shape)
    if arr.ndim == 3:
        if signal_shape is not None and arr.shape[1:] != signal_shape:
            raise ValueError(
                f"{name} has pattern shape {arr.shape[1:]} but signal_shape is "
                f"{signal_shape}."
            )
        stack = np.array(arr, dtype=np.float64)
    elif arr.ndim == 2:
        if signal_shape is None:
            raise ValueError(
                f"{name} is unfolded with shape {arr.shape}; give signal_shape=(ny, nx) "
                "to refold it, or pass a (k, ny, nx) stack."
            )
        ny, nx = signal_shape
        n = arr.shape[1]
        if n == ny * nx:
            stack = np.array(arr, dtype=np.float64).reshape(arr.shape[0], ny, nx)
        elif mask is not None and n == int((~mask).sum()):
            stack = np.zeros((arr.shape[0], ny, nx), dtype=np.float64)
            stack[:, ~mask] = arr
        else:
            kept = "" if mask is None else f" or the {int((~mask).sum())} unmasked pixels"
            raise ValueError(
                f"{name} has {n} features per component but signal_shape {signal_shape} "
                f"holds {ny * nx} pixels{kept}; check signal_shape / signal_mask."
            )
    else:
        raise ValueError(
            f"{name} must be (k, ny, nx) or unfolded (k, n_features), got shape {arr.shape}."
        )
    if stack.shape[0] < 1:
        raise ValueError(f"{name} holds no component (k = 0).")
    if not np.all(np.isfinite(stack)):
        raise ValueError(f"{name} contain NaN or infinite values; clean them first.")
    if mask is not None:
        stack[:, mask] = 0.0
    return stack


def polar_transform(
    patterns,
    center=None,
    n_radial=None,
    n_azimuthal=360,
    r_max=None,
    signal_mask=None,
    order=1,
    return_weights=False,
):
    r"""r-phi (polar) transform of one pattern or a stack of patterns.

    Every pattern is resampled on a polar grid about ``center`` with one vectorized
    :func:`scipy.ndimage.map_coordinates` call over the whole stack (the component index is
    an extra, integer-valued interpolation coordinate).  This is the
    :math:`w_k(u, v) \to w'_k(r, \varphi)` transform of Kimoto et al., Sci. Rep. 15, 39143
    (2025), Fig. 4b, on which the diffraction similarity of their eqs. (10)-(11) is built.

    Geometry and sign convention
    ----------------------------
    Sample ``[i_r, i_phi]`` of the output lies at radius ``r = radii[i_r]`` (pixels) and
    azimuth ``phi = i_phi * 360 / n_azimuthal`` (degrees, ``0 <= phi < 360``), i.e. at the
    pattern position

    ``x = cx + r * cos(phi)``,  ``y = cy - r * sin(phi)``  (``x`` = column, ``y`` = row).

    ``phi`` is measured from the ``+x`` (column) axis **counter-clockwise as the pattern is
    displayed** with row 0 at the top (HyperSpy / matplotlib ``origin="upper"``): ``phi = 90``
    points *up* on screen, towards row 0.  Consequently rotating a pattern counter-clockwise
    on screen by ``theta`` degrees (as :func:`stemnmf_hs.similarity.rotate_patterns` does for
    a positive angle) rolls its polar image by ``+theta`` along ``phi``:
    ``polar_rotated[:, i_phi] = polar[:, i_phi - theta / step]``.

    Radii are ``0, 1, 2, ..., floor(r_max)`` pixels (1-px steps) when ``n_radial`` is
    ``None``, else ``numpy.linspace(0, r_max, n_radial)``.

    Parameters
    ----------
    patterns : array_like
        ``(k, ny, nx)`` stack or a single ``(ny, nx)`` pattern (rows, columns), real valued.
    center : tuple of float, optional
        ``(cx, cy)`` in pixels, column first (pyxem's ``calibration.center``); the geometric
        centre :func:`default_center` when ``None``.
    n_radial : int, optional
        Number of radial samples (``>= 1``); default ``floor(r_max) + 1`` (1-px steps).
    n_azimuthal : int, default 360
        Number of azimuthal samples over 360 degrees (``>= 1``); step ``360 / n_azimuthal``
        degrees.
    r_max : float, optional
        Largest radius in pixels (``>= 0``).  Default: the largest radius whose circle lies
        fully inside the pattern, ``floor(min(cx, cy, nx - 1 - cx, ny - 1 - cy))``.  Samples
        falling outside the pattern are set to 0 and get weight 0.
    signal_mask : array_like of bool, optional
        ``(ny, nx)``, ``True`` for excluded pixels (e.g. the direct beam).  Masked pixels
        contribute nothing: every polar sample whose interpolation stencil touches a masked
        pixel is set to 0 and gets weight 0.
    order : int, default 1
        Spline order of the interpolation, 0-5 (1 = bilinear).  For ``order > 1`` the mask is
        dilated by ``order // 2`` pixels before the stencil test; the infinite tails of the
        spline prefilter (masked pixels are zeroed first) are neglected.
    return_weights : bool, default False
        Also return the polar weight image.

    Returns
    -------
    polar : numpy.ndarray
        ``(k, n_radial, n_azimuthal)`` float32 (``(n_radial, n_azimuthal)`` for a single
        pattern); axis 1 is the radius, axis 2 the azimuth ``phi``.  Units: those of the
        pattern intensities.
    weights : numpy.ndarray
        Only with ``return_weights=True``: ``(n_radial, n_azimuthal)`` float32, 1 where the
        sample is valid (inside the pattern, no masked pixel in its stencil), 0 elsewhere;
        identical for all patterns of the stack.

    Raises
    ------
    ValueError
        If ``patterns`` is not 2D/3D real and finite, ``center`` is not two finite numbers,
        the default ``r_max`` is undefined because the centre lies outside the pattern (give
        ``r_max``), ``r_max``/``n_radial``/``n_azimuthal``/``order`` are out of range, or
        the mask shape differs from the pattern shape.

    Examples
    --------
    >>> img = np.zeros((9, 9))
    >>> img[4, 6] = 1.0  # 2 px right of the centre: phi = 0
    >>> p = polar_transform(img, n_azimuthal=4)
    >>> p.shape, float(p[2, 0])
    ((5, 4), 1.0)
    """
    from scipy import ndimage

    arr = np.asarray(patterns)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"patterns must be a (ny, nx) pattern or a (k, ny, nx) stack, got an array of "
            f"shape {arr.shape}; refold unfolded (k, ny * nx) data first."
        )
    check_real(arr)
    single = arr.ndim == 2
    stack = np.array(arr[None] if single else arr, dtype=np.float64)
    k, ny, nx = stack.shape
    if not np.all(np.isfinite(stack)):
        raise ValueError("patterns contain NaN or infinite values; clean them first.")

    cx, cy = resolve_center(center, (ny, nx))
    radii = polar_radii((ny, nx), (cx, cy), n_radial, r_max)
    n_radial = radii.size
    n_azimuthal = check_int(n_azimuthal, "n_azimuthal", 1)
    order = check_spline_order(order)

    valid = np.ones((ny, nx), dtype=bool)
    mask = check_mask(signal_mask, (ny, nx))
    if mask is not None:
        stack[:, mask] = 0.0
        if order > 1 and mask.any():
            mask = ndimage.binary_dilation(
                mask, structure=np.ones((3, 3), dtype=bool), iterations=order // 2
            )
        valid = ~mask

    phi = np.deg2rad(np.arange(n_azimuthal, dtype=np.float64) * (360.0 / n_azimuthal))
    xs = cx + radii[:, None] * np.cos(phi)[None, :]  # (R, Phi)
    ys = cy - radii[:, None] * np.sin(phi)[None, :]  # (R, Phi)

    # Weight: bilinear interpolation of the validity image is exactly 1 only when every
    # pixel of the stencil is valid; outside the pattern mode="constant" gives 0.
    w = ndimage.map_coordinates(
        valid.astype(np.float64), [ys, xs], order=1, mode="constant", cval=0.0
    )
    w = (w >= 1.0 - 1e-6).astype(np.float32)

    coords = np.empty((3, k, n_radial, n_azimuthal), dtype=np.float64)
    coords[0] = np.arange(k, dtype=np.float64)[:, None, None]
    coords[1] = ys[None]
    coords[2] = xs[None]
    polar = ndimage.map_coordinates(stack, coords, order=order, mode="constant", cval=0.0)
    polar = (polar * w[None]).astype(np.float32)
    if single:
        polar = polar[0]
    return (polar, w) if return_weights else polar
