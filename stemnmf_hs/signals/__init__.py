"""HyperSpy signal classes of stemnmf-hs (the only subpackage that builds signals).

Modules, in the one direction their imports flow: ``_build`` (a scan from an array) ->
``nmf_diffraction2d`` (the classes) -> the method mixins ``_analysis``, ``_plots``,
``_preprocessing`` -> ``_results`` (result objects) -> ``_adapter`` (signal <-> arrays, the
one module that touches HyperSpy's internals).
"""

from ._indexing_result import IndexingResult
from ._preprocessing import BeamCenter
from ._results import ClusterResult, NumberOfComponentsEstimate
from .nmf_diffraction2d import LazyNMFDiffraction2D, NMFDiffraction2D

__all__ = [
    "BeamCenter",
    "ClusterResult",
    "IndexingResult",
    "LazyNMFDiffraction2D",
    "NMFDiffraction2D",
    "NumberOfComponentsEstimate",
]
