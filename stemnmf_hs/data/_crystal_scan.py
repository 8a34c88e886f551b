"""Simulated scan of cubic grains in known orientations: ground truth for orientation mapping.

Grains of fcc Cu and/or bcc Fe (kinematic spot patterns from diffsims/orix,
:func:`stemnmf_hs.data._cases.kinematic_pattern`) in an amorphous matrix, two of them
overlapping along the beam in a band, Poisson noise.  The patterns are drawn in pyxem's
template-matching convention (``mirrored=True``), so the orix orientation each grain was
simulated with is the one pyxem's ``get_orientation`` reports.  Arrays only
(:func:`simulate_crystal_scan`); :func:`simulated_crystal_scan` wraps them in a calibrated
:class:`~stemnmf_hs.signals.NMFDiffraction2D`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._cases import kinematic_pattern, kinematic_phases
from ._simulate import amorphous_pattern, expected_counts, poisson_counts, with_matrix

__all__ = [
    "CU_FE_GRAINS",
    "CU_GRAINS",
    "CrystalScan",
    "simulate_crystal_scan",
    "simulated_crystal_scan",
]

#: Default grains, one phase: ``(phase, Bunge Euler angles in degrees, (x, y) centre as a
#: fraction of the scan, radius as a fraction of the scan width)``.  A and B are Cu [001]
#: turned 30° apart in-plane and overlap in a band; C and D are Cu [011] at 10° and 70°.
#: Zone axes whose zero-order pattern tells every orientation apart ([111] cannot tell
#: theta from theta + 60°, [112] theta from theta + 180°).
CU_GRAINS = (
    ("Cu", (20.0, 0.0, 0.0), (0.27, 0.30), 0.21),
    ("Cu", (50.0, 0.0, 0.0), (0.62, 0.30), 0.21),
    ("Cu", (10.0, 45.0, 0.0), (0.27, 0.74), 0.18),
    ("Cu", (70.0, 45.0, 0.0), (0.73, 0.74), 0.18),
)
#: Two phases: Cu [001] 20° overlapping Fe [001] 35°, Fe [011] 10°, Cu [011] 60°.
CU_FE_GRAINS = (
    ("Cu", (20.0, 0.0, 0.0), (0.27, 0.30), 0.21),
    ("Fe", (35.0, 0.0, 0.0), (0.62, 0.30), 0.21),
    ("Fe", (10.0, 45.0, 0.0), (0.27, 0.74), 0.18),
    ("Cu", (60.0, 45.0, 0.0), (0.73, 0.74), 0.18),
)
_BEAM_ENERGY_KV = 200.0
#: Relative level (of a grain's peak fraction) above which a grain counts as present.
_PRESENT = 0.5


@dataclass(frozen=True)
class CrystalScan:
    """Result of :func:`simulate_crystal_scan`.

    Attributes
    ----------
    data : numpy.ndarray
        ``(ny, nx, qy, qx)`` float32 counts (scan rows, scan columns, pattern rows, columns).
    diffractions : numpy.ndarray
        ``(n_grains + 1, qy, qx)`` float32: the amorphous matrix, then one per grain; each
        sums to 1.
    maps : numpy.ndarray
        ``(n_grains + 1, ny, nx)`` float32 weights in electrons, same order.
    labels : tuple of str
        ``("amorphous", "Cu [001] 20°", ...)``.
    grain_phases : tuple of str
        Phase name of every grain (``"Cu"`` or ``"Fe"``).
    eulers : numpy.ndarray
        ``(n_grains, 3)`` Bunge Euler angles (orix), degrees.
    phases : dict
        ``name -> orix.crystal_map.Phase`` of the phases used.
    grain_map : numpy.ndarray
        ``(ny, nx)`` int: the grain with the largest fraction where it reaches half its
        peak fraction, else -1 (matrix).
    overlap : numpy.ndarray
        ``(ny, nx)`` bool: two grains each at half their peak fraction or more.
    center : tuple of float
        ``(cx, cy)`` pattern centre, pixels (where the direct beam is).
    pixel_size : float
        Å⁻¹ per pattern pixel.
    beam_energy : float
        kV of the simulated patterns.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_crystal_scan
    >>> scan = simulate_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
    >>> scan.data.shape, scan.labels[:2]
    ((12, 12, 32, 32), ('amorphous', 'Cu [001] 20°'))
    >>> scan.orientation(0)
    Orientation (1,) m-3m
    [[ 0.9848  0.      0.     -0.1736]]
    """

    data: np.ndarray
    diffractions: np.ndarray
    maps: np.ndarray
    labels: tuple
    grain_phases: tuple
    eulers: np.ndarray
    phases: dict
    grain_map: np.ndarray
    overlap: np.ndarray
    center: tuple
    pixel_size: float
    beam_energy: float = _BEAM_ENERGY_KV

    @property
    def n_grains(self):
        """Number of grains.

        Examples
        --------
        >>> from stemnmf_hs.data import simulate_crystal_scan
        >>> simulate_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32)).n_grains
        4
        """
        return len(self.grain_phases)

    def orientation(self, grain):
        """The true orientation of a grain, with its phase's point group.

        Parameters
        ----------
        grain : int
            Grain index, ``0 <= grain < n_grains`` (component ``grain + 1`` of the truth).

        Returns
        -------
        orix.quaternion.Orientation
            Shape ``(1,)``, rotating sample vectors into the crystal frame (orix).

        Examples
        --------
        >>> from stemnmf_hs.data import simulate_crystal_scan
        >>> scan = simulate_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
        >>> round(float(scan.orientation(0).angle_with(scan.orientation(1))[0]) * 180 / np.pi)
        30
        """
        from orix.quaternion import Orientation

        sym = self.phases[self.grain_phases[grain]].point_group
        return Orientation.from_euler(np.deg2rad(self.eulers[grain])[None], symmetry=sym)

    @property
    def phase_map(self):
        """``(ny, nx)`` int true phase id (order of ``phases``), -1 on the matrix.

        Examples
        --------
        >>> from stemnmf_hs.data import simulate_crystal_scan
        >>> scan = simulate_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
        >>> sorted(np.unique(scan.phase_map).tolist())
        [-1, 0]
        """
        names = list(self.phases)
        ids = np.array([names.index(p) for p in self.grain_phases] + [-1])
        return ids[self.grain_map]


def _zone_label(euler):
    """``"[uvw]"`` of the beam direction for the zone axes used here, else the Euler angles."""
    tilt = tuple(round(float(a), 1) for a in euler[1:])
    known = {(0.0, 0.0): "[001]", (45.0, 0.0): "[011]", (54.7, 45.0): "[111]",
             (35.3, 45.0): "[112]"}
    return known.get(tilt, f"({tilt[0]}°, {tilt[1]}°)")


def _profile(shape, cx, cy, radius, edge):
    """Grain profile in [0, 1]: 1 inside ``radius``, a linear ramp over ``edge`` pixels."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    return np.clip((radius + edge / 2 - d) / edge, 0.0, 1.0)


def simulate_crystal_scan(
    grains=CU_GRAINS,
    scan_shape=(24, 24),
    pattern_shape=(64, 64),
    pixel_size=0.05,
    crystal_fraction=0.4,
    electrons_per_pattern=1e4,
    direct_beam=0.3,
    spot_sigma=0.8,
    seed=0,
    noise=True,
):
    """Cubic grains in known orientations in an amorphous matrix, overlapping in a band.

    Every grain is a disc of crystal fraction ``crystal_fraction`` with a graded edge of
    1.5 scan pixels; the amorphous matrix
    (:func:`stemnmf_hs.data.amorphous_pattern`, rings at 8.6, 15.5 and 22 px as in
    :func:`stemnmf_hs.data.kinematic_case`) fills the rest of every pattern.  The default
    grains (:data:`CU_GRAINS`): Cu [001] at 20° and at 50° (30° apart in-plane, overlapping
    in a band between them), Cu [011] at 10° and at 70°.  Patterns are kinematic
    (diffsims, 200 kV, excitation error 0.02 Å⁻¹) with a direct beam at the pattern centre
    ``(nx / 2, ny / 2)`` px, drawn in pyxem's template-matching convention.

    Parameters
    ----------
    grains : sequence of (str, tuple, tuple, float), default :data:`CU_GRAINS`
        Per grain: phase ``"Cu"`` or ``"Fe"``, Bunge Euler angles (degrees), ``(x, y)``
        centre as a fraction of the scan, radius as a fraction of the scan width.
        :data:`CU_FE_GRAINS` is a two-phase set.
    scan_shape : tuple of int, default (24, 24)
        ``(ny, nx)`` probe positions.
    pattern_shape : tuple of int, default (64, 64)
        ``(qy, qx)`` pattern pixels, at least ``(32, 32)``.
    pixel_size : float, default 0.05
        Å⁻¹ per pixel.
    crystal_fraction : float, default 0.4
        Crystal share of a pattern inside a grain, in ``(0, 0.5]`` (two overlapping grains
        stay <= 1).
    electrons_per_pattern : float, default 1e4
        Expected electrons per pattern.
    direct_beam : float, default 0.3
        Share of every diffraction in the direct beam.
    spot_sigma : float, default 0.8
        Spot width, pattern pixels.
    seed : int, default 0
        Seed of the Poisson noise.
    noise : bool, default True
        Poisson-sample the counts; ``False`` gives the expectation.

    Returns
    -------
    CrystalScan

    Raises
    ------
    ValueError
        On no grain, an unknown phase, a pattern smaller than 32 x 32, a crystal fraction
        outside ``(0, 0.5]`` or a non-positive dose.

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_crystal_scan
    >>> scan = simulate_crystal_scan(scan_shape=(16, 16), pattern_shape=(32, 32))
    >>> scan.diffractions.shape, scan.maps.shape, bool(scan.overlap.any())
    ((5, 32, 32), (5, 16, 16), True)
    >>> simulate_crystal_scan(crystal_fraction=0.8)
    Traceback (most recent call last):
        ...
    ValueError: crystal_fraction must be in (0, 0.5] (two overlapping grains stay <= 1); got 0.8.
    """
    grains = tuple(grains)
    known = kinematic_phases()
    if not grains:
        raise ValueError("grains is empty: give at least one (phase, euler, centre, radius).")
    bad = sorted({g[0] for g in grains} - set(known))
    if bad:
        raise ValueError(f"unknown phase(s) {bad}; the simulation knows {sorted(known)}.")
    sy, sx = (int(n) for n in scan_shape)
    qy, qx = (int(n) for n in pattern_shape)
    if qy < 32 or qx < 32:
        raise ValueError(f"pattern_shape {pattern_shape} is too small: need at least (32, 32).")
    if not 0 < crystal_fraction <= 0.5:
        raise ValueError("crystal_fraction must be in (0, 0.5] (two overlapping grains stay "
                         f"<= 1); got {crystal_fraction!r}.")
    if not electrons_per_pattern > 0:
        raise ValueError(f"electrons_per_pattern must be > 0; got {electrons_per_pattern!r}.")

    center = (qx / 2.0, qy / 2.0)
    yy, xx = np.mgrid[0:qy, 0:qx]
    beam = np.exp(-((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / (2 * spot_sigma**2))
    amorphous = amorphous_pattern((qy, qx), center=center, ring_radii=(8.6, 15.5, 22.0),
                                  ring_widths=(1.6, 2.4, 3.2), dtype=np.float64)
    amorphous = (1 - direct_beam) * amorphous + direct_beam * beam / beam.sum()
    crystals = [kinematic_pattern(phase, tuple(float(a) for a in euler), (qy, qx),
                                  float(pixel_size), float(spot_sigma), float(direct_beam),
                                  mirrored=True)
                for phase, euler, _, _ in grains]
    diffractions = np.stack([amorphous] + crystals)
    diffractions /= diffractions.sum(axis=(1, 2), keepdims=True)

    profiles = np.stack([_profile((sy, sx), c[0] * sx, c[1] * sy, r * sx, 1.5)
                         for _, _, c, r in grains])
    fractions = crystal_fraction * profiles
    fractions /= np.maximum(fractions.sum(axis=0), 1.0)
    maps = electrons_per_pattern * with_matrix(fractions)
    expectation = expected_counts(maps, diffractions)
    if noise:
        data = poisson_counts(expectation, np.random.default_rng(seed), np.float32)
    else:
        data = expectation.astype(np.float32)

    present = profiles >= _PRESENT
    grain_map = np.where(present.any(axis=0), np.argmax(profiles, axis=0), -1)
    used = {}
    for phase, *_ in grains:
        used.setdefault(phase, known[phase])
    labels = ("amorphous",) + tuple(
        f"{phase} {_zone_label(euler)} {float(euler[0]):g}°" for phase, euler, _, _ in grains)
    return CrystalScan(
        data=data,
        diffractions=diffractions.astype(np.float32),
        maps=maps.astype(np.float32),
        labels=labels,
        grain_phases=tuple(g[0] for g in grains),
        eulers=np.array([g[1] for g in grains], dtype=float),
        phases=used,
        grain_map=grain_map,
        overlap=present.sum(axis=0) >= 2,
        center=center,
        pixel_size=float(pixel_size),
    )


def simulated_crystal_scan(scan_step=1.0, seed=0, **kwargs):
    """:func:`simulate_crystal_scan` as a calibrated ``NMFDiffraction2D``, with its truth.

    Parameters
    ----------
    scan_step : float, default 1.0
        Scan step, nm (navigation axes ``x``, ``y``).
    seed : int, default 0
        Seed of the Poisson noise.
    **kwargs
        Passed to :func:`simulate_crystal_scan` (``grains``, ``scan_shape``,
        ``pattern_shape``, ``pixel_size``, ``crystal_fraction``, ``electrons_per_pattern``,
        ...).

    Returns
    -------
    signal : NMFDiffraction2D
        ``(nx, ny | qx, qy)`` counts in electrons; navigation axes in nm, signal axes in Å⁻¹
        with zero at the direct beam (``s.calibration.center`` is the true centre), beam
        energy 200 kV in ``metadata.Acquisition_instrument.TEM.beam_energy``.
    truth : CrystalScan

    Raises
    ------
    ValueError
        As :func:`simulate_crystal_scan`.

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_crystal_scan
    >>> s, truth = simulated_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
    >>> s
    <NMFDiffraction2D, title: Simulated cubic grains, dimensions: (12, 12|32, 32)>
    >>> [float(c) for c in s.calibration.center], truth.center
    ([16.0, 16.0], (16.0, 16.0))
    """
    from ..signals._build import scan_signal

    truth = simulate_crystal_scan(seed=seed, **kwargs)
    s = scan_signal(truth.data, scan_step=scan_step, pixel_size=truth.pixel_size,
                    center=truth.center, title="Simulated cubic grains")
    s.metadata.set_item("Signal.quantity", "Intensity (electrons)")
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", truth.beam_energy)
    return s, truth
