"""Doctest set-up for ``stemnmf_hs`` (``--doctest-modules``, see pyproject.toml).

Loaded for every pytest run from the repository root, ``python -m pytest stemnmf_hs``
included: a non-interactive matplotlib backend, ``np`` in every doctest's namespace, and every
figure a doctest opens closed after it.  The suite's own fixtures live in ``tests/conftest.py``.
"""

import os

os.environ["MPLBACKEND"] = "Agg"

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

#: Files under the repository root that must never be imported as test modules.
collect_ignore = ["build", "notebooks", "benchmarks", "tools", "docs"]


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace):
    """``np`` for every doctest; close the figures a doctest left open (tests keep theirs)."""
    doctest_namespace["np"] = np
    yield
    if isinstance(request.node, pytest.DoctestItem):
        import matplotlib.pyplot as plt

        plt.close("all")
