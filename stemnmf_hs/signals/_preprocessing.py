"""Preprocessing methods of 4D-STEM scans: the scan mean filter and the noise level map.

A mixin of :class:`~stemnmf_hs.signals.NMFDiffraction2D`: each method validates its input,
calls :mod:`stemnmf_hs.preprocessing` on the data (numpy or dask) and returns a signal with
the scan's calibrated axes (Cao et al., Digital Discovery 2025, "Impact of dataset filtering
on NMF robustness" and Fig. 2).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .. import preprocessing
from ._adapter import data_units, is_lazy, with_new_data

__all__ = ["BeamCenter", "PreprocessingMixin"]


class BeamCenter(NamedTuple):
    """Direct-beam position found by :meth:`PreprocessingMixin.find_center`.

    Attributes
    ----------
    x, y : float
        Beam position in pixels, column first (pyxem's ``calibration.center`` convention:
        pixel centres at whole numbers).
    spread : float
        Descan spread: root-mean-square distance (px) of the per-pattern beam positions
        from ``(x, y)``; ``nan`` when per-pattern positions were not measured.

    Examples
    --------
    >>> BeamCenter(31.6, 30.2, 0.4)
    BeamCenter(x=31.6, y=30.2, spread=0.4)
    """

    x: float
    y: float
    spread: float

    def signal_mask(self, signal_shape, radius):
        """Boolean disk over the direct beam, for ``decomposition(signal_mask=...)``.

        pyxem's ``get_direct_beam_mask`` centres its disk on the geometric centre; this one
        sits on the beam found.

        Parameters
        ----------
        signal_shape : tuple of int
            ``(ny, nx)`` pattern shape, array order (``s.axes_manager.signal_shape[::-1]``).
        radius : float
            Disk radius, pixels.

        Returns
        -------
        numpy.ndarray of bool
            ``(ny, nx)``, ``True`` within ``radius`` of ``(x, y)``.

        Examples
        --------
        >>> BeamCenter(2.0, 1.0, 0.0).signal_mask((3, 5), 1).astype(int)
        array([[0, 0, 1, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 1, 0, 0]])
        """
        ny, nx = (int(n) for n in signal_shape)
        y, x = np.mgrid[:ny, :nx]
        return np.hypot(x - self.x, y - self.y) <= float(radius)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def _check_lazy_output(lazy_output, lazy):
    if lazy_output is None:
        return bool(lazy)
    return _check_bool(lazy_output, "lazy_output")


class PreprocessingMixin:
    """Preprocessing of a 4D-STEM scan before NMF (see the module docstring).

    Examples
    --------
    >>> from stemnmf_hs.signals import NMFDiffraction2D
    >>> from stemnmf_hs.signals._preprocessing import PreprocessingMixin
    >>> issubclass(NMFDiffraction2D, PreprocessingMixin)
    True
    """

    def mean_filter_navigation(
        self, size=3, inplace=False, lazy_output=None, show_progressbar=None
    ):
        """Replace every pattern by the mean of its ``size x size`` scan neighbourhood.

        The "mean function" preprocessing of Cao et al. 2025 (section "Impact of dataset
        filtering on NMF robustness", Fig. 2): a ``size x size`` kernel slides across the
        scan (navigation axes only; the patterns themselves are not blurred) and every
        diffraction pattern becomes the average of the patterns around it, itself
        included.  Averaging ``n`` patterns divides independent noise by ``sqrt(n)`` (3 for
        the 3 x 3 kernel) at the cost of a spatial resolution of ``size`` scan steps.

        At the scan border the mean is over the neighbours that exist (a normalized box
        filter, the paper's "normalizing the sum of neighboring images"): 4 patterns at a
        corner and 6 along an edge for ``size=3``, 9 inside.  Nothing is padded, so border
        patterns are neither repeated nor mixed with zeros.

        Parameters
        ----------
        size : int, default 3
            Side of the square scan neighbourhood in probe positions: positive, odd and at
            most the scan's shorter side (``size=1`` leaves the values unchanged).
        inplace : bool, default False
            If True, replace this signal's data and return ``None`` (HyperSpy convention);
            otherwise return a new signal and leave this one untouched.
        lazy_output : bool, optional
            Whether the result is lazy (dask-backed).  Default: lazy if this signal is.  The
            lazy filter is a :func:`dask.array.map_overlap` with ``size // 2`` ghost
            positions on the scan axes, so it never loads the whole scan.
        show_progressbar : bool, optional
            Progress bar while a lazy scan is computed into memory (``lazy_output=False``
            on a lazy signal); default HyperSpy's preference.  An in-memory filter is one
            :func:`scipy.ndimage.uniform_filter1d` call per scan axis (no iteration).

        Returns
        -------
        NMFDiffraction2D or LazyNMFDiffraction2D or None
            ``(scan_x, scan_y | kx, ky)`` like this signal: same axes and calibration,
            metadata, dtype float64 for float64 data and float32 otherwise (integer
            counts included).  The title gets " (mean filter 3x3 over the scan)" and
            ``metadata.Signal.mean_filter_navigation`` records ``size`` and the edge
            handling.  The noise variance (``metadata.Signal.Noise_properties``), the
            navigator and any decomposition describe the unfiltered data and are not
            carried over (removed when ``inplace=True``, except the decomposition).
            ``None`` when ``inplace=True``.

        Raises
        ------
        ValueError
            Before any computation: the signal does not have 2 navigation dimensions
            (the scan), or ``size`` is not positive and odd or exceeds the scan.
        TypeError
            If ``size`` is not an integer, ``inplace``/``lazy_output`` are not booleans or
            the data are not real.

        See Also
        --------
        stemnmf_hs.preprocessing.mean_filter_navigation : the array function (numpy/dask).
        get_noise_std : the noise level per pattern, to compare raw and filtered scans.

        Examples
        --------
        >>> import numpy as np
        >>> import hyperspy.api as hs
        >>> rng = np.random.default_rng(0)
        >>> s = hs.signals.Signal2D(rng.poisson(5.0, (10, 10, 16, 16)))
        >>> s.set_signal_type("nmf_diffraction")
        >>> sf = s.mean_filter_navigation(size=3)
        >>> sf.data.dtype, sf.metadata.Signal.mean_filter_navigation.size
        (dtype('float32'), 3)
        >>> nsd_raw = s.get_noise_std(show_progressbar=False).data.mean()
        >>> nsd_filtered = sf.get_noise_std(show_progressbar=False).data.mean()
        >>> bool(nsd_filtered < nsd_raw)
        True
        """
        am = self.axes_manager
        if am.navigation_dimension != 2:
            raise ValueError(
                f"mean_filter_navigation averages over a 2D scan, but this signal has "
                f"{am.navigation_dimension} navigation dimension(s) (shape "
                f"{am.navigation_shape} | {am.signal_shape}). Squeeze length-1 scan axes "
                "with s.squeeze() or make the scan axes the navigation axes with "
                "s.transpose(signal_axes=2)."
            )
        scan_shape = tuple(am.navigation_shape[::-1])
        size = preprocessing.check_filter_size(size, scan_shape)
        inplace = _check_bool(inplace, "inplace")
        lazy_output = _check_lazy_output(lazy_output, is_lazy(self))
        preprocessing.output_dtype(self.data.dtype)  # refuses complex data up front

        if inplace and lazy_output and not is_lazy(self):
            raise ValueError(
                "inplace=True with lazy_output=True cannot turn this in-memory signal lazy in "
                "place; use s.as_lazy().mean_filter_navigation(..., inplace=True), or "
                "inplace=False."
            )
        data = self.data
        if lazy_output and not is_lazy(self):
            import dask.array as da

            sig_axes = {ax: -1 for ax in range(2, data.ndim)}
            data = da.from_array(data, chunks={0: "auto", 1: "auto", **sig_axes})
        filtered = preprocessing.mean_filter_navigation(data, size)

        if inplace:
            out = self
            out.data = filtered
            if out.metadata.has_item("Signal.Noise_properties"):
                del out.metadata.Signal.Noise_properties
            if out.metadata.has_item("_HyperSpy.navigator"):
                del out.metadata._HyperSpy.navigator
        else:
            out = with_new_data(self, filtered)
        title = out.metadata.General.title
        note = f"mean filter {size}x{size} over the scan"
        out.metadata.General.title = f"{title} ({note})" if title else note.capitalize()
        out.metadata.set_item(
            "Signal.mean_filter_navigation",
            {"size": size, "edges": "mean over the in-scan neighbours (normalized)"},
        )
        if is_lazy(out) and not lazy_output:
            out.compute(show_progressbar=show_progressbar)
        return None if inplace else out

    def find_center(self, per_pattern=True, radius=None, inplace=True, show_progressbar=None):
        """Find the direct-beam position from the data and set it as the pattern centre.

        The polar transforms of the continuity constraint, the similarity and template
        matching all turn about the pattern centre; uncalibrated files put it at the
        geometric centre, which is often pixels away from the beam (pyxem 0.21's
        ``calibration.center = None`` alone is half a pixel off: ``(n - 1) / 2``).  The
        centre is the sub-pixel direct-beam position of the scan's mean pattern
        (:func:`stemnmf_hs.preprocessing.beam_center`: blurred maximum, then a
        background-subtracted centre of mass).  With ``per_pattern`` every pattern's beam
        position is measured too (pyxem's ``get_direct_beam_position(method=
        "center_of_mass")`` in a disk around the centre) to report the descan spread; a
        spread above one pixel is worth removing with pyxem's
        ``s.center_direct_beam(method="blur", sigma=...)`` before NMF, since NMF reads a
        moving beam as different diffractions.

        Parameters
        ----------
        per_pattern : bool, default True
            Also measure the beam in every pattern (one pass over the data) to give the
            descan spread; ``False`` reads only the mean pattern (``spread`` is ``nan``).
        radius : float, optional
            Radius (px) of the centre-of-mass disk; default twice the beam's half-maximum
            radius in the mean pattern, at least 3 px.
        inplace : bool, default True
            Set ``s.calibration.center = (x, y)`` (the signal axes' offsets; the data are
            not touched).  ``False`` only returns the position.
        show_progressbar : bool, optional
            Progress bar of the passes over the data; default HyperSpy's preference.

        Returns
        -------
        BeamCenter
            ``(x, y, spread)`` in pixels.

        Raises
        ------
        ValueError
            If the signal is not made of 2D patterns, or the mean pattern holds negative,
            non-finite values or no counts.

        Warns
        -----
        UserWarning
            When the descan spread exceeds one pixel.

        See Also
        --------
        stemnmf_hs.preprocessing.beam_center : the estimator on one pattern.
        pyxem.signals.Diffraction2D.center_direct_beam : shifts every pattern onto the
            centre.

        Examples
        --------
        >>> import numpy as np
        >>> import hyperspy.api as hs
        >>> y, x = np.mgrid[:48, :48]
        >>> beam = 1 + 200 * np.exp(-((x - 30.4) ** 2 + (y - 19.8) ** 2) / 4.5)
        >>> s = hs.signals.Signal2D(np.tile(beam, (3, 4, 1, 1)))
        >>> s.set_signal_type("nmf_diffraction")
        >>> c = s.find_center(show_progressbar=False)
        >>> round(c.x, 1), round(c.y, 1), round(c.spread, 2)
        (30.4, 19.8, 0.0)
        >>> [round(float(v), 1) for v in s.calibration.center]
        [30.4, 19.8]
        """
        am = self.axes_manager
        if am.signal_dimension != 2:
            raise ValueError(
                f"find_center needs 2D diffraction patterns as signal axes; this signal has "
                f"{am.signal_dimension} signal dimension(s). Use s.transpose(signal_axes=2)."
            )
        per_pattern = _check_bool(per_pattern, "per_pattern")
        inplace = _check_bool(inplace, "inplace")
        if am.navigation_dimension:
            mean = self.mean(axis=am.navigation_axes)
            if is_lazy(mean):
                mean.compute(show_progressbar=show_progressbar)
            mean_pattern = np.asarray(mean.data)
        else:
            mean_pattern = np.asarray(self.data)
        cx, cy, r = preprocessing.beam_center(mean_pattern, radius=radius)
        spread = float("nan")
        if per_pattern and am.navigation_dimension:
            shifts = self.get_direct_beam_position(
                method="center_of_mass", mask=(cx, cy, r), lazy_output=False,
            )
            positions = np.asarray(shifts.data, dtype=np.float64)
            # pyxem returns shifts = shape / 2 - position (x, y).
            positions = np.asarray(am.signal_shape, dtype=np.float64) / 2 - positions
            spread = float(np.sqrt(np.mean(np.sum((positions - (cx, cy)) ** 2, axis=-1))))
            if spread > 1:
                warnings.warn(
                    f"The direct beam wanders by {spread:.2f} px (rms) over the scan; NMF "
                    "reads a moving beam as different diffractions. Consider "
                    "s.center_direct_beam(method='blur', sigma=2) (pyxem) before the "
                    "decomposition.",
                    UserWarning,
                    stacklevel=2,
                )
        if inplace:
            self.calibration.center = (cx, cy)
        return BeamCenter(cx, cy, spread)

    def get_noise_std(self, method="rms", show_progressbar=None, lazy_output=None):
        """Noise standard deviation (NSD) of every diffraction pattern, as a scan map.

        The NSD of Cao et al. 2025 (section "Noise standard deviation (NSD) to quantify
        noise influence in diffraction patterns", Fig. 2a and 2d) compares raw and
        filtered scans: lower NSD, less noise for the NMF to fit.  The paper gives the
        formula only in its Supplementary Algorithm SI_1 (not in the article text), so the
        default is a standard estimator of the noise alone; see
        :func:`stemnmf_hs.preprocessing.noise_std` for the formulas.

        Parameters
        ----------
        method : {"rms", "mad", "std"}, default "rms"
            ``"rms"``: root mean square of the finest-scale diagonal Haar wavelet
            coefficients, ``sqrt(mean pixel noise variance)``; valid for Poisson counts and
            insensitive to smooth signal.  ``"mad"``: Donoho & Johnstone's (1994) robust
            ``median(|coefficient|) / 0.6745`` (as :func:`skimage.restoration.estimate_sigma`,
            Haar wavelet); for Gaussian-like noise, quantized on low-count integer data.
            ``"std"``: standard deviation of the pixel values about the pattern mean
            (includes the diffraction contrast; the literal reading of the article text).
        show_progressbar : bool, optional
            Progress bar over the patterns (HyperSpy's ``map``); default HyperSpy's
            preference.
        lazy_output : bool, optional
            Whether the map is lazy; default: lazy if this signal is.

        Returns
        -------
        hyperspy.signals.Signal2D or LazySignal2D
            ``(| scan_x, scan_y)``: the NSD of every pattern, in the units of the data
            (e.g. electrons), on the scan's calibrated axes (a ``Signal1D`` for a line
            scan, a one-value signal for a single pattern).  The overall NSD of the scan,
            as a float:
            ``float(nsd.data.mean())`` (lazy: ``float(nsd.data.mean().compute())``).
            ``metadata.Signal.noise_std.method`` records the estimator.

        Raises
        ------
        ValueError
            Before any computation: an unknown ``method``, a signal that is not made of 2D
            patterns, or patterns smaller than 2 x 2 pixels.
        TypeError
            If ``lazy_output`` is not a boolean.

        See Also
        --------
        stemnmf_hs.preprocessing.noise_std : the estimators on arrays (numpy/dask).
        mean_filter_navigation : the "mean function" filter that lowers the NSD.

        Examples
        --------
        >>> import numpy as np
        >>> import hyperspy.api as hs
        >>> rng = np.random.default_rng(0)
        >>> s = hs.signals.Signal2D(rng.normal(10.0, 2.0, (4, 5, 32, 32)))
        >>> s.set_signal_type("nmf_diffraction")
        >>> nsd = s.get_noise_std(show_progressbar=False)
        >>> nsd.axes_manager.signal_shape
        (5, 4)
        >>> round(float(nsd.data.mean()), 1)
        2.0
        """
        if method not in preprocessing.NOISE_STD_METHODS:
            raise ValueError(
                f"method={method!r} is not a noise estimator; choose one of "
                f"{preprocessing.NOISE_STD_METHODS} (see stemnmf_hs.preprocessing.noise_std)."
            )
        am = self.axes_manager
        if am.signal_dimension != 2:
            raise ValueError(
                f"get_noise_std needs 2D diffraction patterns as signal axes; this signal has "
                f"{am.signal_dimension} signal dimension(s) (shape {am.navigation_shape} | "
                f"{am.signal_shape}). Use s.transpose(signal_axes=2)."
            )
        if method != "std" and min(am.signal_shape) < 2:
            raise ValueError(
                f"The wavelet estimators need patterns of at least 2 x 2 pixels; these are "
                f"{am.signal_shape}. Use method='std'."
            )
        lazy_output = _check_lazy_output(lazy_output, is_lazy(self))

        nsd = self.map(
            preprocessing.noise_std,
            method=method,
            inplace=False,
            output_signal_size=(),
            output_dtype=np.float64,
            show_progressbar=show_progressbar,
            lazy_output=lazy_output,
        )
        nsd.set_signal_type("")  # a map of the scan, not diffraction patterns
        if nsd.axes_manager.navigation_dimension:
            nsd = nsd.T
        title = self.metadata.General.title
        nsd.metadata.General.title = f"Noise standard deviation ({method})" + (
            f" of {title}" if title else ""
        )
        units = data_units(self)
        nsd.metadata.set_item(
            "Signal.quantity", "NSD" + (f" ({units})" if units else "")
        )
        nsd.metadata.set_item("Signal.noise_std", {"method": method})
        return nsd
