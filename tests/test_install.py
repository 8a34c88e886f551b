"""Registration with HyperSpy from an editable install (this environment) and from a wheel."""

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
    assert "stemnmf = stemnmf_hs.cli:main" in text
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
