"""stemnmf-hs: constrained NMF and interpretable unsupervised analysis of 4D-STEM scans.

A HyperSpy/pyxem extension.  ``s.set_signal_type("nmf_diffraction")`` turns a 4D
``Diffraction2D`` into :class:`stemnmf_hs.signals.NMFDiffraction2D`, whose
``decomposition(algorithm="constrained_nmf", ...)`` runs the constrained NMF of Kimoto et al.,
Sci. Rep. 15, 39143 (2025).  :class:`ConstrainedNMF` is the underlying scikit-learn estimator.
"""

from ._version import __version__
from .decomposition import ConstrainedNMF

__all__ = ["ConstrainedNMF", "__version__"]
