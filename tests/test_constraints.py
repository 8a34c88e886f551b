"""The two domain constraints ([.]_W continuity, [.]_H smoothing) and the ring geometry."""

import numpy as np
import pytest

from stemnmf_hs.decomposition._constraints import (
    DEFAULT_KERNEL_SIGMA,
    continuity_projection,
    gaussian_kernel,
    resolve_map_kernel,
    smooth_maps,
)
from stemnmf_hs.polar import RingBinning, radius_map

SHAPE = (33, 33)
CENTER = (16.0, 16.0)


def _ring_pattern():
    r = radius_map(SHAPE, CENTER)
    return (np.exp(-(((r - 9) / 3) ** 2)) + 0.2).astype(np.float32)


def test_ring_binning_counts_and_sums():
    b = RingBinning(SHAPE, CENTER)
    r = radius_map(SHAPE, CENTER).ravel()
    assert b.counts.sum() == r.size
    # Ring 0 is the centre pixel alone; ring 1 (1 <= r < 2) its 8 neighbours.
    assert b.counts[0] == 1 and b.counts[1] == 8
    x = np.random.default_rng(0).random((3, r.size)).astype(np.float32)
    sums = b.ring_sums(x)
    np.testing.assert_allclose(sums.sum(axis=1), x.sum(axis=1), rtol=1e-5)


def test_ring_binning_rejects_bad_mask():
    with pytest.raises(ValueError, match="signal_mask has shape"):
        RingBinning(SHAPE, CENTER, signal_mask=np.zeros((4, 4), bool))


def test_continuity_fills_dark_spots_and_keeps_bright_spots():
    pattern = _ring_pattern()
    damaged = pattern.copy()
    damaged[16, 25] *= 0.1  # dark spot on the ring (r = 9)
    damaged[25, 16] += 5.0  # Bragg spot on the same ring
    b = RingBinning(SHAPE, CENTER)
    out = continuity_projection(damaged.reshape(1, -1), b).reshape(SHAPE)
    assert out[16, 25] == pytest.approx(pattern[16, 25], rel=0.15)
    assert out[25, 16] == pytest.approx(damaged[25, 16])  # outlier left alone
    assert (out >= damaged - 1e-7).all()  # only raises values
    # The robust mean ignores the Bragg spot: the filled value is not pulled up by it.
    assert out[16, 25] < pattern[16, 25] * 1.15


def test_continuity_is_identity_on_rotationally_symmetric_pattern_and_clips_negatives():
    pattern = _ring_pattern()
    b = RingBinning(SHAPE, CENTER, ring_width=1.0)
    out = continuity_projection(pattern.reshape(1, -1), b)
    # Within one 1-px ring the values vary a little: they can only go up, by little.
    assert np.abs(out - pattern.ravel()).max() < 0.15
    neg = continuity_projection(-np.ones((1, pattern.size), np.float32), b)
    assert (neg == 0).all()


def test_continuity_vectorized_equals_per_component():
    rng = np.random.default_rng(1)
    b = RingBinning(SHAPE, CENTER)
    stack = rng.gamma(1.0, size=(5, SHAPE[0] * SHAPE[1])).astype(np.float32)
    together = continuity_projection(stack, b)
    one_by_one = np.vstack([continuity_projection(x[None], b) for x in stack])
    # Equal up to float32 rounding (BLAS blocks the ring sums differently by stack size).
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5)


def test_continuity_ignores_masked_pixels():
    pattern = _ring_pattern()
    mask = np.zeros(SHAPE, bool)
    mask[14:19, 14:19] = True  # direct beam
    pattern[mask] = 1e6  # would dominate the inner rings if it took part
    b = RingBinning(SHAPE, CENTER, signal_mask=mask)
    kept = pattern[~mask].reshape(1, -1)
    out = continuity_projection(kept, b)
    assert out.shape == kept.shape
    assert out.max() < 2.0


def test_default_kernel_is_papers_3x3_gaussian():
    k = resolve_map_kernel()
    assert k.shape == (3, 3)
    assert k.sum() == pytest.approx(1.0)
    assert k[1, 1] == k.max() and k[0, 0] == k.min()
    np.testing.assert_allclose(k, gaussian_kernel(DEFAULT_KERNEL_SIGMA, radius=1))


def test_kernel_from_probe_fwhm_and_scan_step():
    narrow = resolve_map_kernel(probe_fwhm=2.0, scan_step=1.5)
    wide = resolve_map_kernel(probe_fwhm=6.0, scan_step=1.0)
    assert narrow.shape == (3, 3)
    assert wide.shape[0] > 3
    # sigma = 6 / 2.355 px: the 1D marginal has that standard deviation.
    marg = wide.sum(axis=1)
    x = np.arange(marg.size) - marg.size // 2
    assert np.sqrt((marg * x**2).sum()) == pytest.approx(6.0 / 2.3548, rel=0.05)
    aniso = resolve_map_kernel(probe_fwhm=4.0, scan_step=(1.0, 2.0))
    assert aniso.shape[0] > aniso.shape[1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(probe_fwhm=2.0), "needed together"),
        (dict(kernel=np.ones((3, 3)), probe_fwhm=2.0, scan_step=1.0), "not both"),
        (dict(kernel=-np.ones((3, 3))), "non-negative"),
        (dict(probe_fwhm=-1.0, scan_step=1.0), "positive"),
    ],
)
def test_kernel_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resolve_map_kernel(**kwargs)


def test_smoothing_does_not_darken_border_and_reduces_noise():
    shape = (20, 24)
    const = np.full((2, shape[0] * shape[1]), 3.0, np.float32)
    out = smooth_maps(const, shape, resolve_map_kernel())
    np.testing.assert_allclose(out, 3.0, rtol=1e-6)
    noisy = np.random.default_rng(0).poisson(100, (1, shape[0] * shape[1])).astype(np.float32)
    assert smooth_maps(noisy, shape, resolve_map_kernel()).std() < 0.8 * noisy.std()


def test_smoothing_with_navigation_mask_leaks_nothing():
    shape = (10, 10)
    valid = np.ones(shape, bool)
    valid[4:6, 4:6] = False
    maps = np.full((1, valid.sum()), 2.0, np.float32)
    out = smooth_maps(maps, shape, resolve_map_kernel(), valid)
    assert out.shape == maps.shape
    np.testing.assert_allclose(out, 2.0, rtol=1e-6)


def test_fast_paths_equal_the_reference_projections(monkeypatch):
    """The numba continuity kernel and the (R, N, k) smoothing give the numpy results."""
    from stemnmf_hs.decomposition import _constraints as c
    from stemnmf_hs.polar import RingBinning

    rng = np.random.default_rng(3)
    binning = RingBinning((40, 48), center=(23.0, 19.5))
    D = rng.random((7, 40 * 48)).astype(np.float32)
    D[:, ::37] *= 6.0  # Bragg-like outliers above 2x the ring mean
    D[:, ::11] *= 0.01  # dark spots to be raised
    fast = c.continuity_projection(D, binning, 2.0)
    monkeypatch.setattr(c, "_continuity_rows", None)
    ref = c.continuity_projection(D, binning, 2.0)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-7)
    assert (ref > D).any()  # the projection did raise dark spots

    maps = rng.random((3, 12 * 9, 4)).astype(np.float32)  # (R, N, k)
    kernel = c.resolve_map_kernel(None, None, None)
    stack = c.smooth_maps_stack(maps, (12, 9), kernel)
    flat = maps.transpose(0, 2, 1).reshape(12, 12 * 9)
    ref_maps = c.smooth_maps(flat, (12, 9), kernel).reshape(3, 4, -1).transpose(0, 2, 1)
    np.testing.assert_allclose(stack, ref_maps, rtol=1e-5, atol=1e-6)
    assert c.smooth_maps_stack(maps, (12, 9), np.eye(3)) is None  # not separable
    wide = c.gaussian_kernel(1.5)  # 9 x 9: wider than the 9-column scan
    out = np.empty_like(maps)
    assert c.smooth_maps_stack(maps, (12, 9), wide, out=out) is out
    monkeypatch.setattr(c, "_smooth_stack_rows", None)  # numpy slices instead of numba
    np.testing.assert_allclose(c.smooth_maps_stack(maps, (12, 9), kernel), stack, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(c.smooth_maps_stack(maps, (12, 9), wide), out, rtol=1e-5,
                               atol=1e-6)


def test_l1_change_kernel_equals_numpy(monkeypatch):
    from stemnmf_hs.decomposition import _solver as _nmf  # the solver's L1 kernel

    rng = np.random.default_rng(2)
    a, b = (rng.random((3, 5000, 7)).astype(np.float32) for _ in range(2))
    fast = _nmf._l1_change(a, b)
    monkeypatch.setattr(_nmf, "_l1_rows", None)
    np.testing.assert_allclose(fast, _nmf._l1_change(a, b), rtol=1e-5)
    np.testing.assert_allclose(fast, np.abs(a.astype(float) - b).sum(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize("rings", [True, False])
def test_fused_sorted_kernel_equals_projection_then_normalization(monkeypatch, rings):
    """Ring-sorted [.]_W + unit sum + L1 change (compressed solver) == the plain steps."""
    from stemnmf_hs.decomposition import _constraints as c

    rng = np.random.default_rng(5)
    binning = RingBinning((40, 48), center=(23.0, 19.5), signal_mask=None)
    perm, starts = c.ring_order(binning)
    assert np.all(np.diff(binning.labels[perm]) >= 0)  # rings are contiguous segments
    np.testing.assert_array_equal(np.diff(starts), np.bincount(binning.labels))
    D = (rng.random((6, 40 * 48)) - 0.2).astype(np.float32)  # some negatives to clip
    D[:, ::37] *= 6.0
    D[:, ::11] *= 0.01
    D[2] = -1.0  # a row that projects to zero without rings: stays zero, sum 0
    old = rng.random(D.shape).astype(np.float32)
    expected = c.continuity_projection(D, binning, 2.0) if rings else np.maximum(D, 0)
    exp_sums = expected.sum(axis=1, dtype=np.float64)
    expected = expected / np.where(exp_sums > 0, exp_sums, 1)[:, None]
    exp_l1 = np.abs(expected - old).sum(axis=1)

    results = []
    for kernel in (c._project_rows_sorted, None):  # numba kernel, then numpy fallback
        monkeypatch.setattr(c, "_project_rows_sorted", kernel)
        work = np.ascontiguousarray(D[:, perm])
        sums, l1 = c.project_normalize_sorted(work, binning if rings else None, 2.0,
                                              np.ascontiguousarray(old[:, perm]))
        out = np.empty_like(work)
        out[:, perm] = work
        results.append(out)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(sums, exp_sums, rtol=1e-5)
        np.testing.assert_allclose(l1, exp_l1, rtol=1e-4)
    if rings:
        assert (results[0] * exp_sums[:, None] > D + 1e-6).any()  # dark spots were raised
