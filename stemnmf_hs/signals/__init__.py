"""HyperSpy signal classes of stemnmf-hs (the only subpackage that builds signals)."""

from ._components import ClusterResult
from ._model_selection import NumberOfComponentsEstimate
from .nmf_diffraction2d import LazyNMFDiffraction2D, NMFDiffraction2D

__all__ = [
    "ClusterResult",
    "LazyNMFDiffraction2D",
    "NMFDiffraction2D",
    "NumberOfComponentsEstimate",
]
