"""Plot methods: figures returned, calibrated axes with units, paper colours, widgets.

Two scans: a small constrained-NMF fit of the overlapping-grains simulation (every method on
real results) and a hand-made decomposition whose weight ratios hit every overlap level (exact
colour checks).
"""

import colorsys
import io
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from stemnmf_hs import plotting as _components
from stemnmf_hs.data import simulate_overlapping_grains
from stemnmf_hs.overlap import DEFAULT_THRESHOLDS
from stemnmf_hs.plotting import (
    DIFFRACTION_CMAP,
    LABEL_COLOURS,
    MAP_CMAP,
    OVERLAP_BELOW_COLOUR,
    OVERLAP_LEVEL_COLOURS,
    SIGNED_CMAP,
    overlap_level_colours,
)
from stemnmf_hs.signals._build import scan_signal

K = 4


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    """Small constrained-NMF fit: amorphous matrix, crystal A in two orientations, B."""
    truth = simulate_overlapping_grains(scan_shape=(20, 30), pattern_shape=(64, 64), seed=1)
    s = scan_signal(truth.data, scan_step=1.5, pixel_size=0.02, center=truth.center,
                    title="grains")
    s.decomposition(algorithm="constrained_nmf", output_dimension=K, n_restarts=1,
                    max_iter=40, random_state=0, print_info=False, show_progressbar=False)
    amorphous = int(np.argmax(s.get_decomposition_loadings().data.sum(axis=(1, 2))))
    res = s.cluster_components(n_clusters=3)
    return s, res, amorphous


#: Weight ratios (2nd / 1st) of the hand-made scan, one row per intended colour.
RATIOS = np.array([[0.0, 0.5, 0.65, 0.7],
                   [0.76, 0.78, 0.81, 0.83],
                   [0.86, 0.88, 0.91, 0.93],
                   [0.96, 0.99, 1.0, 0.2]])


@pytest.fixture(scope="module")
def crafted():
    """A ``(4, 4 | 16, 16)`` scan whose 3-component maps give the weight ratios RATIOS."""
    s = scan_signal(np.ones((4, 4, 16, 16), np.float32), scan_step=2.0, pixel_size=0.05)
    maps = np.stack([np.ones((4, 4)), RATIOS, np.full((4, 4), 0.01)])
    rng = np.random.default_rng(0)
    factors = rng.random((3, 16 * 16))
    lr = s.learning_results
    lr.factors = factors.T
    lr.loadings = maps.reshape(3, -1).T
    lr.output_dimension = 3
    return s


def _image_axes(fig):
    """Axes holding an image (colorbars hold none)."""
    return [ax for ax in fig.axes if ax.images]


def _scalebars(ax):
    return [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]


# --------------------------------------------------------------------------- figures
PLOTS = {
    "plot_components": lambda s, res, am: s.plot_components(),
    "plot_components_clusters": lambda s, res, am: s.plot_components(source=res),
    "plot_convergence": lambda s, res, am: s.plot_convergence(),
    "plot_component_similarity": lambda s, res, am: s.plot_component_similarity(),
    "plot_component_similarity_cosine":
        lambda s, res, am: s.plot_component_similarity(metric="cosine"),
    "plot_overlap_map": lambda s, res, am: s.plot_overlap_map(exclude=am),
    "plot_overlap_map_clusters":
        lambda s, res, am: s.plot_overlap_map(exclude=res.labels[am], source=res),
    "plot_component_map": lambda s, res, am: s.plot_component_map(),
    "plot_component_map_clusters": lambda s, res, am: s.plot_component_map(source=res),
    "plot_component_mean_patterns": lambda s, res, am: s.plot_component_mean_patterns(),
    "plot_scan": lambda s, res, am: s.plot_scan(),
    "plot_scan_overlap": lambda s, res, am: s.plot_scan("overlap", exclude=am),
    "plot_scan_weight_ratio": lambda s, res, am: s.plot_scan("weight_ratio", exclude=am),
    "ClusterResult.plot_dendrogram": lambda s, res, am: res.plot_dendrogram(),
    "ClusterResult.plot": lambda s, res, am: res.plot(),
}


@pytest.mark.parametrize("name", list(PLOTS))
def test_every_plot_method_returns_a_savable_figure(fitted, name):
    s, res, amorphous = fitted
    fig = PLOTS[name](s, res, amorphous)
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", ["plot_components", "plot_overlap_map", "plot_component_map",
                                  "plot_component_mean_patterns", "ClusterResult.plot",
                                  "plot_components_clusters"])
def test_image_axes_carry_units_and_scale_bars(fitted, name):
    s, res, amorphous = fitted
    fig = PLOTS[name](s, res, amorphous)
    axes = _image_axes(fig)
    assert axes
    for ax in axes:
        assert ax.get_xlabel().endswith(("(nm)", "(Å⁻¹)")), ax.get_xlabel()
        assert ax.get_ylabel().endswith(("(nm)", "(Å⁻¹)")), ax.get_ylabel()
        bars = _scalebars(ax)
        assert len(bars) == 1
        label = bars[0].txt_label.get_text()
        assert label.endswith((" nm", " Å⁻¹")), label
    # the image extents are the calibrated axes, not pixels
    scan_x = s.axes_manager.navigation_axes[0]
    kx = s.axes_manager.signal_axes[0]
    for ax in axes:
        calib = scan_x if ax.get_xlabel().endswith("(nm)") else kx
        left, right = ax.images[0].get_extent()[:2]
        assert right - left == pytest.approx(calib.size * calib.scale)
        if calib is kx:  # zero of the reciprocal axes at the pattern centre
            assert left == pytest.approx(kx.offset - kx.scale / 2)


def test_uncalibrated_axes_read_px(crafted):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.ones((4, 4, 16, 16), np.float32))  # no names, no units
    s.set_signal_type("nmf_diffraction")
    s.learning_results.__dict__.update(crafted.learning_results.__dict__)
    fig = s.plot_component_map()
    ax = _image_axes(fig)[0]
    assert ax.get_xlabel() == "x (px)"
    assert _scalebars(ax)[0].txt_label.get_text().endswith(" px")


def test_dendrogram_insets_one_per_cluster(fitted):
    _, res, _ = fitted
    fig = res.plot_dendrogram()
    insets = [ax for ax in fig.axes[0].child_axes if ax.images]
    assert len(insets) == res.n_clusters
    assert all(_scalebars(ax) for ax in insets)
    titles = {ax.get_title() for ax in insets}
    for c in range(res.n_clusters):
        assert any(t.startswith(f"cluster {c}:") for t in titles)
    assert fig.axes[0].get_ylabel().startswith("1 - diffraction similarity")


def test_component_map_colours_are_the_label_colours(fitted):
    s, _, _ = fitted
    fig = s.plot_component_map()
    im = _image_axes(fig)[0].images[0]
    labels = s.get_component_map().data
    rgba = im.cmap(im.norm(labels))
    for i in np.unique(labels):
        np.testing.assert_allclose(rgba[labels == i][0], to_rgba(LABEL_COLOURS[i]))


def test_colour_maps_are_consistent(fitted):
    s, _, _ = fitted
    fig = s.plot_components()
    axes = _image_axes(fig)
    assert {ax.images[0].get_cmap().name for ax in axes[:K]} == {DIFFRACTION_CMAP}
    assert {ax.images[0].get_cmap().name for ax in axes[K:]} == {MAP_CMAP}


def test_signed_factors_use_the_diverging_map(fitted):
    s, _, _ = fitted
    pca = s.deepcopy()
    pca.decomposition(algorithm="SVD", output_dimension=3, print_info=False)
    fig = pca.plot_components()
    diffractions = _image_axes(fig)[:3]
    signed = [ax for ax in diffractions if ax.images[0].get_cmap().name == SIGNED_CMAP]
    assert signed  # PCA factors beyond the first hold negative values
    for ax in signed:
        norm = ax.images[0].norm
        assert norm.vmin == pytest.approx(-norm.vmax)  # symmetric: zero is white


def test_plot_convergence_needs_history_and_overlays(fitted):
    s, _, _ = fitted
    fig = s.plot_convergence(reference_mse=0.5, reference_label="PCA")
    assert len(fig.axes) == 3
    again = s.plot_convergence(axes=fig.axes, label="second")
    assert again is fig
    assert len(fig.axes[0].get_lines()) == 3  # two fits and the reference
    assert "PCA" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    with pytest.raises(ValueError, match="no convergence history"):
        scan_signal(np.ones((4, 4, 16, 16), np.float32)).plot_convergence()


def test_plot_scan_navigates_on_the_map(fitted):
    s, _, _ = fitted
    fig = s.plot_scan()
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), s.get_component_map().data)
    with pytest.raises(ValueError, match="navigator must be"):
        s.plot_scan("labels")


def test_plot_scan_leaves_other_figures_open(fitted):
    """HyperSpy closes the active figure when re-plotting a closed plot; guarded here."""
    s, _, _ = fitted
    s.plot_scan()
    plt.close("all")  # what Jupyter's inline backend does after a cell
    mine = [plt.figure(), plt.figure()]
    s.plot_scan()
    assert all(plt.fignum_exists(f.number) for f in mine)
    assert len(plt.get_fignums()) == 4


# --------------------------------------------------------------------------- overlap colours
def _hue(colour):
    return 360 * colorsys.rgb_to_hsv(*to_rgba(colour)[:3])[0]


def test_documented_level_colours_follow_the_paper():
    """Cao et al. 2025, Fig. 5: red 75 %, orange 80 %, yellow 85 %, (green 90 %), blue 95 %."""
    hues = [_hue(c) for c in OVERLAP_LEVEL_COLOURS]
    assert hues[0] < 10 or hues[0] > 350  # red
    assert 20 <= hues[1] <= 40  # orange
    assert 45 <= hues[2] <= 65  # yellow
    assert 90 <= hues[3] <= 150  # green
    assert 195 <= hues[4] <= 240  # blue
    assert overlap_level_colours(5) == list(OVERLAP_LEVEL_COLOURS)
    three = overlap_level_colours(3)
    assert len(three) == 3
    np.testing.assert_allclose(to_rgba(three[0]), to_rgba(OVERLAP_LEVEL_COLOURS[0]))
    np.testing.assert_allclose(to_rgba(three[-1]), to_rgba(OVERLAP_LEVEL_COLOURS[-1]))
    with pytest.raises(ValueError, match="at least 1"):
        overlap_level_colours(0)


def test_overlap_map_colours_follow_the_levels(crafted):
    s = crafted
    level = s.get_overlap_map(exclude=2).data
    ratio = s.get_weight_ratio_map(exclude=2).data
    np.testing.assert_allclose(ratio, RATIOS)
    assert set(np.unique(level)) == {0.0, *DEFAULT_THRESHOLDS}  # every level occurs
    fig = s.plot_overlap_map(exclude=2)
    ax = fig.axes[0]
    overlay = ax.images[1]
    shown = overlay.get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), level == 0)
    rgba = overlay.cmap(overlay.norm(ratio))
    for i, t in enumerate(DEFAULT_THRESHOLDS):
        at = level == t
        np.testing.assert_allclose(rgba[at], np.tile(to_rgba(OVERLAP_LEVEL_COLOURS[i]),
                                                     (at.sum(), 1)))
    colorbar = fig.axes[1]
    np.testing.assert_allclose(colorbar.get_yticks(), DEFAULT_THRESHOLDS)


def test_overlap_map_other_thresholds_get_ramp_colours(crafted):
    fig = crafted.plot_overlap_map(thresholds=(0.6, 0.9), exclude=2)
    overlay = fig.axes[0].images[1]
    rgba = overlay.cmap(overlay.norm(np.array([0.65, 0.95])))
    np.testing.assert_allclose(rgba[0], to_rgba(OVERLAP_LEVEL_COLOURS[0]))
    np.testing.assert_allclose(rgba[1], to_rgba(OVERLAP_LEVEL_COLOURS[-1]))


# --------------------------------------------------------------------------- widgets
def test_overlap_slider_updates_the_image(crafted):
    widgets = pytest.importorskip("ipywidgets")
    box = crafted.plot_overlap_map(exclude=2, interactive=True)
    assert isinstance(box, widgets.VBox)
    assert isinstance(box.figure, Figure)
    assert isinstance(box.slider, widgets.FloatSlider)
    assert box.slider in box.children
    assert box.slider.value == DEFAULT_THRESHOLDS[0]
    overlay = box.figure.axes[0].images[1]
    np.testing.assert_array_equal(np.ma.getmaskarray(overlay.get_array()), RATIOS < 0.75)

    box.slider.value = 0.9
    np.testing.assert_array_equal(np.ma.getmaskarray(overlay.get_array()), RATIOS < 0.9)
    assert "0.90" in box.figure.axes[0].get_title()

    box.slider.value = 0.6  # below the lowest threshold: the extra colour appears
    shown = overlay.get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), RATIOS < 0.6)
    below = (RATIOS >= 0.6) & (RATIOS < 0.75)
    rgba = overlay.cmap(overlay.norm(RATIOS[below]))
    np.testing.assert_allclose(rgba, np.tile(to_rgba(OVERLAP_BELOW_COLOUR), (below.sum(), 1)))


def test_overlap_auto_mode_is_static_outside_a_widget_frontend(crafted):
    pytest.importorskip("ipywidgets")
    assert isinstance(crafted.plot_overlap_map(exclude=2), Figure)  # not in a kernel
    assert isinstance(crafted.plot_overlap_map(exclude=2, interactive=False), Figure)


def test_overlap_auto_mode_uses_widgets_in_an_interactive_kernel(crafted, monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.setattr(_components, "_in_kernel", lambda: True)
    monkeypatch.setattr(_components, "_ipympl_backend", lambda: True)
    box = crafted.plot_overlap_map(exclude=2)
    assert isinstance(box, widgets.VBox)
    monkeypatch.setattr(_components, "_ipympl_backend", lambda: False)  # inline backend
    assert isinstance(crafted.plot_overlap_map(exclude=2), Figure)


def test_overlap_falls_back_without_ipywidgets(crafted, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import raises ImportError
    monkeypatch.setattr(_components, "_in_kernel", lambda: True)
    monkeypatch.setattr(_components, "_ipympl_backend", lambda: True)
    fig = crafted.plot_overlap_map(exclude=2)
    assert isinstance(fig, Figure)
    with pytest.raises(ImportError, match="ipywidgets"):
        crafted.plot_overlap_map(exclude=2, interactive=True)


def test_overlap_interactive_must_be_bool_or_none(crafted):
    with pytest.raises(TypeError, match="interactive"):
        crafted.plot_overlap_map(exclude=2, interactive="yes")


def test_widget_frontend_detection(monkeypatch):
    assert not _components._in_kernel()  # pytest is no Jupyter kernel
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg")
    assert _components._ipympl_backend()
    monkeypatch.setattr(matplotlib, "get_backend",
                        lambda: "module://matplotlib_inline.backend_inline")
    assert not _components._ipympl_backend()
