"""Similarity of factorized diffractions: cosine (eq. 9) and rotation-invariant (eqs. 10-11).

Math module: arrays in, arrays out; never imports HyperSpy.

Source: K. Kimoto et al., "Nonnegative matrix factorization with domain-specific constraints
for 4D-STEM", Sci. Rep. 15, 39143 (2025), eqs. (9)-(11) and Fig. 9.

Conventions (shared with :mod:`stemnmf_hs.polar`)
-------------------------------------------------
* A pattern is ``(ny, nx)`` (rows, columns); a stack is ``(k, ny, nx)`` or unfolded
  ``(k, ny * nx)`` in C order, or ``(k, n_kept)`` with ``n_kept = (~signal_mask).sum()`` when
  a signal mask removed pixels (HyperSpy's masked decomposition).
* The centre is ``(cx, cy)`` in pixels, column first (pyxem's ``calibration.center``).
* ``signal_mask`` is ``True`` for *excluded* pixels.
* **Rotations** are in degrees, positive = **counter-clockwise as displayed** with row 0 at
  the top (HyperSpy / matplotlib ``origin="upper"``).  ``rotation[i, j]`` returned by
  :func:`polar_cross_correlation` is the angle by which pattern ``j`` must be rotated (with
  :func:`rotate_patterns`) to best match pattern ``i``; it lies in ``(-180, 180]`` and is
  antisymmetric, ``rotation[j, i] == -rotation[i, j]`` (modulo 360: an angle of exactly 180
  reads 180 both ways).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage

from ._validation import check_nonnegative, check_real, check_spline_order
from .polar import as_pattern_stack, polar_radii, polar_transform, resolve_center

__all__ = [
    "angular_spectrum_similarity",
    "cosine_similarity",
    "polar_cross_correlation",
    "rotate_patterns",
]

#: With ``subtract_ring_mean=True``, a pattern whose anisotropic (ring-mean subtracted) polar
#: energy is below this fraction of its raw polar energy is treated as rotationally symmetric
#: (all zero): what is left is interpolation noise (~1e-6 for a clean amorphous pattern).
ISOTROPIC_RTOL = 1e-4


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _polar_stack(diffractions, signal_shape, center, signal_mask, n_azimuthal, n_radial, r_max,
                 r_min, order):
    """float64 polar images ``(k, R, Phi)`` and their weights ``(R, Phi)``, 0 below ``r_min``.

    The common first step of eqs. (10)-(11) and of the angular spectrum: refold and check the
    diffractions, check ``r_min``, r-phi transform them (:func:`polar_transform`).
    """
    stack = as_pattern_stack(diffractions, signal_shape, signal_mask)
    r_min = check_nonnegative(r_min, "r_min")
    polar, weights = polar_transform(
        stack, center=center, n_radial=n_radial, n_azimuthal=n_azimuthal, r_max=r_max,
        signal_mask=signal_mask, order=order, return_weights=True,
    )
    w = weights.astype(np.float64)
    if r_min > 0:
        radii = polar_radii(stack.shape[1:], center, n_radial, r_max)
        w = w * (radii >= r_min)[:, None]
    return polar.astype(np.float64), w


def _wrap_deg(a):
    """Wrap angles (degrees) to ``(-180, 180]``."""
    return 180.0 - np.mod(180.0 - np.asarray(a, dtype=np.float64), 360.0)


# --------------------------------------------------------------------------------------------
# eq. (9)
# --------------------------------------------------------------------------------------------
def cosine_similarity(diffractions):
    r"""Cosine similarity of every pair of diffractions, Kimoto et al. 2025 eq. (9).

    :math:`\langle W(:, k_1), W(:, k_2)\rangle / (\|W(:, k_1)\| \|W(:, k_2)\|)`, computed with
    :func:`sklearn.metrics.pairwise.cosine_similarity`.  Not rotation invariant: a pattern
    and a rotated copy of it generally score low, which motivates
    :func:`polar_cross_correlation` (eq. 10).

    Parameters
    ----------
    diffractions : array_like
        ``(k, n_features)`` components as rows (the transpose of the paper's ``W``), or a
        ``(k, ny, nx)`` stack (flattened).

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64, symmetric, in ``[-1, 1]`` (``[0, 1]`` for non-negative data).
        An all-zero row has similarity 0 with every other row and 1 with itself (no NaN).

    Raises
    ------
    ValueError
        If the input is not 2D/3D, holds no component, or contains NaN/inf.

    Examples
    --------
    >>> cosine_similarity(np.array([[1.0, 0.0], [1.0, 1.0]])).round(3)
    array([[1.   , 0.707],
           [0.707, 1.   ]])
    """
    from sklearn.metrics.pairwise import cosine_similarity as _sk_cosine

    arr = np.asarray(diffractions)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"diffractions must be (k, n_features) or (k, ny, nx) with k >= 1, got shape "
            f"{np.shape(diffractions)}."
        )
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("diffractions contain NaN or infinite values; clean them first.")
    sim = np.clip(_sk_cosine(arr), -1.0, 1.0)
    sim = 0.5 * (sim + sim.T)
    np.fill_diagonal(sim, 1.0)
    return sim


# --------------------------------------------------------------------------------------------
# eqs. (10)-(11)
# --------------------------------------------------------------------------------------------
def polar_cross_correlation(
    diffractions,
    signal_shape=None,
    center=None,
    signal_mask=None,
    n_azimuthal=360,
    n_radial=None,
    r_max=None,
    r_min=0.0,
    subtract_ring_mean=False,
    order=1,
):
    r"""Rotation-invariant diffraction similarity and relative rotation, eqs. (10)-(11).

    Every diffraction is r-phi transformed (:func:`stemnmf_hs.polar.polar_transform`); for
    every pair the circular cross-correlation along ``phi`` only (zero radial shift, "subject
    to r = 0"), summed over radii,

    ``c_ij(s) = sum_r sum_phi P_i(r, phi + s) * P_j(r, phi)``,

    is computed for all pairs at once with real FFTs along ``phi`` (one batched product of
    spectra summed over radii, one inverse FFT; no loop over pairs).  Then

    * ``similarity[i, j] = max_s c_ij(s) / sqrt(c_ii(0) * c_jj(0))`` (eq. 10, normalized so
      that a pattern scores 1 against any rotation of itself; by Cauchy-Schwarz
      ``|similarity| <= 1``);
    * ``rotation[i, j] = argmax_s c_ij(s)`` (eq. 11) in degrees, refined below the sampling
      step ``360 / n_azimuthal`` by a parabola through the peak and its two (circular)
      neighbours; the peak value of the same parabola enters the similarity.

    Sign convention: ``rotation[i, j]`` is the angle by which pattern ``j`` must be rotated
    **counter-clockwise as displayed** (row 0 at the top, see :mod:`stemnmf_hs.polar`) to
    best match pattern ``i``, i.e. ``rotate_patterns(p[j], rotation[i, j], center)`` ~
    ``p[i]``.  It lies in ``(-180, 180]`` and is antisymmetric (an angle of exactly 180
    reads 180 both ways).  Kinematic diffraction patterns are Friedel (centro-) symmetric, so
    the rotation is in general only defined modulo 180 degrees (modulo ``360 / n`` for an
    ``n``-fold symmetric pattern): either equivalent angle may be returned.

    Parameters
    ----------
    diffractions : array_like
        ``(k, ny, nx)`` stack, or unfolded ``(k, ny * nx)`` / ``(k, n_kept)`` (masked) rows.
    signal_shape : tuple of int, optional
        ``(ny, nx)``; required for unfolded input (taken from ``signal_mask`` if omitted).
    center : tuple of float, optional
        ``(cx, cy)`` in pixels, column first; the geometric centre when ``None``.
    signal_mask : array_like of bool, optional
        ``(ny, nx)``, ``True`` for excluded pixels (e.g. the direct beam); they contribute
        nothing.
    n_azimuthal : int, default 360
        Azimuthal samples (step ``360 / n_azimuthal`` degrees).
    n_radial, r_max : optional
        Radial sampling, see :func:`stemnmf_hs.polar.polar_transform` (default: radii
        ``0, 1, ...`` px up to the largest circle inside the pattern).
    r_min : float, default 0
        Radii below ``r_min`` pixels are ignored (an alternative to masking a direct beam,
        which is rotation invariant and makes every pair look alike).
    subtract_ring_mean : bool, default False
        ``False`` (the paper's raw cross-correlation): amorphous rings / the rotationally
        symmetric background count, so every pair of patterns with similar radial profiles
        scores high.  ``True``: the mean of every ring (over its valid samples) is
        subtracted first, so only the anisotropic part (spots) is compared; a rotationally
        symmetric pattern (anisotropic energy below :data:`ISOTROPIC_RTOL` of its energy)
        then becomes all-zero and scores 0 against everything, including other amorphous
        patterns (similarity may then also be negative).
    order : int, default 1
        Spline order of the polar interpolation (1 = bilinear).

    Returns
    -------
    similarity : numpy.ndarray
        ``(k, k)`` float64, symmetric, diagonal 1, in ``[-1, 1]`` (``[0, 1]`` for
        non-negative data without ``subtract_ring_mean``).  A pattern with no energy (all
        zero within the sampled region) scores 0 against every other pattern, without NaN.
    rotation : numpy.ndarray
        ``(k, k)`` float64 degrees in ``(-180, 180]``, antisymmetric, diagonal 0; 0 for pairs
        involving an all-zero pattern.

    Raises
    ------
    ValueError
        If the diffractions cannot be refolded with ``signal_shape`` / ``signal_mask``,
        contain NaN/inf, or a sampling parameter is out of range (see
        :func:`stemnmf_hs.polar.polar_transform`).

    Notes
    -----
    Kimoto et al. 2025, eqs. (10) ("diffraction_similarity") and (11)
    ("diffraction_rotation"), Fig. 9b.

    Examples
    --------
    >>> img = np.zeros((33, 33))
    >>> img[16, 26] = img[16, 6] = 1.0  # a Friedel pair on the x axis
    >>> pair = np.stack([img, rotate_patterns(img, 30.0)])
    >>> sim, rot = polar_cross_correlation(pair, n_azimuthal=360)
    >>> bool(sim[0, 1] > 0.8), round(float(rot[0, 1]) % 180)  # 1 up to interpolation
    (True, 150)
    """
    polar, w = _polar_stack(diffractions, signal_shape, center, signal_mask, n_azimuthal,
                            n_radial, r_max, r_min, order)
    k, _, n_phi = polar.shape
    if r_min > 0:
        polar *= w[None]
    if subtract_ring_mean:
        raw_energy = np.einsum("krp,krp->k", polar, polar)
        counts = w.sum(axis=1)  # (R,)
        means = polar.sum(axis=2) / np.where(counts > 0, counts, 1.0)  # (k, R)
        polar = (polar - means[:, :, None]) * w[None]
        aniso = np.einsum("krp,krp->k", polar, polar)
        polar[aniso <= ISOTROPIC_RTOL * raw_energy] = 0.0

    energy = np.einsum("krp,krp->k", polar, polar)  # c_ii(0), (k,)
    spec = scipy.fft.rfft(polar, axis=-1)  # (k, R, F)
    spec_t = np.ascontiguousarray(spec.transpose(2, 0, 1))  # (F, k, R)
    # cross[f, i, j] = sum_r S_i(r, f) conj(S_j(r, f)): the batched (k,1,R) x (1,k,R)
    # conjugate product summed over R, as one matmul per frequency.
    cross = spec_t @ spec_t.conj().transpose(0, 2, 1)  # (F, k, k)
    cc = scipy.fft.irfft(cross, n=n_phi, axis=0)  # (Phi, k, k): cc[s, i, j] = c_ij(s)

    m = np.argmax(cc, axis=0)  # (k, k)
    ii, jj = np.indices((k, k))
    y0 = cc[m, ii, jj]
    ym = cc[(m - 1) % n_phi, ii, jj]
    yp = cc[(m + 1) % n_phi, ii, jj]
    denom = ym - 2.0 * y0 + yp
    scale = np.maximum(np.abs(y0), 1e-300)
    ok = denom < -1e-12 * scale
    delta = np.where(ok, 0.5 * (ym - yp) / np.where(ok, denom, -1.0), 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    peak = np.where(ok, y0 - 0.25 * (ym - yp) * delta, y0)

    norm = np.sqrt(np.outer(energy, energy))
    tiny = 1e-12 * (energy.max() if energy.size and energy.max() > 0 else 1.0)
    live = norm > tiny
    sim = np.where(live, peak / np.where(live, norm, 1.0), 0.0)
    sim = np.clip(sim, -1.0, 1.0)
    rot = np.where(live, _wrap_deg((m + delta) * (360.0 / n_phi)), 0.0)

    # Enforce exact symmetry / antisymmetry from the upper triangle (near-tied Friedel peaks
    # could otherwise be resolved differently for (i, j) and (j, i)).
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    sim = np.where(upper, sim, 0.0)
    sim = sim + sim.T
    np.fill_diagonal(sim, 1.0)
    rot = np.where(upper, rot, 0.0)
    rot = rot - rot.T
    rot = np.where(upper.T, _wrap_deg(rot), rot)
    np.fill_diagonal(rot, 0.0)
    return sim, rot


# --------------------------------------------------------------------------------------------
# phase-free angular spectrum (default of the signal's cluster_components)
# --------------------------------------------------------------------------------------------
def angular_spectrum_similarity(
    diffractions,
    signal_shape=None,
    center=None,
    signal_mask=None,
    n_azimuthal=360,
    n_radial=None,
    r_max=None,
    r_min=0.0,
    include_ring_mean=False,
    order=1,
):
    r"""Rotation-invariant similarity of the angular amplitude spectra of diffractions.

    Every diffraction is r-phi transformed (:func:`stemnmf_hs.polar.polar_transform`) and
    Fourier transformed along ``phi``; the similarity is the cosine between the amplitude
    spectra ``A_i(r, m) = |FFT_phi P_i(r, .)|(m)`` over all rings ``r`` and harmonics ``m``
    (both signs of ``m``), by default without the ring mean ``m = 0``:

    ``similarity[i, j] = sum_{r,m} A_i A_j / sqrt(sum A_i^2 * sum A_j^2)``.

    Relation to eq. 10 (:func:`polar_cross_correlation`): with ``S_i(r, m)`` the spectra,
    eq. 10's peak ``max_s sum_{r,m} S_i conj(S_j) e^{2 pi i m s / n}`` is bounded by
    ``sum_{r,m} |S_i| |S_j|`` (triangle inequality), which is this numerator; both are
    normalized by the same energies (Parseval).  The bound is reached when the two patterns
    differ by one rotation, so a pattern and any rotation of itself still score 1; in
    addition the phases of every (ring, harmonic) are discarded.  That is what makes it
    suited to many weak components: the speckle of an amorphous or nanocrystalline matrix
    and the Poisson noise of a weak component have random phases, which drive eq. 10 between
    two fragments of the same matrix towards the share of their ring means (0.6-0.77 on the
    abTEM glass at k = 30), while their amplitude spectra (the same speckle / noise
    statistics at the same radii) agree.  Bragg spots give sharp harmonics at the multiples
    of the zone-axis symmetry at the rings of their d-spacings, different for different
    phases and orientations of the zone axis, identical for in-plane rotations.

    Parameters
    ----------
    diffractions : array_like
        ``(k, ny, nx)`` stack, or unfolded ``(k, ny * nx)`` / ``(k, n_kept)`` (masked) rows.
    signal_shape, center, signal_mask, n_azimuthal, n_radial, r_max, r_min, order
        As in :func:`polar_cross_correlation`.
    include_ring_mean : bool, default False
        Include the ring means (harmonic ``m = 0``, the radial profile).  ``False`` compares
        the anisotropic part only; the radial profile still enters through where the
        anisotropic (speckle, noise, spot) power lies.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64, symmetric, in ``[0, 1]``, diagonal 1.  A pattern without
        (anisotropic) energy scores 0 against every other pattern, without NaN.

    Raises
    ------
    ValueError
        As :func:`polar_cross_correlation`.

    Examples
    --------
    >>> img = np.zeros((33, 33))
    >>> img[16, 26] = img[16, 6] = 1.0
    >>> pair = np.stack([img, rotate_patterns(img, 30.0)])
    >>> bool(angular_spectrum_similarity(pair)[0, 1] > 0.8)
    True
    """
    polar, w = _polar_stack(diffractions, signal_shape, center, signal_mask, n_azimuthal,
                            n_radial, r_max, r_min, order)
    polar *= w[None]
    k, _, n_phi = polar.shape
    amp = np.abs(scipy.fft.rfft(polar, axis=-1))  # (k, R, F)
    # both signs of m: every harmonic but m = 0 and (even n_phi) the Nyquist one twice
    twice = np.full(amp.shape[-1], np.sqrt(2.0))
    twice[0] = 1.0
    if n_phi % 2 == 0:
        twice[-1] = 1.0
    amp *= twice
    if not include_ring_mean:
        amp = amp[..., 1:]
    vec = amp.reshape(k, -1)
    norm = np.linalg.norm(vec, axis=1)
    tiny = 1e-12 * (norm.max() if norm.size and norm.max() > 0 else 1.0)
    live = norm > tiny
    unit = np.where(live[:, None], vec / np.where(live, norm, 1.0)[:, None], 0.0)
    sim = np.clip(unit @ unit.T, 0.0, 1.0)
    sim = 0.5 * (sim + sim.T)
    np.fill_diagonal(sim, 1.0)
    return sim


# --------------------------------------------------------------------------------------------
# rotation
# --------------------------------------------------------------------------------------------
def rotate_patterns(patterns, angles_deg, center=None, order=1, cval=0.0):
    """Rotate patterns about an arbitrary centre.

    One :func:`scipy.ndimage.map_coordinates` call over the whole stack (the component index
    is an extra, integer-valued coordinate).  Output pixel ``(x, y)`` takes the input value
    at ``(cx + cos(t) dx - sin(t) dy, cy + sin(t) dx + cos(t) dy)`` with ``dx = x - cx``,
    ``dy = y - cy``, which rotates the pattern by ``t`` **counter-clockwise as displayed**
    (row 0 at the top).  This is the convention of :func:`polar_cross_correlation`:
    ``rotate_patterns(p[j], rotation[i, j], center)`` best matches ``p[i]``; in polar
    coordinates (:func:`stemnmf_hs.polar.polar_transform`) it is a roll by ``+t`` along
    ``phi``.

    Parameters
    ----------
    patterns : array_like
        ``(k, ny, nx)`` stack or one ``(ny, nx)`` pattern.
    angles_deg : float or array_like
        Rotation angle(s) in degrees, positive = counter-clockwise on screen; a scalar or
        ``(k,)`` (one per pattern).
    center : tuple of float, optional
        ``(cx, cy)`` in pixels, column first; the geometric centre when ``None``.
    order : int, default 1
        Spline order 0-5 (1 = bilinear, which keeps non-negative data non-negative).
    cval : float, default 0
        Value given to output pixels that map outside the input (the corners).

    Returns
    -------
    numpy.ndarray
        Same shape as ``patterns``; float32 for float32 input, else float64.

    Raises
    ------
    ValueError
        If ``patterns`` is not 2D/3D real, ``angles_deg`` is not a scalar or ``(k,)`` of
        finite numbers, ``center`` is not two finite numbers, or ``order`` not in 0-5.

    Examples
    --------
    >>> img = np.zeros((9, 9))
    >>> img[4, 6] = 1.0  # 2 px right of the centre
    >>> np.argwhere(rotate_patterns(img, 90.0) > 0.5).tolist()  # now 2 px up
    [[2, 4]]
    """
    arr = np.asarray(patterns)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"patterns must be (ny, nx) or (k, ny, nx), got an array of shape {arr.shape}."
        )
    check_real(arr)
    out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
    single = arr.ndim == 2
    stack = np.asarray(arr[None] if single else arr, dtype=np.float64)
    k, ny, nx = stack.shape
    ang = np.asarray(angles_deg, dtype=np.float64)
    if ang.ndim == 0:
        ang = np.full(k, float(ang))
    elif ang.shape != (k,):
        raise ValueError(
            f"angles_deg must be a scalar or one angle per pattern, shape ({k},), got shape "
            f"{ang.shape}."
        )
    if not np.all(np.isfinite(ang)):
        raise ValueError(f"angles_deg must be finite degrees, got {angles_deg!r}.")
    cx, cy = resolve_center(center, (ny, nx))
    order = check_spline_order(order)

    t = np.deg2rad(ang)[:, None, None]
    cos, sin = np.cos(t), np.sin(t)
    dy = (np.arange(ny, dtype=np.float64) - cy)[None, :, None]
    dx = (np.arange(nx, dtype=np.float64) - cx)[None, None, :]
    coords = np.empty((3, k, ny, nx), dtype=np.float64)
    coords[0] = np.arange(k, dtype=np.float64)[:, None, None]
    coords[1] = cy + sin * dx + cos * dy
    coords[2] = cx + cos * dx - sin * dy
    out = ndimage.map_coordinates(
        stack, coords, order=int(order), mode="constant", cval=float(cval)
    )
    out = out.astype(out_dtype, copy=False)
    return out[0] if single else out
