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
__all__ = ["ConstrainedNMF", "__version__", "require_extra"]

#: Modules each optional extra of ``pyproject.toml`` brings that its users need.
EXTRAS = {
    "notebooks": ("ipykernel", "ipywidgets"),
    "distributed": ("distributed",),
}


def require_extra(*names):
    """Check that optional extras are installed; say how to install them if not.

    The first cell of every notebook calls it, so a notebook that lacks its extra stops
    at once with the command to run instead of failing halfway.

    Parameters
    ----------
    *names : str
        Extras of ``pyproject.toml``: ``"notebooks"`` (Jupyter kernel and widgets),
        ``"distributed"`` (``dask.distributed``, notebook 05).

    Raises
    ------
    ValueError
        For a name that is not an extra.
    ImportError
        Naming the missing modules and the command
        ``python -m pip install "stemnmf-hs[<extras>]"``.

    Examples
    --------
    >>> import stemnmf_hs
    >>> stemnmf_hs.require_extra("distributed")
    >>> stemnmf_hs.require_extra("gpu")
    Traceback (most recent call last):
    ...
    ValueError: 'gpu' is not an extra of stemnmf-hs; the extras are ['distributed', 'notebooks'].
    """
    unknown = [n for n in names if n not in EXTRAS]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not an extra of stemnmf-hs; the extras are "
                         f"{sorted(EXTRAS)}.")
    missing, extras = [], []
    for name in names:
        for module in EXTRAS[name]:
            try:
                importlib.import_module(module)
            except ImportError:
                missing.append(module)
                extras.append(name)
    if missing:
        spec = ",".join(dict.fromkeys(extras))
        raise ImportError(f"{', '.join(missing)} not installed: this needs the [{spec}] extra. "
                          f'Install it with: python -m pip install "stemnmf-hs[{spec}]" '
                          "(from a clone: python -m pip install \".[" + spec + "]\")")


def __getattr__(name):
    """Import a submodule on first access (``stemnmf_hs.data`` after ``import stemnmf_hs``)."""
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """Names for tab completion, the lazily imported submodules included."""
    return sorted(set(globals()) | set(SUBMODULES))
