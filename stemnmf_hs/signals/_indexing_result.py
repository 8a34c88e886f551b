"""The result of ``index_components``: phases and orientations per component, and maps.

:class:`IndexingResult` holds arrays, orix objects and plain axis descriptions (no reference
to the signal); its maps come from :mod:`stemnmf_hs.orientation`, its signals from
:mod:`._adapter`, its figures from :mod:`._indexing_figures`.
"""

from __future__ import annotations

import numpy as np

from .. import orientation as _ori
from .. import plotting
from ._adapter import image_like

__all__ = ["DISTINCT_ANGLE", "IndexingResult"]

#: A candidate counts as the runner-up if of another phase or this far from the best, degrees.
DISTINCT_ANGLE = 5.0


def _runner_up(cand_phase, orientations):
    """``(index, angle)`` of the best candidate of another phase or more than
    :data:`DISTINCT_ANGLE` from the best (angle NaN for another phase), else the last."""
    angles = _ori.disorientation(orientations[:1], orientations)
    other = cand_phase != cand_phase[0]
    far = (~other) & (angles > DISTINCT_ANGLE)
    hits = np.flatnonzero((other | far)[1:]) + 1
    j = int(hits[0]) if hits.size else len(cand_phase) - 1
    return j, (np.nan if other[j] else float(angles[j]))


def _template_spots(phase, quaternion, library):
    """Spots of the template of an orientation, in display coordinates ``(kx, ky)`` Å⁻¹."""
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    gen = SimulationGenerator(accelerating_voltage=library.beam_energy)
    sim = gen.calculate_diffraction2d(
        phase, rotation=Rotation(np.asarray(quaternion)[None]),
        reciprocal_radius=library.reciprocal_radius, with_direct_beam=False,
        max_excitation_error=library.max_excitation_error)
    xy = np.asarray(sim.coordinates.data, dtype=np.float64)[:, :2]
    inten = np.asarray(sim.coordinates.intensity, dtype=np.float64)
    hkl = np.asarray(sim.coordinates.hkl, dtype=np.float64)
    # pyxem's matching frame: a template spot at (x, y) lies at kx = x, ky = -y
    return {"kx": xy[:, 0], "ky": -xy[:, 1], "intensity": inten / max(inten.max(), 1e-300),
            "hkl": np.rint(hkl).astype(int)}


class IndexingResult:
    """Phases and orientations of the component diffractions, and the maps they give.

    Built by :meth:`IndexingMixin.index_components`; holds arrays, orix objects and plain
    axis descriptions (no reference to the signal).

    Attributes
    ----------
    phases : tuple of orix.crystal_map.Phase
        The candidate phases, in library order (phase ids index this).
    library : TemplateLibrary
    candidates : numpy.ndarray
        ``(k, n_best, 4)`` pyxem's rows ``(template index, score, in-plane angle in degrees,
        mirror factor)``, best first.
    candidate_phase : numpy.ndarray
        ``(k, n_best)`` int phase id of every candidate, from its template index.
    scores : numpy.ndarray
        ``(k,)`` best score, in ``[0, 1]``.
    margins : numpy.ndarray
        ``(k,)`` best minus runner-up score (the runner-up is the best candidate of another
        phase or more than :data:`DISTINCT_ANGLE`° away; a lower bound if none of the
        ``n_best`` is).
    runner_up : list of str
        ``(k,)`` "phase (angle° from the best)" of the runner-up.
    is_indexed : numpy.ndarray
        ``(k,)`` bool, ``scores >= min_correlation``.
    component_phase : numpy.ndarray
        ``(k,)`` int phase id, -1 not indexed.
    rotations : orix.quaternion.Rotation
        ``(k,)`` best orientation of every component (also the not indexed ones).
    templates : list of dict
        Per component, the spots of its best template in display coordinates: ``"kx"``,
        ``"ky"`` (Å⁻¹, zero at the pattern centre, ``ky`` down the rows), ``"intensity"``
        (max 1), ``"hkl"``.
    diffractions : numpy.ndarray
        ``(k, qy, qx)`` the diffractions matched (NaN at masked pixels).
    maps : numpy.ndarray
        ``(k, ny, nx)`` their maps.
    intensity : numpy.ndarray
        ``(k,)`` total of every diffraction (weights times it are data units).
    min_correlation, center, pixel_size, source
        As used (``center`` in pixels, ``pixel_size`` in Å⁻¹, ``source`` "components" or
        "clusters").

    Examples
    --------
    >>> from stemnmf_hs.data import simulated_crystal_scan
    >>> s, truth = simulated_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
    >>> s.decomposition(algorithm="constrained_nmf", output_dimension=5, n_restarts=1,
    ...                 max_iter=30, random_state=0, print_info=False)
    >>> res = s.index_components(truth.phases["Cu"], resolution=10, show_progressbar=False)
    >>> res
    <IndexingResult: 5 components, 4 indexed (not indexed, Cu, Cu, Cu, Cu)>
    >>> res.scores.shape, res.candidates.shape, sorted(res.templates[1])
    ((5,), (5, 21, 4), ['hkl', 'intensity', 'kx', 'ky'])

    The examples of the methods use this ``res`` (their doctests get it from the repository's
    ``conftest.py``, which builds it once).
    """

    def __init__(self, library, candidates, quaternions, diffractions, maps, min_correlation,
                 center, pixel_size, diffraction_axes, scan_axes, scan_axes_raw,
                 source="components"):
        from orix.quaternion import Orientation, Rotation

        self.library = library
        self.phases = tuple(library.phases)
        self.candidates = candidates
        self.candidate_phase = _ori.phase_of_template(candidates[..., 0], library.sizes)
        self.scores = candidates[:, 0, 1].copy()
        self.min_correlation = min_correlation
        self.is_indexed = self.scores >= min_correlation
        self.component_phase = np.where(self.is_indexed, self.candidate_phase[:, 0], -1)
        self.rotations = Rotation(quaternions[:, 0])
        self.margins = np.zeros(len(candidates))
        self.runner_up = []
        for i, q in enumerate(quaternions):
            pid = self.candidate_phase[i]
            oris = Orientation(q, symmetry=self.phases[pid[0]].point_group)
            j, angle = _runner_up(pid, oris)
            self.margins[i] = candidates[i, 0, 1] - candidates[i, j, 1]
            where = f"{angle:.0f}° away" if np.isfinite(angle) else "other phase"
            self.runner_up.append(f"{self.phases[pid[j]].name} ({where})")
        self.templates = [_template_spots(self.phases[p], q[0], library)
                          for p, q in zip(self.candidate_phase[:, 0], quaternions)]
        self.diffractions = diffractions
        self.maps = maps
        self.intensity = np.nansum(diffractions.reshape(len(diffractions), -1), axis=1)
        self.center = tuple(float(c) for c in center)
        self.pixel_size = float(pixel_size)
        self.diffraction_axes = diffraction_axes
        self.scan_axes = scan_axes
        self.scan_axes_raw = scan_axes_raw
        self.source = source

    # ------------------------------------------------------------------ per component
    @property
    def n_components(self):
        """Number of diffractions indexed (components or clusters).

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> res.n_components
        5
        """
        return len(self.scores)

    @property
    def labels(self):
        """``(k,)`` phase name of every component, or :data:`~stemnmf_hs.orientation.NOT_INDEXED`.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> res.labels
        ('not indexed', 'Cu', 'Cu', 'Cu', 'Cu')
        """
        return tuple(self.phases[p].name if p >= 0 else _ori.NOT_INDEXED
                     for p in self.component_phase)

    @property
    def orientations(self):
        """``(k,)`` list: the orix ``Orientation`` (shape ``(1,)``, the phase's point group)
        of every indexed component, ``None`` for the not indexed.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> res.orientations[0] is None, res.orientations[1].symmetry.name
        (True, 'm-3m')
        """
        return [self.orientation(i) if self.is_indexed[i] else None
                for i in range(self.n_components)]

    def orientation(self, i):
        """Best orientation of component ``i`` with its best phase's symmetry (indexed or not).

        Returns
        -------
        orix.quaternion.Orientation
            Shape ``(1,)``.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> from stemnmf_hs.orientation import disorientation
        >>> angles = [float(disorientation(truth.orientation(0), res.orientation(i))[0])
        ...           for i in np.flatnonzero(res.is_indexed)]  # degrees
        >>> min(angles) < 3  # the grain of truth's first orientation is among the components
        True
        """
        from orix.quaternion import Orientation

        pg = self.phases[self.candidate_phase[i, 0]].point_group
        return Orientation(self.rotations.data[i][None], symmetry=pg)

    def euler(self, i):
        """Bunge Euler angles ``(phi1, Phi, phi2)`` of component ``i``'s best orientation, degrees.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> res.euler(3).round(0)[1:]        # [011]: Phi = 45, phi2 = 90
        array([45., 90.])
        """
        return np.rad2deg(self.orientation(i).to_euler())[0]

    def summary(self):
        """One line per component: label, Euler angles, score, margin and runner-up.

        Returns
        -------
        str

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> print(res.summary().splitlines()[0])
          # phase        Euler (deg)             score  margin  runner-up
        """
        head = (f"{'#':>3} {'phase':<12} {'Euler (deg)':<22} {'score':>6} {'margin':>7}  "
                "runner-up")
        lines = [head]
        for i in range(self.n_components):
            e = self.euler(i)
            eul = f"({e[0]:6.1f},{e[1]:5.1f},{e[2]:6.1f})" if self.is_indexed[i] else "-"
            lines.append(f"{i:>3} {self.labels[i]:<12} {eul:<22} {self.scores[i]:6.3f} "
                         f"{self.margins[i]:7.3f}  {self.runner_up[i]}")
        lines.append(f"score >= {self.min_correlation:g} to be indexed; "
                     f"{self.library.n_templates} templates, "
                     f"{self.library.resolution:g}° grid, {self.library.beam_energy:g} kV")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<IndexingResult: {self.n_components} {self.source}, "
                f"{int(self.is_indexed.sum())} indexed ({', '.join(self.labels)})>")

    # ------------------------------------------------------------------ maps
    def _map_arrays(self, threshold, overlap):
        return _ori.orientation_map_arrays(self.maps, self.is_indexed, self.intensity,
                                           threshold=threshold, overlap=overlap)

    def get_orientation_map(self, threshold=0.3, overlap=0.4):
        """Orientation and phase at every probe position, as an orix ``CrystalMap``.

        Per position, the strongest *indexed* component whose weight reaches ``threshold``
        times that component's maximum weight gives the orientation and phase (the
        amorphous matrix may carry most of the intensity inside a grain; a crystal counts
        where its own map is high); where a second indexed component passes its threshold
        too and reaches ``overlap`` times the first's intensity, its orientation is the
        second rotation of the point (:func:`stemnmf_hs.orientation.orientation_map_arrays`,
        :func:`stemnmf_hs.orientation.crystal_map`).  Positions without any are not indexed
        (phase id -1).

        Parameters
        ----------
        threshold : float, default 0.3
            Presence level relative to each component's maximum weight, in ``[0, 1]``.
        overlap : float, default 0.4
            Second-to-first intensity ratio from which both orientations are reported.

        Returns
        -------
        orix.crystal_map.CrystalMap
            ``ny * nx`` points on the scan grid (``x``, ``y`` in the scan units, steps from
            the navigation axes); two rotations per point: ``xmap.rotations[:, 0]`` the
            first component's orientation, ``xmap.rotations[:, 1]`` the second's where
            ``xmap.prop["overlap"] == 1`` (the first's again elsewhere).  Properties:
            ``"fraction"`` (the first's share of the intensity of all components),
            ``"fraction_2"``, ``"component"``, ``"component_2"`` (-1 none),
            ``"phase_id_2"`` (-1 none), ``"overlap"``, ``"score"`` (the first component's).
            Save with ``orix.io.save("map.h5", xmap)``.

        Raises
        ------
        ValueError
            On a threshold or overlap outside ``[0, 1]``.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> xmap = res.get_orientation_map()
        >>> xmap.shape, xmap.rotations_per_point, xmap.scan_unit
        ((12, 12), 2, 'nm')
        >>> sorted(xmap.phases.names)
        ['Cu', 'not_indexed']
        """
        m = self._map_arrays(threshold, overlap)
        score = np.where(m["first"] >= 0, self.scores[np.clip(m["first"], 0, None)], 0.0)
        ax_x, ax_y = self.scan_axes
        return _ori.crystal_map(
            m["first"], m["second"], self.rotations, self.component_phase, self.phases,
            step=(ax_y.scale, ax_x.scale), origin=(ax_y.offset, ax_x.offset),
            scan_unit=plotting.defined(ax_x.units) or "px",
            prop={"fraction": m["fraction"], "fraction_2": m["fraction_2"], "score": score},
        )

    def get_phase_map(self, threshold=0.3, overlap=0.4):
        """Phase id at every probe position as a calibrated HyperSpy signal.

        Parameters
        ----------
        threshold, overlap : float
            As in :meth:`get_orientation_map`.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(| nx, ny)`` int8 phase id (index into ``phases``; -1 not indexed) with the
            scan axes; ``metadata.Phases.names`` lists the names in id order.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> pm = res.get_phase_map()
        >>> pm
        <Signal2D, title: Phase map, dimensions: (|12, 12)>
        >>> sorted(np.unique(pm.data).tolist()), pm.metadata.Phases.names
        ([-1, 0], ['Cu'])
        """
        first = self._map_arrays(threshold, overlap)["first"]
        pid = np.where(first >= 0, self.component_phase[np.clip(first, 0, None)], -1)
        s = image_like(pid.astype(np.int8), self.scan_axes_raw, "Phase map")
        s.metadata.set_item("Signal.quantity", "phase id")
        s.metadata.set_item("Phases.names", [p.name for p in self.phases])
        s.metadata.set_item("Phases.not_indexed", -1)
        return s

    def get_ipf_map(self, threshold=0.3, overlap=0.4, direction="z"):
        """IPF-coloured orientation map (orix ``IPFColorKeyTSL``) as an RGB HyperSpy signal.

        Parameters
        ----------
        threshold, overlap : float
            As in :meth:`get_orientation_map`.
        direction : {"z", "x", "y"}, default "z"
            Sample direction whose crystal direction is coloured (z: along the beam).

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(| nx, ny)`` ``rgb8`` image with the scan axes; not indexed positions black.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> res.get_ipf_map()
        <Signal2D, title: IPF-z orientation map, dimensions: (|12, 12)>
        """
        import hyperspy.api as hs

        xmap = self.get_orientation_map(threshold, overlap)
        rgb = _ori.ipf_colors(xmap.rotations[:, 0], xmap.phase_id, self.phases, direction)
        s = hs.signals.Signal1D(np.round(rgb * 255).astype(np.uint8).reshape(
            self.maps.shape[1:] + (3,)))
        s.change_dtype("rgb8")
        return image_like(s.data, self.scan_axes_raw, f"IPF-{direction} orientation map")

    # ------------------------------------------------------------------ figures
    def plot(self, gamma=0.3, figsize=None):
        """Every diffraction beside its best template overlaid on it.

        Left of each pair the diffraction (power-law scale), right the same with the spots
        of the best template of the reported orientation (circles, area by intensity) and
        the label, Euler angles and score; not indexed components in grey.

        Parameters
        ----------
        gamma : float, default 0.3
            Power-law exponent of the diffractions' colour scale.
        figsize : tuple of float, optional

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> fig = res.plot()
        >>> len(fig.axes)                    # a diffraction and its overlay per component
        10
        """
        from ._indexing_figures import template_figure

        return template_figure(self, gamma=gamma, figsize=figsize)

    def plot_orientation_map(self, threshold=0.3, overlap=0.4, direction="z", figsize=None):
        """IPF-coloured orientation map with its colour key(s), the phase map and overlaps.

        Parameters
        ----------
        threshold, overlap : float
            As in :meth:`get_orientation_map`.
        direction : {"z", "x", "y"}, default "z"
            IPF sample direction.
        figsize : tuple of float, optional

        Returns
        -------
        matplotlib.figure.Figure
            Left the IPF map (not indexed black, positions with two orientations hatched),
            middle the phase map, right the IPF colour key of every phase.

        Examples
        --------
        ``res`` as built in the :class:`IndexingResult` example:

        >>> fig = res.plot_orientation_map()
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['IPF-z (hatched: two orientations)', 'phase']
        """
        from ._indexing_figures import orientation_map_figure

        return orientation_map_figure(self, threshold, overlap, direction, figsize=figsize)
