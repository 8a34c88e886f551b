"""``s.find_center()``: the direct beam found from the data sets the pattern centre."""

import warnings

import hyperspy.api as hs
import numpy as np
import pytest
from scipy import ndimage

from stemnmf_hs.data import match_ground_truth
from stemnmf_hs.data._simulate import simulate_precipitates
from stemnmf_hs.preprocessing import beam_center
from stemnmf_hs.signals import BeamCenter, NMFDiffraction2D

OFFSET = (7.3, -4.1)  # (dx, dy) pixels of the beam from the simulation's centre
FAST = {"n_restarts": 2, "max_iter": 60, "random_state": 0, "print_info": False,
            "show_progressbar": False}


def _scan(truth, diffractions, seed=1):
    """A calibrated scan of ``maps @ diffractions`` with Poisson noise."""
    rng = np.random.default_rng(seed)
    expectation = np.einsum("kyx,kij->yxij", truth.maps, diffractions)
    s = hs.signals.Signal2D(rng.poisson(expectation).astype(np.float32))
    s.set_signal_type("nmf_diffraction")
    for ax in s.axes_manager.navigation_axes:
        ax.scale, ax.units = 0.5, "nm"
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = 0.02, "1/Å"
    return s


@pytest.fixture(scope="module")
def scans():
    """The same specimen with the beam on the simulation's centre and offset by OFFSET."""
    truth = simulate_precipitates(scan_shape=(18, 18), pattern_shape=(64, 64), area_size=4,
                                  electrons_per_pattern=2e4, crystallinity=(0.4, 0.3, 0.2),
                                  noise=False)
    # the package's simulation has no direct beam: add one (40 % of every pattern's counts)
    y, x = np.mgrid[:64, :64]
    cx, cy = truth.center
    beam = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5**2))
    centred = 0.6 * truth.diffractions + 0.4 * beam / beam.sum()
    shifted = np.clip(ndimage.shift(centred.astype(np.float64), (0, OFFSET[1], OFFSET[0]),
                                    order=3), 0, None)
    shifted /= shifted.sum(axis=(1, 2), keepdims=True)
    return truth, centred, _scan(truth, centred), _scan(truth, shifted), shifted


def test_finds_a_known_beam_offset_within_a_third_of_a_pixel(scans):
    truth, _, _, offset, _ = scans
    before = offset.data.copy()
    found = offset.find_center(show_progressbar=False)
    want = np.add(truth.center, OFFSET)
    assert isinstance(found, BeamCenter)
    assert np.hypot(found.x - want[0], found.y - want[1]) < 0.3
    assert found.spread < 0.5  # no descan in this scan
    np.testing.assert_allclose(offset.calibration.center, (found.x, found.y), atol=1e-4)
    np.testing.assert_array_equal(offset.data, before)


def test_inplace_false_leaves_the_calibration(scans):
    _, _, centred, _, _ = scans
    s = centred.deepcopy()
    offsets = [ax.offset for ax in s.axes_manager.signal_axes]
    found = s.find_center(inplace=False, per_pattern=False)
    assert np.isnan(found.spread)
    assert [ax.offset for ax in s.axes_manager.signal_axes] == offsets


def test_lazy_scan_gives_the_same_centre(scans):
    _, _, _, offset, _ = scans
    eager = offset.find_center(inplace=False, show_progressbar=False)
    lazy = offset.as_lazy().find_center(inplace=False, show_progressbar=False)
    np.testing.assert_allclose(tuple(lazy), tuple(eager), atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_decomposition_after_find_center_matches_the_centred_scan(scans):
    """The constrained fit turns about the found centre as about the true one."""
    truth, centred_truth, centred, offset, shifted = scans
    a, b = centred.deepcopy(), offset.deepcopy()
    y, x = np.mgrid[:64, :64]
    a.decomposition(algorithm="constrained_nmf", output_dimension=4, center=truth.center,
                    signal_mask=np.hypot(x - truth.center[0], y - truth.center[1]) < 4,
                    **FAST)
    found = b.find_center(show_progressbar=False)
    b.decomposition(algorithm="constrained_nmf", output_dimension=4,
                    signal_mask=np.hypot(x - found.x, y - found.y) < 4, **FAST)
    maps_a = a.get_decomposition_loadings().data.reshape(4, -1)
    maps_b = b.get_decomposition_loadings().data.reshape(4, -1)
    fac_a = a.get_decomposition_factors().data
    fac_b = b.get_decomposition_factors().data
    # the same components against each scan's own truth, and the same maps
    match_a = match_ground_truth(fac_a, centred_truth)
    match_b = match_ground_truth(fac_b, shifted)
    assert sorted(t for _, t, _ in match_a) == sorted(t for _, t, _ in match_b) == [0, 1, 2, 3]
    for (ia, t, ca), (ib, _, cb) in zip(sorted(match_a, key=lambda m: m[1]),
                                        sorted(match_b, key=lambda m: m[1])):
        ra = np.corrcoef(maps_a[ia], truth.maps[t].ravel())[0, 1]
        rb = np.corrcoef(maps_b[ib], truth.maps[t].ravel())[0, 1]
        assert cb > ca - 0.02, (t, ca, cb)
        assert rb > ra - 0.02, (t, ra, rb)


def test_descan_over_a_pixel_is_reported():
    y, x = np.mgrid[:40, :40]
    drift = np.linspace(-2.5, 2.5, 6)
    data = np.stack([[1 + 300 * np.exp(-((x - 20 - d) ** 2 + (y - 19) ** 2) / 4.0)
                      for d in drift]] * 3).astype(np.float32)
    s = hs.signals.Signal2D(data)
    s.set_signal_type("nmf_diffraction")
    with pytest.warns(UserWarning, match="wanders by"):
        found = s.find_center(show_progressbar=False)
    want = np.sqrt(np.mean(drift**2))
    assert abs(found.spread - want) < 0.2
    assert abs(found.x - 20) < 0.2 and abs(found.y - 19) < 0.2


def test_saturated_beam_of_the_merlin_file(realdata):
    """6-bit Medipix frames: a saturated disk with flares, far from the geometric centre."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(realdata / "002_4x2_6bit_roi128.mib")
    s.set_signal_type("nmf_diffraction")
    mean = s.data.reshape(-1, *s.data.shape[-2:]).mean(axis=0)
    disk = mean >= mean.max()
    labels, _ = ndimage.label(disk)
    biggest = labels == 1 + np.argmax(np.bincount(labels.ravel())[1:])
    want_y, want_x = ndimage.center_of_mass(biggest)
    found = s.find_center(show_progressbar=False)
    assert np.hypot(found.x - want_x, found.y - want_y) < 1.0
    ny, nx = mean.shape
    assert np.hypot(found.x - (nx - 1) / 2, found.y - (ny - 1) / 2) > 50


@pytest.mark.parametrize("bad, match", [
    (np.full((16, 16), -1.0), "negative"),
    (np.zeros((16, 16)), "no counts"),
    (np.ones((2, 16, 16)), "2D pattern"),
])
def test_beam_center_refuses_bad_patterns(bad, match):
    with pytest.raises(ValueError, match=match):
        beam_center(bad)


def test_find_center_needs_2d_patterns():
    """A transposed scan (1D signal axes) keeps no 2D patterns to find a beam in."""
    s = hs.signals.Signal1D(np.ones((3, 8)))
    with pytest.raises(ValueError, match="2D diffraction patterns"):
        NMFDiffraction2D.find_center(s)
