"""Similarity, rotation, clustering and overlap maps on a decomposed scan with known truth.

One crystal in two orientations (two grains overlapping in part), a grain of a second crystal,
an amorphous matrix (stemnmf_hs.data._grains).
"""

from contextlib import nullcontext

import numpy as np
import pytest

from stemnmf_hs.data import simulate_overlapping_grains, truth_assignment
from stemnmf_hs.signals import ClusterResult
from stemnmf_hs.signals._build import scan_signal

K = 4


@pytest.fixture(scope="module")
def decomposed():
    truth = simulate_overlapping_grains(seed=1)
    s = scan_signal(truth.data, scan_step=1.5, pixel_size=0.02, center=truth.center)
    s.decomposition(algorithm="constrained_nmf", output_dimension=K, n_restarts=4,
                    max_iter=300, random_state=0, print_info=False, show_progressbar=False)
    perm = truth_assignment(s.learning_results.factors.T, truth.diffractions)
    return s, truth, perm  # perm: truth index -> component index


def _angle_error(a, b):
    """Difference of two angles modulo 180 degrees (Friedel symmetry)."""
    d = np.mod(a - b, 180.0)
    return min(d, 180.0 - d)


def test_rotated_orientations_are_similar_and_rotation_recovered(decomposed):
    s, truth, perm = decomposed
    sim = s.get_component_similarity()
    rot = s.get_component_rotation()
    assert sim.data.shape == (K, K) and rot.data.shape == (K, K)
    np.testing.assert_allclose(sim.data, sim.data.T, atol=1e-6)
    np.testing.assert_allclose(rot.data, -rot.data.T, atol=1e-6)
    a, a_rot, b = perm[1], perm[2], perm[3]
    assert sim.data[a, a_rot] >= 0.9
    # Grain 2 is grain 1 turned from +x towards +y (clockwise as displayed): turning it back
    # counter-clockwise as displayed by rotation_deg matches (sign convention of eq. 11 here).
    assert _angle_error(rot.data[a, a_rot], truth.rotation_deg) <= 2.0
    assert sim.data[a, b] < sim.data[a, a_rot] - 0.1
    cosine = s.get_component_similarity(metric="cosine").data
    assert cosine[a, a_rot] < sim.data[a, a_rot] - 0.2  # why eq. 10 is needed


def test_clustering_merges_orientations_only(decomposed):
    s, truth, perm = decomposed
    res = s.cluster_components(n_clusters=3)
    assert isinstance(res, ClusterResult)
    labels = res.labels
    assert labels[perm[1]] == labels[perm[2]]
    assert len({labels[perm[0]], labels[perm[1]], labels[perm[3]]}) == 3
    assert res.factors.data.shape == (3,) + truth.diffractions.shape[1:]
    assert res.loadings.data.shape == (3,) + truth.maps.shape[1:]
    for got, want in zip(res.factors.axes_manager.signal_axes, s.axes_manager.signal_axes):
        assert (got.scale, got.offset, got.units) == (want.scale, want.offset, want.units)
    for got, want in zip(res.loadings.axes_manager.signal_axes, s.axes_manager.navigation_axes):
        assert (got.scale, got.units) == (want.scale, want.units)
    merged_a = res.loadings.data[labels[perm[1]]]
    sum_a = s.get_decomposition_loadings().data[[perm[1], perm[2]]].sum(0)
    np.testing.assert_allclose(merged_a, sum_a, rtol=1e-5)
    fig = res.plot_dendrogram()
    assert fig is not None


def test_weight_ratio_high_in_overlap_low_in_single_grains(decomposed):
    s, truth, perm = decomposed
    ratio = s.get_weight_ratio_map(exclude=perm[0])
    assert ratio.data.shape == truth.overlap.shape
    assert ratio.axes_manager.signal_axes[0].scale == 1.5
    assert ratio.data[truth.overlap].mean() >= 0.6
    assert ratio.data[truth.single].mean() <= 0.25
    level = s.get_overlap_map(exclude=perm[0]).data
    assert set(np.unique(level)) <= {0.0, 0.75, 0.8, 0.85, 0.9, 0.95}
    assert (level[truth.single] == 0).mean() > 0.9
    fig = s.plot_overlap_map(exclude=perm[0])
    assert fig.axes


def test_component_map_and_mean_patterns(decomposed):
    s, truth, perm = decomposed
    cmap = s.get_component_map(exclude=perm[0]).data
    grain_b = truth.maps[3] == truth.maps[3].max()
    assert (cmap[grain_b] == perm[3]).all()
    means, reps = s.get_component_mean_patterns()
    assert means.data.shape == reps.data.shape == (K,) + truth.diffractions.shape[1:]
    # The amorphous component dominates the matrix: its mean pattern is a raw pattern there.
    matrix = s.get_component_map().data == perm[0]
    np.testing.assert_allclose(means.data[perm[0]], s.data[matrix].mean(0), rtol=1e-4)
    lazy = s.as_lazy()
    lazy_means, _ = lazy.get_component_mean_patterns()
    np.testing.assert_allclose(lazy_means.data, means.data, rtol=1e-4)
    np.testing.assert_allclose(lazy.get_weight_ratio_map(exclude=perm[0]).data,
                               s.get_weight_ratio_map(exclude=perm[0]).data)
    np.testing.assert_allclose(lazy.get_component_similarity().data,
                               s.get_component_similarity().data)


def test_methods_on_merged_clusters(decomposed):
    s, truth, perm = decomposed
    res = s.cluster_components(n_clusters=3)
    amorphous = res.labels[perm[0]]
    ratio = s.get_weight_ratio_map(exclude=amorphous, source=res)
    # Merged, the two orientations of crystal A are one cluster: no overlap left there.
    assert ratio.data[truth.overlap].mean() < 0.25
    cmap = s.get_component_map(source=res).data
    assert cmap.max() <= 2
    sim = s.get_component_similarity(source=res)
    assert sim.data.shape == (3, 3)


def test_methods_need_a_decomposition():
    s = scan_signal(np.ones((4, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="no decomposition yet"):
        s.get_weight_ratio_map()
    s.decomposition(algorithm="constrained_nmf", output_dimension=2, n_restarts=1,
                    max_iter=5, print_info=False, show_progressbar=False)
    with pytest.raises(TypeError, match="source must be"):
        s.get_component_map(source="clusters")


@pytest.mark.parametrize("maker", ["simulated_overlap", "fe_multi_phase_grains"])
def test_end_to_end_on_pyxem_simulators(maker):
    """The whole chain runs on pyxem's own simulated scans and keeps their calibration."""
    import pyxem.data

    np.random.seed(0)  # pyxem's simulators draw from the global generator
    if maker == "simulated_overlap":
        s = pyxem.data.simulated_overlap(real_space_pixels=40, num_crystals=6,
                                         recip_space_pixels=48)
    else:
        s = pyxem.data.fe_multi_phase_grains(num_grains=2, size=16, recip_pixels=48)
    s.set_signal_type("nmf_diffraction")
    with pytest.warns(UserWarning) if maker == "fe_multi_phase_grains" else nullcontext():
        s.decomposition(algorithm="constrained_nmf", output_dimension=3, n_restarts=2,
                        max_iter=40, random_state=0, print_info=False, show_progressbar=False)
    sim = s.get_component_similarity()
    assert np.isfinite(sim.data).all()
    res = s.cluster_components(n_clusters=2)
    assert res.factors.axes_manager.signal_axes[0].scale == s.axes_manager.signal_axes[0].scale
    assert res.factors.axes_manager.signal_axes[0].units == s.axes_manager.signal_axes[0].units
    ratio = s.get_weight_ratio_map()
    assert ratio.axes_manager.signal_axes[0].units == s.axes_manager.navigation_axes[0].units
    assert np.isfinite(ratio.data).all()
    cmap = s.get_component_map()
    assert cmap.data.shape == s.axes_manager._navigation_shape_in_array

