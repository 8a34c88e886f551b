"""Orientation mapping from indexed NMF components: templates, maps, crystal maps, IPF colours.

The arithmetic of :meth:`~stemnmf_hs.signals.NMFDiffraction2D.index_components` and of its
result, on arrays and orix/diffsims objects only (this module never imports HyperSpy; the
matching itself, pyxem's polar template matching, runs on signals in
:mod:`stemnmf_hs.signals._indexing`):

* **phases** (:func:`as_phases`): orix ``Phase`` objects or CIF files (``Phase.from_cif``),
  validated before any simulation;
* **template library** (:func:`template_library`, :class:`TemplateLibrary`): diffsims
  ``SimulationGenerator.calculate_diffraction2d`` over orix's
  ``get_sample_reduced_fundamental`` grid of every phase, kept in a small cache; the phase of
  a template is read from its index (:func:`phase_of_template`), not with pyxem 0.21's
  ``OrientationMap.to_phase_index`` (whose ``np.searchsorted`` labels the first template of
  the second phase with the first phase);
* **polar preparation** (:func:`prepare_polar`): the azimuthal mean of every ring removed
  (amorphous rings, diffuse background), negatives clipped, scaled by the norm of the whole
  pattern, so that pyxem's correlation is a score in ``[0, 1]`` comparable between patterns
  (near 0 for an amorphous one);
* **maps** (:func:`orientation_map_arrays`): per probe position the strongest indexed
  component whose weight passes a threshold, and the second where they overlap;
* **crystal maps** (:func:`crystal_map`) with two rotations per point and **IPF colours**
  (:func:`ipf_colors`, orix ``IPFColorKeyTSL``).

Conventions: an orix ``Orientation`` rotates sample vectors into the crystal frame; the
orientations are pyxem 0.21's (its template matching's sample frame: the pattern's ``kx``
along x, ``ky`` along -y, the beam along -z; see ``shared/realdata/README.md`` of the
repository for a worked check).  Angles in degrees, reciprocal lengths in Å⁻¹.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "NOT_INDEXED",
    "TemplateLibrary",
    "as_phases",
    "clear_template_cache",
    "crystal_map",
    "disorientation",
    "ipf_colors",
    "orientation_map_arrays",
    "phase_of_template",
    "prepare_polar",
    "template_library",
]

#: Label of a component or probe position that matches no phase.
NOT_INDEXED = "not indexed"
#: Per-phase template simulations kept in memory (a 1° cubic grid takes seconds to simulate
#: and holds about 120 MB; :func:`clear_template_cache` frees them).
_CACHE_SIZE = 4
_LIBRARIES = OrderedDict()


# ---------------------------------------------------------------------------- phases
def as_phases(phases):
    """A list of orix phases from phases, CIF paths or a mix, checked for simulation.

    Parameters
    ----------
    phases : orix.crystal_map.Phase, str, os.PathLike or sequence of them
        Phases, or CIF files read with ``Phase.from_cif`` (the name is the file's stem).

    Returns
    -------
    list of orix.crystal_map.Phase

    Raises
    ------
    TypeError
        On an item that is neither a ``Phase`` nor a path.
    FileNotFoundError
        On a CIF path that does not exist.
    ValueError
        On a CIF that does not load, a phase without atoms or point group (diffsims cannot
        simulate it), no phase, or two phases of the same name.

    Examples
    --------
    >>> from stemnmf_hs.orientation import as_phases
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> [p.name for p in as_phases(kinematic_phases()["Cu"])]
    ['Cu']
    >>> as_phases([3])
    Traceback (most recent call last):
        ...
    TypeError: phases must be orix Phase objects or CIF file paths; item 0 is a int (3).
    """
    from orix.crystal_map import Phase

    if isinstance(phases, (Phase, str, os.PathLike)) or not np.iterable(phases):
        items = [phases]
    else:
        items = list(phases)
    if not items:
        raise ValueError("phases is empty: give at least one orix Phase or CIF file.")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            item = _read_cif(Path(item))
        elif not isinstance(item, Phase):
            raise TypeError(
                "phases must be orix Phase objects or CIF file paths; item "
                f"{i} is a {type(item).__name__} ({item!r})."
            )
        if item.point_group is None:
            raise ValueError(f"phase {item.name!r} has no space or point group: set one "
                             "(Phase(..., space_group=225)) so the orientations have a symmetry.")
        if item.structure is None or len(item.structure) == 0:
            raise ValueError(f"phase {item.name!r} has no atoms: diffsims needs a structure "
                             "(Phase(..., structure=diffpy.structure.Structure(...))) or a CIF.")
        out.append(item)
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two phases share the name(s) {dup}; give each phase its own name.")
    return out


def _read_cif(path):
    from orix.crystal_map import Phase

    if not path.is_file():
        raise FileNotFoundError(f"CIF file {str(path)!r} not found.")
    try:
        phase = Phase.from_cif(path)
    except Exception as err:  # diffpy raises its own StructureFormatError and others
        raise ValueError(f"the CIF file {str(path)!r} does not load as a phase "
                         f"({type(err).__name__}: {err}).") from err
    if not phase.name:
        phase.name = path.stem
    return phase


def _phase_key(phase):
    """A hashable fingerprint of a phase: name, space group, lattice and atoms."""
    s = phase.structure
    atoms = tuple((str(a.element), tuple(np.round(a.xyz, 6)), round(float(a.occupancy), 6))
                  for a in s)
    sg = phase.space_group.number if phase.space_group is not None else None
    return (phase.name, sg, phase.point_group.name, tuple(np.round(s.lattice.abcABG(), 6)),
            atoms)


# ---------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class TemplateLibrary:
    """Simulated diffraction templates of one or more phases over orientation grids.

    Attributes
    ----------
    phases : tuple of orix.crystal_map.Phase
    rotations : tuple of orix.quaternion.Rotation
        Per phase, ``(n_p,)`` the grid (``get_sample_reduced_fundamental``: first Euler
        angle 0, the in-plane angle is found by the matching).
    simulation : diffsims.simulations.Simulation2D
        The templates, phase after phase, as pyxem's ``get_orientation`` takes them.
    resolution : float
        Grid resolution, degrees.
    beam_energy : float
        kV.
    reciprocal_radius : float
        Largest simulated reciprocal length, Å⁻¹.
    max_excitation_error : float
        Å⁻¹.

    Examples
    --------
    >>> from stemnmf_hs.orientation import template_library
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> lib = template_library(kinematic_phases()["Cu"], resolution=10)
    >>> lib.sizes, lib.n_templates, lib.names
    ((21,), 21, ('Cu',))
    """

    phases: tuple
    rotations: tuple
    simulation: object
    resolution: float
    beam_energy: float
    reciprocal_radius: float
    max_excitation_error: float

    @property
    def names(self):
        """Phase names, in library order.

        Examples
        --------
        >>> from stemnmf_hs.orientation import template_library
        >>> from stemnmf_hs.data._cases import kinematic_phases
        >>> template_library(list(kinematic_phases().values()), resolution=10).names
        ('Cu', 'Fe')
        """
        return tuple(p.name for p in self.phases)

    @property
    def sizes(self):
        """Number of templates of every phase.

        Examples
        --------
        >>> from stemnmf_hs.orientation import template_library
        >>> from stemnmf_hs.data._cases import kinematic_phases
        >>> template_library(list(kinematic_phases().values()), resolution=10).sizes
        (21, 21)
        """
        return tuple(int(r.size) for r in self.rotations)

    @property
    def n_templates(self):
        """Total number of templates.

        Examples
        --------
        >>> from stemnmf_hs.orientation import template_library
        >>> from stemnmf_hs.data._cases import kinematic_phases
        >>> template_library(kinematic_phases()["Fe"], resolution=10).n_templates
        21
        """
        return int(sum(self.sizes))

    @property
    def quaternions(self):
        """``(n_templates, 4)`` quaternions of every template, phase after phase.

        Examples
        --------
        >>> from stemnmf_hs.orientation import template_library
        >>> from stemnmf_hs.data._cases import kinematic_phases
        >>> template_library(kinematic_phases()["Fe"], resolution=10).quaternions.shape
        (21, 4)
        """
        return np.concatenate([np.asarray(r.data).reshape(-1, 4) for r in self.rotations])


def template_library(phases, resolution=1.0, beam_energy=200.0, reciprocal_radius=1.5,
                     max_excitation_error=0.02):
    """Templates of every phase over its reduced fundamental orientation grid (cached).

    diffsims ``SimulationGenerator(beam_energy).calculate_diffraction2d`` (kinematic, no
    direct beam) over orix ``get_sample_reduced_fundamental(resolution, point_group)``: the
    beam directions of the fundamental sector, the in-plane angle left to the matching.  The
    templates of the last few phases are kept in memory, keyed by each phase's contents and
    the parameters, so a library of several phases reuses those simulated before.

    Parameters
    ----------
    phases : Phase, path or sequence
        See :func:`as_phases`.
    resolution : float, default 1.0
        Grid resolution, degrees (a cubic phase has about 1081 templates at 1°, 300 at 2°).
    beam_energy : float, default 200.0
        kV.
    reciprocal_radius : float, default 1.5
        Largest reciprocal length simulated, Å⁻¹ (the pattern's reach).
    max_excitation_error : float, default 0.02
        Å⁻¹, about 1 / thickness.

    Returns
    -------
    TemplateLibrary

    Raises
    ------
    ValueError
        On a non-positive resolution, energy, radius or excitation error, or as
        :func:`as_phases`.

    Examples
    --------
    >>> from stemnmf_hs.orientation import template_library
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> lib = template_library(kinematic_phases()["Cu"], resolution=10)
    >>> lib.simulation is template_library(kinematic_phases()["Cu"], resolution=10).simulation
    True
    >>> template_library(kinematic_phases()["Cu"], resolution=0)
    Traceback (most recent call last):
        ...
    ValueError: resolution must be a positive number (degrees); got 0.
    """
    for name, value, unit in (("resolution", resolution, "degrees"),
                              ("beam_energy", beam_energy, "kV"),
                              ("reciprocal_radius", reciprocal_radius, "Å⁻¹"),
                              ("max_excitation_error", max_excitation_error, "Å⁻¹")):
        if not (np.isscalar(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number ({unit}); got {value!r}.")
    phases = as_phases(phases)
    params = (float(resolution), float(beam_energy), round(float(reciprocal_radius), 6),
              float(max_excitation_error))
    sims = [_phase_simulation(p, *params) for p in phases]
    rotations = tuple(sim.rotations for sim in sims)
    if len(sims) == 1:
        sim = sims[0]
    else:
        from diffsims.simulations import Simulation2D

        sim = Simulation2D(phases=list(phases), coordinates=[list(s.coordinates) for s in sims],
                           rotations=list(rotations),
                           simulation_generator=sims[0].simulation_generator,
                           reciprocal_radius=float(reciprocal_radius))
    return TemplateLibrary(tuple(phases), rotations, sim, *params)


def _phase_simulation(phase, resolution, beam_energy, reciprocal_radius, max_excitation_error):
    """diffsims templates of one phase over its reduced fundamental grid, cached."""
    key = (_phase_key(phase), resolution, beam_energy, reciprocal_radius, max_excitation_error)
    if key in _LIBRARIES:
        _LIBRARIES.move_to_end(key)
        return _LIBRARIES[key]
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.sampling import get_sample_reduced_fundamental

    rotations = get_sample_reduced_fundamental(resolution=resolution,
                                               point_group=phase.point_group)
    gen = SimulationGenerator(accelerating_voltage=beam_energy)
    radius = float(reciprocal_radius)
    for _ in range(4):
        try:
            sim = gen.calculate_diffraction2d(phase, rotation=rotations,
                                              reciprocal_radius=radius,
                                              with_direct_beam=False,
                                              max_excitation_error=max_excitation_error)
            break
        except ValueError as err:  # diffsims: an orientation without any reflection
            if "zero-size array" not in str(err):
                raise
            radius *= 1.5  # spots beyond the matched range do not score
    else:
        raise ValueError(
            f"diffsims finds no reflection of {phase.name} within {radius:.2f} Å⁻¹ for some "
            f"orientations at max_excitation_error={max_excitation_error}: raise "
            "max_excitation_error or give larger patterns (radial_range).")
    _LIBRARIES[key] = sim
    while len(_LIBRARIES) > _CACHE_SIZE:
        _LIBRARIES.popitem(last=False)
    return sim


def clear_template_cache():
    """Forget the cached template simulations of :func:`template_library`.

    Returns
    -------
    int
        Number of per-phase simulations dropped.

    Examples
    --------
    >>> from stemnmf_hs.orientation import clear_template_cache
    >>> clear_template_cache() >= 0
    True
    """
    n = len(_LIBRARIES)
    _LIBRARIES.clear()
    return n


def phase_of_template(index, sizes):
    """Phase of templates from their index in a library of phases of ``sizes`` templates.

    The first template of phase ``p`` has index ``sum(sizes[:p])``; ``np.searchsorted`` with
    ``side="right"`` on the cumulated sizes gives ``p`` (pyxem 0.21's
    ``OrientationMap.to_phase_index`` uses the default ``side="left"`` and labels that
    template with phase ``p - 1``).

    Parameters
    ----------
    index : int or array_like of int
        Template indices, ``0 <= index < sum(sizes)``.
    sizes : sequence of int
        Templates per phase.

    Returns
    -------
    numpy.ndarray
        Phase indices, the shape of ``index``.

    Raises
    ------
    ValueError
        On an index outside the library.

    Examples
    --------
    >>> from stemnmf_hs.orientation import phase_of_template
    >>> phase_of_template([0, 299, 300, 301], (300, 250)).tolist()
    [0, 0, 1, 1]
    """
    idx = np.asarray(index).astype(int)
    bounds = np.cumsum(sizes)
    if idx.size and (idx.min() < 0 or idx.max() >= bounds[-1]):
        raise ValueError(f"template index outside the library of {int(bounds[-1])} templates.")
    return np.searchsorted(bounds, idx, side="right")


# ---------------------------------------------------------------------------- patterns
def prepare_polar(polar):
    """Polar patterns for scoring: ring means removed, clipped at zero, scaled by the whole.

    The azimuthal mean of every ring (amorphous rings, diffuse background) is subtracted and
    negatives clipped; the result is divided by the norm of the pattern *before* the
    subtraction.  pyxem's correlation with a unit-norm template is then a score in ``[0,
    1]``: the share of the whole pattern the template's spots explain.  An amorphous pattern
    (nothing but rings and speckle) scores near 0 even where its residual speckle lines up
    with a template; a clean spot pattern scores its spots' overlap with the template.

    Parameters
    ----------
    polar : array_like
        ``(..., n_radial, n_azimuthal)`` polar patterns (pyxem's ``PolarDiffraction2D``
        data: radius along rows, azimuth along columns); NaN and negatives count as 0.

    Returns
    -------
    numpy.ndarray
        float64, same shape; an all-zero pattern stays zero.

    Examples
    --------
    >>> from stemnmf_hs.orientation import prepare_polar
    >>> ring = np.ones((1, 3, 8)); spots = np.zeros((1, 3, 8)); spots[0, 1, 2] = 5.0
    >>> float(prepare_polar(ring).max()), round(float(np.linalg.norm(prepare_polar(spots))), 3)
    (0.0, 0.875)
    """
    p = np.clip(np.nan_to_num(np.asarray(polar, dtype=np.float64)), 0.0, None)
    norm = np.sqrt((p**2).sum(axis=(-2, -1), keepdims=True))
    q = np.clip(p - p.mean(axis=-1, keepdims=True), 0.0, None)
    return np.divide(q, norm, out=np.zeros_like(q), where=norm > 0)


def disorientation(a, b):
    """Smallest rotation angle between orientations of one phase, symmetry applied, degrees.

    Parameters
    ----------
    a, b : orix.quaternion.Orientation
        Same shape (or one of size 1); the symmetry of ``a`` is used for both.

    Returns
    -------
    numpy.ndarray
        Degrees.

    Examples
    --------
    >>> from orix.quaternion import Orientation
    >>> from orix.quaternion.symmetry import Oh
    >>> a = Orientation.from_euler(np.deg2rad([[20, 0, 0]]), symmetry=Oh)
    >>> b = Orientation.from_euler(np.deg2rad([[-60, 0, 0]]), symmetry=Oh)
    >>> disorientation(a, b).round(6).tolist()
    [10.0]
    """
    from orix.quaternion import Orientation

    b = Orientation(b.data, symmetry=a.symmetry)
    return np.rad2deg(a.angle_with(b))


# ---------------------------------------------------------------------------- maps
def orientation_map_arrays(maps, indexed, intensity=None, threshold=0.3, overlap=0.4):
    """Which indexed component is at every probe position, and which second one overlaps.

    A component is *present* at a position where its weight reaches ``threshold`` times its
    own maximum (the amorphous matrix may carry most of the intensity inside a grain; a
    crystal counts where its own map is high).  Of the present indexed components, the one of
    highest intensity (weight times the component's total, data units) is the first; the
    next is the second where its intensity reaches ``overlap`` times the first's.

    Parameters
    ----------
    maps : array_like
        ``(k, ny, nx)`` non-negative weights (loadings).
    indexed : array_like of bool
        ``(k,)`` components that matched a phase.
    intensity : array_like, optional
        ``(k,)`` total of every component diffraction (factor sum); weights times it are the
        intensity each component puts at a position.  Default ones.
    threshold : float, default 0.3
        Presence level relative to each component's maximum weight, in ``[0, 1]``.
    overlap : float, default 0.4
        Second-to-first intensity ratio from which the second is reported, in ``[0, 1]``.

    Returns
    -------
    dict
        ``"first"``, ``"second"``: ``(ny, nx)`` int component (-1 none); ``"fraction"``,
        ``"fraction_2"``: ``(ny, nx)`` their share of the intensity of all components (0
        where none); ``"ratio"``: second-to-first intensity (0 where no second);
        ``"relative"``: ``(k, ny, nx)`` weights over each component's maximum.

    Raises
    ------
    ValueError
        On shapes that disagree or a threshold or overlap outside ``[0, 1]``.

    Examples
    --------
    >>> from stemnmf_hs.orientation import orientation_map_arrays
    >>> maps = np.array([[[1.0, 1.0, 1.0]], [[1.0, 0.8, 0.0]], [[0.0, 0.6, 1.0]]])
    >>> out = orientation_map_arrays(maps, [False, True, True])
    >>> out["first"].tolist(), out["second"].tolist()
    ([[1, 1, 2]], [[-1, 2, -1]])
    >>> out["fraction"].round(2).tolist()
    [[0.5, 0.33, 0.5]]
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    indexed = np.asarray(indexed, dtype=bool)
    if maps.ndim != 3 or indexed.shape != (maps.shape[0],):
        raise ValueError(f"maps must be (k, ny, nx) and indexed (k,); got {maps.shape} and "
                         f"{indexed.shape}.")
    for name, value in (("threshold", threshold), ("overlap", overlap)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1]; got {value!r}.")
    k = maps.shape[0]
    scale = np.ones(k) if intensity is None else np.abs(np.asarray(intensity, float))
    peak = maps.reshape(k, -1).max(axis=1)
    relative = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    inten = np.clip(maps, 0, None) * scale[:, None, None]
    total = inten.sum(axis=0)
    present = indexed[:, None, None] & (peak > 0)[:, None, None] & (relative >= threshold)
    candidate = np.where(present, inten, -1.0)
    order = np.argsort(-candidate, axis=0, kind="stable")
    best = np.take_along_axis(candidate, order, axis=0)
    first = np.where(best[0] >= 0, order[0], -1)
    second = np.full_like(first, -1)
    ratio = np.zeros(first.shape)
    if k > 1:
        has2 = (best[1] >= 0) & (first >= 0)
        ratio = np.where(has2, best[1] / np.where(best[0] > 0, best[0], 1.0), 0.0)
        keep = has2 & (ratio >= overlap)
        second = np.where(keep, order[1], -1)
        ratio = np.where(keep, ratio, 0.0)
    safe = np.where(total > 0, total, 1.0)
    frac = np.where(first >= 0, np.clip(best[0], 0, None) / safe, 0.0)
    frac2 = np.where(second >= 0, np.clip(best[1] if k > 1 else 0.0, 0, None) / safe, 0.0)
    return {"first": first, "second": second, "fraction": frac, "fraction_2": frac2,
            "ratio": ratio, "relative": relative}


def crystal_map(first, second, rotations, component_phase, phases, step=(1.0, 1.0),
                origin=(0.0, 0.0), scan_unit="nm", prop=None):
    """An orix ``CrystalMap`` with two rotations per point from component assignments.

    Parameters
    ----------
    first, second : array_like of int
        ``(ny, nx)`` component at every position (-1 none), see
        :func:`orientation_map_arrays`.
    rotations : orix.quaternion.Rotation
        ``(k,)`` orientation of every component.
    component_phase : array_like of int
        ``(k,)`` phase index (into ``phases``) of every component, -1 not indexed.
    phases : sequence of orix.crystal_map.Phase
    step : (float, float), default (1.0, 1.0)
        ``(dy, dx)`` scan steps in ``scan_unit``.
    origin : (float, float), default (0.0, 0.0)
        ``(y0, x0)`` of the first position.
    scan_unit : str, default "nm"
    prop : dict, optional
        Extra ``(ny, nx)`` properties.

    Returns
    -------
    orix.crystal_map.CrystalMap
        ``ny * nx`` points, ``rotations_per_point == 2``: ``xmap.rotations[:, 0]`` the first
        component's orientation, ``[:, 1]`` the second's where it overlaps (else the first's
        again); ``phase_id`` the first's phase (-1 "not_indexed"); properties
        ``"component"``, ``"component_2"``, ``"phase_id_2"`` (-1 none), ``"overlap"`` (1
        where a second is reported) and those of ``prop``.

    Examples
    --------
    >>> from orix.quaternion import Rotation
    >>> from stemnmf_hs.orientation import crystal_map
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> rot = Rotation.from_euler(np.deg2rad([[0, 0, 0], [20, 0, 0], [50, 0, 0]]))
    >>> xmap = crystal_map([[1, 2, -1]], [[-1, 1, -1]], rot, [-1, 0, 0],
    ...                    [kinematic_phases()["Cu"]], step=(2.0, 2.0))
    >>> xmap.shape, xmap.rotations_per_point, xmap.phase_id.tolist()
    ((3,), 2, [0, 0, -1])
    >>> xmap.prop["overlap"].tolist(), xmap.x.tolist()
    ([0, 1, 0], [0.0, 2.0, 4.0])
    """
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    first = np.asarray(first, dtype=int)
    second = np.asarray(second, dtype=int)
    comp_phase = np.asarray(component_phase, dtype=int)
    ny, nx = first.shape
    q = np.asarray(rotations.data, dtype=np.float64).reshape(-1, 4)
    identity = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = np.where((first >= 0)[..., None], q[np.clip(first, 0, None)], identity)
    q2 = np.where((second >= 0)[..., None], q[np.clip(second, 0, None)], q1)
    phase_id = np.where(first >= 0, comp_phase[np.clip(first, 0, None)], -1)
    phase_id_2 = np.where(second >= 0, comp_phase[np.clip(second, 0, None)], -1)
    yy, xx = np.mgrid[0:ny, 0:nx]
    props = {"component": first.ravel(), "component_2": second.ravel(),
             "phase_id_2": phase_id_2.ravel(), "overlap": (second >= 0).astype(int).ravel()}
    for key, value in (prop or {}).items():
        props[key] = np.asarray(value).ravel()
    return CrystalMap(
        rotations=Rotation(np.stack([q1, q2], axis=-2).reshape(-1, 2, 4)),
        phase_id=phase_id.ravel(),
        x=(origin[1] + xx * step[1]).ravel().astype(float),
        y=(origin[0] + yy * step[0]).ravel().astype(float),
        phase_list=PhaseList(phases=list(phases), ids=list(range(len(phases)))),
        prop=props,
        scan_unit=scan_unit,
    )


def ipf_colors(rotations, phase_id, phases, direction="z"):
    """IPF colours (orix ``IPFColorKeyTSL``) of orientations of several phases.

    Parameters
    ----------
    rotations : orix.quaternion.Rotation
        ``(n,)``.
    phase_id : array_like of int
        ``(n,)`` index into ``phases``; -1 (not indexed) is black.
    phases : sequence of orix.crystal_map.Phase
    direction : {"x", "y", "z"} or orix.vector.Vector3d, default "z"
        Sample direction whose crystal direction is coloured (z: the beam).

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` RGB in ``[0, 1]``.

    Examples
    --------
    >>> from orix.quaternion import Rotation
    >>> from stemnmf_hs.orientation import ipf_colors
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> rot = Rotation.from_euler(np.deg2rad([[0, 0, 0], [0, 45, 0]]))
    >>> ipf_colors(rot, [0, -1], [kinematic_phases()["Cu"]]).round(2).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    from orix.plot import IPFColorKeyTSL
    from orix.quaternion import Orientation
    from orix.vector import Vector3d

    vec = direction if isinstance(direction, Vector3d) else {
        "x": Vector3d.xvector(), "y": Vector3d.yvector(), "z": Vector3d.zvector()}[direction]
    pid = np.asarray(phase_id, dtype=int).ravel()
    q = np.asarray(rotations.data, dtype=np.float64).reshape(-1, 4)
    rgb = np.zeros((pid.size, 3))
    for i, phase in enumerate(phases):
        sel = pid == i
        if sel.any():
            key = IPFColorKeyTSL(phase.point_group, direction=vec)
            rgb[sel] = key.orientation2color(Orientation(q[sel], symmetry=phase.point_group))
    return np.clip(rgb, 0.0, 1.0)
