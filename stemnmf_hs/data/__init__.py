"""Simulated 4D-STEM datasets with ground truth.

Array generators live in :mod:`stemnmf_hs.data._simulate` (no HyperSpy); the functions here
wrap them in calibrated :class:`~stemnmf_hs.signals.NMFDiffraction2D` signals.
Ground-truth matching (:func:`match_ground_truth`, :func:`truth_assignment`) lives in
:mod:`stemnmf_hs.data._truth`; the one chunked zarr writer (:func:`write_zarr_scan`,
:func:`open_complete_zarr`) in :mod:`stemnmf_hs.data._zarr`.
"""

from __future__ import annotations

from ._cases import ValidationCase, abtem_case, kinematic_case, real_pattern_case
from ._crystal_scan import CrystalScan, simulate_crystal_scan, simulated_crystal_scan
from ._grains import GrainScan, simulate_overlapping_grains
from ._mixture import CrystalMixture, simulate_crystal_mixture
from ._simulate import (
    SimulatedScan,
    amorphous_pattern,
    simulate_precipitates,
    spot_pattern,
)
from ._truth import match_ground_truth, score_decomposition, truth_assignment
from ._zarr import open_complete_zarr, write_zarr_scan

__all__ = [
    "ValidationCase",
    "abtem_case",
    "kinematic_case",
    "real_pattern_case",
    "CrystalMixture",
    "CrystalScan",
    "simulate_crystal_scan",
    "simulated_crystal_scan",
    "GrainScan",
    "SimulatedScan",
    "amorphous_pattern",
    "match_ground_truth",
    "score_decomposition",
    "open_complete_zarr",
    "simulate_crystal_mixture",
    "simulate_overlapping_grains",
    "simulate_precipitates",
    "simulated_crystal_mixture",
    "simulated_precipitates",
    "spot_pattern",
    "truth_assignment",
    "write_zarr_scan",
]


def simulated_precipitates(seed=0, scan_step=1.0, pixel_size=0.01, noise=True, **kwargs):
    """The simulated scan of Kimoto et al. 2025 as a calibrated ``NMFDiffraction2D``.

    36 x 36 probe positions of 128 x 128 patterns: an amorphous matrix holding nine ~6 x 6
    crystalline areas of three crystals at 9 %, 3 % and 1 % crystallinity with graded edges,
    Poisson noise for N = 10^4 electrons per pattern (paper, Methods and Fig. 10).

    Parameters
    ----------
    seed : int, default 0
        Seed of the Poisson noise (reproducible).
    scan_step : float, default 1.0
        Scan step in nm (navigation axes ``x``, ``y``).
    pixel_size : float, default 0.01
        Reciprocal pixel size in Å⁻¹ (signal axes ``kx``, ``ky``, zero at the pattern
        centre).
    noise : bool, default True
        Poisson-sample the counts; ``False`` gives the noiseless expectation.
    **kwargs
        Passed to :func:`simulate_precipitates` (``scan_shape``, ``pattern_shape``,
        ``electrons_per_pattern``, ``crystallinity``, ``area_size``, ``dtype``).

    Returns
    -------
    signal : NMFDiffraction2D
        ``(36, 36 | 128, 128)`` float32 counts; navigation axes in nm, signal axes in Å⁻¹.
    truth : SimulatedScan
        Ground truth: ``diffractions`` ``(4, 128, 128)`` (0 amorphous, 1-3 crystals, each
        summing to 1), ``maps`` ``(4, 36, 36)`` in electrons, ``center`` ``(cx, cy)`` px,
        ``area_labels`` ``(36, 36)``.

    Raises
    ------
    ValueError
        On impossible simulation parameters (see :func:`simulate_precipitates`).

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_precipitates
    >>> s, truth = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(32, 32))
    >>> s
    <NMFDiffraction2D, title: Simulated precipitates (Kimoto et al. 2025), dimensions: (24, 24|32, 32)>
    >>> truth.diffractions.shape, truth.maps.shape
    ((4, 32, 32), (4, 24, 24))
    """
    truth = simulate_precipitates(seed=seed, noise=noise, **kwargs)
    return _as_signal(truth, scan_step, pixel_size,
                      "Simulated precipitates (Kimoto et al. 2025)"), truth


def simulated_crystal_mixture(n_crystals=5, seed=0, scan_step=1.0, pixel_size=0.01,
                              noise=True, **kwargs):
    """A scan with a known number of distinct diffractions, as a calibrated signal.

    An amorphous matrix plus ``n_crystals`` random-lattice crystals with smooth blob maps
    (:func:`simulate_crystal_mixture`): ``n_crystals + 1`` true components.

    Parameters
    ----------
    n_crystals : int, default 5
        Number of crystals.
    seed : int, default 0
        Seed of lattices, maps and noise.
    scan_step : float, default 1.0
        Scan step in nm.
    pixel_size : float, default 0.01
        Reciprocal pixel size in Å⁻¹ (signal axes zero at the pattern centre).
    noise : bool, default True
        Poisson-sample the counts.
    **kwargs
        ``scan_shape`` (default ``(58, 58)``), ``pattern_shape`` (``(128, 128)``),
        ``electrons_per_pattern``, ``max_fraction``, ``dtype``.

    Returns
    -------
    signal : NMFDiffraction2D
        ``(nx, ny | px, py)`` counts; navigation axes in nm, signal axes in Å⁻¹.
    truth : CrystalMixture
        ``diffractions`` ``(n_crystals + 1, py, px)``, ``maps`` ``(n_crystals + 1, ny,
        nx)`` in electrons, ``n_components``.

    Raises
    ------
    ValueError
        On impossible parameters (see :func:`simulate_crystal_mixture`).

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_crystal_mixture
    >>> s, truth = simulated_crystal_mixture(5, scan_shape=(20, 20), pattern_shape=(64, 64))
    >>> truth.n_components, s.data.shape
    (6, (20, 20, 64, 64))
    """
    truth = simulate_crystal_mixture(n_crystals=n_crystals, seed=seed, noise=noise, **kwargs)
    return _as_signal(truth, scan_step, pixel_size,
                      f"Simulated mixture of {n_crystals} crystals and an amorphous matrix"), truth


def _as_signal(truth, scan_step, pixel_size, title):
    """The counts of a simulator's result as a calibrated signal in electrons."""
    from ..signals._build import scan_signal

    s = scan_signal(truth.data, scan_step=scan_step, pixel_size=pixel_size,
                    center=truth.center, title=title)
    s.metadata.set_item("Signal.quantity", "Intensity (electrons)")
    return s
