"""stemnmf-hs: constrained NMF and interpretable unsupervised analysis of 4D-STEM scans.

A HyperSpy/pyxem extension.  ``s.set_signal_type("nmf_diffraction")`` turns a 4D
``Diffraction2D`` into :class:`stemnmf_hs.signals.NMFDiffraction2D`, whose
``decomposition(algorithm="constrained_nmf", ...)`` runs the constrained NMF of Kimoto et al.,
Sci. Rep. 15, 39143 (2025).  :class:`ConstrainedNMF` is the underlying scikit-learn estimator.

Public API: :class:`ConstrainedNMF`, ``__version__``, and the subpackages and modules below,
each reachable as an attribute after ``import stemnmf_hs`` (``stemnmf_hs.data``,
``stemnmf_hs.model_selection``, ...).  They are imported on first access (PEP 562 module
``__getattr__``), so ``import stemnmf_hs`` stays quick, does not import HyperSpy, and no module
imports the package top level back (no import circle).

Layout (data flow file -> signal -> arrays -> math -> arrays -> signal):

* ``decomposition`` -- the estimator, its solver, constraints and data operators (arrays);
* ``model_selection``, ``iqa``, ``polar``, ``similarity``, ``clustering``, ``overlap``,
  ``preprocessing`` -- the math modules (arrays only, never HyperSpy);
* ``plotting``, ``figures`` -- one visual language (matplotlib only): the shared parts, the
  composite figures;
* ``signals`` -- the HyperSpy classes, the only code that builds signals;
* ``data`` -- simulations with ground truth, ground-truth matching, the chunked zarr writer;
* ``io``, ``cli`` -- loading any scan and the ``stemnmf`` command (HyperSpy/pyxem allowed).

Examples
--------
>>> import stemnmf_hs
>>> stemnmf_hs.data.simulate_precipitates(seed=0, scan_shape=(24, 24),
...                                       pattern_shape=(32, 32)).data.shape
(24, 24, 32, 32)
>>> stemnmf_hs.model_selection.__name__
'stemnmf_hs.model_selection'
"""

import importlib

from ._version import __version__
from .decomposition import ConstrainedNMF

#: Subpackages and modules reachable as attributes, imported on first access.
SUBMODULES = (
    "cli",
    "clustering",
    "data",
    "decomposition",
    "figures",
    "io",
    "iqa",
    "model_selection",
    "orientation",
    "overlap",
    "plotting",
    "polar",
    "preprocessing",
    "signals",
    "similarity",
)

# Submodules stay out of ``__all__``: ``from stemnmf_hs import *`` should not import HyperSpy.
__all__ = ["ConstrainedNMF", "__version__"]


def __getattr__(name):
    """Import a submodule on first access (``stemnmf_hs.data`` after ``import stemnmf_hs``)."""
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """Names for tab completion, the lazily imported submodules included."""
    return sorted(set(globals()) | set(SUBMODULES))
