"""Deprecated: the former home of the data operators, now ``_operators.py``.

Kept for code that imported ``InMemoryData`` / ``DaskData`` / ``SketchedData`` / ``is_dask``
from here (``tests/test_estimate_k.py``, ``stemnmf_hs/preprocessing.py``); the classes are the
operators of :mod:`stemnmf_hs.decomposition._operators` under their old names.  Import from
:mod:`stemnmf_hs.decomposition` instead.
"""

from ._operators import DaskOperator as DaskData
from ._operators import InMemoryOperator as InMemoryData
from ._operators import SketchedOperator as SketchedData
from ._operators import is_dask, sketch

__all__ = ["DaskData", "InMemoryData", "SketchedData", "is_dask", "sketch"]
