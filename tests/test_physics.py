"""Physics of the constrained NMF on the paper's simulated scan (Kimoto et al. 2025, Fig. 6).

Ground truth is known: components are matched to it by the Hungarian method.
"""

import numpy as np
import pytest

from stemnmf_hs.data import truth_assignment

K = 4
FIT = dict(n_restarts=10, max_iter=500, random_state=0, print_info=False, show_progressbar=False)


def _fit(simulation, **kw):
    s, truth = simulation
    work = s.deepcopy()
    work.decomposition(algorithm="constrained_nmf", output_dimension=K, **FIT, **kw)
    factors = work.get_decomposition_factors().data.reshape(K, -1)
    maps = work.get_decomposition_loadings().data.reshape(K, -1)
    return factors, maps


def _cos(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def _match(factors, truth):
    """Component index for every true diffraction (Hungarian on cosine similarity)."""
    return truth_assignment(factors, truth.diffractions)


def _dark_spot_ratio(amorphous, truth):
    """Mean of the amorphous factor on crystal-spot pixels / the true profile scaled elsewhere."""
    td = truth.diffractions.reshape(K, -1)
    spots = td[1:].sum(0) > 0.1 * td[1:].max()
    t0 = td[0]
    scale = (amorphous[~spots] @ t0[~spots]) / (t0[~spots] @ t0[~spots])
    return amorphous[spots].mean() / (scale * t0[spots].mean())


def _high_frequency_fraction(maps, shape):
    """Share of the map power beyond half the Nyquist frequency (mean removed)."""
    m = maps.reshape((-1,) + shape)
    p = np.abs(np.fft.fft2(m - m.mean(axis=(1, 2), keepdims=True))) ** 2
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    high = np.hypot(fy, fx) > 0.25
    return p[:, high].sum() / p.sum()


@pytest.fixture(scope="module")
def constrained(simulation):
    return _fit(simulation)


@pytest.fixture(scope="module")
def primitive(simulation):
    return _fit(simulation, diffraction_constraint=None, map_constraint=None)


def test_amorphous_diffraction_recovered(simulation, constrained):
    _, truth = simulation
    factors, _ = constrained
    perm = _match(factors, truth)
    assert _cos(factors[perm[0]], truth.diffractions[0].ravel()) >= 0.99


def test_crystalline_diffractions_recovered_beyond_amorphous(simulation, constrained):
    _, truth = simulation
    factors, _ = constrained
    perm = _match(factors, truth)
    a = truth.diffractions[0].ravel()
    a = a / np.linalg.norm(a)

    def residual(x):
        return x - (x @ a) * a

    for j in (1, 2, 3):
        got = residual(factors[perm[j]])
        want = residual(truth.diffractions[j].ravel())
        assert _cos(got, want) >= 0.85, j


def test_maps_correlate_with_truth(simulation, constrained):
    _, truth = simulation
    factors, maps = constrained
    perm = _match(factors, truth)
    for j in range(K):
        r = np.corrcoef(maps[perm[j]], truth.maps[j].ravel())[0, 1]
        # The amorphous map varies little (std 0.02 of its mean): with the TRUE diffractions,
        # non-negative least-squares maps reach r = 0.887, 0.957 after [.]_H.  The 0.97 once
        # asked of it was met only by the non-unique solution whose crystal diffractions carry
        # the amorphous rings (issue 13); the crystal maps keep the 0.97 bar.
        assert r >= (0.95 if j == 0 else 0.97), (j, r)


def test_amorphous_has_no_dark_spots_unlike_primitive_als(simulation, constrained, primitive):
    _, truth = simulation
    ratios = []
    for factors, _ in (constrained, primitive):
        perm = _match(factors, truth)
        ratios.append(_dark_spot_ratio(factors[perm[0]], truth))
    assert ratios[0] >= 0.95
    # Primitive ALS digs the crystals' spots into the amorphous diffraction (paper Fig. 6a).
    assert ratios[1] <= 0.9
    assert ratios[1] < ratios[0] - 0.05


def test_smoothing_lowers_high_frequency_content_of_maps(simulation):
    s, _ = simulation
    shape = s.axes_manager._navigation_shape_in_array
    _, rough = _fit(simulation, map_constraint=None)
    _, smooth = _fit(simulation)
    assert _high_frequency_fraction(smooth, shape) < 0.7 * _high_frequency_fraction(rough, shape)
