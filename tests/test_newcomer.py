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
