"""Preprocessing (Cao et al. 2025, Fig. 2): the scan mean filter and the noise standard deviation.

The math (:mod:`stemnmf_hs.preprocessing`) is tested on arrays; the signal methods
(:class:`stemnmf_hs.signals._preprocessing.PreprocessingMixin`) through
``set_signal_type("nmf_diffraction")`` signals.
"""

import doctest

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

from stemnmf_hs import preprocessing
from stemnmf_hs.preprocessing import mean_filter_navigation, neighbour_counts, noise_std
from stemnmf_hs.signals import LazyNMFDiffraction2D, NMFDiffraction2D
from stemnmf_hs.signals import _preprocessing as signal_preprocessing
from stemnmf_hs.signals._preprocessing import PreprocessingMixin

METHODS = ("mean_filter_navigation", "get_noise_std")


def brute_force_mean(data, size):
    """Mean over the in-scan ``size x size`` neighbourhood, one position at a time."""
    r = size // 2
    out = np.empty(data.shape, dtype=np.float64)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            block = data[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
            out[i, j] = block.astype(np.float64).mean(axis=(0, 1))
    return out


def smooth_pattern(shape=(128, 128), amplitude=100.0, width=20.0):
    """A broad Gaussian disk on a linear background (no sharp features)."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    disk = amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
    return disk + 0.1 * x + 0.05 * y + 10.0


@pytest.fixture
def methods():
    """The preprocessing methods on the signal classes (patched in if not wired yet)."""
    patch = pytest.MonkeyPatch()
    for name in METHODS:
        if not hasattr(NMFDiffraction2D, name):
            patch.setattr(NMFDiffraction2D, name, getattr(PreprocessingMixin, name),
                          raising=False)
    yield
    patch.undo()


@pytest.fixture
def scan(methods):
    """A calibrated 7 x 6 scan of 8 x 10 Poisson patterns (uint16 counts)."""
    rng = np.random.default_rng(1)
    s = hs.signals.Signal2D(rng.poisson(4.0, (7, 6, 8, 10)).astype(np.uint16))
    s.set_signal_type("nmf_diffraction")
    am = s.axes_manager
    for ax, (name, scale, units) in zip(
        am.navigation_axes + am.signal_axes,
        [("x", 2.5, "nm"), ("y", 2.5, "nm"), ("kx", 0.01, "1/Å"), ("ky", 0.01, "1/Å")],
    ):
        ax.name, ax.scale, ax.units = name, scale, units
    s.axes_manager["kx"].offset = -0.05
    s.metadata.General.title = "raw scan"
    s.metadata.set_item("Signal.quantity", "Intensity (counts)")
    return s


@pytest.fixture(scope="module")
def simulation():
    """A small noisy simulation (15 x 15 positions of 32 x 32 patterns, Poisson noise)."""
    from stemnmf_hs.data import simulated_precipitates

    s, _ = simulated_precipitates(
        seed=0, scan_shape=(15, 15), pattern_shape=(32, 32), area_size=3, noise=True
    )
    return s


def _snapshot(s):
    return (
        s.data.copy(),
        s.data.dtype,
        s.metadata.as_dictionary(),
        [(ax.name, ax.size, ax.scale, ax.offset, ax.units) for ax in s.axes_manager._axes],
        type(s),
    )


def _assert_unchanged(s, snap):
    data, dtype, md, axes, cls = snap
    np.testing.assert_array_equal(np.asarray(s.data), data)
    assert s.data.dtype == dtype
    assert s.metadata.as_dictionary() == md
    assert [(ax.name, ax.size, ax.scale, ax.offset, ax.units)
            for ax in s.axes_manager._axes] == axes
    assert type(s) is cls


# ------------------------------------------------------------------------ array math
@pytest.mark.parametrize("size", [1, 3, 5])
def test_mean_filter_equals_brute_force_neighbourhood_mean(size):
    rng = np.random.default_rng(0)
    data = rng.random((7, 6, 3, 4))
    out = mean_filter_navigation(data, size)
    assert out.shape == data.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, brute_force_mean(data, size), rtol=0, atol=1e-12)
    assert not np.shares_memory(out, data)


def test_mean_filter_borders_and_constant_scan():
    data = np.arange(12.0).reshape(3, 4, 1, 1)
    out = mean_filter_navigation(data)[..., 0, 0]
    assert out[0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))  # corner: 4 neighbours
    assert out[0, 1] == pytest.approx(np.mean([0, 1, 2, 4, 5, 6]))  # edge: 6
    assert out[1, 1] == pytest.approx(np.mean([0, 1, 2, 4, 5, 6, 8, 9, 10]))  # inside: 9
    np.testing.assert_allclose(mean_filter_navigation(np.full((5, 5, 2, 2), 3.0)), 3.0)
    counts = neighbour_counts((5, 6), 3)
    assert counts[0, 0] == 4 and counts[0, 2] == 6 and counts[2, 2] == 9
    assert neighbour_counts((5, 6), 5)[0, 0] == 9


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.uint16, np.float32), (np.int64, np.float32), (bool, np.float32),
     (np.float32, np.float32), (np.float64, np.float64)],
)
def test_mean_filter_dtype(dtype, expected):
    rng = np.random.default_rng(2)
    data = (rng.random((5, 4, 2, 3)) * 50).astype(dtype)
    out = mean_filter_navigation(data)
    assert out.dtype == expected
    np.testing.assert_allclose(out, brute_force_mean(data, 3), rtol=1e-6, atol=1e-5)
    lazy = mean_filter_navigation(da.from_array(data, chunks=(2, 2, 2, 3)))
    assert lazy.dtype == expected


@pytest.mark.parametrize("chunks", [(1, 1, 3, 4), (2, 3, 3, 2), (7, 6, 3, 4)])
@pytest.mark.parametrize("size", [3, 5])
def test_mean_filter_dask_equals_numpy(chunks, size):
    rng = np.random.default_rng(3)
    data = rng.random((7, 6, 3, 4)).astype(np.float32)
    lazy = mean_filter_navigation(da.from_array(data, chunks=chunks), size)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), mean_filter_navigation(data, size),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("size", "error", "match"),
    [(2, ValueError, "odd"), (0, ValueError, "odd"), (-3, ValueError, "odd"),
     (9, ValueError, "larger than the scan"), (3.0, TypeError, "integer"),
     (True, TypeError, "integer"), ("3", TypeError, "integer")],
)
def test_mean_filter_bad_size(size, error, match):
    with pytest.raises(error, match=match):
        mean_filter_navigation(np.zeros((7, 6, 2, 2)), size)


def test_mean_filter_bad_arrays():
    with pytest.raises(ValueError, match="2 scan axes"):
        mean_filter_navigation(np.zeros(5))
    with pytest.raises(TypeError, match="real"):
        mean_filter_navigation(np.zeros((3, 3, 2, 2), dtype=complex))


@pytest.mark.parametrize("method", ["rms", "mad"])
@pytest.mark.parametrize("sigma", [0.5, 2.0, 5.0])
def test_noise_std_recovers_gaussian_sigma(method, sigma):
    rng = np.random.default_rng(4)
    clean = smooth_pattern()
    stack = clean + rng.normal(0.0, sigma, (3,) + clean.shape)
    est = noise_std(stack, method)
    assert est.shape == (3,)
    np.testing.assert_allclose(est, sigma, rtol=0.1)
    # the smooth signal itself (amplitude 100) is not taken for noise
    assert float(noise_std(clean, method)) < 0.05


def test_noise_std_poisson_and_std_method():
    rng = np.random.default_rng(5)
    counts = rng.poisson(9.0, (64, 64))
    assert float(noise_std(counts)) == pytest.approx(3.0, rel=0.1)  # sqrt(mean counts)
    flat = 7.0 + rng.normal(0.0, 1.5, (64, 64))
    assert float(noise_std(flat, "std")) == pytest.approx(1.5, rel=0.1)
    # "std" includes the diffraction contrast, the wavelet estimators do not
    assert float(noise_std(smooth_pattern(), "std")) > 10


def test_noise_std_dask_equals_numpy_and_odd_shapes():
    rng = np.random.default_rng(6)
    data = rng.normal(0.0, 1.0, (4, 3, 17, 15))
    for method in preprocessing.NOISE_STD_METHODS:
        expected = noise_std(data, method)
        assert expected.shape == (4, 3)
        lazy = noise_std(da.from_array(data, chunks=(2, 2, 8, 8)), method)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12)


def test_noise_std_errors():
    with pytest.raises(ValueError, match="method='sigma'"):
        noise_std(np.zeros((4, 4)), "sigma")
    with pytest.raises(ValueError, match="2 x 2"):
        noise_std(np.zeros((4, 1)))
    with pytest.raises(ValueError, match="2 x 2"):
        noise_std(np.zeros(4))


# ------------------------------------------------------------------------ signals
def test_mixin_is_wired_into_the_signal_class():
    """Fails until PreprocessingMixin is a base of NMFDiffraction2D."""
    assert issubclass(NMFDiffraction2D, PreprocessingMixin)


def test_mean_filter_signal_keeps_axes_and_does_not_mutate(scan):
    snap = _snapshot(scan)
    out = scan.mean_filter_navigation(size=3)
    _assert_unchanged(scan, snap)
    assert isinstance(out, NMFDiffraction2D) and out is not scan
    assert out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, brute_force_mean(scan.data, 3), rtol=1e-6)
    assert [(ax.name, ax.scale, ax.offset, ax.units) for ax in out.axes_manager._axes] == [
        (ax.name, ax.scale, ax.offset, ax.units) for ax in scan.axes_manager._axes
    ]
    assert out.metadata.General.title == "raw scan (mean filter 3x3 over the scan)"
    assert out.metadata.Signal.mean_filter_navigation.size == 3
    assert out.metadata.Signal.quantity == "Intensity (counts)"
    assert out.metadata.Signal.signal_type == "nmf_diffraction"


def test_mean_filter_signal_inplace(scan):
    expected = scan.mean_filter_navigation().data
    copy = scan.deepcopy()
    assert copy.mean_filter_navigation(inplace=True) is None
    np.testing.assert_array_equal(copy.data, expected)
    assert copy.data.dtype == np.float32
    assert copy.metadata.Signal.mean_filter_navigation.size == 3
    assert copy.axes_manager["x"].scale == 2.5


def test_mean_filter_signal_lazy_equals_in_memory(scan):
    expected = scan.mean_filter_navigation().data
    lazy = scan.as_lazy()
    snap = _snapshot(lazy)
    out = lazy.mean_filter_navigation()
    assert isinstance(out, LazyNMFDiffraction2D) and isinstance(out.data, da.Array)
    np.testing.assert_allclose(out.data.compute(), expected, rtol=1e-6)
    _assert_unchanged(lazy, snap)

    eager = lazy.mean_filter_navigation(lazy_output=False, show_progressbar=False)
    assert type(eager) is NMFDiffraction2D and isinstance(eager.data, np.ndarray)
    np.testing.assert_allclose(eager.data, expected, rtol=1e-6)

    made_lazy = scan.mean_filter_navigation(lazy_output=True)
    assert isinstance(made_lazy, LazyNMFDiffraction2D)
    np.testing.assert_allclose(made_lazy.data.compute(), expected, rtol=1e-6)

    in_place = lazy.deepcopy()
    in_place.mean_filter_navigation(inplace=True)
    assert isinstance(in_place, LazyNMFDiffraction2D)
    np.testing.assert_allclose(in_place.data.compute(), expected, rtol=1e-6)


def test_mean_filter_signal_errors_before_computing(scan):
    def boom(block):
        raise AssertionError("the data were computed before validation")

    lazy = scan.as_lazy()
    lazy.data = lazy.data.map_blocks(boom, dtype=lazy.data.dtype)
    with pytest.raises(ValueError, match="odd"):
        lazy.mean_filter_navigation(size=4)
    with pytest.raises(ValueError, match="larger than the scan"):
        lazy.mean_filter_navigation(size=7)
    with pytest.raises(TypeError, match="inplace"):
        lazy.mean_filter_navigation(inplace="yes")
    with pytest.raises(TypeError, match="lazy_output"):
        lazy.mean_filter_navigation(lazy_output=1)
    with pytest.raises(ValueError, match="2 navigation|navigation dimension"):
        scan.inav[:, 0].mean_filter_navigation()
    with pytest.raises(ValueError, match="navigation dimension"):
        scan.inav[0, 0].mean_filter_navigation()


def test_get_noise_std_map(scan):
    snap = _snapshot(scan)
    nsd = scan.get_noise_std(show_progressbar=False)
    _assert_unchanged(scan, snap)
    assert isinstance(nsd, hs.signals.Signal2D)
    assert not isinstance(nsd, NMFDiffraction2D)
    assert nsd.axes_manager.signal_shape == (6, 7)
    assert [(ax.name, ax.scale, ax.units) for ax in nsd.axes_manager.signal_axes] == [
        ("x", 2.5, "nm"), ("y", 2.5, "nm")]
    np.testing.assert_allclose(nsd.data, noise_std(scan.data), rtol=1e-12)
    assert float(nsd.data.mean()) == pytest.approx(2.0, rel=0.15)  # sqrt(4 counts)
    assert nsd.metadata.Signal.noise_std.method == "rms"
    assert nsd.metadata.Signal.quantity == "NSD (counts)"
    assert "raw scan" in nsd.metadata.General.title

    lazy = scan.as_lazy().get_noise_std(method="mad", show_progressbar=False)
    assert lazy._lazy
    np.testing.assert_allclose(lazy.data.compute(), noise_std(scan.data, "mad"))
    eager = scan.as_lazy().get_noise_std(lazy_output=False, show_progressbar=False)
    np.testing.assert_allclose(eager.data, nsd.data)


def test_get_noise_std_errors(scan):
    with pytest.raises(ValueError, match="not a noise estimator"):
        scan.get_noise_std(method="sigma")
    with pytest.raises(TypeError, match="lazy_output"):
        scan.get_noise_std(lazy_output="no")


def test_filtered_simulation_has_lower_noise(simulation, methods):
    raw = simulation.get_noise_std(show_progressbar=False)
    filtered_scan = simulation.mean_filter_navigation(size=3)
    filtered = filtered_scan.get_noise_std(show_progressbar=False)
    raw_mean, filtered_mean = float(raw.data.mean()), float(filtered.data.mean())
    # averaging 9 (inside), 6 or 4 (border) independent patterns divides the noise by 3 to
    # 2; the sharp rings and spots of the 32 x 32 patterns add a floor the filter keeps
    assert filtered_mean < 0.6 * raw_mean
    assert np.all(filtered.data < raw.data)
    assert filtered.data[1:-1, 1:-1].mean() < 0.5 * raw.data[1:-1, 1:-1].mean()


@pytest.mark.parametrize("module", [preprocessing, signal_preprocessing])
def test_docstring_examples(module, methods):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
