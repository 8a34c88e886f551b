"""The simulated 4D-STEM scan of Kimoto et al. 2025 (Methods, Fig. 10): pure numpy arrays."""

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from stemnmf_hs.data._simulate import (
    CRYSTAL_G_VECTORS,
    SimulatedScan,
    amorphous_pattern,
    simulate_precipitates,
    spot_offsets,
    spot_pattern,
)

N = 1e4
RINGS = (20.0, 38.0, 55.0)
WIDTHS = (4.0, 6.0, 8.0)


def _cos(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def clean():
    return simulate_precipitates(noise=False)


@pytest.fixture(scope="module")
def noisy():
    return simulate_precipitates(seed=0)


# ----------------------------------------------------------------------------- amorphous
def test_amorphous_normalized_nonnegative_float32():
    a = amorphous_pattern()
    assert a.shape == (128, 128) and a.dtype == np.float32
    assert a.min() > 0
    assert a.astype(np.float64).sum() == pytest.approx(1.0, abs=1e-5)
    assert amorphous_pattern(dtype=np.float64).sum() == pytest.approx(1.0, abs=1e-12)


def test_amorphous_rotationally_symmetric():
    a = amorphous_pattern(dtype=np.float64)
    # exact symmetries of the pixel grid about the on-pixel centre (64, 64)
    c = a[1:, 1:]  # rows/cols 1..127, centred on index 63 of the crop
    np.testing.assert_allclose(np.rot90(c), c, rtol=1e-12)
    np.testing.assert_allclose(c.T, c, rtol=1e-12)
    # azimuthal profile: spline-sampled rings of constant radius are flat
    r = np.arange(3.0, 60.0, 1.0)[:, None]
    t = np.deg2rad(np.arange(0.0, 360.0, 7.0))[None, :]
    rows, cols = 64.0 + r * np.sin(t), 64.0 + r * np.cos(t)
    vals = map_coordinates(a, [rows.ravel(), cols.ravel()], order=3).reshape(rows.shape)
    rel_std = vals.std(axis=1) / vals.mean(axis=1)
    assert rel_std.max() < 0.01


def test_amorphous_rings_at_radii_and_no_direct_beam():
    a = amorphous_pattern(dtype=np.float64)
    prof = a[64, 64:]  # along +x
    d = np.diff(prof)
    maxima = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0)) + 1
    assert len(maxima) == 3
    for r in RINGS:  # the decaying background shifts the outer maximum inwards a little
        assert np.min(np.abs(maxima - r)) <= 3
    # no sharp direct-beam spike: the centre is only a smooth background maximum
    assert a[64, 64] < 1.2 * a[64, 66]


def test_amorphous_center_is_x_y():
    a = amorphous_pattern((128, 128), center=(40.0, 70.0), ring_radii=(10.0,), ring_widths=(1.0,))
    # (cx, cy) = (column, row): the ring passes through row 70, col 50 and row 80, col 40
    assert a[70, 50] > 5 * a[50, 70]
    assert a[80, 40] == pytest.approx(a[70, 50], rel=1e-5)


# ----------------------------------------------------------------------------- spots
def test_spot_offsets_friedel_closed_and_within_radius():
    off, hk = spot_offsets((22.0, 0.0), (11.0, 19.0525588833), max_radius=60.0)
    r = np.hypot(*off.T)
    assert np.all(r > 0) and np.all(r <= 60.0 + 1e-9)
    assert not np.any((hk == 0).all(axis=1))
    keys = {tuple(v) for v in np.round(off, 6)}
    assert all(tuple(v) in keys for v in np.round(-off, 6))
    # hexagonal, |g| = 22: 6 spots each at 22, 38.1, 44 and 12 at 58.2 px
    assert len(off) == 30


def test_spot_pattern_normalized_and_friedel_symmetric():
    for g1, g2 in CRYSTAL_G_VECTORS:
        p = spot_pattern(g1=g1, g2=g2, dtype=np.float64)
        assert p.shape == (128, 128)
        assert p.min() >= 0 and p.sum() == pytest.approx(1.0, abs=1e-12)
        c = p[1:, 1:]  # centre (64, 64) -> index 63 of the crop
        np.testing.assert_allclose(c[::-1, ::-1], c, rtol=1e-9, atol=1e-12 * p.max())
        # direct beam excluded
        assert p[64, 64] < 1e-3 * p.max()
    assert spot_pattern().dtype == np.float32
    assert spot_pattern().astype(np.float64).sum() == pytest.approx(1.0, abs=1e-5)


def test_spot_pattern_center_and_g_are_x_y():
    p = spot_pattern((128, 128), g1=(20.0, 0.0), g2=(0.0, 25.0), center=(40.0, 70.0),
                     spot_sigma=1.0, max_radius=30.0, dtype=np.float64)
    assert p[70, 60] > 0.5 * p.max()  # centre + g1: x = 60, y = 70
    assert p[95, 40] > 0.3 * p.max()  # centre + g2: x = 40, y = 95
    assert p[60, 70] < 1e-6 * p.max()  # the transposed position is dark


def test_crystal_patterns_distinct_and_touch_amorphous_rings():
    pats = [spot_pattern(g1=g1, g2=g2, dtype=np.float64) for g1, g2 in CRYSTAL_G_VECTORS]
    for i in range(3):
        for j in range(i + 1, 3):
            assert _cos(pats[i], pats[j]) < 0.5
    for g1, g2 in CRYSTAL_G_VECTORS:
        r = np.hypot(*spot_offsets(g1, g2, 60.0)[0].T)
        near = (np.abs(r[:, None] - np.array(RINGS)) <= np.array(WIDTHS)).any(axis=1)
        assert near.sum() >= 6  # spots on/near the rings: what gives primitive NMF dark spots


# ----------------------------------------------------------------------------- scan
def test_shapes_and_normalizations(clean):
    assert isinstance(clean, SimulatedScan)
    assert clean.data.shape == (36, 36, 128, 128)
    assert clean.diffractions.shape == (4, 128, 128)
    assert clean.maps.shape == (4, 36, 36)
    assert clean.area_labels.shape == (36, 36)
    assert clean.data.dtype == clean.diffractions.dtype == clean.maps.dtype == np.float32
    np.testing.assert_allclose(clean.diffractions.astype(np.float64).sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(clean.maps.astype(np.float64).sum(axis=0), N, rtol=1e-6)
    assert clean.maps.min() >= 0
    np.testing.assert_allclose(clean.data.astype(np.float64).sum(axis=(2, 3)), N, rtol=1e-4)
    assert clean.center == (64.0, 64.0)
    assert clean.crystallinity == (0.09, 0.03, 0.01)
    np.testing.assert_allclose(clean.diffractions[0], amorphous_pattern(), rtol=1e-6)
    for j, (g1, g2) in enumerate(CRYSTAL_G_VECTORS):
        np.testing.assert_allclose(clean.diffractions[j + 1], spot_pattern(g1=g1, g2=g2),
                                   rtol=1e-5, atol=1e-12)


def test_noiseless_data_is_exact_expectation(clean):
    want = np.einsum("kyx,kuv->yxuv", clean.maps, clean.diffractions)
    np.testing.assert_allclose(clean.data, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(clean.expectation, want, rtol=0, atol=0)


def test_area_layout_and_plateaus(clean):
    labels, maps, cr = clean.area_labels, clean.maps, (0.09, 0.03, 0.01)
    assert set(np.unique(labels)) == set(range(10))
    ys, xs = np.mgrid[:36, :36]
    for r in range(3):  # crystal r + 1
        for c in range(3):  # crystallinity cr[c]
            lab = 3 * r + c + 1
            m = labels == lab
            assert m.sum() == 36  # nominal 6 x 6
            # centres at 6, 18, 30 px (edge coordinates): rows = crystals, cols = ratios
            assert ys[m].mean() + 0.5 == pytest.approx(6 + 12 * r)
            assert xs[m].mean() + 0.5 == pytest.approx(6 + 12 * c)
            frac = maps[r + 1] / N
            plateau = np.isclose(frac, cr[c], rtol=1e-6) & m
            assert plateau.sum() == 16  # central 4 x 4 at the full ratio
            assert frac[m].max() == pytest.approx(cr[c], rel=1e-6)
            # graded 1-D profile through the area centre row
            row = 12 * r + 5
            np.testing.assert_allclose(
                frac[row, 12 * c + 1: 12 * c + 11] / cr[c],
                [0, 0.25, 0.75, 1, 1, 1, 1, 0.75, 0.25, 0], atol=1e-6)
            # the other crystals are absent from this area
            for other in {1, 2, 3} - {r + 1}:
                assert np.all(maps[other][m] == 0)
    # at most one crystal per probe position; pure matrix between areas and at the margins
    assert np.all((maps[1:] > 0).sum(axis=0) <= 1)
    for idx in (0, 1, 10, 11, 12, 13, 22, 23, 24, 25, 34, 35):
        assert np.all(maps[0][idx, :] == N) and np.all(maps[0][:, idx] == N)


def test_poisson_noise_statistics(noisy, clean):
    d = noisy.data
    assert d.dtype == np.float32 and d.min() >= 0
    assert np.array_equal(d, np.round(d))
    totals = d.astype(np.float64).sum(axis=(2, 3))
    assert abs(totals.mean() - N) < 5 * np.sqrt(N) / 36  # 5 sigma of the mean of 1296 totals
    assert 0.8 * N < totals.var() < 1.2 * N  # Poisson: var == mean
    e = clean.data.astype(np.float64)
    dispersion = ((d - e) ** 2 / e).mean()  # Pearson chi^2 per pixel, 1 for Poisson
    assert dispersion == pytest.approx(1.0, abs=0.01)
    np.testing.assert_array_equal(noisy.maps, clean.maps)
    np.testing.assert_array_equal(noisy.diffractions, clean.diffractions)


def test_noise_equals_one_poisson_call(noisy, clean):
    want = np.random.default_rng(0).poisson(clean.data)
    np.testing.assert_array_equal(noisy.data, want)


def test_reproducible_by_seed(noisy):
    again = simulate_precipitates(seed=0)
    np.testing.assert_array_equal(again.data, noisy.data)
    other = simulate_precipitates(seed=1)
    assert not np.array_equal(other.data, noisy.data)
    assert other.seed == 1 and noisy.seed == 0


def test_small_non_square_scan():
    s = simulate_precipitates(scan_shape=(15, 18), pattern_shape=(32, 40), area_size=3,
                              electrons_per_pattern=500.0, crystallinity=(0.5, 0.2, 0.0),
                              noise=False, dtype=np.float64)
    assert s.data.shape == (15, 18, 32, 40) and s.data.dtype == np.float64
    assert s.center == (20.0, 16.0)
    np.testing.assert_allclose(s.data.sum(axis=(2, 3)), 500.0, rtol=1e-10)
    np.testing.assert_allclose(s.diffractions.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert set(np.unique(s.area_labels)) == set(range(10))
    assert s.maps[1].max() == pytest.approx(250.0)  # 0.5 * 500 on the plateau
    assert np.all(s.maps[3][s.area_labels == 9] == 0)  # crystallinity 0


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scan_shape=(20, 36)), "too small"),
        (dict(scan_shape=(36, 36), area_size=11), "too small"),
        (dict(area_size=2), "area_size"),
        (dict(area_size=6.0), "area_size"),
        (dict(crystallinity=(0.09, -0.03, 0.01)), "crystallinity"),
        (dict(crystallinity=(9, 3, 1)), "crystallinity"),
        (dict(crystallinity=(0.09, 0.03)), "crystallinity"),
        (dict(crystallinity=(0.09, np.nan, 0.01)), "crystallinity"),
        (dict(electrons_per_pattern=0), "electrons_per_pattern"),
        (dict(electrons_per_pattern=-5.0), "electrons_per_pattern"),
        (dict(electrons_per_pattern=np.inf), "electrons_per_pattern"),
        (dict(pattern_shape=(128,)), "pattern_shape"),
        (dict(pattern_shape=(8, 8)), "pattern_shape"),
        (dict(scan_shape=(36.0, 36)), "scan_shape"),
        (dict(dtype=np.int32), "dtype"),
    ],
)
def test_simulate_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_precipitates(**kwargs)


@pytest.mark.parametrize(
    "func, kwargs, match",
    [
        (amorphous_pattern, dict(shape=(0, 128)), "shape"),
        (amorphous_pattern, dict(center=(1.0, 2.0, 3.0)), "center"),
        (amorphous_pattern, dict(ring_radii=(20.0,), ring_widths=(1.0, 2.0)), "equal length"),
        (amorphous_pattern, dict(ring_widths=(4.0, 0.0, 8.0)), "ring_widths"),
        (amorphous_pattern, dict(ring_radii=(-1.0, 38.0, 55.0)), "ring_radii"),
        (spot_pattern, dict(g1=(10.0, 0.0), g2=(20.0, 0.0)), "linearly independent"),
        (spot_pattern, dict(g1=(0.0, 0.0)), "linearly independent"),
        (spot_pattern, dict(spot_sigma=0.0), "spot_sigma"),
        (spot_pattern, dict(max_radius=-1.0), "max_radius"),
        (spot_pattern, dict(max_radius=5.0), "no spot"),
        (spot_pattern, dict(center=(np.nan, 3.0)), "center"),
        (spot_pattern, dict(dtype=int), "dtype"),
    ],
)
def test_pattern_bad_arguments(func, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(**kwargs)
