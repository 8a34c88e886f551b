"""Passes over the data: how many times a fit, a sweep or a workflow reads the whole scan.

A pass reads every element of the data matrix ``X (N, F)`` once: one product ``X @ B`` or
``X^T @ Y`` of an in-memory or dask data operator, the statistics ``(||X||^2, mean)`` when
not gathered with a product, a K-component loss, a gathered copy of masked or non-float32
in-memory data.  Products of a sketch ``Q B`` read no data and are not passes.  On a lazy
scan a pass is a read of every chunk from disk, so the pass count, not the iteration count,
sets the time of a compressed fit of a large scan.

The operators of ``_operators.py`` call :func:`record` once per pass; every
:func:`count_passes` block active in the process then counts it, by kind and by stage.  The
stage is a label (:func:`stage`: the sketch, the loss) or, for the solver's own products,
the name of the next :func:`mark_stage` (the solver's ``lap``, which closes each timed
stage of a fit).

Math module: knows neither HyperSpy nor the estimator.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["PassCounter", "count_passes", "mark_stage", "record", "stage"]


#: Active :func:`count_passes` counters, the lock over their updates, and the stage label
#: of the passes the current thread makes (``None``: the solver's next ``lap`` names it).
_COUNTERS = []
_COUNTER_LOCK = threading.Lock()
_LABEL = threading.local()


class PassCounter:
    """Passes over the data counted by :func:`count_passes` (one pass reads all ``N x F``).

    Attributes
    ----------
    total : int
        Passes in all.
    by_kind : dict of str to int
        ``"matmat"`` (``X @ B``), ``"rmatmat"`` (``X^T @ Y``), ``"stats"`` (``||X||^2``
        and the mean, when not gathered with a product), ``"loss"`` (a K-component loss),
        ``"gather"`` (a copy of masked or non-float32 in-memory data).
    by_stage : dict of str to int
        Passes per stage: the solver's timing stages (``"init"``, ``"sketch"``,
        ``"iterations"``, ``"scoring"``, ``"refinement"``, ``"polish"``, summed over fits),
        ``"loss"``, and ``"other"`` for passes after the last stage of a fit.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> from stemnmf_hs.decomposition._passes import count_passes
    >>> op = as_operator(np.ones((4, 3)))
    >>> with count_passes() as passes:
    ...     _ = op.matmat(np.ones((3, 2), np.float32))
    ...     _ = op.rmatmat(np.ones((4, 2), np.float32))
    >>> passes.total, passes.by_kind, passes.by_stage, op.passes
    (2, {'matmat': 1, 'rmatmat': 1}, {'other': 2}, 2)
    """

    def __init__(self):
        self.total = 0
        self.by_kind = {}
        self.by_stage = {}
        self._pending = 0

    def close_stage(self, name):
        """Attribute the passes counted since the last stage to the stage ``name``.

        Examples
        --------
        >>> from stemnmf_hs.decomposition._passes import PassCounter
        >>> c = PassCounter()
        >>> c.close_stage("init")
        >>> c.by_stage
        {'init': 0}
        """
        self.by_stage[name] = self.by_stage.get(name, 0) + self._pending
        self._pending = 0

    def __repr__(self):
        return f"PassCounter(total={self.total}, by_stage={self.by_stage})"


@contextlib.contextmanager
def count_passes():
    """Count the passes over the data that every data operator makes inside the block.

    Yields
    ------
    PassCounter
        Filled while the block runs (all threads of this process; with a
        ``dask.distributed`` client the products are counted here, where they are asked for).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs import ConstrainedNMF
    >>> from stemnmf_hs.decomposition._passes import count_passes
    >>> X = np.random.default_rng(0).random((20, 9)).astype(np.float32)
    >>> est = ConstrainedNMF(2, solver="als", diffraction_constraint=None, map_constraint=None,
    ...                      n_restarts=2, max_iter=3, tol=0, compression=4,
    ...                      power_iterations=1, refine_iter=2, random_state=0)
    >>> with count_passes() as passes:
    ...     _ = est.fit(X)
    >>> passes.by_stage  # statistics, 2 + 2 x 1 sketch, 1 scoring, 2 x 2 refinement, polish
    {'init': 1, 'sketch': 4, 'iterations': 0, 'scoring': 1, 'refinement': 4, 'polish': 1}
    """
    counter = PassCounter()
    with _COUNTER_LOCK:
        _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        with _COUNTER_LOCK:
            _COUNTERS.remove(counter)
            if counter._pending:
                counter.close_stage("other")


def mark_stage(name):
    """Attribute the unlabelled passes since the last mark to the stage ``name``.

    Called by the solver's ``lap`` at the end of every timed stage of a fit.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> from stemnmf_hs.decomposition._passes import count_passes, mark_stage
    >>> with count_passes() as passes:
    ...     as_operator(np.ones((2, 2))).stats()
    ...     mark_stage("init")
    (4.0, 1.0)
    >>> passes.by_stage
    {'init': 1}
    """
    with _COUNTER_LOCK:
        for counter in _COUNTERS:
            counter.close_stage(name)


@contextlib.contextmanager
def stage(name):
    """Label the passes this thread makes inside the block as stage ``name``.

    An outer label wins (a loss computed inside a labelled block stays in that block).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.decomposition import as_operator
    >>> from stemnmf_hs.decomposition._passes import count_passes, stage
    >>> with count_passes() as passes, stage("preview"):
    ...     _ = as_operator(np.ones((2, 2))).matmat(np.ones((2, 1), np.float32))
    >>> passes.by_stage
    {'preview': 1}
    """
    outer = getattr(_LABEL, "name", None)
    _LABEL.name = outer or name
    try:
        yield
    finally:
        _LABEL.name = outer


def record(op, kind):
    """Count one pass of kind ``kind`` of ``op`` (``None``: of an array) over the data.

    Examples
    --------
    >>> from stemnmf_hs.decomposition._passes import count_passes, record
    >>> with count_passes() as passes:
    ...     record(None, "loss")
    >>> passes.by_kind
    {'loss': 1}
    """
    if op is not None:
        op.passes += 1
    label = getattr(_LABEL, "name", None)
    with _COUNTER_LOCK:
        for counter in _COUNTERS:
            counter.total += 1
            counter.by_kind[kind] = counter.by_kind.get(kind, 0) + 1
            if label is None:
                counter._pending += 1
            else:
                counter.by_stage[label] = counter.by_stage.get(label, 0) + 1

