"""Full-reference image-quality metrics between 2D images (SSIM, PSNR, GMSD, MDSI).

Cao et al. 2025 ("K-Component loss and image quality assessment", Fig. 3b-e) compare the
representative diffractions of the NMF components pairwise with four full-reference
image-quality-assessment (IQA) indices.  This module computes them for single pairs and, in
vectorized form, as symmetric ``(k, k)`` matrices over a stack of ``k`` images.

Math module: arrays in, arrays out; never imports HyperSpy.  Images are 2D ``(ny, nx)``
(rows, columns), stacks are ``(k, ny, nx)`` (image first); values in any unit (electrons,
counts), as long as ``data_range`` is in the same unit.

========  ==========================  ===========  =============================================
metric    source                      identical    more different
========  ==========================  ===========  =============================================
``ssim``  scikit-image [1]_            1            lower (down to -1)
``psnr``  scikit-image, capped (dB)   cap (100)    lower
``gmsd``  Xue et al. 2014 (numpy)     0            higher
``mdsi``  Nafchi et al. 2016 (numpy)  0            higher
========  ==========================  ===========  =============================================

``data_range``
    Every metric needs the range of values an image can take: SSIM's constants are
    ``(0.01 R)^2`` and ``(0.03 R)^2``, PSNR is ``10 log10(R^2 / MSE)``, and GMSD and MDSI use
    constants published for 8-bit images, so the images are rescaled by ``255 / R`` first.
    Pass one ``R`` for a whole stack (:func:`common_data_range`, the maximum of the stack for
    non-negative data) so that all pairs are measured on the same scale and a dim component
    is not inflated to the range of a bright one.

.. [1] :func:`ssim` calls :func:`skimage.metrics.structural_similarity`;
   :func:`pairwise_ssim` restates the same computation vectorized over pairs (checked
   against scikit-image in the tests).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GMSD_T",
    "MDSI_ALPHA",
    "MDSI_C1",
    "MDSI_C2",
    "MDSI_C3",
    "METRICS",
    "PSNR_CAP_DB",
    "common_data_range",
    "gmsd",
    "mdsi",
    "pairwise",
    "pairwise_gmsd",
    "pairwise_mdsi",
    "pairwise_psnr",
    "pairwise_ssim",
    "psnr",
    "ssim",
]

#: Metric names: the four indices of Cao et al. 2025, Fig. 3b-e.
METRICS = ("ssim", "psnr", "gmsd", "mdsi")

#: PSNR (dB) reported for identical images (infinite in theory) and upper bound of every
#: PSNR value.  100 dB is a mean squared error of 1e-10 of ``data_range**2``: far above any
#: value two different noisy diffraction patterns reach (Cao et al. 2025 call > 40 dB
#: excellent), and finite, so the matrices stay plottable and averageable.
PSNR_CAP_DB = 100.0

#: GMSD stability constant ``T`` on the 0-255 scale (Xue et al. 2014; the authors' GMSD.m).
GMSD_T = 170.0

#: MDSI constants on the 0-255 scale (Nafchi et al. 2016; the authors' MDSI.m):
#: gradient similarity ``C1``, gradient similarity to the fused image ``C2``, chromaticity
#: similarity ``C3``.
MDSI_C1 = 140.0
MDSI_C2 = 55.0
MDSI_C3 = 550.0
#: MDSI weight of the gradient term in the "sum" combination, ``GCS = a GS + (1 - a) CS``.
MDSI_ALPHA = 0.6

#: Window of the Gaussian-weighted SSIM: sigma 1.5 px, truncated at 3.5 sigma -> 11 px.
_SSIM_SIGMA = 1.5
_SSIM_MIN_SIDE = 11


# --------------------------------------------------------------------------------- checks
def _as_image(image, name):
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2D image (ny, nx); got an array of shape {a.shape}. "
            "Pass one diffraction pattern, or use the pairwise_* functions for a stack."
        )
    return _finite(a, f"{name} contains")


def _as_pair(image1, image2):
    a = _as_image(image1, "image1")
    b = _as_image(image2, "image2")
    if a.shape != b.shape:
        raise ValueError(
            f"The two images differ in shape: {a.shape} and {b.shape}. Compare patterns "
            "of one scan (same detector binning)."
        )
    return a, b


def _as_stack(images):
    s = np.asarray(images, dtype=np.float64)
    if s.ndim != 3 or s.shape[0] < 1:
        raise ValueError(
            f"images must be a stack (k, ny, nx) of k >= 1 images; got shape {s.shape}."
        )
    return _finite(s, "images contain")


def _finite(a, subject):
    """``a``, refused when it holds NaN or infinite values (``subject``: "image1 contains")."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{subject} NaN or infinite values; replace them first "
                         "(e.g. numpy.nan_to_num).")
    return a


def _check_range(data_range):
    r = float(data_range)
    if not np.isfinite(r) or r <= 0:
        raise ValueError(
            f"data_range must be a finite number > 0 (the span of the image values, in the "
            f"images' unit); got {data_range!r}. An all-constant stack has no range: "
            "there is nothing to compare."
        )
    return r


def _resolve_range(data_range, *arrays):
    if data_range is None:
        return common_data_range(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]))
    return _check_range(data_range)


def common_data_range(images):
    """The data range shared by all images of a stack.

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack (or any array) of image values.

    Returns
    -------
    float
        ``max(images) - min(0, min(images))``, in the images' unit: the maximum of the stack
        for non-negative data (NMF diffractions, counts), widened by the most negative value
        when there is one.  The range is measured from zero, not from the stack minimum,
        because zero intensity is the physical floor of a diffraction pattern.

    Raises
    ------
    ValueError
        If the values are not finite or the range is zero (an all-zero stack).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import common_data_range
    >>> common_data_range(np.array([[[0.0, 2.0], [1.0, 4.0]]]))
    4.0
    >>> common_data_range(np.array([[[-1.0, 2.0], [1.0, 3.0]]]))
    4.0
    """
    a = np.asarray(images, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("images must be a non-empty array of finite values to have a "
                         "data range.")
    return _check_range(a.max() - min(0.0, a.min()))


# ------------------------------------------------------------------ shared image operators
def _box_downsample(stack, f):
    """MATLAB ``conv2(Y, fspecial('average', f), 'same')`` then ``Y(1:f:end, 1:f:end)``.

    For a box kernel of size ``f`` MATLAB's 'same' window of output pixel ``j`` covers input
    pixels ``j - (f - 1) // 2 ... j + f // 2`` with zeros outside the image; keeping every
    ``f``-th output makes these windows non-overlapping blocks of the zero-padded image.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(..., ny, nx)``.
    f : int
        Block size (>= 1).

    Returns
    -------
    numpy.ndarray
        ``(..., ceil(ny / f), nx_out = ceil(nx / f))`` block means.
    """
    if f == 1:
        return stack
    ny, nx = stack.shape[-2:]
    oy, ox = -(-ny // f), -(-nx // f)
    lead = (f - 1) // 2
    pad = [(0, 0)] * (stack.ndim - 2) + [(lead, oy * f - ny - lead),
                                          (lead, ox * f - nx - lead)]
    p = np.pad(stack, pad)
    p = p.reshape(stack.shape[:-2] + (oy, f, ox, f))
    return p.mean(axis=(-3, -1))


def _prewitt(stack):
    """Prewitt derivatives ``conv2(Y, [1 0 -1; 1 0 -1; 1 0 -1] / 3, 'same')`` and its transpose.

    Zero padding outside the image, as MATLAB's ``conv2``.  The sign convention (convolution
    flips the kernel) does not matter: only gradient magnitudes and sums of gradients of the
    same sign convention are used.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(..., ny, nx)``.

    Returns
    -------
    gx, gy : numpy.ndarray
        ``(..., ny, nx)`` derivatives along columns (x) and rows (y), per pixel.
    """
    pad = [(0, 0)] * (stack.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(stack, pad)
    # column sums over the 3-row window, row sums over the 3-column window
    rows3 = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]  # (..., ny, nx + 2)
    cols3 = p[..., :, :-2] + p[..., :, 1:-1] + p[..., :, 2:]  # (..., ny + 2, nx)
    gx = (rows3[..., :, 2:] - rows3[..., :, :-2]) / 3.0
    gy = (cols3[..., 2:, :] - cols3[..., :-2, :]) / 3.0
    return gx, gy


def _similarity(a, b, c):
    """Pixel-wise similarity ``(2 a b + c) / (a^2 + b^2 + c)`` (1 where ``a == b``)."""
    return (2.0 * a * b + c) / (a * a + b * b + c)


# --------------------------------------------------------------------------- SSIM, PSNR
def ssim(image1, image2, data_range=None):
    """Structural similarity index of two images (scikit-image, Gaussian-weighted).

    ``SSIM = mean over the image of l(x, y) c(x, y) s(x, y)`` with local Gaussian-weighted
    (sigma 1.5 px) means, variances and covariance, ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``
    (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4) 600-612, 2004), as
    :func:`skimage.metrics.structural_similarity` with ``gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False`` (the paper's settings); a border of 5 px is left out of the
    mean by scikit-image.  Symmetric in its arguments.

    Parameters
    ----------
    image1, image2 : array_like
        ``(ny, nx)`` images, ``ny, nx >= 11`` (the Gaussian window).
    data_range : float, optional
        Span ``R`` of the values, in the images' unit.  Default: :func:`common_data_range`
        of the two images.

    Returns
    -------
    float
        SSIM in ``[-1, 1]``; 1 for identical images.

    Raises
    ------
    ValueError
        On images of different shapes, not 2D, smaller than 11 x 11, with non-finite values,
        or a non-positive ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import ssim
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((16, 16))
    >>> ssim(a, a)
    1.0
    >>> round(ssim(a, 0.5 * a, data_range=1.0), 3)
    0.641
    """
    from skimage.metrics import structural_similarity

    a, b = _as_pair(image1, image2)
    if min(a.shape) < _SSIM_MIN_SIDE:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_MIN_SIDE} x {_SSIM_MIN_SIDE} pixels (its "
            f"Gaussian window); got {a.shape}. Bin the patterns less."
        )
    r = _resolve_range(data_range, a, b)
    return float(
        structural_similarity(a, b, data_range=r, gaussian_weights=True, sigma=_SSIM_SIGMA,
                              use_sample_covariance=False)
    )


def psnr(image1, image2, data_range=None, cap=PSNR_CAP_DB):
    """Peak signal-to-noise ratio of two images in dB (scikit-image), capped at ``cap``.

    ``PSNR = 10 log10(R^2 / MSE)`` with ``MSE`` the mean squared difference, as
    :func:`skimage.metrics.peak_signal_noise_ratio`.  Identical images have ``MSE = 0`` and an
    infinite PSNR: this function returns ``cap`` instead (and clips every value to it).
    Symmetric in its arguments.

    Parameters
    ----------
    image1, image2 : array_like
        ``(ny, nx)`` images.
    data_range : float, optional
        Peak value ``R``, in the images' unit.  Default: :func:`common_data_range` of the two.
    cap : float, default :data:`PSNR_CAP_DB` (100 dB)
        Value for identical images; upper bound of the result.

    Returns
    -------
    float
        PSNR in dB, at most ``cap``; higher = more similar.

    Raises
    ------
    ValueError
        On images of different shapes, not 2D, non-finite, or a non-positive ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import psnr
    >>> a = np.zeros((16, 16))
    >>> b = a + 0.1
    >>> psnr(a, a, data_range=1.0)
    100.0
    >>> round(psnr(a, b, data_range=1.0), 1)
    20.0
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _as_pair(image1, image2)
    r = _resolve_range(data_range, a, b)
    if not np.any(a - b):
        return float(cap)
    return float(min(peak_signal_noise_ratio(a, b, data_range=r), cap))


# --------------------------------------------------------------------------------- GMSD
def _gmsd_gradients(stack, data_range):
    """GMSD gradient magnitudes ``(k, ceil(ny/2), ceil(nx/2))`` on the 0-255 scale."""
    y = _box_downsample(stack * (255.0 / data_range), 2)
    gx, gy = _prewitt(y)
    return np.hypot(gx, gy)


def _gmsd_from_gradients(m1, m2, t=GMSD_T):
    """GMSD from gradient magnitudes ``(..., h, w)``; broadcast over the leading axes."""
    gms = _similarity(m1, m2, t)
    n = gms.shape[-1] * gms.shape[-2]
    return np.std(gms.reshape(gms.shape[:-2] + (n,)), axis=-1, ddof=1 if n > 1 else 0)


def gmsd(image1, image2, data_range=None, t=GMSD_T):
    """Gradient magnitude similarity deviation of two images.

    Xue, Zhang, Mou & Bovik, "Gradient Magnitude Similarity Deviation: A Highly Efficient
    Perceptual Image Quality Index", IEEE TIP 23(2) 684-695 (2014), as in the
    authors' ``GMSD.m``:

    1. rescale to 0-255: ``Y = 255 * image / R``;
    2. 2 x 2 average and downsample by 2 (``conv2(Y, fspecial('average', 2), 'same')``,
       ``Y(1:2:end, 1:2:end)``, zeros beyond the image);
    3. Prewitt gradient magnitude ``m = sqrt((Y * h_x)^2 + (Y * h_y)^2)``, ``h_x = [1 0 -1;
       1 0 -1; 1 0 -1] / 3``, ``h_y = h_x^T`` (zero padding);
    4. similarity map ``GMS = (2 m1 m2 + T) / (m1^2 + m2^2 + T)``, ``T = 170``;
    5. ``GMSD = std(GMS)``, the sample standard deviation (``std2``, ``N - 1``; piq uses ``N``).

    Symmetric in its arguments.

    Parameters
    ----------
    image1, image2 : array_like
        ``(ny, nx)`` images (single channel: the luminance ``Y`` of the paper).
    data_range : float, optional
        Span ``R`` of the values mapped to 255, in the images' unit.  Default:
        :func:`common_data_range` of the two images.
    t : float, default 170
        Stability constant on the 0-255 scale.

    Returns
    -------
    float
        GMSD >= 0; 0 for identical images, larger = more different (Cao et al. 2025: <= 0.05
        excellent, > 0.10 different).

    Raises
    ------
    ValueError
        On images of different shapes, not 2D, non-finite, or a non-positive ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import gmsd
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((16, 16))
    >>> gmsd(a, a)
    0.0
    >>> bool(gmsd(a, rng.random((16, 16))) > 0)
    True
    """
    a, b = _as_pair(image1, image2)
    r = _resolve_range(data_range, a, b)
    m = _gmsd_gradients(np.stack([a, b]), r)
    return float(_gmsd_from_gradients(m[0], m[1], t))


# --------------------------------------------------------------------------------- MDSI
def _mdsi_gradients(stack, data_range):
    """MDSI luminance gradients ``(gx, gy)``, each ``(k, h, w)``, on the 0-255 scale."""
    ny, nx = stack.shape[-2:]
    # MATLAB: f = max(1, round(min(rows, cols) / 256)), round half away from zero
    f = max(1, int(np.floor(min(ny, nx) / 256.0 + 0.5)))
    y = _box_downsample(stack * (255.0 / data_range), f)
    return _prewitt(y)


def _mdsi_pool(gcs, q, rho, o):
    """Deviation pooling ``(mean |GCS^q - mean GCS^q|^rho)^(o / rho)`` over the last axis.

    A negative ``GCS`` has the principal complex power ``|GCS|^q e^(i pi q)`` (MATLAB's
    ``(GCS.^0.5).^0.5``, piq's ``pow_for_complex``); the deviation is the modulus of the
    complex difference.  Real and imaginary parts are kept separately (faster than complex).
    """
    neg = gcs < 0
    if np.any(neg):
        mag = np.abs(gcs) ** q
        re = np.where(neg, mag * np.cos(np.pi * q), mag)
        im = np.where(neg, mag * np.sin(np.pi * q), 0.0)
        re -= re.mean(axis=-1, keepdims=True)
        im -= im.mean(axis=-1, keepdims=True)
        dev = np.sqrt(re * re + im * im)
    else:
        dev = gcs**q
        dev -= dev.mean(axis=-1, keepdims=True)
        np.abs(dev, out=dev)
    if rho == 1.0:
        return np.mean(dev, axis=-1) ** o
    return np.mean(dev**rho, axis=-1) ** (o / rho)


def _mdsi_gradient_stats(gx, gy):
    """Per-image quantities of MDSI: gradients, magnitude and squared magnitude, flattened."""
    k = gx.shape[0]
    gx = gx.reshape(k, -1)
    gy = gy.reshape(k, -1)
    g2 = gx * gx + gy * gy
    return {"gx": gx, "gy": gy, "g": np.sqrt(g2), "g2": g2}


def _mdsi_both_orders(st, i, js, c1=MDSI_C1, c2=MDSI_C2, alpha=MDSI_ALPHA, q=0.25, rho=1.0,
                      o=0.25):
    """MDSI(i -> j) and MDSI(j -> i) for all ``j in js``, from per-image gradient stats.

    The fused image ``F = (L_i + L_j) / 2`` has the mean of the two gradients (the Prewitt
    operator is linear).  Chromaticity similarity = 1 (grey images).  The three similarity
    maps are shared by both orders: ``GS(i -> j) = S_ij + S_jF - S_iF`` and
    ``GS(j -> i) = S_ij + S_iF - S_jF``.

    Returns
    -------
    ab, ba : numpy.ndarray
        ``(len(js),)`` MDSI with ``i`` as reference, and with ``j`` as reference.
    """
    g1, g1s = st["g"][i], st["g2"][i]
    g2, g2s = st["g"][js], st["g2"][js]
    fx = st["gx"][js] + st["gx"][i]
    fy = st["gy"][js] + st["gy"][i]
    gfs = 0.25 * (fx * fx + fy * fy)
    gf = np.sqrt(gfs)
    s12 = (2.0 * g1 * g2 + c1) / (g1s + g2s + c1)
    d = (2.0 * g2 * gf + c2) / (g2s + gfs + c2) - (2.0 * g1 * gf + c2) / (g1s + gfs + c2)
    base = alpha * s12 + (1.0 - alpha)  # CS == 1
    d *= alpha
    return _mdsi_pool(base + d, q, rho, o), _mdsi_pool(base - d, q, rho, o)


def mdsi(reference, distorted, data_range=None, c1=MDSI_C1, c2=MDSI_C2, alpha=MDSI_ALPHA,
         q=0.25, rho=1.0, o=0.25):
    """Mean deviation similarity index of a single-channel image against a reference.

    Nafchi, Shahkolaei, Hedjam & Cheriet, "Mean Deviation Similarity Index: Efficient and
    Reliable Full-Reference Image Quality Evaluator", IEEE Access 4, 5579-5590 (2016), as in
    the authors' ``MDSI.m`` with the "sum" combination:

    1. rescale to 0-255 (``255 * image / R``); average and downsample by
       ``f = max(1, round(min(ny, nx) / 256))`` (``f = 1`` up to 383 px);
    2. Prewitt gradient magnitudes ``g_R``, ``g_D`` of the reference and distorted
       luminance and ``g_F`` of the fused image ``F = (R + D) / 2``;
    3. gradient similarity ``GS = S(g_R, g_D; C1) + S(g_D, g_F; C2) - S(g_R, g_F; C2)``
       with ``S(a, b; C) = (2 a b + C) / (a^2 + b^2 + C)``, ``C1 = 140``, ``C2 = 55``;
    4. chromaticity similarity ``CS = (2 (H_R H_D + M_R M_D) + C3) / (H_R^2 + H_D^2 + M_R^2
       + M_D^2 + C3)``, ``C3 = 550``;
    5. ``GCS = alpha GS + (1 - alpha) CS``, ``alpha = 0.6``;
    6. deviation pooling ``MDSI = (mean |GCS^q - mean(GCS^q)|^rho)^(o / rho)``, ``q = o =
       0.25``, ``rho = 1`` (``mad((GCS.^0.5).^0.5)^0.25``; a negative ``GCS`` gets the
       principal complex power and the modulus of the deviation, as MATLAB does).

    Grey (single-channel) images: a diffraction pattern has no colour, so its opponent-colour
    channels ``H`` and ``M`` are zero and ``CS = 1`` exactly; MDSI reduces to its gradient
    term through the published combination, ``GCS = 0.6 GS + 0.4``.  (Copying a grey image
    into three RGB channels, as piq does, would instead leak ``H = -0.01 Y`` and
    ``M = -0.09 Y`` through the rounded RGB->HM coefficients and make a brightness
    difference look like a colour difference.)  The luminance is the image itself.

    MDSI is not symmetric: ``S(g_D, g_F) - S(g_R, g_F)`` changes sign when the images swap
    (an edge missing from the distorted image costs more than an added one).
    :func:`pairwise_mdsi` averages both orders.

    Parameters
    ----------
    reference, distorted : array_like
        ``(ny, nx)`` images.
    data_range : float, optional
        Span ``R`` of the values mapped to 255, in the images' unit.  Default:
        :func:`common_data_range` of the two images.
    c1, c2 : float
        Gradient-similarity constants on the 0-255 scale (140, 55).
    alpha : float
        Weight of the gradient term (0.6).
    q, rho, o : float
        Deviation-pooling exponents (0.25, 1, 0.25: MDSI.m's ``mad((GCS.^0.5).^0.5)^0.25``, ``mad`` being
        the mean absolute deviation).

    Returns
    -------
    float
        MDSI >= 0; 0 for identical images, larger = more different (Cao et al. 2025: <= 0.05
        excellent, > 0.10 different).

    Raises
    ------
    ValueError
        On images of different shapes, not 2D, non-finite, or a non-positive ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import mdsi
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((16, 16))
    >>> mdsi(a, a)
    0.0
    >>> bool(mdsi(a, rng.random((16, 16))) > 0)
    True
    """
    a, b = _as_pair(reference, distorted)
    r = _resolve_range(data_range, a, b)
    gx, gy = _mdsi_gradients(np.stack([a, b]), r)
    st = _mdsi_gradient_stats(gx, gy)
    ab, _ = _mdsi_both_orders(st, 0, np.array([1]), c1, c2, alpha, q, rho, o)
    return float(ab[0])


# ----------------------------------------------------------------------- pairwise k x k
def _pairs_loop(k, row_fn):
    """Fill a symmetric ``(k, k)`` matrix: ``row_fn(i, js)`` gives values for ``js > i``."""
    out = np.zeros((k, k), dtype=np.float64)
    for i in range(k - 1):
        js = np.arange(i + 1, k)
        vals = row_fn(i, js)
        out[i, js] = vals
        out[js, i] = vals
    return out


def _stack_and_range(images, data_range):
    s = _as_stack(images)
    r = common_data_range(s) if data_range is None else _check_range(data_range)
    return s, r


def _ssim_rows(s, r, i, js):
    """Mean SSIM of image ``i`` against images ``js``: scikit-image's formula, vectorized.

    The same computation as :func:`skimage.metrics.structural_similarity` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: Gaussian filters
    (``truncate=3.5``, ``mode="reflect"``) of ``x``, ``y``, ``x^2``, ``y^2``, ``x y``;
    ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``; the mean of the SSIM map without the 5 px
    border.  The per-image filters come from ``_ssim_stats``; only ``x y`` is filtered per pair.
    """
    from scipy.ndimage import gaussian_filter

    ux, uxx = s["u"][i], s["uu"][i]
    uy, uyy = s["u"][js], s["uu"][js]
    uxy = gaussian_filter(s["x"][i] * s["x"][js], sigma=(0, _SSIM_SIGMA, _SSIM_SIGMA),
                          mode="reflect", truncate=3.5)
    c1 = (0.01 * r) ** 2
    c2 = (0.03 * r) ** 2
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    a1 = 2 * ux * uy + c1
    a2 = 2 * vxy + c2
    b1 = ux**2 + uy**2 + c1
    b2 = vx + vy + c2
    smap = (a1 * a2) / (b1 * b2)
    p = (_SSIM_MIN_SIDE - 1) // 2
    return smap[:, p:-p, p:-p].mean(axis=(1, 2), dtype=np.float64)


def _ssim_stats(stack):
    from scipy.ndimage import gaussian_filter

    sig = (0, _SSIM_SIGMA, _SSIM_SIGMA)
    return {
        "x": stack,
        "u": gaussian_filter(stack, sigma=sig, mode="reflect", truncate=3.5),
        "uu": gaussian_filter(stack * stack, sigma=sig, mode="reflect", truncate=3.5),
    }


def pairwise_ssim(images, data_range=None):
    """SSIM of every pair of a stack of images (see :func:`ssim`), vectorized.

    The computation is scikit-image's :func:`~skimage.metrics.structural_similarity` (same
    filters, constants, population covariance and border crop; the tests check it against
    scikit-image pair by pair), restated so that the Gaussian-filtered means and second
    moments of every image are computed once and only the cross moment ``x y`` per pair
    (about 5 times faster than one scikit-image call per pair).

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack, ``ny, nx >= 11``.
    data_range : float, optional
        Common span of the values; default :func:`common_data_range` of the stack.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64, symmetric by construction (each pair ``i < j`` computed once and
        mirrored; SSIM is symmetric in theory), diagonal 1.

    Raises
    ------
    ValueError
        On a stack that is not ``(k, ny, nx)``, images smaller than 11 px, non-finite values
        or a non-positive range.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import pairwise_ssim
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((3, 16, 16))
    >>> m = pairwise_ssim(stack)
    >>> m.shape, bool(np.allclose(np.diag(m), 1.0)), bool(np.allclose(m, m.T))
    ((3, 3), True, True)
    """
    s, r = _stack_and_range(images, data_range)
    if min(s.shape[1:]) < _SSIM_MIN_SIDE:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_MIN_SIDE} x {_SSIM_MIN_SIDE} pixels (its "
            f"Gaussian window); got {s.shape[1:]}. Bin the patterns less."
        )
    stats = _ssim_stats(s)
    out = _pairs_loop(s.shape[0], lambda i, js: _ssim_rows(stats, r, i, js))
    np.fill_diagonal(out, 1.0)
    return out


def pairwise_psnr(images, data_range=None, cap=PSNR_CAP_DB):
    """PSNR (dB) of every pair of a stack of images (see :func:`psnr`).

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack.
    data_range : float, optional
        Common peak value; default :func:`common_data_range` of the stack.
    cap : float, default 100 dB
        Value of identical pairs (and the diagonal); upper bound.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64 in dB, symmetric (each pair computed once with
        :func:`skimage.metrics.peak_signal_noise_ratio` and mirrored), diagonal ``cap``.

    Raises
    ------
    ValueError
        On a stack that is not ``(k, ny, nx)``, non-finite values or a non-positive range.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import pairwise_psnr
    >>> stack = np.stack([np.zeros((16, 16)), np.full((16, 16), 0.1), np.ones((16, 16))])
    >>> pairwise_psnr(stack, data_range=1.0).round(1)
    array([[100. ,  20. ,   0. ],
           [ 20. , 100. ,   0.9],
           [  0. ,   0.9, 100. ]])
    """
    from skimage.metrics import peak_signal_noise_ratio

    s, r = _stack_and_range(images, data_range)

    def one(a, b):
        """PSNR (dB) of one ``(ny, nx)`` pair on the stack's range, capped at ``cap``."""
        if not np.any(a - b):
            return cap
        return min(peak_signal_noise_ratio(a, b, data_range=r), cap)

    out = _pairs_loop(s.shape[0], lambda i, js: [one(s[i], s[j]) for j in js])
    np.fill_diagonal(out, cap)
    return out


def pairwise_gmsd(images, data_range=None, t=GMSD_T):
    """GMSD of every pair of a stack of images (see :func:`gmsd`), vectorized.

    Gradient magnitudes are computed once per image; the similarity maps of image ``i``
    against all ``j > i`` are one broadcast operation.

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack.
    data_range : float, optional
        Common span mapped to 255; default :func:`common_data_range` of the stack.
    t : float, default 170
        GMSD constant on the 0-255 scale.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64, symmetric (GMSD is symmetric; each pair computed once and
        mirrored), diagonal 0.

    Raises
    ------
    ValueError
        On a stack that is not ``(k, ny, nx)``, non-finite values or a non-positive range.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import pairwise_gmsd
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((3, 16, 16))
    >>> m = pairwise_gmsd(stack)
    >>> m.shape, bool(np.allclose(np.diag(m), 0.0)), bool(np.allclose(m, m.T))
    ((3, 3), True, True)
    """
    s, r = _stack_and_range(images, data_range)
    m = _gmsd_gradients(s, r)
    return _pairs_loop(s.shape[0], lambda i, js: _gmsd_from_gradients(m[i][None], m[js], t))


def pairwise_mdsi(images, data_range=None):
    """MDSI of every pair of a stack of images (see :func:`mdsi`), symmetrized, vectorized.

    MDSI treats its two arguments differently (reference and distorted).  Components have no
    reference, so the matrix holds the mean of both orders,
    ``(MDSI(i, j) + MDSI(j, i)) / 2``.  Luminance gradients are computed once per image (the
    fused image's gradient is the mean of the two gradients, Prewitt being linear); each row
    is one broadcast operation.

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack.
    data_range : float, optional
        Common span mapped to 255; default :func:`common_data_range` of the stack.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` float64, symmetric, diagonal 0.

    Raises
    ------
    ValueError
        On a stack that is not ``(k, ny, nx)``, non-finite values or a non-positive range.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import pairwise_mdsi
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((3, 16, 16))
    >>> m = pairwise_mdsi(stack)
    >>> m.shape, bool(np.allclose(np.diag(m), 0.0)), bool(np.allclose(m, m.T))
    ((3, 3), True, True)
    """
    s, r = _stack_and_range(images, data_range)
    st = _mdsi_gradient_stats(*_mdsi_gradients(s, r))

    def row(i, js):
        """MDSI of image ``i`` against images ``js``, mean of both orders: ``(len(js),)``."""
        ab, ba = _mdsi_both_orders(st, i, js)
        return 0.5 * (ab + ba)

    return _pairs_loop(s.shape[0], row)


_PAIRWISE = {
    "ssim": pairwise_ssim,
    "psnr": pairwise_psnr,
    "gmsd": pairwise_gmsd,
    "mdsi": pairwise_mdsi,
}


def pairwise(images, metrics=METRICS, data_range=None):
    """Several pairwise metric matrices of one stack, on one common data range.

    Parameters
    ----------
    images : array_like
        ``(k, ny, nx)`` stack.
    metrics : sequence of str, default ("ssim", "psnr", "gmsd", "mdsi")
        Metric names.
    data_range : float, optional
        Common span of the values; default :func:`common_data_range` of the stack.

    Returns
    -------
    dict
        Metric name -> ``(k, k)`` float64 symmetric matrix.

    Raises
    ------
    ValueError
        On an unknown metric name, or as the pairwise functions.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.iqa import pairwise
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((3, 16, 16))
    >>> matrices = pairwise(stack, metrics=("ssim", "gmsd"))
    >>> sorted(matrices), matrices["ssim"].shape
    (['gmsd', 'ssim'], (3, 3))
    """
    unknown = [m for m in metrics if m not in _PAIRWISE]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose from {list(_PAIRWISE)}.")
    s, r = _stack_and_range(images, data_range)
    return {m: _PAIRWISE[m](s, data_range=r) for m in metrics}
