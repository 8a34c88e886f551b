"""Shared fixtures: a non-interactive backend and paths to the real vendor files."""

import os
import warnings
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message=".*_get_block_pattern.*")

#: ../shared/realdata relative to the repository root.
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata():
    """Folder of the small real vendor files; skips when this checkout has none."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} not present")
    return REALDATA


@pytest.fixture(scope="session")
def simulation():
    """The paper's simulated scan (seed 0) and its ground truth, built once."""
    from stemnmf_hs.data import simulated_precipitates

    return simulated_precipitates(seed=0)
