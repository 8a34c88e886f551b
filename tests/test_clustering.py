"""Hierarchical clustering and rotation-corrected merging (Kimoto et al. 2025, Fig. 9)."""

import numpy as np
import pytest
from _patterns import CENTER, SHAPE, cosine, crystal
from scipy.cluster.hierarchy import dendrogram

from stemnmf_hs.clustering import (
    DEFAULT_DISTANCE_THRESHOLD,
    cluster_components,
    merge_components,
)
from stemnmf_hs.data._simulate import CRYSTAL_G_VECTORS, amorphous_pattern
from stemnmf_hs.similarity import polar_cross_correlation


@pytest.fixture(scope="module")
def components():
    """[crystal A at 0 deg, A at 40 deg, crystal B, amorphous ring] and their maps."""
    diff = np.stack([
        crystal(0.0),
        crystal(40.0),
        crystal(0.0, CRYSTAL_G_VECTORS[1]),
        amorphous_pattern(SHAPE, CENTER, dtype=np.float64),
    ])
    rng = np.random.default_rng(0)
    maps = rng.random((4, 6, 7))
    maps[0] *= 3.0  # A at 0 deg is the reference of its cluster
    sim, rot = polar_cross_correlation(diff, center=CENTER)
    return diff, maps, sim, rot


def test_three_clusters_put_rotated_crystals_together(components):
    _, _, sim, _ = components
    labels, z = cluster_components(sim, n_clusters=3)
    np.testing.assert_array_equal(labels, [0, 0, 1, 2])
    assert labels.dtype == np.int64
    assert z.shape == (3, 4)
    dendrogram(z, no_plot=True)  # a valid SciPy linkage matrix
    # default: distance threshold 0.1 (similarity 0.9) gives the same partition
    assert DEFAULT_DISTANCE_THRESHOLD == 0.1
    np.testing.assert_array_equal(cluster_components(sim)[0], [0, 0, 1, 2])
    for method in ("single", "complete", "weighted"):
        np.testing.assert_array_equal(cluster_components(sim, 3, method=method)[0],
                                      [0, 0, 1, 2])


def test_labels_numbered_by_first_appearance():
    sim = np.array([
        [1.0, 0.1, 0.95, 0.1],
        [0.1, 1.0, 0.1, 0.97],
        [0.95, 0.1, 1.0, 0.1],
        [0.1, 0.97, 0.1, 1.0],
    ])
    labels, _ = cluster_components(sim, distance_threshold=0.2)
    np.testing.assert_array_equal(labels, [0, 1, 0, 1])
    np.testing.assert_array_equal(cluster_components(sim, n_clusters=1)[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(cluster_components(sim, n_clusters=4)[0], [0, 1, 2, 3])
    # asymmetric / out-of-range input is symmetrized and clipped, not rejected
    noisy = sim + np.triu(np.full((4, 4), 0.01), 1) - 2.5 * (sim < 0.5)
    np.testing.assert_array_equal(cluster_components(noisy, 2)[0], [0, 1, 0, 1])


def test_merged_average_matches_crystal(components):
    diff, maps, sim, rot = components
    labels, _ = cluster_components(sim, n_clusters=3)
    merged, mmaps = merge_components(diff, maps, labels, rot, CENTER, SHAPE)
    assert merged.shape == (3, 96, 96) and mmaps.shape == (3, 6, 7)
    assert cosine(merged[0], diff[0]) > 0.95
    assert cosine(diff[1], diff[0]) < 0.5  # a plain average would blur A
    np.testing.assert_allclose(merged[1], diff[2])
    np.testing.assert_allclose(merged[2], diff[3])
    np.testing.assert_allclose(mmaps[0], maps[0] + maps[1])
    np.testing.assert_allclose(mmaps[1:], maps[2:])
    # reference chosen by weight: A at 40 deg
    merged40, _ = merge_components(diff.reshape(4, -1), maps, labels, rot, CENTER, SHAPE,
                                   weights=[1.0, 2.0, 1.0, 1.0])
    assert cosine(merged40[0], diff[1]) > 0.95


def test_merge_with_masked_rows_and_zero_weights(components):
    diff, maps, sim, rot = components
    mask = np.zeros(SHAPE, dtype=bool)
    mask[46:51, 46:51] = True
    labels = np.array([0, 0, 1, 2])
    merged, _ = merge_components(diff[:, ~mask], maps, labels, rot, CENTER,
                                 signal_mask=mask, weights=np.zeros(4))
    assert np.all(np.isfinite(merged)) and cosine(merged[0], diff[0]) > 0.95


def test_zero_patterns_give_no_nan():
    diff = np.zeros((3, 16, 16))
    sim, rot = polar_cross_correlation(diff)
    labels, z = cluster_components(sim, n_clusters=2)
    merged, mmaps = merge_components(diff, np.zeros((3, 4)), labels, rot)
    for a in (sim, rot, z, merged, mmaps):
        assert np.all(np.isfinite(a))


@pytest.mark.parametrize(
    "sim, kwargs, match",
    [
        (np.eye(1), {}, "at least 2"),
        (np.eye(3)[:2], {}, "square"),
        (np.full((2, 2), np.nan), {}, "NaN"),
        (np.eye(3), dict(n_clusters=2, distance_threshold=0.1), "not both"),
        (np.eye(3), dict(n_clusters=0), "n_clusters"),
        (np.eye(3), dict(n_clusters=4), "n_clusters"),
        (np.eye(3), dict(n_clusters=2.0), "n_clusters"),
        (np.eye(3), dict(distance_threshold=-0.1), "distance_threshold"),
        (np.eye(3), dict(method="kmeans"), "method"),
    ],
)
def test_cluster_errors(sim, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cluster_components(sim, **kwargs)


def test_merge_errors():
    d = np.zeros((3, 8, 8))
    m = np.zeros((3, 5))
    r = np.zeros((3, 3))
    lab = [0, 0, 1]
    with pytest.raises(ValueError, match="maps"):
        merge_components(d, np.zeros((2, 5)), lab, r)
    with pytest.raises(ValueError, match="labels"):
        merge_components(d, m, [0, 1], r)
    with pytest.raises(ValueError, match="labels"):
        merge_components(d, m, [0, 0.5, 1], r)
    with pytest.raises(ValueError, match="rotation"):
        merge_components(d, m, lab, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="weights"):
        merge_components(d, m, lab, r, weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="signal_shape"):
        merge_components(d.reshape(3, -1), m, lab, r)
