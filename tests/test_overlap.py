"""Weight-ratio, overlap-level, component maps and class means (Cao et al. 2025)."""

import numpy as np
import pytest

from stemnmf_hs.overlap import (
    class_means,
    dominant_component,
    overlap_level,
    representative_diffractions,
    weight_ratio,
)


def _maps():
    m = np.zeros((3, 4, 5))
    m[0] = 10.0  # background everywhere
    m[1, 0, 0], m[2, 0, 0] = 8.0, 8.0  # equal overlap
    m[1, 1, 1], m[2, 1, 1] = 8.0, 2.0  # mostly component 1
    m[1, 2, 2] = 9.0  # single grain
    m[1, 3, 3], m[2, 3, 3] = 0.01, 0.009  # noise, not overlap
    return m


def test_weight_ratio_with_background_excluded():
    r = weight_ratio(_maps(), exclude=0)
    assert r.shape == (4, 5)
    assert r[0, 0] == pytest.approx(1.0)
    assert r[1, 1] == pytest.approx(0.25)
    assert r[2, 2] == 0.0
    assert r[3, 3] == 0.0  # below min_weight: no ratio of two noise values
    assert weight_ratio(_maps(), exclude=0, min_weight=0.0)[3, 3] == pytest.approx(0.9)


def test_weight_ratio_without_exclusion_sees_background():
    r = weight_ratio(_maps())
    assert r[0, 0] == pytest.approx(0.8)  # 8 / 10
    assert r[2, 2] == pytest.approx(0.9)


@pytest.mark.parametrize("exclude", [[0, 1], 5])
def test_weight_ratio_errors(exclude):
    with pytest.raises(ValueError):
        weight_ratio(_maps(), exclude=exclude)


def test_overlap_level():
    ratio = np.array([0.5, 0.75, 0.84, 0.95, 1.0])
    np.testing.assert_allclose(overlap_level(ratio), [0, 0.75, 0.80, 0.95, 0.95])
    with pytest.raises(ValueError, match="increasing"):
        overlap_level(ratio, thresholds=(0.9, 0.8))


def test_dominant_component_and_exclude():
    m = _maps()
    assert (dominant_component(m) == 0).all()
    dom = dominant_component(m, exclude=[0])
    assert dom[1, 1] == 1 and dom[0, 0] in (1, 2)


def test_class_means_numpy_and_dask():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    x = rng.random((10, 6)).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 2, 2, 2, 0, 1, 0])
    means, counts = class_means(x, labels, 4)
    assert counts.tolist() == [4, 3, 3, 0]
    np.testing.assert_allclose(means[1], x[labels == 1].mean(0), rtol=1e-6)
    assert (means[3] == 0).all()
    lazy, _ = class_means(da.from_array(x, chunks=(3, 6)), labels, 4)
    np.testing.assert_allclose(lazy.compute(), means, rtol=1e-6)


def test_representative_diffractions():
    d = np.ones((2, 3, 3)) / 9
    m = np.array([[[1.0, 4.0]], [[2.0, np.nan]]])
    rep = representative_diffractions(d, m)
    np.testing.assert_allclose(rep.sum(axis=(1, 2)), [4.0, 2.0])
