"""HyperSpy signal classes of stemnmf-hs (the only subpackage that builds signals)."""

from ._components import ClusterResult
from .nmf_diffraction2d import LazyNMFDiffraction2D, NMFDiffraction2D

__all__ = ["NMFDiffraction2D", "LazyNMFDiffraction2D", "ClusterResult"]
