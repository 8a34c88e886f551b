"""Loading any 4D-STEM scan as an ``nmf_diffraction`` signal, for the command line.

One of the two modules outside :mod:`stemnmf_hs.signals` that import HyperSpy and pyxem (the
other is :mod:`stemnmf_hs.cli`).  The math modules never import it.

Data flow: file -> :func:`load_scan` (rosettasciio through ``hs.load`` first, then the fpd
HDF5 fallback read with h5py) -> :func:`as_scan` (length-1 axes squeezed, 2 navigation + 2
signal dimensions checked, signal type ``nmf_diffraction`` set) -> the signal the CLI fits.

Every refusal is a :class:`ScanError` (a ``ValueError``) whose message names the file, what it
holds and what to give instead, e.g. the ``.mib`` of a Merlin ``.hdr`` header.

Exceptions to "public API only": none; the axes are read through
``axes_manager.navigation_shape`` / ``signal_shape`` and the data through ``signal.data``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ScanError", "as_scan", "load_scan", "readable_extensions", "shape_text"]

#: Group holding the scan in fpd HDF5 files (``hs.load`` cannot tell them from other HDF5).
FPD_DATASET = "fpd_expt/fpd_data/data"
#: Header files that are not scans, and the data file to give instead (Merlin: ``.mib``).
_HEADER_OF = {".hdr": ".mib"}


class ScanError(ValueError):
    """A file or signal that is not a usable 4D-STEM scan; the message says why and what to do.

    Examples
    --------
    >>> from stemnmf_hs.io import ScanError, load_scan
    >>> issubclass(ScanError, ValueError)
    True
    >>> try:
    ...     load_scan("no_such_scan.hspy")
    ... except (ScanError, OSError) as err:
    ...     print(type(err).__name__)
    ScanError
    """


def shape_text(signal):
    """HyperSpy's ``(navigation|signal)`` shape notation of a signal.

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        Any signal.

    Returns
    -------
    str
        E.g. ``"(36, 36|128, 128)"``; axes in HyperSpy's order (x first).

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> shape_text(hs.signals.Signal2D(np.zeros((2, 3, 4, 5))))
    '(3, 2|5, 4)'
    """
    am = signal.axes_manager
    nav = ", ".join(str(n) for n in am.navigation_shape)
    sig = ", ".join(str(n) for n in am.signal_shape)
    return f"({nav}|{sig})"


def readable_extensions():
    """File extensions rosettasciio reads (lower case, sorted), plus the fpd ``.hdf5``.

    Returns
    -------
    list of str
        E.g. ``[".blo", ".dm4", ..., ".mib", ..., ".zspy"]``.

    Examples
    --------
    >>> exts = readable_extensions()
    >>> {".hspy", ".mib", ".blo", ".zspy", ".hdf5"} <= set(exts)
    True
    """
    from rsciio import IO_PLUGINS

    exts = {f".{e.lower()}" for p in IO_PLUGINS for e in p["file_extensions"]}
    return sorted(exts | {".hdf5"})


def _read_fpd(path, lazy=False):
    """An fpd HDF5 file (``fpd_expt/fpd_data/data``) as a ``Diffraction2D``, or None."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with hyperspy
        return None
    try:
        f = h5py.File(path, "r")
    except OSError:
        return None
    with f:
        if FPD_DATASET not in f:
            return None
        data = np.asarray(f[FPD_DATASET][()])
    data = data.astype(data.dtype.newbyteorder("="))  # native byte order (file is big-endian)
    from pyxem.signals import Diffraction2D

    s = Diffraction2D(data)
    s.metadata.General.title = Path(path).stem
    s.metadata.General.original_filename = Path(path).name
    return s.as_lazy() if lazy else s


def _check_path(path):
    """Refuse a missing file, a folder, or a header given instead of its data file."""
    if path.suffix.lower() in _HEADER_OF:
        data_file = path.with_suffix(_HEADER_OF[path.suffix.lower()])
        where = "" if data_file.exists() else " (not found next to it; keep the two together)"
        raise ScanError(
            f"{path} is a header, not the scan: give its data file {data_file}{where}; the "
            "header is read from beside it"
        )
    if not path.exists():
        raise ScanError(f"no such file: {path}")
    if path.is_dir():
        raise ScanError(f"{path} is a folder; give a data file")


def load_scan(path, lazy=False):
    """Load a 4D-STEM scan as an ``nmf_diffraction`` signal.

    Parameters
    ----------
    path : str or pathlib.Path
        Any file ``hs.load`` opens (rosettasciio: ``.hspy``, ``.zspy``, ``.mib`` with its
        ``.hdr`` beside it, ``.blo``, ``.dm4``, ``.emd``, ...); fpd HDF5 files are read with
        h5py when ``hs.load`` refuses them.
    lazy : bool, default False
        Load lazily (dask-backed signal).

    Returns
    -------
    NMFDiffraction2D or LazyNMFDiffraction2D
        The scan with length-1 axes squeezed out (:func:`as_scan`).

    Raises
    ------
    ScanError
        If the file is missing, a folder, a header (``.hdr``: the message names its
        ``.mib``), unreadable (the message lists the readable extensions when the extension is
        unknown), holds several signals, or is not 2 navigation + 2 signal dimensions.

    See Also
    --------
    as_scan : the same checks on a signal already in memory.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, hyperspy.api as hs
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.hspy"
    >>> hs.signals.Signal2D(np.ones((3, 4, 8, 8), np.float32)).save(path)
    >>> load_scan(path)
    <NMFDiffraction2D, title: , dimensions: (4, 3|8, 8)>
    >>> load_scan(path.with_suffix(".hdr"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stemnmf_hs.io.ScanError: ...scan.hdr is a header, not the scan: give its data file ...scan.mib...
    """
    import hyperspy.api as hs

    path = Path(path)
    _check_path(path)
    try:
        s = hs.load(str(path), lazy=lazy)
    except Exception as exc:
        s = _read_fpd(path, lazy=lazy) if path.suffix.lower() in (".hdf5", ".h5") else None
        if s is None:
            msg = f"cannot read {path}: {exc or type(exc).__name__}"
            if path.suffix.lower() not in readable_extensions():
                msg += f"; readable extensions: {' '.join(readable_extensions())}"
            raise ScanError(msg) from exc
    if isinstance(s, list):
        shapes = ", ".join(f"{type(x).__name__} {shape_text(x)}" for x in s)
        raise ScanError(
            f"{path} holds {len(s)} signals ({shapes}); stemnmf needs a file with one "
            "4D-STEM scan"
        )
    return as_scan(s, source=str(path))


def as_scan(signal, source="the data"):
    """Squeeze length-1 axes, check 2 navigation + 2 signal dims, set ``nmf_diffraction``.

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        The loaded data (changed in place only by ``set_signal_type`` when no axis is
        squeezed).
    source : str
        Name used in error messages.

    Returns
    -------
    NMFDiffraction2D or LazyNMFDiffraction2D

    Raises
    ------
    ScanError
        If the data are not a scan of 2 navigation + 2 signal dimensions, or complex.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> as_scan(hs.signals.Signal2D(np.zeros((1, 2, 3, 4, 4), np.float32)))
    <NMFDiffraction2D, title: , dimensions: (3, 2|4, 4)>
    >>> as_scan(hs.signals.Signal2D(np.zeros((4, 4))))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stemnmf_hs.io.ScanError: the data has shape (|4, 4), i.e. a single pattern; ...
    """
    import stemnmf_hs.signals  # noqa: F401 - registers the nmf_diffraction signal type

    if signal.data.ndim > 1 and 1 in signal.data.shape:
        signal = signal.squeeze()
    am = signal.axes_manager
    if am.navigation_dimension != 2 or am.signal_dimension != 2:
        what = (
            "a single pattern"
            if am.navigation_dimension == 0 and am.signal_dimension == 2
            else f"{am.navigation_dimension} navigation + {am.signal_dimension} signal dimension(s)"
        )
        raise ScanError(
            f"{source} has shape {shape_text(signal)}, i.e. {what}; stemnmf needs a 4D-STEM "
            "scan with 2 navigation + 2 signal dimensions (scan_x, scan_y|kx, ky)"
        )
    if np.issubdtype(signal.data.dtype, np.complexfloating):
        raise ScanError(f"{source} holds complex data; NMF needs real non-negative intensities")
    signal.set_signal_type("nmf_diffraction")
    return signal
