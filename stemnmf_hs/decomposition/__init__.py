"""Constrained NMF estimator (scikit-learn API) and its constraints (Kimoto et al. 2025)."""

from ._constraints import gaussian_kernel, resolve_map_kernel
from ._nmf import ConstrainedNMF

__all__ = ["ConstrainedNMF", "gaussian_kernel", "resolve_map_kernel"]
