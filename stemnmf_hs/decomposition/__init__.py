"""Constrained NMF (Kimoto et al. 2025): the estimator, its data operators and constraints.

Modules (private; the names below are the public surface):

* ``_nmf.py`` -- :class:`ConstrainedNMF`, the scikit-learn estimator (parameters, ``fit``,
  ``transform``), and its functional form :func:`constrained_nmf`;
* ``_solver.py`` -- the protocol loop: batched restarts, ALS / MU steps, sketched ALS;
* ``_constraints.py`` -- the projections ``[.]_W`` and ``[.]_H`` and their factories;
* ``_operators.py`` -- the data seen through its products (in memory, dask, sketch) and the one
  K-component loss;
* ``_sweep.py`` -- one warm-started fit per number of components (the k sweep);
* ``_data.py`` -- deprecated aliases of the operators' former names.

Data prepared once (masked, unfolded, checked, or sketched) enter ``fit`` as an operator from
:func:`as_operator`, so no caller needs a private method.
"""

from ._constraints import gaussian_kernel, resolve_map_kernel
from ._nmf import ConstrainedNMF, check_n_components, constrained_nmf
from ._operators import (
    DaskOperator,
    DataOperator,
    InMemoryOperator,
    SketchedOperator,
    as_operator,
    check_dask_matrix,
    is_dask,
    k_component_loss,
    sketch,
    sketch_rank,
)
from ._passes import PassCounter, count_passes
from ._sweep import sweep_n_components

from . import _operators

#: The estimator's names, the constraints' kernel helpers, the sweep, and every public name of
#: ``_operators`` (listed once, there).
__all__ = sorted([
    "ConstrainedNMF",
    "PassCounter",
    "check_n_components",
    "count_passes",
    "constrained_nmf",
    "gaussian_kernel",
    "resolve_map_kernel",
    "sweep_n_components",
    *_operators.__all__,
])
