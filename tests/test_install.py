"""Registration with HyperSpy from an editable install (this environment) and from a wheel;
the package's subpackages reachable after ``import stemnmf_hs``; README.md's code runs."""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import numpy as np, hyperspy.api as hs, stemnmf_hs, importlib.util, pathlib
s = hs.signals.Signal2D(np.zeros((2, 3, 4, 4), np.float32))
s.set_signal_type("nmf_diffraction")
yaml = pathlib.Path(importlib.util.find_spec("stemnmf_hs").origin).parent / "hyperspy_extension.yaml"
print(stemnmf_hs.__file__, type(s).__name__, type(s.as_lazy()).__name__, yaml.is_file())
"""


def test_entry_point_and_yaml_in_this_environment():
    eps = importlib.metadata.entry_points(group="hyperspy.extensions")
    assert "stemnmf_hs" in {ep.name for ep in eps}
    origin = Path(importlib.util.find_spec("stemnmf_hs").origin)
    assert (origin.parent / "hyperspy_extension.yaml").is_file()


def test_top_level_yaml_is_the_package_yaml():
    top = ROOT / "hyperspy_extension.yaml"
    assert top.read_text() == (ROOT / "stemnmf_hs" / "hyperspy_extension.yaml").read_text()


def test_registered_in_a_fresh_interpreter(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[1:] == ["NMFDiffraction2D", "LazyNMFDiffraction2D", "True"]


def test_wheel_registers_signals(tmp_path):
    """Build a wheel, install it into a fresh folder put first on the path, and use it.

    The folder holds only the wheel (``--no-deps``): HyperSpy and the other dependencies come
    from this environment, whatever it is (system, venv or conda), but ``stemnmf_hs`` and its
    entry point come from the wheel.
    """
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("stemnmf_hs-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "stemnmf_hs/hyperspy_extension.yaml" in names
        (ep,) = [n for n in names if n.endswith("entry_points.txt")]
        text = zf.read(ep).decode()
    assert "[hyperspy.extensions]" in text and "stemnmf_hs = stemnmf_hs" in text
    assert "stemnmf = stemnmf_hs.cli:console_main" in text
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr
    path, cls, lazy_cls, has_yaml = out.stdout.split()
    if not Path(path).resolve().is_relative_to(target.resolve()):
        pytest.fail(f"the wheel's package was not the one imported: {path}")
    assert (cls, lazy_cls, has_yaml) == ("NMFDiffraction2D", "LazyNMFDiffraction2D", "True")


def test_subpackages_reachable_after_import(tmp_path):
    """``import stemnmf_hs`` alone gives ``stemnmf_hs.data`` etc., without importing HyperSpy."""
    code = (
        "import sys, stemnmf_hs\n"
        "quiet = 'hyperspy' not in sys.modules\n"
        "names = [n for n in stemnmf_hs.SUBMODULES if n not in ('cli', 'io', 'signals')]\n"
        "mods = [getattr(stemnmf_hs, n).__name__ for n in names]\n"
        "print(quiet, callable(stemnmf_hs.data.simulated_precipitates), len(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    quiet, found, n = out.stdout.split()
    assert quiet == "True"  # the import stays light: HyperSpy only when signals are needed
    assert found == "True" and int(n) >= 8
    import stemnmf_hs

    assert stemnmf_hs.signals.NMFDiffraction2D.__name__ == "NMFDiffraction2D"
    assert "data" in dir(stemnmf_hs)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        stemnmf_hs.nope  # noqa: B018


#: README code that reads a user's file, and what the test runs instead: a small simulation
#: (same calls, smaller scan, so the blocks run in seconds).
README_FILES = {
    'hs.load("scan.hspy")': "_scan()",
    'hs.load("big_scan.zspy", lazy=True)': "_scan().as_lazy()",
}


def _readme_blocks():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_blocks_run(monkeypatch, tmp_path):
    """Every ```python block of README.md runs, in order, in one namespace.

    Reads of the user's files (:data:`README_FILES`) become a small simulated scan; any other
    ``hs.load`` fails the test so that a new example gets its substitute here.
    """
    import matplotlib.pyplot as plt

    from stemnmf_hs.data import simulated_crystal_mixture

    monkeypatch.chdir(tmp_path)
    blocks = _readme_blocks()
    assert len(blocks) >= 3, "README.md lost its python examples"
    scope = {"_scan": lambda: simulated_crystal_mixture(
        3, scan_shape=(8, 8), pattern_shape=(32, 32), seed=0)[0]}
    for i, block in enumerate(blocks):
        for call, substitute in README_FILES.items():
            block = block.replace(call, substitute)
        assert "hs.load(" not in block, f"README block {i} reads a file: add it to README_FILES"
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), scope)
        finally:
            plt.close("all")
    assert scope["s"].learning_results.factors is not None
