"""Doctest set-up for ``stemnmf_hs`` (``--doctest-modules``, see pyproject.toml).

Loaded for every pytest run from the repository root, ``python -m pytest stemnmf_hs``
included: a non-interactive matplotlib backend, ``np`` in every doctest's namespace, and every
figure a doctest opens closed after it.  The suite's own fixtures live in ``tests/conftest.py``.
"""

import functools
import os

os.environ["MPLBACKEND"] = "Agg"

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

#: Files under the repository root that must never be imported as test modules.
collect_ignore = ["build", "notebooks", "benchmarks", "tools", "docs"]


#: Doctests of these methods and figures use the ``res`` (and ``truth``) of the
#: ``IndexingResult`` class example.
_INDEXING_METHODS = ("stemnmf_hs.signals._indexing_result.IndexingResult.",
                     "stemnmf_hs.signals._indexing_figures.")


@functools.cache
def _indexing_example():
    """The ``IndexingResult`` class docstring's example, built once: ``(res, truth)``."""
    from stemnmf_hs.data import simulated_crystal_scan

    s, truth = simulated_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
    s.decomposition(algorithm="constrained_nmf", output_dimension=5, n_restarts=1,
                    max_iter=30, random_state=0, print_info=False)
    return s.index_components(truth.phases["Cu"], resolution=10, show_progressbar=False), truth


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace):
    """``np`` for every doctest (and ``res``, ``truth`` for the ``IndexingResult`` methods');
    close the figures a doctest left open (tests keep theirs)."""
    doctest_namespace["np"] = np
    if isinstance(request.node, pytest.DoctestItem) and request.node.name.startswith(
            _INDEXING_METHODS):
        doctest_namespace["res"], doctest_namespace["truth"] = _indexing_example()
    yield
    if isinstance(request.node, pytest.DoctestItem):
        import matplotlib.pyplot as plt

        plt.close("all")
