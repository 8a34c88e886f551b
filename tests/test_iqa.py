"""Image-quality metrics: limits, symmetry, scale, and agreement with the authors' MATLAB code.

``_ref_gmsd`` and ``_ref_mdsi`` follow the published MATLAB files line by line (GMSD.m of
Xue et al. 2014, MDSI.m of Nafchi et al. 2016), with ``scipy.signal.convolve2d`` standing in
for ``conv2`` and deliberately none of the module's helpers.
"""

import time

import numpy as np
import pytest
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity

from stemnmf_hs import iqa
from stemnmf_hs.data import amorphous_pattern, spot_pattern


# ------------------------------------------------------------------ MATLAB references
def _conv2_same(a, kernel):
    """MATLAB ``conv2(a, kernel, 'same')``: the central part of the full convolution.

    MATLAB keeps rows ``floor(m/2) + 1 ... floor(m/2) + M`` (1-based) of the full result
    for a kernel of ``m`` rows (e.g. ``conv2([1 2 3], [1 1], 'same') = [3 5 3]``).
    """
    full = convolve2d(a, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]]


def _std2(a):
    """MATLAB ``std2``: the sample standard deviation of all elements."""
    a = a.ravel()
    return np.sqrt(np.sum((a - a.mean()) ** 2) / (a.size - 1))


def _ref_gmsd(Y1, Y2):
    """GMSD.m (Xue et al. 2014), inputs on the 0-255 scale."""
    T = 170
    Down_step = 2
    dx = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) / 3
    dy = dx.T
    aveKernel = np.ones((2, 2)) / 4  # fspecial('average', 2)
    aveY1 = _conv2_same(Y1, aveKernel)
    aveY2 = _conv2_same(Y2, aveKernel)
    Y1 = aveY1[::Down_step, ::Down_step]  # Y(1:2:end, 1:2:end)
    Y2 = aveY2[::Down_step, ::Down_step]
    IxY1 = _conv2_same(Y1, dx)
    IyY1 = _conv2_same(Y1, dy)
    gradientMap1 = np.sqrt(IxY1**2 + IyY1**2)
    IxY2 = _conv2_same(Y2, dx)
    IyY2 = _conv2_same(Y2, dy)
    gradientMap2 = np.sqrt(IxY2**2 + IyY2**2)
    quality_map = (2 * gradientMap1 * gradientMap2 + T) / (gradientMap1**2 + gradientMap2**2 + T)
    return _std2(quality_map)


def _matlab_round(x):
    return np.floor(x + 0.5)  # half away from zero for x >= 0


def _mad(x):
    """MATLAB ``mad(x)`` (flag 0): mean absolute deviation, complex values allowed."""
    return np.mean(np.abs(x - np.mean(x)))


def _ref_mdsi(Ref, Dist, combMethod="sum"):
    """MDSI.m (Nafchi et al. 2016), RGB inputs ``(rows, cols, 3)`` on the 0-255 scale."""
    C1 = 140
    C2 = 55
    C3 = 550
    dx = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) / 3
    dy = dx.T
    rows, cols = Ref.shape[:2]
    minDimension = min(rows, cols)
    f = int(max(1, _matlab_round(minDimension / 256)))
    aveKernel = np.ones((f, f)) / f**2

    def down(ch):
        return _conv2_same(ch, aveKernel)[0:rows:f, 0:cols:f]

    R1, R2 = down(Ref[:, :, 0]), down(Dist[:, :, 0])
    G1, G2 = down(Ref[:, :, 1]), down(Dist[:, :, 1])
    B1, B2 = down(Ref[:, :, 2]), down(Dist[:, :, 2])
    L1 = 0.2989 * R1 + 0.5870 * G1 + 0.1140 * B1
    L2 = 0.2989 * R2 + 0.5870 * G2 + 0.1140 * B2
    F = 0.5 * (L1 + L2)
    H1 = 0.30 * R1 + 0.04 * G1 - 0.35 * B1
    H2 = 0.30 * R2 + 0.04 * G2 - 0.35 * B2
    M1 = 0.34 * R1 - 0.60 * G1 + 0.17 * B1
    M2 = 0.34 * R2 - 0.60 * G2 + 0.17 * B2
    gR = np.sqrt(_conv2_same(L1, dx) ** 2 + _conv2_same(L1, dy) ** 2)
    gD = np.sqrt(_conv2_same(L2, dx) ** 2 + _conv2_same(L2, dy) ** 2)
    gF = np.sqrt(_conv2_same(F, dx) ** 2 + _conv2_same(F, dy) ** 2)
    GS12 = (2 * gR * gD + C1) / (gR**2 + gD**2 + C1)
    GS13 = (2 * gR * gF + C2) / (gR**2 + gF**2 + C2)
    GS23 = (2 * gD * gF + C2) / (gD**2 + gF**2 + C2)
    GS_HVS = GS12 + GS23 - GS13
    CS = (2 * (H1 * H2 + M1 * M2) + C3) / (H1**2 + H2**2 + M1**2 + M2**2 + C3)
    alpha = 0.6
    GCS = alpha * GS_HVS + (1 - alpha) * CS
    z = GCS.ravel().astype(complex)
    return float(_mad((z**0.5) ** 0.5) ** 0.25)


#: RGB -> (L, H, M) matrix of MDSI.m; an achromatic image is the RGB whose H = M = 0.
_LHM = np.array([[0.2989, 0.5870, 0.1140], [0.30, 0.04, -0.35], [0.34, -0.60, 0.17]])


def _achromatic_rgb(Y):
    """RGB image whose MDSI luminance is ``Y`` and whose chromatic channels H, M are 0."""
    rgb_of_unit_l = np.linalg.solve(_LHM, [1.0, 0.0, 0.0])
    return Y[:, :, None] * rgb_of_unit_l


# ------------------------------------------------------------------------ test images
def _diffraction(shape=(64, 64), g=((11.0, 2.0), (-3.0, 12.0)), amorphous=0.5):
    """Spot pattern over an amorphous halo, values 0..~1."""
    img = spot_pattern(shape, g[0], g[1], max_radius=0.45 * min(shape), dtype=np.float64)
    img = img + amorphous * amorphous_pattern(shape, ring_radii=(10, 19), ring_widths=(2, 3),
                                              dtype=np.float64)
    return img / img.max()


@pytest.fixture(scope="module")
def pairs():
    """Fixed random and structured image pairs, values on 0..1."""
    rng = np.random.default_rng(42)
    out = [
        (rng.random((40, 52)), rng.random((40, 52))),  # random, even sides
        (rng.random((33, 47)), rng.random((33, 47))),  # random, odd sides (edge padding)
        (_diffraction(), _diffraction(g=((9.0, -4.0), (5.0, 13.0)))),  # two crystals
        (_diffraction(), np.clip(_diffraction() + 0.05 * rng.standard_normal((64, 64)), 0,
                                 None)),  # noisy copy
        (_diffraction((63, 71)), _diffraction((63, 71), amorphous=2.0)),  # halo stronger
    ]
    return out


# ----------------------------------------------------------------------------- limits
def test_identical_images_are_perfect():
    img = _diffraction()
    assert iqa.ssim(img, img, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    assert iqa.gmsd(img, img, data_range=1.0) == pytest.approx(0.0, abs=1e-12)
    assert iqa.mdsi(img, img, data_range=1.0) == pytest.approx(0.0, abs=1e-12)
    assert iqa.psnr(img, img, data_range=1.0) == iqa.PSNR_CAP_DB == 100.0


def test_a_different_pair_is_worse_on_every_metric_and_more_noise_worse_still():
    rng = np.random.default_rng(0)
    img = _diffraction()
    noise = rng.standard_normal(img.shape)
    scores = []
    for level in (0.02, 0.1):
        other = img + level * noise
        scores.append({m: getattr(iqa, m)(img, other, data_range=1.0) for m in iqa.METRICS})
    low, high = scores
    assert 0.0 < high["ssim"] < low["ssim"] < 1.0
    assert 0.0 < high["psnr"] < low["psnr"] < iqa.PSNR_CAP_DB
    assert 0.0 < low["gmsd"] < high["gmsd"]
    assert 0.0 < low["mdsi"] < high["mdsi"]
    # PSNR of Gaussian noise of sigma s on data_range 1 is -20 log10(s)
    assert low["psnr"] == pytest.approx(-20 * np.log10(0.02), abs=0.1)


def test_psnr_is_capped_but_otherwise_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    a = _diffraction()
    b = a.copy()
    b[10, 10] += 1e-2  # 10 log10(4096 / 1e-4) ~ 76 dB
    assert iqa.psnr(a, b, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=1.0))
    b2 = a.copy()
    b2[10, 10] += 1e-9  # 10 log10(4096 / 1e-18) ~ 216 dB > cap
    assert iqa.psnr(a, b2, data_range=1.0) == 100.0
    assert iqa.psnr(a, b2, data_range=1.0, cap=300.0) == pytest.approx(
        peak_signal_noise_ratio(a, b2, data_range=1.0))


def test_metrics_depend_only_on_values_relative_to_data_range(pairs):
    a, b = pairs[2]
    for m in iqa.METRICS:
        f = getattr(iqa, m)
        assert f(250.0 * a, 250.0 * b, data_range=250.0) == pytest.approx(
            f(a, b, data_range=1.0), rel=1e-9, abs=1e-12), m


def test_common_data_range_is_the_stack_maximum():
    stack = np.stack([_diffraction(), 3.0 * _diffraction()])
    assert iqa.common_data_range(stack) == pytest.approx(3.0)
    shifted = np.array([[[-0.5, 0.0], [1.0, 2.5]]])
    assert iqa.common_data_range(shifted) == pytest.approx(3.0)  # from -0.5 to 2.5
    assert iqa.common_data_range(shifted + 1.0) == pytest.approx(3.5)  # from 0, not 0.5
    with pytest.raises(ValueError, match="range"):
        iqa.common_data_range(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="finite"):
        iqa.common_data_range(np.full((2, 8, 8), np.nan))


def test_input_errors_name_the_problem():
    a = np.ones((16, 16))
    with pytest.raises(ValueError, match="differ in shape"):
        iqa.gmsd(a, np.ones((16, 17)))
    with pytest.raises(ValueError, match="2D image"):
        iqa.ssim(np.ones((2, 16, 16)), np.ones((2, 16, 16)))
    with pytest.raises(ValueError, match="NaN"):
        iqa.mdsi(a, np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="at least 11"):
        iqa.ssim(np.ones((8, 8)), np.zeros((8, 8)), data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        iqa.psnr(a, a, data_range=0.0)
    with pytest.raises(ValueError, match="stack"):
        iqa.pairwise_gmsd(np.ones((16, 16)))
    with pytest.raises(ValueError, match="Unknown metric"):
        iqa.pairwise(np.ones((2, 16, 16)), metrics=("ssim", "fsim"))


# --------------------------------------------------------------- agreement with MATLAB
def test_gmsd_matches_the_authors_matlab_code(pairs):
    for a, b in pairs:
        ours = iqa.gmsd(a, b, data_range=1.0)
        ref = _ref_gmsd(255.0 * a, 255.0 * b)
        assert ours == pytest.approx(ref, rel=1e-10, abs=1e-13)
        assert ours > 0.0


def test_mdsi_matches_the_authors_matlab_code_for_achromatic_images(pairs):
    for a, b in pairs:
        ours = iqa.mdsi(a, b, data_range=1.0)
        ref = _ref_mdsi(_achromatic_rgb(255.0 * a), _achromatic_rgb(255.0 * b))
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
        assert ours > 0.0


def test_mdsi_matches_matlab_with_downsampling_above_384_pixels():
    """f = round(min(rows, cols) / 256) = 2 for a 400 x 420 image: 2x2 box + stride 2."""
    rng = np.random.default_rng(3)
    a = _diffraction((400, 420), g=((40.0, 7.0), (-11.0, 44.0)))
    b = np.clip(a + 0.03 * rng.standard_normal(a.shape), 0, None)
    ours = iqa.mdsi(a, b, data_range=1.0)
    ref = _ref_mdsi(_achromatic_rgb(255.0 * a), _achromatic_rgb(255.0 * b))
    assert ours == pytest.approx(ref, rel=1e-9)


def test_mdsi_of_grey_images_has_a_neutral_chromatic_term():
    """For grey images MDSI is its gradient term through GCS = 0.6 GS + 0.4 (CS = 1).

    The module equals MDSI.m fed with the achromatic RGB image (H = M = 0) also for a pure
    brightness change, which copying the grey image into R, G and B would turn into a colour
    change (piq's way: H = -0.01 Y, M = -0.09 Y leak through the rounded coefficients).
    """
    a = _diffraction()
    b = 0.4 * a
    ours = iqa.mdsi(a, b, data_range=1.0)
    achromatic = _ref_mdsi(_achromatic_rgb(255.0 * a), _achromatic_rgb(255.0 * b))
    replicated = _ref_mdsi(np.repeat(255.0 * a[..., None], 3, axis=-1),
                           np.repeat(255.0 * b[..., None], 3, axis=-1))
    assert ours == pytest.approx(achromatic, rel=1e-9)
    assert replicated > ours + 1e-3  # the chroma leak, for the record


def test_mdsi_is_asymmetric_and_the_matrix_averages_both_orders(pairs):
    a, b = pairs[4]
    ab = iqa.mdsi(a, b, data_range=1.0)
    ba = iqa.mdsi(b, a, data_range=1.0)
    assert abs(ab - ba) > 1e-4
    m = iqa.pairwise_mdsi(np.stack([a, b]), data_range=1.0)
    assert m[0, 1] == m[1, 0] == pytest.approx(0.5 * (ab + ba), rel=1e-12)


# ------------------------------------------------------------------------- matrices
@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(7)
    lattices = [((11.0, 2.0), (-3.0, 12.0)), ((9.0, -4.0), (5.0, 13.0)),
                ((14.0, 0.0), (7.0, 12.1)), ((8.0, 8.0), (-8.0, 8.0))]
    imgs = [(1.0 + i) * _diffraction(g=g) for i, g in enumerate(lattices)]
    noisy = np.clip(imgs[0] + 0.02 * rng.standard_normal(imgs[0].shape), 0, None)
    imgs.append(noisy)  # a near-duplicate of image 0
    return np.stack(imgs)


def test_pairwise_matrices_are_symmetric_with_perfect_diagonals(stack):
    mats = iqa.pairwise(stack)
    assert set(mats) == set(iqa.METRICS)
    k = stack.shape[0]
    perfect = {"ssim": 1.0, "psnr": iqa.PSNR_CAP_DB, "gmsd": 0.0, "mdsi": 0.0}
    for m, mat in mats.items():
        assert mat.shape == (k, k) and mat.dtype == np.float64
        np.testing.assert_array_equal(mat, mat.T)
        np.testing.assert_allclose(np.diag(mat), perfect[m], atol=1e-12)
    # the near-duplicate (4) of image 0 is its most similar partner on every metric
    assert np.argmax(mats["ssim"][0, 1:]) + 1 == 4
    assert np.argmax(mats["psnr"][0, 1:]) + 1 == 4
    assert np.argmin(mats["gmsd"][0, 1:]) + 1 == 4
    assert np.argmin(mats["mdsi"][0, 1:]) + 1 == 4


def test_pairwise_matrices_equal_the_single_pair_functions(stack):
    r = iqa.common_data_range(stack)
    assert r == stack.max()  # non-negative stack: the range is its maximum
    mats = iqa.pairwise(stack)
    k = stack.shape[0]
    for i in range(k):
        for j in range(i + 1, k):
            a, b = stack[i], stack[j]
            ref_ssim = structural_similarity(a, b, data_range=r, gaussian_weights=True,
                                             sigma=1.5, use_sample_covariance=False)
            assert mats["ssim"][i, j] == pytest.approx(ref_ssim, rel=1e-10, abs=1e-12)
            assert mats["ssim"][i, j] == pytest.approx(iqa.ssim(a, b, data_range=r), rel=1e-10)
            assert mats["psnr"][i, j] == pytest.approx(iqa.psnr(a, b, data_range=r))
            assert mats["gmsd"][i, j] == pytest.approx(iqa.gmsd(a, b, data_range=r), rel=1e-10)
            mean_mdsi = 0.5 * (iqa.mdsi(a, b, data_range=r) + iqa.mdsi(b, a, data_range=r))
            assert mats["mdsi"][i, j] == pytest.approx(mean_mdsi, rel=1e-10)


def test_one_component_gives_one_by_one_matrices():
    mats = iqa.pairwise(_diffraction()[None])
    assert {m: v.shape for m, v in mats.items()} == {m: (1, 1) for m in iqa.METRICS}


def test_pairwise_is_fast_enough_for_twelve_components_of_256_pixels():
    rng = np.random.default_rng(1)
    stack = rng.random((12, 256, 256))
    t0 = time.perf_counter()
    iqa.pairwise(stack)
    assert time.perf_counter() - t0 < 10.0  # ~0.5 s on one core; generous for CI load


def test_gmsd_agrees_with_piq_when_installed(pairs):
    """piq's GMSD uses the population standard deviation instead of MATLAB's std2."""
    torch = pytest.importorskip("torch")
    piq = pytest.importorskip("piq")
    for a, b in pairs:
        ta = torch.tensor(a[None, None])
        tb = torch.tensor(b[None, None])
        theirs = float(piq.gmsd(ta, tb, data_range=1.0, reduction="none"))
        n = (-(-a.shape[0] // 2)) * (-(-a.shape[1] // 2))
        ours = iqa.gmsd(a, b, data_range=1.0) * np.sqrt((n - 1) / n)
        assert ours == pytest.approx(theirs, rel=1e-5)
