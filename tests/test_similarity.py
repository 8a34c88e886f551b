"""Rotation-invariant diffraction similarity (Kimoto et al. 2025, eqs. 9-11)."""

import numpy as np
import pytest
from _patterns import CENTER, G_SQUARE, SHAPE, cosine, crystal

from stemnmf_hs.data._simulate import amorphous_pattern
from stemnmf_hs.polar import polar_transform
from stemnmf_hs.similarity import (
    cosine_similarity,
    polar_cross_correlation,
    rotate_patterns,
)


def _mod180(a):
    return (np.asarray(a) + 90.0) % 180.0 - 90.0


# ------------------------------------------------------------------------------ polar
def test_polar_transform_shapes_defaults_and_dtype():
    stack = np.stack([crystal(0), crystal(30)]) + 1.0
    p = polar_transform(stack, center=CENTER)
    assert p.dtype == np.float32
    # largest circle inside: min(48, 48, 47, 47) = 47 -> radii 0..47
    assert p.shape == (2, 48, 360)
    assert polar_transform(stack[0], center=CENTER).shape == (48, 360)
    p2, w = polar_transform(stack, center=CENTER, n_radial=10, n_azimuthal=90, r_max=20,
                            return_weights=True)
    assert p2.shape == (2, 10, 90) and w.shape == (10, 90) and np.all(w == 1)
    # radius 0 is the centre pixel for every phi
    np.testing.assert_allclose(p[0, 0], stack[0, 48, 48], rtol=1e-5)


def test_polar_phi_convention_and_rotation_is_roll():
    img = np.zeros(SHAPE)
    img[48, 58] = 1.0  # +x, 10 px right of the centre: phi = 0
    img[38, 48] = 2.0  # 10 px up on screen (row 38): phi = 90 (counter-clockwise)
    p = polar_transform(img, center=CENTER)
    assert p[10, 0] == pytest.approx(1.0) and p[10, 90] == pytest.approx(2.0)
    assert p[10, 270] == 0.0
    # rotating the pattern by +t (CCW on screen) rolls its polar image by +t
    a, b = crystal(0), crystal(36)
    pa, pb = polar_transform(np.stack([a, b]), center=CENTER)
    assert cosine(np.roll(pa, 36, axis=-1), pb) > 0.98
    assert cosine(np.roll(pa, -36, axis=-1), pb) < 0.5


def test_polar_mask_and_outside_samples_get_zero_weight():
    img = crystal(0) + 1.0
    mask = np.zeros(SHAPE, dtype=bool)
    mask[44:53, 44:53] = True  # direct beam stop
    p, w = polar_transform(img, center=CENTER, signal_mask=mask, r_max=60,
                           return_weights=True)
    assert np.all(w[:4] == 0) and np.all(p[:4] == 0)
    assert np.all(w[10:40] == 1)
    assert np.all(w[48:, 0] == 0) and np.all(p[48:, 0] == 0)  # beyond the right edge
    assert np.all(p[w == 0] == 0) and np.all(p[w == 1] > 0)


def test_polar_stack_equals_single_patterns_for_splines():
    stack = np.stack([crystal(0), amorphous_pattern(SHAPE, CENTER, dtype=np.float64),
                      crystal(10, G_SQUARE)])
    for order in (1, 3):
        p = polar_transform(stack, center=CENTER, order=order)
        for i in range(3):
            np.testing.assert_allclose(
                p[i], polar_transform(stack[i], center=CENTER, order=order),
                atol=1e-6 * float(np.abs(p).max()),
            )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(patterns=np.zeros(5)), "shape"),
        (dict(patterns=np.full((4, 4), np.nan)), "NaN"),
        (dict(patterns=np.zeros((4, 4)), center=(1.0,)), "center"),
        (dict(patterns=np.zeros((4, 4)), center=(9.0, 9.0)), "r_max"),
        (dict(patterns=np.zeros((4, 4)), n_azimuthal=0), "n_azimuthal"),
        (dict(patterns=np.zeros((4, 4)), n_radial=2.5), "n_radial"),
        (dict(patterns=np.zeros((4, 4)), r_max=-1), "r_max"),
        (dict(patterns=np.zeros((4, 4)), order=7), "order"),
        (dict(patterns=np.zeros((4, 4)), signal_mask=np.zeros((3, 3), bool)), "signal_mask"),
    ],
)
def test_polar_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        polar_transform(**kwargs)


# ------------------------------------------------------------------------------ rotation
def test_rotate_patterns_convention_about_arbitrary_centre():
    c = (40.0, 52.0)
    img = np.zeros(SHAPE)
    img[52, 50] = 1.0  # 10 px right of c
    out = rotate_patterns(img, 90.0, center=c)
    assert out.shape == SHAPE and out.dtype == np.float64
    assert np.unravel_index(np.argmax(out), SHAPE) == (42, 40)  # 10 px *up* on screen
    # matches an analytic rotation of the lattice; the opposite sense does not
    a = crystal(0)
    assert cosine(rotate_patterns(a, 25.0, CENTER), crystal(25)) > 0.97
    assert cosine(rotate_patterns(a, -25.0, CENTER), crystal(25)) < 0.5
    # vectorized stack with one angle per pattern
    stack = rotate_patterns(np.stack([a, a]).astype(np.float32), [25.0, -25.0], CENTER)
    assert stack.dtype == np.float32
    assert cosine(stack[0], crystal(25)) > 0.97 and cosine(stack[1], crystal(-25)) > 0.97


def test_rotate_patterns_errors():
    with pytest.raises(ValueError, match="angles_deg"):
        rotate_patterns(np.zeros((3, 8, 8)), [1.0, 2.0])
    with pytest.raises(ValueError, match="center"):
        rotate_patterns(np.zeros((8, 8)), 1.0, center=(1, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        rotate_patterns(np.zeros(8), 1.0)


# ------------------------------------------------------------------------------ eqs. 10-11
@pytest.fixture(scope="module")
def rotated_set():
    angles = np.array([0.0, 17.0, 45.0, 90.0])
    stack = np.stack([crystal(t) for t in angles] + [crystal(0, G_SQUARE)])
    sim, rot = polar_cross_correlation(stack, SHAPE, center=CENTER)
    return angles, stack, sim, rot


def test_rotated_copies_similar_and_angle_recovered(rotated_set):
    angles, stack, sim, rot = rotated_set
    for j, t in enumerate(angles):
        assert sim[0, j] >= 0.9
        # rotate pattern j by rotation[0, j] onto pattern 0: rotation[0, j] = -t (mod 180)
        assert abs(_mod180(rot[0, j] + t)) < 1.0
        assert abs(_mod180(rot[j, 0] - t)) < 1.0


@pytest.mark.parametrize("j", [1, 2])  # 17 and 45 deg (90 deg is ambiguous under Friedel)
def test_rotation_sign_convention(rotated_set, j):
    _, stack, _, rot = rotated_set
    good = cosine(rotate_patterns(stack[j], rot[0, j], CENTER), stack[0])
    bad = cosine(rotate_patterns(stack[j], -rot[0, j], CENTER), stack[0])
    assert good > 0.95 and good > bad + 0.3


def test_rotation_better_than_sampling_step():
    angles = np.array([0.0, 3.3, 17.7, 44.2, 133.9])
    stack = np.stack([crystal(t) for t in angles])
    for n_az in (360, 90):
        _, rot = polar_cross_correlation(stack, center=CENTER, n_azimuthal=n_az)
        err = np.abs(_mod180(rot[0] + angles))
        assert err.max() < 0.25 * 360.0 / n_az


def test_different_crystals_score_low(rotated_set):
    _, _, sim, _ = rotated_set
    assert sim[0, 4] < 0.7
    assert sim[0, 4] < 0.5 * sim[0, 1:4].min()


def test_matrix_properties(rotated_set):
    _, _, sim, rot = rotated_set
    np.testing.assert_array_equal(sim, sim.T)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    np.testing.assert_array_equal(np.diag(rot), 0.0)
    assert np.all((rot > -180) & (rot <= 180))
    np.testing.assert_allclose(np.mod(rot + rot.T + 180.0, 360.0) - 180.0, 0.0, atol=1e-9)
    assert np.all((sim >= 0) & (sim <= 1))


def test_cosine_low_on_rotated_copies(rotated_set):
    """Eq. 9 misses rotated copies, which motivates eq. 10."""
    _, stack, sim, _ = rotated_set
    cos = cosine_similarity(stack)
    assert cos.shape == (5, 5)
    np.testing.assert_allclose(cos, cos.T)
    np.testing.assert_allclose(np.diag(cos), 1.0)
    assert cos[0, 1:4].max() < 0.5 < sim[0, 1:4].min()
    np.testing.assert_allclose(cos[0, 4], cosine(stack[0], stack[4]), rtol=1e-10)


def test_zero_patterns_give_no_nan():
    stack = np.stack([crystal(0), np.zeros(SHAPE), np.zeros(SHAPE)])
    sim, rot = polar_cross_correlation(stack, center=CENTER)
    cos = cosine_similarity(stack.reshape(3, -1))
    for m in (sim, rot, cos):
        assert np.all(np.isfinite(m))
    np.testing.assert_array_equal(sim, np.eye(3))
    np.testing.assert_array_equal(cos, np.eye(3))
    np.testing.assert_array_equal(rot, 0.0)


def test_unfolded_and_masked_input():
    stack = np.stack([crystal(0), crystal(30), crystal(0, G_SQUARE)])
    sim, rot = polar_cross_correlation(stack, center=CENTER)
    sim2, rot2 = polar_cross_correlation(stack.reshape(3, -1), SHAPE, center=CENTER)
    np.testing.assert_allclose(sim2, sim)
    np.testing.assert_allclose(rot2, rot)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[45:52, 45:52] = True
    bright = stack.copy()
    bright[:, mask] = 1.0  # a strong direct beam, removed by the mask
    sim3, rot3 = polar_cross_correlation(bright[:, ~mask], SHAPE, center=CENTER,
                                         signal_mask=mask)
    assert abs(_mod180(rot3[0, 1] + 30.0)) < 1.0
    assert sim3[0, 2] < 0.7 and sim3[0, 1] > 0.9
    # without the mask the direct beam makes everything alike; r_min also removes it
    assert polar_cross_correlation(bright, center=CENTER)[0][0, 2] > 0.9
    for n_radial in (None, 40):
        sim4, rot4 = polar_cross_correlation(bright, center=CENTER, r_min=6.0,
                                             n_radial=n_radial)
        assert sim4[0, 2] < 0.7 and sim4[0, 1] > 0.9
        assert abs(_mod180(rot4[0, 1] + 30.0)) < 1.0


def test_subtract_ring_mean_ignores_isotropic_background():
    amo = 20.0 * amorphous_pattern(SHAPE, CENTER, dtype=np.float64)  # strong halo
    stack = np.stack([crystal(0) + amo, crystal(60) + amo, amo, crystal(0, G_SQUARE) + amo])
    raw, _ = polar_cross_correlation(stack, center=CENTER)
    aniso, rot = polar_cross_correlation(stack, center=CENTER, subtract_ring_mean=True)
    assert raw[0, 3] > 0.8  # the shared amorphous halo dominates the raw correlation
    assert aniso[0, 3] < 0.5 and aniso[0, 1] > 0.9
    np.testing.assert_array_equal(aniso[2, [0, 1, 3]], 0.0)
    assert abs(_mod180(rot[0, 1] + 60.0)) < 1.0


def test_polar_cross_correlation_errors():
    with pytest.raises(ValueError, match="signal_shape"):
        polar_cross_correlation(np.zeros((2, 64)))
    with pytest.raises(ValueError, match="features"):
        polar_cross_correlation(np.zeros((2, 64)), (9, 9))
    with pytest.raises(ValueError, match="NaN"):
        polar_cross_correlation(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="r_min"):
        polar_cross_correlation(np.zeros((2, 8, 8)), r_min=-1)
    with pytest.raises(ValueError, match="cosine|k, n_features"):
        cosine_similarity(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        cosine_similarity(np.array([[np.nan, 1.0]]))


def test_single_component():
    sim, rot = polar_cross_correlation(crystal(0)[None], center=CENTER)
    np.testing.assert_array_equal(sim, [[1.0]])
    np.testing.assert_array_equal(rot, [[0.0]])
