"""A newcomer's first hour (issue 15): saving is silent and complete, bad inputs are refused
at the door with a message that names the value and the fix, figures carry colour bars."""

import logging

import hyperspy.api as hs
import matplotlib.pyplot as plt
import numpy as np
import pytest

from stemnmf_hs.data import simulated_precipitates
from stemnmf_hs.signals import NMFDiffraction2D

QUICK = dict(n_restarts=1, max_iter=5, random_state=0, print_info=False,
             show_progressbar=False)


@pytest.fixture(scope="module")
def decomposed():
    """A small decomposed simulation (24 x 24 positions of 32 x 32 patterns, k = 4)."""
    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    s.decomposition(algorithm="constrained_nmf", output_dimension=4, **QUICK)
    return s


def _no_error(caplog, capfd):
    out, err = capfd.readouterr()
    assert "ERROR" not in out + err and "Traceback" not in out + err, out + err
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# ------------------------------------------------------------------ (a) save and reload
@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_save_is_silent_and_reload_is_complete(decomposed, tmp_path, ext, caplog, capfd):
    s = decomposed
    caplog.set_level(logging.WARNING)
    capfd.readouterr()
    path = tmp_path / f"scan.{ext}"
    s.save(path)
    _no_error(caplog, capfd)
    r = hs.load(path)
    _no_error(caplog, capfd)
    assert isinstance(r, NMFDiffraction2D)
    lr = r.learning_results
    assert lr.decomposition_algorithm == "constrained_nmf"
    assert "_object" not in lr.__dict__
    np.testing.assert_allclose(lr.factors, s.learning_results.factors)
    np.testing.assert_allclose(lr.loadings, s.learning_results.loadings)
    params = r.metadata.Signal.ConstrainedNMF.parameters
    assert params.n_components == 4 and params.solver == s.metadata.get_item(
        "Signal.ConstrainedNMF.parameters.solver")
    # what a reloaded file is for: HyperSpy's plots, clustering and maps
    r.plot_decomposition_results()
    plt.close("all")
    clusters = r.cluster_components()
    assert len(clusters.labels) == 4
    assert r.get_component_map().data.shape == (24, 24)
    assert r.get_weight_ratio_map().data.shape == (24, 24)
    assert r.get_decomposition_model().data.shape == s.data.shape
    _no_error(caplog, capfd)


def test_save_with_masks_round_trips(tmp_path, caplog, capfd):
    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    sig_mask = np.zeros((32, 32), bool)
    sig_mask[14:18, 14:18] = True
    s.decomposition(algorithm="constrained_nmf", output_dimension=3, signal_mask=sig_mask,
                    **QUICK)
    capfd.readouterr()
    s.save(tmp_path / "masked.hspy")
    _no_error(caplog, capfd)
    r = hs.load(tmp_path / "masked.hspy")
    np.testing.assert_array_equal(np.asarray(r.learning_results.signal_mask).reshape(32, 32),
                                  sig_mask)
    assert np.isnan(r.learning_results.factors).any()
    assert r.get_component_map().data.shape == (24, 24)


# ------------------------------------------------------------------ (b) validation at the door
@pytest.fixture(scope="module")
def scan():
    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    return s


@pytest.mark.parametrize("center, match", [
    (5, r"center=5 is not a pattern centre: give two numbers \(cx, cy\) in pixels.*"
        r"center=\(15.5, 15.5\)"),
    ("middle", r"center='middle' is not a pattern centre"),
    ((1, 2, 3), r"center=\(1, 2, 3\) is not a pattern centre"),
    ((np.nan, 3), r"is not a pattern centre"),
    ((40, 3), r"center=\(40, 3\) lies outside the 32 x 32 pattern: cx must be in \[0, 31\]"),
    ((3, -1), r"lies outside the 32 x 32 pattern.*s.find_center\(\)"),
])
def test_bad_center_is_refused_at_the_door(scan, center, match):
    with pytest.raises(ValueError, match=match):
        scan.decomposition(algorithm="constrained_nmf", output_dimension=3, center=center,
                           **QUICK)
    assert scan.learning_results.factors is None


def test_bad_center_in_the_estimator_instance_is_refused(scan):
    from stemnmf_hs import ConstrainedNMF

    with pytest.raises(ValueError, match="lies outside the 32 x 32 pattern"):
        scan.decomposition(algorithm=ConstrainedNMF(3, center=(100, 100), max_iter=2),
                           print_info=False)


def test_bad_center_of_an_analysis_method_is_refused(decomposed):
    with pytest.raises(ValueError, match="center=7 is not a pattern centre"):
        decomposed.cluster_components(center=7)


@pytest.mark.parametrize("fwhm, match", [
    (1e6, r"probe_fwhm=1e\+06 nm is larger than the scan \(24 x 24 positions of "
          r"1 x 1 nm = 24 x 24 nm\).*map_constraint=None"),
    (30.0, r"probe_fwhm=30 nm is larger than the scan"),
    (-2.0, r"probe_fwhm must be a positive number"),
])
def test_bad_probe_fwhm_is_refused_before_any_allocation(scan, fwhm, match):
    assert [(ax.units, ax.scale) for ax in scan.axes_manager.navigation_axes] == [("nm", 1)] * 2
    with pytest.raises(ValueError, match=match):
        scan.decomposition(algorithm="constrained_nmf", output_dimension=3, probe_fwhm=fwhm,
                           **QUICK)


def test_probe_fwhm_within_the_scan_is_accepted(scan):
    s = scan.deepcopy()
    s.decomposition(algorithm="constrained_nmf", output_dimension=2, probe_fwhm=3.0, **QUICK)
    assert s.learning_results.factors.shape == (32 * 32, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_all_zero_scan_is_refused(dtype):
    s = hs.signals.Signal2D(np.zeros((6, 6, 16, 16), dtype))
    s.set_signal_type("nmf_diffraction")
    with pytest.raises(ValueError, match=r"holds no counts \(largest value 0\).*right file"):
        s.decomposition(algorithm="constrained_nmf", output_dimension=2, center=(7.5, 7.5),
                        **QUICK)
    assert s.learning_results.factors is None


def test_all_negative_scan_clipped_is_refused():
    s = hs.signals.Signal2D(-np.ones((6, 6, 16, 16), np.float32))
    s.set_signal_type("nmf_diffraction")
    with pytest.raises(ValueError, match="holds no counts"):
        s.decomposition(algorithm="constrained_nmf", output_dimension=2, center=(7.5, 7.5),
                        clip_negative=True, **QUICK)


# ------------------------------------------------------------------ (c) extras
def test_extras_for_notebooks_and_distributed_and_the_readme_names_them():
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {key: {re.split(r"[<>=\[ ]", req)[0] for req in reqs}
             for key, reqs in extras.items()}
    assert {"jupyter", "nbclient", "ipykernel", "ipympl"} <= names["notebooks"]
    assert names["distributed"] == {"distributed"}
    assert {"pytest", "nbclient", "distributed"} <= names["test"]  # the CI installs .[test]
    assert extras["all"] == ["stemnmf-hs[notebooks,distributed,test]"]
    readme = (root / "README.md").read_text(encoding="utf-8")
    for extra in ("[notebooks]", "[distributed]", "[test]", "[all]"):
        assert f"`{extra}`" in readme, extra


# ------------------------------------------------------------------ (d) figures
def _colorbar_labels(fig):
    return [ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes
            if not ax.images and (ax.get_xlabel() or ax.get_ylabel()) and "colorbar"
            in ax.get_label()]


def test_every_diffraction_and_map_has_a_colour_bar_with_units(decomposed):
    fig = decomposed.plot_components()
    try:
        labels = _colorbar_labels(fig)
        # constrained-NMF diffractions sum to 1: the maps carry the data's units
        assert labels.count("intensity (a.u.)") == 4 and labels.count("weight (electrons)") == 4
    finally:
        plt.close(fig)
    fig = decomposed.plot_component_mean_patterns()
    try:
        assert _colorbar_labels(fig).count("intensity (electrons)") == 4
    finally:
        plt.close(fig)


def test_robust_contrast_ignores_a_hot_pixel_and_empty_panels_are_labelled():
    from stemnmf_hs import figures

    rng = np.random.default_rng(0)
    factors = rng.random((3, 32, 32))
    factors[0, 16, 16] = 1e4                     # a direct beam / hot pixel
    factors[2] = 0.0                             # an empty component
    fig = figures.image_grid(factors, kind="diffraction")
    try:
        panels = [ax for ax in fig.axes if ax.images]
        assert panels[0].images[0].norm.vmax < 2.0    # not 1e4: the scale stays readable
        assert panels[0].images[0].norm.gamma == 0.3
        texts = [[t.get_text() for t in ax.texts] for ax in panels]
        assert texts[2] == ["empty\n(all zero)"] and texts[0] == texts[1] == []
        assert "masked" not in fig.get_suptitle()     # nothing is masked
        bars = [ax for ax in fig.axes if "colorbar" in ax.get_label()]
        assert len(bars) == 3
    finally:
        plt.close(fig)


def test_masked_caption_only_when_something_is_masked():
    from stemnmf_hs import figures

    factors = np.ones((2, 16, 16))
    maps = np.ones((2, 8, 8))
    fig = figures.component_grid(factors, None, maps, None, title="t")
    assert "masked" not in fig.get_suptitle()
    plt.close(fig)
    factors[:, 7:9, 7:9] = np.nan
    fig = figures.component_grid(factors, None, maps, None, title="t")
    assert fig.get_suptitle() == "t\n(grey: masked pixels)"
    plt.close(fig)


def test_units_render_as_reciprocal_angstrom_and_nm():
    """pyxem's ``A^{-1}`` shows as Å⁻¹; a vendor file's cm scan step (ASTAR .blo) as nm."""
    s = hs.signals.Signal2D(np.random.default_rng(0).random((4, 5, 16, 16)).astype(np.float32))
    s.set_signal_type("nmf_diffraction")
    for ax in s.axes_manager.navigation_axes:
        ax.scale, ax.units = 1.5e-7, "cm"
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.offset, ax.units = 0.02, -0.16, "A^{-1}"
    s.decomposition(algorithm="constrained_nmf", output_dimension=2, center=(8, 8), **QUICK)
    fig = s.plot_components()
    try:
        images = [ax for ax in fig.axes if ax.images]
        assert images[0].get_xlabel().endswith("(Å⁻¹)")
        assert images[-1].get_xlabel().endswith("(nm)")
        extent = images[-1].images[0].get_extent()
        assert extent[1] - extent[0] == pytest.approx(5 * 1.5)   # 5 positions of 1.5 nm
    finally:
        plt.close(fig)


def test_convergence_figure_marks_the_stop_and_a_fit_that_did_not_settle():
    from sklearn.exceptions import ConvergenceWarning

    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(32, 32))
    with pytest.warns(ConvergenceWarning, match=r"did not settle: it stopped at max_iter=5"):
        s.decomposition(algorithm="constrained_nmf", output_dimension=3, n_restarts=2,
                        max_iter=5, random_state=0, print_info=False, show_progressbar=False)
    fig = s.plot_convergence()
    try:
        assert fig.get_suptitle().endswith("stopped at iteration 5 (max_iter reached)")
        assert fig.get_suptitle().startswith("restart ")
        assert any("raise max_iter" in t.get_text() for t in fig.texts)
        for ax in fig.axes[:3]:
            stop = [c for c in ax.collections if c.get_label() == "_stop"]
            assert len(stop) == 1 and stop[0].get_segments()[0][0][0] == 5
    finally:
        plt.close(fig)


def test_html_report_is_one_self_contained_file(decomposed, tmp_path):
    import re

    from stemnmf_hs import figures

    figs = [decomposed.plot_components(), decomposed.plot_convergence()]
    try:
        page = figures.html_report(
            "stemnmf <run>", [("Parameters", [{"k": 4, "center": (15.5, 15.5)}]),
                              ("Components", [figs[0]]),
                              ("Convergence", [figs[1], "note: the fit did not settle"]),
                              ("Summary", ["line 1\nline 2 & more"])],
            path=tmp_path / "report.html")
    finally:
        for fig in figs:
            plt.close(fig)
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == page
    assert page.count('src="data:image/png;base64,') == 2
    assert not re.search(r'(src|href)="(?!data:)', page)      # nothing linked
    assert "<title>stemnmf &lt;run&gt;</title>" in page and "line 2 &amp; more" in page
    assert '<p class="note">note: the fit did not settle</p>' in page
