"""Validation cases from independent data: multislice, real patterns, kinematic structures.

Every builder returns a :class:`ValidationCase`: Poisson counts at a chosen dose (electrons
per pattern) with the true diffractions and maps, the direct-beam mask and the geometry the
constrained NMF needs.  Plain arrays, no HyperSpy signal: ``case.X`` is the
``(n_positions, n_unmasked_pixels)`` matrix that :class:`stemnmf_hs.ConstrainedNMF` and
scikit-learn's ``NMF`` take.

Three sources the package did not write:

- :func:`abtem_case` -- the abTEM multislice scan of ``shared/realdata`` (Cu and Fe
  nanoparticles in a metallic glass, two of them overlapping in projection);
- :func:`real_pattern_case` -- a synthetic scan whose diffractions are real experimental
  patterns (an amorphous Titan pattern, a G-phase NBED pattern and a rotated copy, an ASTAR
  precession pattern);
- :func:`kinematic_case` -- kinematic spot patterns of Cu and Fe in chosen zone axes and
  in-plane rotations from diffsims/orix, weak (1-9 % crystallinity) and overlapping grains.

The first two need the files of ``shared/realdata`` (see :func:`default_realdata_dir`) and
raise ``FileNotFoundError`` without them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ._simulate import amorphous_pattern, expected_counts, poisson_counts, with_matrix

__all__ = [
    "DOSES",
    "ValidationCase",
    "abtem_case",
    "default_realdata_dir",
    "direct_beam_mask",
    "kinematic_case",
    "kinematic_pattern",
    "kinematic_phases",
    "real_pattern_case",
]

#: The doses of the validation suite, electrons per pattern.
DOSES = (1e3, 1e4, 1e5, 1e6)

_ABTEM = "abtem_nanoparticles_glass_truth.npz"
_TITAN = "amorphous_titan_single_dp.hspy"
_GPHASE = "gphase_steel_nbed_subset_2x2.hspy"
_ASTAR = "astar_sped_test1.blo"


@dataclass
class ValidationCase:
    """A scan with ground truth for the validation suite.

    Attributes
    ----------
    name : str
        Short name of the case.
    data : numpy.ndarray
        ``(ny, nx, qy, qx)`` float32 Poisson counts (full patterns, direct beam included).
    diffractions : numpy.ndarray
        ``(k, qy, qx)`` float32 true diffractions, each summing to 1 over all pixels.
    maps : numpy.ndarray
        ``(k, ny, nx)`` float32 true maps in electrons (``noise_free = maps.T @
        diffractions`` for the synthetic cases; a least-squares fit for the multislice one).
    signal_mask : numpy.ndarray of bool
        ``(qy, qx)``, ``True`` on the excluded direct-beam pixels (the convention of
        ``ConstrainedNMF(signal_mask=...)``).
    center : tuple of float
        ``(cx, cy)`` pattern centre in pixels (column, row).
    scan_step_nm, probe_fwhm_nm : float
        Scan step and probe FWHM in nm.
    dose : float
        Electrons per pattern (the mean count per pattern).
    noise_free : numpy.ndarray
        ``(ny, nx, qy, qx)`` float32 expected counts.
    labels : tuple of str
        Name of every true component.
    amorphous_index : int
        Index of the amorphous matrix among the true components.
    info : dict
        Builder-specific facts (e.g. the fit residual of the multislice truth).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.data import ValidationCase
    >>> counts = np.ones((3, 2, 4, 4), np.float32)
    >>> mask = np.zeros((4, 4), bool)
    >>> mask[2, 2] = True
    >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
    ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
    ...                       16.0, counts, ("amorphous",))
    >>> case.n_components, case.navigation_shape, case.signal_shape
    (1, (3, 2), (4, 4))
    >>> case.X.shape
    (6, 15)
    """

    name: str
    data: np.ndarray
    diffractions: np.ndarray
    maps: np.ndarray
    signal_mask: np.ndarray
    center: tuple
    scan_step_nm: float
    probe_fwhm_nm: float
    dose: float
    noise_free: np.ndarray
    labels: tuple
    amorphous_index: int = 0
    info: dict = field(default_factory=dict)

    @property
    def n_components(self):
        """Number of true components ``k``.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> case.n_components
        1
        """
        return len(self.diffractions)

    @property
    def navigation_shape(self):
        """``(ny, nx)`` scan shape.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> case.navigation_shape
        (3, 2)
        """
        return tuple(self.data.shape[:2])

    @property
    def signal_shape(self):
        """``(qy, qx)`` pattern shape.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> case.signal_shape
        (4, 4)
        """
        return tuple(self.data.shape[2:])

    @property
    def X(self):
        """``(n_positions, n_unmasked_pixels)`` float32 counts, the estimator's input.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> case.X.shape, case.X.dtype
        ((6, 15), dtype('float32'))
        """
        n = self.data.shape[0] * self.data.shape[1]
        return np.ascontiguousarray(self.data.reshape(n, -1)[:, ~self.signal_mask.ravel()])

    def estimator_geometry(self):
        """Keyword arguments of :class:`stemnmf_hs.ConstrainedNMF` for this scan.

        Returns
        -------
        dict
            ``signal_shape``, ``navigation_shape``, ``signal_mask``, ``center``,
            ``probe_fwhm``, ``scan_step`` (nm).

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> geometry = case.estimator_geometry()
        >>> sorted(geometry)
        ['center', 'navigation_shape', 'probe_fwhm', 'scan_step', 'signal_mask', 'signal_shape']
        >>> geometry["signal_shape"], geometry["scan_step"]
        ((4, 4), 1.0)
        """
        return dict(
            signal_shape=self.signal_shape,
            navigation_shape=self.navigation_shape,
            signal_mask=self.signal_mask,
            center=self.center,
            probe_fwhm=self.probe_fwhm_nm,
            scan_step=self.scan_step_nm,
        )

    def unmask(self, factors):
        """``(k, n_unmasked)`` factors back to ``(k, qy, qx)`` with ``nan`` on the mask.

        Examples
        --------
        >>> import numpy as np
        >>> from stemnmf_hs.data import ValidationCase
        >>> counts = np.ones((3, 2, 4, 4), np.float32)
        >>> mask = np.zeros((4, 4), bool)
        >>> mask[2, 2] = True
        >>> case = ValidationCase("tiny", counts, np.full((1, 4, 4), 1 / 16, np.float32),
        ...                       np.full((1, 3, 2), 16.0, np.float32), mask, (2.0, 2.0), 1.0, 2.0,
        ...                       16.0, counts, ("amorphous",))
        >>> full = case.unmask(np.ones((1, 15)))
        >>> full.shape, int(np.isnan(full).sum())
        ((1, 4, 4), 1)
        """
        factors = np.asarray(factors)
        out = np.full((len(factors),) + self.signal_shape, np.nan, dtype=np.float64)
        out[:, ~self.signal_mask] = factors
        return out


# --------------------------------------------------------------------------- helpers
def default_realdata_dir():
    """Where the real data files are looked for.

    ``$STEMNMF_HS_REALDATA`` when set, else ``shared/realdata`` beside the repository
    checkout (``<checkout>/../shared/realdata``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from pathlib import Path
    >>> from stemnmf_hs.data._cases import default_realdata_dir
    >>> isinstance(default_realdata_dir(), Path)
    True
    """
    env = os.environ.get("STEMNMF_HS_REALDATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "realdata"


def _require(directory, name):
    directory = default_realdata_dir() if directory is None else Path(directory)
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"validation data {name!r} not found in {str(directory)!r}; set "
            "STEMNMF_HS_REALDATA or pass the directory holding the shared real data"
        )
    return path


def _check_dose(dose):
    dose = float(dose)
    if not np.isfinite(dose) or dose <= 0:
        raise ValueError(f"dose must be a positive number of electrons, got {dose!r}")
    return dose


def _rng(seed, dose):
    return np.random.default_rng([int(seed), int(round(np.log10(dose) * 1000))])


def direct_beam_mask(shape, center, radius):
    """Disc of the direct beam, ``True`` = excluded.

    Parameters
    ----------
    shape : tuple of int
        ``(qy, qx)``.
    center : tuple of float
        ``(cx, cy)`` in pixels.
    radius : float
        Disc radius in pixels (``<=``).

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> int(direct_beam_mask((64, 64), (32, 32), 2).sum())
    13
    """
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius ** 2


def _poisson(expected, dose, seed):
    return poisson_counts(expected, _rng(seed, dose), np.float32)


def _gaussian_blur_periodic(maps, sigma):
    return np.stack([ndimage.gaussian_filter(m, sigma, mode="wrap") for m in maps])


def _disc(shape, center, radius, edge):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r = np.hypot(xx - center[0], yy - center[1])
    return 0.5 * (1.0 - np.tanh((r - radius) / edge))


def _assemble(name, diffractions, fractions, dose, seed, mask, center, step, fwhm, labels,
              info=None):
    """Counts from unit-sum diffractions and fraction maps summing to 1 per position."""
    W = diffractions / diffractions.sum(axis=(1, 2), keepdims=True)
    maps = (dose * fractions).astype(np.float32)
    expected = expected_counts(maps, W)
    return ValidationCase(
        name=name,
        data=_poisson(expected, dose, seed),
        diffractions=W.astype(np.float32),
        maps=maps,
        signal_mask=mask,
        center=tuple(float(c) for c in center),
        scan_step_nm=float(step),
        probe_fwhm_nm=float(fwhm),
        dose=dose,
        noise_free=expected.astype(np.float32),
        labels=tuple(labels),
        info=dict(info or {}),
    )


def _grain_fractions(shape, grains, sigma):
    """Amorphous fraction first, then one smooth disc per grain, probe-blurred.

    ``grains`` rows: ``(cx, cy, radius, peak_fraction)``; overlapping grains share their
    positions (their fractions add, scaled down where they would exceed 1).
    """
    crystal = np.stack([p * _disc(shape, (cx, cy), r, 1.0) for cx, cy, r, p in grains])
    total = crystal.sum(axis=0)
    crystal = crystal / np.maximum(total, 1.0)
    fractions = with_matrix(crystal)
    fractions = _gaussian_blur_periodic(fractions, sigma)
    return fractions / fractions.sum(axis=0, keepdims=True)


# --------------------------------------------------------------------------- abTEM
@functools.lru_cache(maxsize=2)
def _abtem_truth(path):
    from scipy.optimize import nnls

    with np.load(path) as f:
        data = np.asarray(f["data"], dtype=np.float64)
        maps = np.concatenate([f["matrix_map"][None], f["particle_maps"]]).astype(np.float64)
        step = float(f["scan_step_nm"])
        fwhm = float(f["probe_fwhm_nm"])
        centre = tuple(float(c) for c in f["centre_px"])
        labels = ("matrix",) + tuple(f"particle {lab}" for lab in f["particle_label"])
    k = len(maps)
    ny, nx, qy, qx = data.shape
    A = maps.reshape(k, -1).T
    D = data.reshape(ny * nx, -1)
    # Per pixel: non-negative least squares of the noise-free patterns on the truth maps.
    W = np.stack([nnls(A, D[:, j])[0] for j in range(D.shape[1])], axis=1)
    return data, maps, W, step, fwhm, centre, labels


def abtem_case(dose=1e5, realdata_dir=None, seed=0, mask_radius=2.5):
    """The abTEM multislice scan (Cu/Fe nanoparticles in a glass) at a chosen dose.

    Counts are Poisson draws from the file's noise-free patterns (each sums to 1) times
    ``dose``.  The true maps are the probe-weighted projected atom densities of the file
    (``matrix_map`` and the four ``particle_maps``, k = 5, the matrix first).  The file has
    no per-component diffraction, so the true diffractions are derived: per detector pixel,
    the non-negative least squares of the noise-free patterns on the five truth maps, each
    then scaled to unit sum (its scale moved into the map, in electrons).  Multislice
    scattering is not linear in the atom densities (dynamical scattering, absorption into
    high angles), so ``maps.T @ diffractions`` reproduces the noise-free data only
    approximately: ``info["truth_residual"]`` is the relative Frobenius error over the
    unmasked pixels (0.37).  The fitted matrix diffraction is dark at the particles' spots;
    ``info["amorphous_reference"]`` holds its rotational average about the centre, the
    reference profile for :func:`~stemnmf_hs.data._truth.dark_spot_ratio`.

    Parameters
    ----------
    dose : float, default 1e5
        Electrons per pattern.
    realdata_dir : path-like, optional
        Directory holding ``abtem_nanoparticles_glass_truth.npz``; default
        :func:`default_realdata_dir`.
    seed : int, default 0
        Seed of the Poisson counts (combined with the dose).
    mask_radius : float, default 2.5
        Direct-beam mask radius in pixels about ``(32, 32)``.

    Returns
    -------
    ValidationCase
        ``(32, 32, 64, 64)`` counts, k = 5; 0.1875 nm step, 0.98 nm probe FWHM.

    Raises
    ------
    FileNotFoundError
        Without the truth file.
    ValueError
        On a non-positive dose.

    Examples
    --------
    The file lives in ``shared/realdata`` (:func:`default_realdata_dir`), so the build is not
    run here:

    >>> from stemnmf_hs.data import abtem_case
    >>> case = abtem_case(dose=1e4)  # doctest: +SKIP
    >>> case.data.shape, case.n_components  # doctest: +SKIP
    ((32, 32, 64, 64), 5)
    >>> abtem_case(dose=1e4, realdata_dir="no/such/folder")
    Traceback (most recent call last):
        ...
    FileNotFoundError: validation data 'abtem_nanoparticles_glass_truth.npz' not found in ...
    """
    dose = _check_dose(dose)
    path = _require(realdata_dir, _ABTEM)
    data, maps, W, step, fwhm, centre, labels = _abtem_truth(str(path))
    k = len(maps)
    scale = W.sum(axis=1)
    diffractions = (W / scale[:, None]).reshape((k,) + data.shape[2:])
    truth_maps = dose * maps * scale[:, None, None]
    mask = direct_beam_mask(data.shape[2:], centre, mask_radius)
    ref = data.reshape(data.shape[0] * data.shape[1], -1)
    fit = expected_counts(truth_maps, diffractions).reshape(ref.shape) / dose
    keep = ~mask.ravel()
    residual = np.linalg.norm(fit[:, keep] - ref[:, keep]) / np.linalg.norm(ref[:, keep])
    expected = dose * data
    # The fitted matrix diffraction is dark where the particles' spots took the intensity;
    # its rotational average is the reference of the dark-spot ratio.
    yy, xx = np.mgrid[0:data.shape[2], 0:data.shape[3]]
    ri = np.round(np.hypot(xx - centre[0], yy - centre[1])).astype(int)
    a0 = diffractions[0]
    radial = (np.bincount(ri.ravel(), a0.ravel()) / np.bincount(ri.ravel()))[ri]
    return ValidationCase(
        name="abtem",
        data=_poisson(expected, dose, seed),
        diffractions=diffractions.astype(np.float32),
        maps=truth_maps.astype(np.float32),
        signal_mask=mask,
        center=centre,
        scan_step_nm=step,
        probe_fwhm_nm=fwhm,
        dose=dose,
        noise_free=expected.astype(np.float32),
        labels=labels,
        info={"truth_residual": float(residual), "truth": "NNLS of noise-free data on maps",
              "amorphous_reference": radial.astype(np.float32)},
    )


# --------------------------------------------------------------------------- real patterns
def _read_hspy(path):
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["Experiments/__unnamed__/data"], dtype=np.float64)


def _centroid(img, iy, ix, half=6):
    win = img[iy - half:iy + half + 1, ix - half:ix + half + 1]
    win = np.clip(win - win.min(), 0, None)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    return ix + (win * xx).sum() / win.sum(), iy + (win * yy).sum() / win.sum()


def _resample(img, center, scale, shape, out_center, angle_deg=0.0):
    """Sample ``img`` on a grid ``shape`` centred at ``out_center``: ``scale`` output pixels
    per input pixel, rotated by ``angle_deg`` (counter-clockwise from +x towards +y)."""
    if scale < 1:
        img = ndimage.gaussian_filter(img, 0.5 / scale)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    u, v = (xx - out_center[0]) / scale, (yy - out_center[1]) / scale
    t = np.deg2rad(angle_deg)
    x = center[0] + np.cos(t) * u + np.sin(t) * v
    y = center[1] - np.sin(t) * u + np.cos(t) * v
    out = ndimage.map_coordinates(img, [y, x], order=1, mode="constant", cval=np.median(img))
    return np.clip(out, 0, None)


def _titan_profile(img):
    """Centre and rotationally averaged profile of the amorphous Titan pattern.

    The pattern has a beam stop from the top edge to the centre and a circular detector
    mask (zero/negative outside); the centre is where the radial profile of the valid
    pixels is sharpest (least variance within radius bins).
    """
    valid = img > np.percentile(img, 40)

    def search(step, c0, half):
        """Grid search of the centre ``(cx, cy)`` (pixels) within ``half`` coarse pixels of ``c0`` on the image subsampled by ``step``; the lowest within-radius variance wins."""
        small, vs = img[::step, ::step], valid[::step, ::step]
        vals = small[vs]
        yy, xx = np.nonzero(vs)
        best = None
        for cy in np.arange(c0[1] / step - half, c0[1] / step + half + 0.1):
            for cx in np.arange(c0[0] / step - half, c0[0] / step + half + 0.1):
                r = np.hypot(xx - cx, yy - cy).astype(int)
                n = np.bincount(r)
                s1 = np.bincount(r, vals)
                s2 = np.bincount(r, vals * vals)
                ok = n > 5
                var = (s2[ok] - s1[ok] ** 2 / n[ok]).sum()
                if best is None or var < best[0]:
                    best = (var, cx * step, cy * step)
        return best[1], best[2]

    iy, ix = ndimage.center_of_mass(valid)
    cx, cy = search(4, (ix, iy), 6)
    cx, cy = search(2, (cx, cy), 3)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    r = np.hypot(xx - cx, yy - cy)[valid]
    ri = np.round(r).astype(int)
    n = np.bincount(ri)
    prof = np.bincount(ri, img[valid]) / np.maximum(n, 1)
    radii = np.nonzero(n > 20)[0]
    return (cx, cy), radii.astype(float), prof[radii]


@functools.lru_cache(maxsize=2)
def _real_patterns(directory, shape):
    titan = _read_hspy(_require(directory, _TITAN))
    gphase = _read_hspy(_require(directory, _GPHASE))[0, 0]
    from rsciio.blockfile import file_reader

    astar = np.asarray(file_reader(str(_require(directory, _ASTAR)))[0]["data"],
                       dtype=np.float64)[0, 0]
    oc = (shape[1] / 2.0, shape[0] / 2.0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r_out = np.hypot(xx - oc[0], yy - oc[1])

    centre, radii, prof = _titan_profile(titan)
    first_ring = radii[np.argmax(np.where(radii > 20, prof, -np.inf))]
    scale = 0.18 * shape[0] / first_ring  # first ring at 18 % of the pattern size
    amorphous = np.interp(r_out / scale, radii, np.clip(prof, 0, None))

    iy, ix = np.unravel_index(np.argmax(ndimage.gaussian_filter(gphase, 2)), gphase.shape)
    gc = _centroid(gphase, iy, ix)
    gscale = shape[0] / gphase.shape[0]
    g0 = _resample(gphase, gc, gscale, shape, oc)
    g40 = _resample(gphase, gc, gscale, shape, oc, angle_deg=40.0)

    iy, ix = np.unravel_index(np.argmax(ndimage.gaussian_filter(astar, 2)), astar.shape)
    ac = _centroid(astar, iy, ix)
    a0 = _resample(astar, ac, shape[0] / astar.shape[0], shape, oc)
    out = np.stack([amorphous, g0, g40, a0])
    info = {"titan_center": centre, "gphase_center": gc, "astar_center": ac,
            "titan_first_ring_px": float(first_ring * scale)}
    return out / out.sum(axis=(1, 2), keepdims=True), oc, info


def real_pattern_case(dose=5e4, realdata_dir=None, seed=0, shape=(64, 64),
                      scan_shape=(32, 32), crystallinity=(0.6, 0.5, 0.4), mask_radius=3.0,
                      scan_step_nm=1.0, probe_fwhm_nm=2.0):
    """A scan whose four diffractions are real experimental patterns.

    - amorphous: the rotational average of the amorphous Titan pattern (``{_TITAN}``; its
      centre found where the radial profile is sharpest, beam stop and detector mask left
      out), drawn with its first ring at 18 % of the pattern size;
    - the G-phase NBED pattern (``{_GPHASE}``, scan position (0, 0)) and a copy turned by
      40 degrees;
    - the ASTAR precession pattern (``{_ASTAR}``, position (0, 0)).

    The crystal patterns are anti-alias blurred and resampled to ``shape`` about their direct
    beams (centroid of the brightest blob), which land at the pattern centre and are masked.
    Three grains (smooth discs) in an amorphous matrix, the G-phase grain and its rotated
    twin touching; maps are fractions of the dose blurred by a Gaussian probe.

    Parameters
    ----------
    dose : float, default 5e4
        Electrons per pattern.
    realdata_dir : path-like, optional
        Directory of the real files; default :func:`default_realdata_dir`.
    seed : int, default 0
        Seed of the Poisson counts.
    shape : tuple of int, default (64, 64)
        Pattern shape.
    scan_shape : tuple of int, default (32, 32)
        Scan shape.
    crystallinity : tuple of 3 float, default (0.6, 0.5, 0.4)
        Crystal fraction at the centre of each grain.
    mask_radius : float, default 3.0
        Direct-beam mask radius in pixels.
    scan_step_nm, probe_fwhm_nm : float, default 1.0, 2.0
        Scan step and probe FWHM.

    Returns
    -------
    ValidationCase
        k = 4: amorphous, G-phase, G-phase turned 40 degrees, ASTAR.

    Raises
    ------
    FileNotFoundError
        Without one of the three real files.
    ValueError
        On a non-positive dose.

    Examples
    --------
    The files live in ``shared/realdata`` (:func:`default_realdata_dir`), so the build is
    not run here:

    >>> from stemnmf_hs.data import real_pattern_case
    >>> case = real_pattern_case(dose=5e4)  # doctest: +SKIP
    >>> case.data.shape, case.labels  # doctest: +SKIP
    ((32, 32, 64, 64), ('amorphous (Titan)', 'G-phase', 'G-phase +40 deg', 'ASTAR'))
    >>> real_pattern_case(realdata_dir="no/such/folder")
    Traceback (most recent call last):
        ...
    FileNotFoundError: validation data ... not found in ...
    """
    dose = _check_dose(dose)
    directory = str(default_realdata_dir() if realdata_dir is None else realdata_dir)
    W, oc, info = _real_patterns(directory, tuple(shape))
    ny, nx = scan_shape
    grains = [
        (0.30 * nx, 0.30 * ny, 0.16 * nx, crystallinity[0]),
        (0.58 * nx, 0.30 * ny, 0.14 * nx, crystallinity[1]),
        (0.45 * nx, 0.72 * ny, 0.16 * nx, crystallinity[2]),
    ]
    sigma = probe_fwhm_nm / 2.3548 / scan_step_nm
    fractions = _grain_fractions(scan_shape, grains, sigma)
    mask = direct_beam_mask(shape, oc, mask_radius)
    return _assemble("real_patterns", W, fractions, dose, seed, mask, oc, scan_step_nm,
                     probe_fwhm_nm, ("amorphous (Titan)", "G-phase", "G-phase +40 deg",
                                     "ASTAR"), info)


real_pattern_case.__doc__ = real_pattern_case.__doc__.format(_TITAN=_TITAN, _GPHASE=_GPHASE,
                                                             _ASTAR=_ASTAR)


# --------------------------------------------------------------------------- kinematic
_KINEMATIC_GRAINS = (
    # label, phase, Euler angles (deg; Bunge, orix), centre (fraction of scan), radius
    ("Cu [001] 20 deg", "Cu", (20.0, 0.0, 0.0), (0.32, 0.32), 0.17),
    ("Cu [001] 50 deg", "Cu", (50.0, 0.0, 0.0), (0.55, 0.36), 0.17),
    ("Fe [001] 0 deg", "Fe", (0.0, 0.0, 0.0), (0.72, 0.75), 0.15),
    ("Cu [111] 15 deg", "Cu", (15.0, 54.7356, 45.0), (0.28, 0.74), 0.15),
)


@functools.lru_cache(maxsize=1)
def kinematic_phases():
    """The orix phases of the kinematic patterns: fcc Cu (a = 3.615 Å), bcc Fe (2.8665 Å).

    Returns
    -------
    dict
        ``{"Cu": Phase, "Fe": Phase}`` (space groups 225 and 229, diffpy structures).

    Examples
    --------
    >>> from stemnmf_hs.data._cases import kinematic_phases
    >>> sorted(kinematic_phases()), kinematic_phases()["Fe"].space_group.number
    (['Cu', 'Fe'], 229)
    """
    from diffpy.structure import Atom, Lattice, Structure
    from orix.crystal_map import Phase

    a = 3.615
    cu = Structure(
        atoms=[Atom("Cu", xyz) for xyz in ([0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5])],
        lattice=Lattice(a, a, a, 90, 90, 90),
    )
    a = 2.8665
    fe = Structure(atoms=[Atom("Fe", [0, 0, 0]), Atom("Fe", [.5, .5, .5])],
                   lattice=Lattice(a, a, a, 90, 90, 90))
    return {"Cu": Phase("Cu", space_group=225, structure=cu),
            "Fe": Phase("Fe", space_group=229, structure=fe)}


@functools.lru_cache(maxsize=8)
def kinematic_pattern(phase, euler, shape, pixel_size, spot_sigma, direct_beam,
                      mirrored=False):
    """Unit-sum kinematic spot pattern of a phase of :func:`kinematic_phases` (diffsims).

    Spots of diffsims' ``SimulationGenerator`` (200 kV, excitation error 0.02 Å⁻¹) drawn as
    Gaussians at their kinematic intensities about the centre ``(nx / 2, ny / 2)`` px, plus a
    direct beam carrying ``direct_beam`` of the pattern.

    Parameters
    ----------
    phase : {"Cu", "Fe"}
    euler : tuple of 3 float
        Bunge Euler angles (orix), degrees.
    shape : tuple of int
        ``(ny, nx)`` pixels.
    pixel_size : float
        Å⁻¹ per pixel.
    spot_sigma : float
        Spot width, pixels.
    direct_beam : float
        Share of the pattern in the direct beam.
    mirrored : bool, default False
        Draw a spot at ``(x, y)`` Å⁻¹ at row ``cy - y / pixel_size`` instead of ``cy + y /
        pixel_size``: pyxem's template-matching convention (its own test patterns are
        ``np.flipud`` of diffsims' drawings), so that pyxem reports the orientation
        ``euler``.  ``False`` (the validation cases) draws the mirror image.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` float64, summing to 1.

    Examples
    --------
    >>> from stemnmf_hs.data._cases import kinematic_pattern
    >>> img = kinematic_pattern("Cu", (20.0, 0.0, 0.0), (32, 32), 0.05, 0.8, 0.3)
    >>> img.shape, round(float(img.sum()), 6)
    ((32, 32), 1.0)
    """
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    gen = SimulationGenerator(accelerating_voltage=200)
    radius = pixel_size * 0.5 * min(shape) * 1.05
    sim = gen.calculate_diffraction2d(
        kinematic_phases()[phase], Rotation.from_euler(np.deg2rad([euler])),
        reciprocal_radius=radius,
        with_direct_beam=False, max_excitation_error=0.02,
    )
    xy = np.asarray(sim.coordinates.data)[:, :2] / pixel_size
    inten = np.asarray(sim.coordinates.intensity, dtype=np.float64)
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.zeros(shape)
    if mirrored:
        xy[:, 1] = -xy[:, 1]
    for (gx, gy), i in zip(xy, inten):
        if i > 0:
            img += i * np.exp(-((xx - cx - gx) ** 2 + (yy - cy - gy) ** 2) / (2 * spot_sigma**2))
    img /= img.sum()
    beam = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * spot_sigma**2))
    return (1 - direct_beam) * img + direct_beam * beam / beam.sum()


def kinematic_case(dose=1e4, seed=0, crystallinity=(0.09, 0.09, 0.03, 0.01), shape=(64, 64),
                   scan_shape=(32, 32), pixel_size=0.05, spot_sigma=0.8, direct_beam=0.3,
                   mask_radius=2.5, scan_step_nm=1.0, probe_fwhm_nm=2.0):
    """Kinematic patterns of real structures: weak and overlapping grains in a glass.

    Four grains (diffsims ``SimulationGenerator`` at 200 kV, orix phases built from
    diffpy structures, excitation error 0.02 Å⁻¹): fcc Cu [001] turned 20 and 50 degrees
    (an overlapping pair, like the multislice scan's A and B), bcc Fe [001] and Cu [111]
    turned 15 degrees, spots drawn as Gaussians of ``spot_sigma`` pixels at their kinematic
    intensities, plus a direct beam carrying ``direct_beam`` of each pattern.  The matrix is
    :func:`stemnmf_hs.data.amorphous_pattern` with rings at 8.6, 15.5 and 22 px (the
    multislice glass's first ring: Q = 2.7 Å⁻¹ at 0.05 Å⁻¹ per pixel, i.e. 0.43 Å⁻¹ in
    ``Q / 2 pi``) and the same direct beam.  The grains are weak: their crystal fraction
    at the grain centre is ``crystallinity`` (the paper's 1-9 %).

    Parameters
    ----------
    dose : float, default 1e4
        Electrons per pattern.
    seed : int, default 0
        Seed of the Poisson counts.
    crystallinity : tuple of 4 float, default (0.09, 0.09, 0.03, 0.01)
        Peak crystal fraction of each grain, in the order above.
    shape, scan_shape : tuple of int, default (64, 64), (32, 32)
        Pattern and scan shapes.
    pixel_size : float, default 0.05
        Å⁻¹ per pixel.
    spot_sigma : float, default 0.8
        Spot width in pixels.
    direct_beam : float, default 0.3
        Share of every pattern in the (masked) direct beam.
    mask_radius : float, default 2.5
        Direct-beam mask radius in pixels.
    scan_step_nm, probe_fwhm_nm : float, default 1.0, 2.0
        Scan step and probe FWHM.

    Returns
    -------
    ValidationCase
        k = 5: amorphous first, then the four grains.

    Raises
    ------
    ValueError
        On a non-positive dose or a ``crystallinity`` not of length 4 in ``[0, 1]``.

    Examples
    --------
    The first call imports diffsims and orix (a few seconds), so the build is not run here:

    >>> from stemnmf_hs.data import kinematic_case
    >>> case = kinematic_case(dose=1e4, shape=(32, 32))  # doctest: +SKIP
    >>> case.data.shape, case.labels[:2]  # doctest: +SKIP
    ((32, 32, 32, 32), ('amorphous', 'Cu [001] 20 deg'))
    >>> kinematic_case(dose=0)
    Traceback (most recent call last):
        ...
    ValueError: dose must be a positive number of electrons, got 0.0
    """
    dose = _check_dose(dose)
    crystallinity = tuple(float(c) for c in crystallinity)
    if len(crystallinity) != 4 or not all(0 <= c <= 1 for c in crystallinity):
        raise ValueError(f"crystallinity must be 4 fractions in [0, 1], got {crystallinity}")
    shape = tuple(int(s) for s in shape)
    oc = (shape[1] / 2.0, shape[0] / 2.0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    beam = np.exp(-((xx - oc[0]) ** 2 + (yy - oc[1]) ** 2) / (2 * spot_sigma**2))
    amorphous = amorphous_pattern(shape, center=oc, ring_radii=(8.6, 15.5, 22.0),
                                  ring_widths=(1.6, 2.4, 3.2), dtype=np.float64)
    amorphous = (1 - direct_beam) * amorphous + direct_beam * beam / beam.sum()
    crystals = [
        kinematic_pattern(phase, euler, shape, float(pixel_size), float(spot_sigma),
                          float(direct_beam))
        for _, phase, euler, _, _ in _KINEMATIC_GRAINS
    ]
    ny, nx = scan_shape
    grains = [(c[0] * nx, c[1] * ny, r * nx, p)
              for (_, _, _, c, r), p in zip(_KINEMATIC_GRAINS, crystallinity)]
    sigma = probe_fwhm_nm / 2.3548 / scan_step_nm
    fractions = _grain_fractions(scan_shape, grains, sigma)
    mask = direct_beam_mask(shape, oc, mask_radius)
    labels = ("amorphous",) + tuple(g[0] for g in _KINEMATIC_GRAINS)
    return _assemble("kinematic", np.stack([amorphous] + crystals), fractions, dose, seed,
                     mask, oc, scan_step_nm, probe_fwhm_nm, labels,
                     {"crystallinity": crystallinity})
