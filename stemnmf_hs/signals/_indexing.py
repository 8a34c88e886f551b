"""Orientation and phase maps from the components: ``index_components`` and its result.

:class:`IndexingMixin` adds :meth:`~IndexingMixin.index_components` to the ``nmf_diffraction``
signals: the k component diffractions (or the rotation-corrected cluster averages of a
:class:`~stemnmf_hs.signals.ClusterResult`) are matched with pyxem's polar template matching
(``Diffraction2D.get_azimuthal_integral2d`` then ``PolarDiffraction2D.get_orientation``)
against diffsims simulations of orix phases (:func:`stemnmf_hs.orientation.template_library`),
and the NMF maps carry the answer to every probe position (:class:`IndexingResult`).  Indexing
k denoised diffractions costs the time of k patterns instead of one match per probe position,
and where two grains overlap along the beam both orientations are reported.

Built around three pyxem 0.21 behaviours (see ``shared/realdata/README.md``):

* ``s.calibration.center = None`` puts the centre at ``(n - 1) / 2`` px, half a pixel from a
  beam at ``n / 2``: the patterns here are matched about the calibrated centre (or the
  ``center`` given), and an uncalibrated centre is an error, not a default;
* ``OrientationMap.to_crystal_map()`` of a two-phase ``get_orientation(..., n_best=1)`` raises
  ``ValueError``: the crystal map here is built with orix from the matches directly;
* ``OrientationMap.to_phase_index`` labels the first template of the second phase with the
  first phase: the phase is read from the template index
  (:func:`stemnmf_hs.orientation.phase_of_template`).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import orientation as _ori
from .. import plotting
from .._validation import check_center
from ._adapter import default_progressbar, plot_axes
from ._checks import calibration_center
from ._indexing_result import IndexingResult
from ._results import source_arrays

__all__ = [
    "DEFAULT_MIN_CORRELATION",
    "IndexingMixin",
    "match_diffractions",
    "pattern_center",
    "polar_signal",
    "reciprocal_pixel_size",
]

#: Score (pyxem's correlation of the prepared polar pattern, :func:`stemnmf_hs.orientation.
#: prepare_polar`, with a unit-norm template) below which a component is "not indexed".
#: Measured on constrained-NMF components: amorphous matrix 0.007-0.008, crystals
#: 0.10-0.12 (``data.simulated_crystal_scan``, kinematic) and 0.12-0.17 (the abTEM
#: multislice particles; its glass 0.007).
DEFAULT_MIN_CORRELATION = 0.04
#: Candidates kept per diffraction (sorted by score) to find the runner-up.
DEFAULT_N_BEST = 50
#: Azimuthal samples of the polar transform (the in-plane angle step is 360 / this, degrees).
N_AZIMUTHAL = 360
#: Radial bin of the polar transform, pixels (a template spot samples its nearest bin).
RADIAL_STEP_PX = 0.25
#: Default inner radius of the matched range, pixels (leaves out the direct beam).
INNER_RADIUS_PX = 3.0


class IndexingMixin:
    """Adds :meth:`index_components` to the ``nmf_diffraction`` signals.

    Examples
    --------
    >>> from stemnmf_hs.signals import NMFDiffraction2D
    >>> from stemnmf_hs.signals._indexing import IndexingMixin
    >>> issubclass(NMFDiffraction2D, IndexingMixin)
    True
    """

    def index_components(self, phases, source=None, resolution=1.0, beam_energy=None,
                         min_correlation=DEFAULT_MIN_CORRELATION, n_best=DEFAULT_N_BEST,
                         center=None, radial_range=None, max_excitation_error=0.02,
                         library=None, show_progressbar=None):
        """Index the component diffractions: phase and orientation of every component.

        Each diffraction (the decomposition's factors, or the rotation-corrected cluster
        averages of ``source``) is turned into a polar pattern about the pattern centre
        with pyxem (``get_azimuthal_integral2d``: 1 px radial bins from
        ``radial_range[0]`` to ``radial_range[1]``, 1° azimuthal bins), the mean of every
        ring is removed (amorphous rings, diffuse background), negatives clipped and the
        pattern scaled to unit norm (:func:`stemnmf_hs.orientation.prepare_polar`); pyxem's
        ``get_orientation`` (all templates fully correlated, direct and mirrored) then
        scores it against diffsims templates of every phase over orix's reduced fundamental
        grid (:func:`stemnmf_hs.orientation.template_library`, cached between calls).  The
        score of a template is pyxem's correlation, in ``[0, 1]`` after the scaling.  A
        component whose best score is below ``min_correlation`` is "not indexed" (the
        amorphous matrix), not forced to an orientation.

        Parameters
        ----------
        phases : orix.crystal_map.Phase, str, os.PathLike or sequence of them
            Candidate phases, or CIF files (``Phase.from_cif``; the name is the file stem).
            Each needs a space group and atoms.
        source : ClusterResult, optional
            Index the cluster averages of ``s.cluster_components()`` (and map with the
            summed cluster maps) instead of the components.  A cluster merging in-plane
            rotated copies of one crystal gets the orientation of its averaged diffraction
            (aligned on its strongest member) everywhere: index the components to tell such
            grains apart.
        resolution : float, default 1.0
            Orientation-grid resolution, degrees (about 1081 templates per cubic phase at
            1°, 300 at 2°); the in-plane angle is sampled every 1°.
        beam_energy : float, optional
            kV; default ``metadata.Acquisition_instrument.TEM.beam_energy``.
        min_correlation : float, default :data:`DEFAULT_MIN_CORRELATION`
            Score below which a component is not indexed.
        n_best : int, default :data:`DEFAULT_N_BEST`
            Candidates kept per diffraction; the runner-up is the best of them of another
            phase or more than :data:`DISTINCT_ANGLE` degrees from the best.
        center : tuple of float, optional
            ``(cx, cy)`` pattern centre, pixels; default ``s.calibration.center``.
        radial_range : (float, float), optional
            Matched reciprocal range, Å⁻¹; default from 3 px to 1 px inside the nearest
            pattern edge.
        max_excitation_error : float, default 0.02
            Of the templates, Å⁻¹ (about 1 / thickness).
        library : TemplateLibrary, optional
            Templates to use (:func:`stemnmf_hs.orientation.template_library`) instead of
            simulating ``phases`` (then ``phases`` may be ``None``).
        show_progressbar : bool, optional
            pyxem's progress bars; default HyperSpy's preference.

        Returns
        -------
        IndexingResult
            Per component: ``labels`` (phase name or "not indexed"), ``orientations``,
            ``scores``, ``margins`` (best minus runner-up score), ``templates`` (spots of
            the best template for display); ``plot()``, ``get_orientation_map()`` (orix
            ``CrystalMap``), ``get_phase_map()``, ``get_ipf_map()``,
            ``plot_orientation_map()``.

        Raises
        ------
        ValueError
            Before any simulation: no decomposition yet; signal axes that are not a
            reciprocal calibration (units Å⁻¹ or nm⁻¹); an uncalibrated centre; no beam
            energy; a CIF that does not load; a phase without atoms or space group; a
            radial range outside the pattern.
        TypeError
            On a phase that is neither an orix ``Phase`` nor a path, or a ``source`` that is
            not a ``ClusterResult``.
        FileNotFoundError
            On a CIF path that does not exist.

        See Also
        --------
        pyxem.signals.PolarDiffraction2D.get_orientation : the matching used.
        stemnmf_hs.orientation : templates, maps and crystal maps.

        Examples
        --------
        >>> from stemnmf_hs.data import simulated_crystal_scan
        >>> s, truth = simulated_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
        >>> s.index_components(truth.phases["Cu"])
        Traceback (most recent call last):
            ...
        ValueError: This signal has no decomposition yet: run s.decomposition(algorithm='constrained_nmf', output_dimension=k) first.
        >>> s.decomposition(algorithm="constrained_nmf", output_dimension=5, n_restarts=1,
        ...                 max_iter=30, random_state=0, print_info=False)
        >>> res = s.index_components(truth.phases["Cu"], resolution=10,
        ...                          show_progressbar=False)
        >>> res.labels
        ('not indexed', 'Cu', 'Cu', 'Cu', 'Cu')
        >>> s.index_components(42)
        Traceback (most recent call last):
            ...
        TypeError: phases must be orix Phase objects or CIF file paths; item 0 is a int (42).
        """
        factors, maps, mask = source_arrays(self, source)
        if library is None:
            phases = _ori.as_phases(phases)
        elif not isinstance(library, _ori.TemplateLibrary):
            raise TypeError("library must be a TemplateLibrary from "
                            f"stemnmf_hs.orientation.template_library; got {type(library)}.")
        if not (np.isfinite(min_correlation) and 0 <= min_correlation <= 1):
            raise ValueError(f"min_correlation must be in [0, 1]; got {min_correlation!r}.")
        if int(n_best) < 2:
            raise ValueError(f"n_best must be at least 2 (best and runner-up); got {n_best!r}.")
        pixel_size = reciprocal_pixel_size(self)
        cx, cy = pattern_center(self, center)
        r_range = _radial_range(radial_range, (cx, cy), factors.shape[1:], pixel_size)
        if library is None:
            energy = _beam_energy(self, beam_energy)
            library = _ori.template_library(phases, resolution, energy, r_range[1],
                                            max_excitation_error)
        if show_progressbar is None:
            show_progressbar = default_progressbar()
        raw, q = match_diffractions(factors, pixel_size, (cx, cy), r_range, library,
                                    int(n_best), show_progressbar, signal_mask=mask)
        signal_axes = self.axes_manager.signal_axes
        nav_axes = self.axes_manager.navigation_axes
        return IndexingResult(
            library=library, candidates=raw, quaternions=q,
            diffractions=np.asarray(factors, dtype=np.float64),
            maps=np.nan_to_num(np.asarray(maps, dtype=np.float64)),
            min_correlation=float(min_correlation), center=(cx, cy), pixel_size=pixel_size,
            diffraction_axes=plot_axes(signal_axes), scan_axes=plot_axes(nav_axes),
            scan_axes_raw=tuple(plotting.Axis(str(ax.name), float(ax.scale),
                                              float(ax.offset), str(ax.units))
                                for ax in nav_axes),
            source="clusters" if source is not None else "components",
        )


# ---------------------------------------------------------------------------- geometry
def reciprocal_pixel_size(signal):
    """Å⁻¹ per pixel of the signal axes (nm⁻¹ converted), checked.

    Raises
    ------
    ValueError
        If the two signal axes are not in reciprocal length units or differ in scale.

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_crystal_scan
    >>> from stemnmf_hs.signals._indexing import reciprocal_pixel_size
    >>> s, _ = simulated_crystal_scan(scan_shape=(4, 4), pattern_shape=(32, 32))
    >>> reciprocal_pixel_size(s)
    0.05
    >>> s.axes_manager.signal_axes[0].units = "px"
    >>> reciprocal_pixel_size(s)
    Traceback (most recent call last):
        ...
    ValueError: index_components needs the reciprocal calibration of the patterns, but the signal axes are in ['px', '1/Å'] with scales [0.05, 0.05]. Set it with pyxem: s.calibration.scale = <Å⁻¹ per pixel>; s.calibration.units = "1/Å" (or the scale and units of s.axes_manager.signal_axes).
    """
    axes = signal.axes_manager.signal_axes
    units = [_reciprocal_units(ax.units) for ax in axes]
    scales = [float(ax.scale) for ax in axes]
    if any(u is None for u in units) or not all(s > 0 for s in scales):
        raise ValueError(
            "index_components needs the reciprocal calibration of the patterns, but the "
            f"signal axes are in {[plotting.defined(ax.units) or 'px' for ax in axes]} with "
            f"scales {scales}. Set it with pyxem: s.calibration.scale = <Å⁻¹ per pixel>; "
            's.calibration.units = "1/Å" (or the scale and units of '
            "s.axes_manager.signal_axes)."
        )
    sizes = [s * (0.1 if u == "nm⁻¹" else 1.0) for s, u in zip(scales, units)]
    if not np.isclose(sizes[0], sizes[1], rtol=1e-3):
        raise ValueError(f"the two signal axes have different scales {sizes} Å⁻¹ per pixel; "
                         "template matching needs square pixels.")
    return float(sizes[0])


def _reciprocal_units(units):
    """``"Å⁻¹"``, ``"nm⁻¹"`` or None for units pyxem or HyperSpy may write."""
    text = plotting.defined(units).replace("$", "").replace("\\AA", "Å").replace(" ", "")
    shown = plotting.display_units(text)
    return shown if shown in ("Å⁻¹", "nm⁻¹") else None


def pattern_center(signal, center=None):
    """``(cx, cy)`` pattern centre in pixels: ``center`` if given, else the calibration's.

    Unlike the decomposition (which falls back to the geometric centre with a warning), an
    uncalibrated centre is an error here: half a pixel costs template matching degrees.

    Raises
    ------
    ValueError
        If ``center`` is not two finite numbers inside the pattern, or if no centre is given
        and the signal axes have zero offsets (pyxem would put it at pixel (0, 0)).

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_crystal_scan
    >>> from stemnmf_hs.signals._indexing import pattern_center
    >>> s, _ = simulated_crystal_scan(scan_shape=(4, 4), pattern_shape=(32, 32))
    >>> pattern_center(s), pattern_center(s, (15.5, 16))
    ((16.0, 16.0), (15.5, 16.0))
    """
    if center is not None:
        return check_center(center, signal.axes_manager.signal_shape[::-1])
    found, why = calibration_center(signal)
    if found is None:
        raise ValueError(
            f"The pattern centre is not calibrated ({why}). Set s.calibration.center = (cx, cy) in "
            "pixels where the direct beam is (s.find_center() finds it from the data), or "
            "pass center=(cx, cy). Avoid s.calibration.center = None: pyxem 0.21 then puts it "
            "at ((nx - 1) / 2, (ny - 1) / 2), half a pixel from a beam at nx / 2."
        )
    return found


def _beam_energy(signal, beam_energy):
    value = beam_energy
    if value is None:
        value = signal.metadata.get_item("Acquisition_instrument.TEM.beam_energy", None)
    if value is None:
        raise ValueError(
            "No beam energy: pass beam_energy=<kV> or set it with "
            's.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200).'
        )
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"beam_energy must be a positive number of kV; got {value!r}.")
    return value


def _radial_range(radial_range, center, shape, pixel_size):
    """``(r0, r1)`` Å⁻¹ of the matched annulus, checked inside the pattern."""
    ny, nx = shape
    cx, cy = center
    inscribed = min(cx, cy, nx - 1 - cx, ny - 1 - cy) - 1.0
    if radial_range is None:
        radial_range = (INNER_RADIUS_PX * pixel_size, inscribed * pixel_size)
    r0, r1 = (float(r) for r in radial_range)
    if not (0 <= r0 < r1 <= inscribed * pixel_size + 1e-9) or r1 - r0 < 2 * pixel_size:
        raise ValueError(
            f"radial_range ({r0:g}, {r1:g}) Å⁻¹ must lie inside the pattern: between 0 and "
            f"{inscribed * pixel_size:g} Å⁻¹ (the nearest edge from the centre), at least two "
            "pixels wide."
        )
    return r0, r1


# ---------------------------------------------------------------------------- matching
def polar_signal(patterns, pixel_size, center, radial_range, radial_step=None,
                 signal_mask=None):
    """Polar patterns as a pyxem ``PolarDiffraction2D`` on the axes its matching expects.

    The r-phi transform of :func:`stemnmf_hs.polar.polar_transform` (bilinear samples; fast,
    unlike pyxem 0.21's ``get_azimuthal_integral2d``, whose exact pixel splitting with
    shapely takes seconds per call at these sampling steps) is laid out as pyxem lays out
    its own: azimuth along the signal's x axis from -π in steps of 2π / 360, counter-
    clockwise on screen from +kx (a spot above the centre, towards row 0, at +π/2); radius
    along y, in Å⁻¹.  Each sample sits at its axis value, so the templates pyxem places at
    the nearest axis value land on their spots.

    Parameters
    ----------
    patterns : numpy.ndarray
        ``(n, qy, qx)``; NaN counts as 0.
    pixel_size : float
        Å⁻¹ per pixel.
    center : (float, float)
        ``(cx, cy)`` pixels.
    radial_range : (float, float)
        Å⁻¹, inside the pattern.
    radial_step : float, optional
        Radial sampling step, pixels; default :data:`RADIAL_STEP_PX`.
    signal_mask : numpy.ndarray of bool, optional
        ``(qy, qx)``, ``True`` at excluded pixels (samples touching them read 0).

    Returns
    -------
    pyxem.signals.PolarDiffraction2D
        ``(n | 360, n_radial)``.

    Examples
    --------
    >>> from stemnmf_hs.signals._indexing import polar_signal
    >>> img = np.zeros((1, 33, 33)); img[0, 6, 16] = 1.0   # 10 px above the centre
    >>> p = polar_signal(img, 0.1, (16.0, 16.0), (0.5, 1.5))
    >>> p.axes_manager.signal_shape
    (360, 41)
    >>> ir, ia = np.unravel_index(np.argmax(p.data[0]), p.data.shape[1:])
    >>> round(float(p.axes_manager.signal_axes[1].axis[ir]), 3)
    1.0
    >>> round(float(np.rad2deg(p.axes_manager.signal_axes[0].axis[ia])), 3)
    90.0
    """
    from pyxem.signals import PolarDiffraction2D

    from .. import polar as _polar

    step = RADIAL_STEP_PX if radial_step is None else float(radial_step)
    r0, r1 = (float(r) / pixel_size for r in radial_range)
    n_radial = int(np.floor(r1 / step + 1e-9)) + 1
    radii = np.arange(n_radial) * step
    stack = np.nan_to_num(np.asarray(patterns, dtype=np.float64))
    polar = _polar.polar_transform(stack, center=center, n_radial=n_radial,
                                   n_azimuthal=N_AZIMUTHAL, r_max=radii[-1],
                                   signal_mask=signal_mask)
    keep = radii >= r0 - 1e-9
    # phi from 0 (ours) -> from -pi (pyxem's axis): shift by half a turn
    data = np.roll(polar[:, keep], N_AZIMUTHAL // 2, axis=-1)
    out = PolarDiffraction2D(np.ascontiguousarray(data))
    az, rad = out.axes_manager.signal_axes
    az.name, az.units, az.scale, az.offset = "Radians", "Rad", 2 * np.pi / N_AZIMUTHAL, -np.pi
    rad.name, rad.units = "Radius", "Å⁻¹"
    rad.scale, rad.offset = step * pixel_size, float(radii[keep][0]) * pixel_size
    return out


def match_diffractions(patterns, pixel_size, center, radial_range, library, n_best,
                       show_progressbar=False, radial_step=None, signal_mask=None):
    """pyxem polar template matching of a stack of diffractions against a library.

    :func:`polar_signal`, then :func:`stemnmf_hs.orientation.prepare_polar`, then pyxem's
    ``PolarDiffraction2D.get_orientation`` with every template fully correlated
    (``frac_keep=1``), direct and mirrored.

    Parameters
    ----------
    patterns : numpy.ndarray
        ``(n, qy, qx)``, NaN counts as 0.
    pixel_size : float
        Å⁻¹ per pixel.
    center : (float, float)
        ``(cx, cy)`` pixels.
    radial_range : (float, float)
        Å⁻¹.
    library : TemplateLibrary
    n_best : int
        Candidates kept per pattern.
    show_progressbar : bool, default False
    radial_step : float, optional
        Radial sampling step, pixels; default :data:`RADIAL_STEP_PX`.
    signal_mask : numpy.ndarray of bool, optional
        ``(qy, qx)``, ``True`` at excluded pixels.

    Returns
    -------
    candidates : numpy.ndarray
        ``(n, n_best, 4)`` pyxem's rows ``(template index, score, in-plane angle in degrees,
        mirror factor)``, best first.
    quaternions : numpy.ndarray
        ``(n, n_best, 4)`` their orientations (pyxem's ``rotation_from_orientation_map``).

    Examples
    --------
    >>> from stemnmf_hs.data import simulate_crystal_scan
    >>> from stemnmf_hs.orientation import template_library
    >>> from stemnmf_hs.signals._indexing import match_diffractions
    >>> truth = simulate_crystal_scan(scan_shape=(4, 4), pattern_shape=(48, 48))
    >>> lib = template_library(truth.phases["Cu"], resolution=10, reciprocal_radius=1.1)
    >>> cand, q = match_diffractions(truth.diffractions[1:2], 0.05, truth.center,
    ...                              (0.15, 1.1), lib, 3)
    >>> cand.shape, q.shape
    ((1, 3, 4), (1, 3, 4))
    >>> from orix.quaternion import Orientation
    >>> from stemnmf_hs.orientation import disorientation
    >>> found = Orientation(q[0, :1], symmetry=truth.orientation(0).symmetry)
    >>> float(disorientation(truth.orientation(0), found)[0]) <= 1.0   # Cu [001] at 20 deg
    True
    """
    from pyxem.signals.indexation_results import rotation_from_orientation_map

    polar = polar_signal(patterns, pixel_size, center, radial_range, radial_step, signal_mask)
    polar.data = _ori.prepare_polar(polar.data)
    n_best = min(int(n_best), library.n_templates)
    import hyperspy.api as hs

    preferences = hs.preferences
    hs_log = logging.getLogger("hyperspy")
    level, bar = hs_log.level, preferences.General.show_progressbar
    hs_log.setLevel(logging.ERROR)  # pyxem's map warns that polar axes differ in scale
    # pyxem's second map (angles to degrees) takes no progress-bar argument
    preferences.General.show_progressbar = bool(show_progressbar)
    try:
        # templates without a spot in the range have zero norm: pyxem divides by it
        with np.errstate(invalid="ignore", divide="ignore"):
            res = polar.get_orientation(library.simulation, n_best=n_best, frac_keep=1.0,
                                        show_progressbar=show_progressbar)
    finally:
        hs_log.setLevel(level)
        preferences.General.show_progressbar = bar
    raw = np.asarray(res.data, dtype=np.float64).reshape(len(polar.data), n_best, 4)
    order = np.argsort(-raw[:, :, 1], axis=1, kind="stable")
    raw = np.take_along_axis(raw, order[..., None], axis=1)
    rots = library.quaternions
    quats = np.stack([rotation_from_orientation_map(r, rots) for r in raw])
    return raw, quats
