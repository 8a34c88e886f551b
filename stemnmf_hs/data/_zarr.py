"""One chunked zarr writer for scans larger than memory (the benchmark's dataset B, notebook 05).

Arrays only: numpy in, a zarr array on disk out; never imports HyperSpy (``zarr`` comes with
HyperSpy's ``.zspy`` support and is imported when a function runs).

A scan is written block by block along its first axis (scan rows), as a detector or a
simulation produces it, so the whole scan is never in memory.  When the last block is in,
the store's attributes get the caller's ``attrs`` and ``complete: True``;
:func:`open_complete_zarr` reuses a store only if both are there, so an interrupted write is
rebuilt instead of read.  Read the store lazily with ``dask.array.from_zarr(path)`` and wrap it
in a HyperSpy signal (``hs.signals.Signal2D(arr).as_lazy()``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

import numpy as np

__all__ = ["open_complete_zarr", "write_zarr_scan"]


def _blocks_of(array, rows):
    """Successive ``rows``-row slabs of an array along its first axis (computed if dask)."""
    for r0 in range(0, array.shape[0], rows):
        block = array[r0:r0 + rows]
        yield block.compute() if hasattr(block, "compute") else block


def write_zarr_scan(path, blocks, shape=None, chunks=None, dtype=None, attrs=None):
    """Write a scan to a zarr array block by block along its first axis.

    Parameters
    ----------
    path : str or os.PathLike
        Folder of the zarr store; an existing store there is replaced.
    blocks : array_like or iterable of array_like
        The whole scan (a numpy or dask array, written in slabs of ``chunks[0]`` rows) or an
        iterable (e.g. a generator) of consecutive blocks of shape
        ``(rows_i, *shape[1:])`` whose ``rows_i`` add up to ``shape[0]``.  Each block is cast
        to ``dtype`` as it is (cast first, e.g. clip to the dtype's range, if that matters).
    shape : tuple of int, optional
        Shape of the scan, e.g. ``(ny, nx, py, px)``; required for an iterable of blocks,
        default ``blocks.shape`` for an array.
    chunks : tuple of int, optional
        zarr chunk shape; default ``(rows, *shape[1:])`` with ``rows`` the first block's row
        count for an iterable, ``min(8, shape[0])`` for an array.
    dtype : numpy dtype, optional
        Stored dtype; required for an iterable, default ``blocks.dtype`` for an array.
    attrs : dict, optional
        Stored as the array's attributes after the last block (so a generator may fill the
        dict as it runs, e.g. with statistics of the blocks), together with
        ``complete: True``.

    Returns
    -------
    zarr.Array
        The written store.

    Raises
    ------
    ValueError
        If ``shape``/``dtype`` are missing for an iterable, a block does not fit the shape,
        or the blocks do not fill ``shape[0]`` rows.

    See Also
    --------
    open_complete_zarr : reuse a complete store written with the same attributes.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da
    >>> path = tempfile.mkdtemp() + "/scan.zarr"
    >>> def rows():                          # two scan rows at a time, never the whole scan
    ...     for r0 in range(0, 6, 2):
    ...         yield np.full((2, 5, 4, 4), r0)
    >>> z = write_zarr_scan(path, rows(), shape=(6, 5, 4, 4), dtype="uint16",
    ...                     attrs={"seed": 0})
    >>> z.shape, z.chunks, z.dtype, z.attrs["complete"]
    ((6, 5, 4, 4), (2, 5, 4, 4), dtype('uint16'), True)
    >>> int(da.from_zarr(path)[4, 0, 0, 0].compute())
    4
    >>> write_zarr_scan(path, np.ones((3, 2, 4, 4), np.float32), chunks=(1, 2, 4, 4)).nchunks
    3
    """
    import zarr

    if isinstance(blocks, Iterable) and not hasattr(blocks, "shape"):
        if shape is None or dtype is None:
            raise ValueError(
                "write_zarr_scan needs shape= and dtype= when the blocks come from an "
                f"iterable (got shape={shape!r}, dtype={dtype!r})"
            )
        blocks = iter(blocks)
        first = np.asarray(next(blocks, np.empty((0,) + tuple(shape)[1:])))
        source = _chain(first, blocks)
        rows = max(1, first.shape[0])
    else:
        shape = tuple(blocks.shape) if shape is None else shape
        dtype = blocks.dtype if dtype is None else dtype
        rows = chunks[0] if chunks is not None else min(8, shape[0])
        source = _blocks_of(blocks, rows)
    shape = tuple(int(n) for n in shape)
    chunks = (rows,) + shape[1:] if chunks is None else tuple(chunks)
    if os.path.exists(path):
        shutil.rmtree(path)
    z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype=dtype)
    r0 = 0
    for block in source:
        block = np.asarray(block)
        r1 = r0 + block.shape[0]
        if block.shape[1:] != shape[1:] or r1 > shape[0]:
            raise ValueError(
                f"block of shape {block.shape} at row {r0} does not fit the scan shape {shape}"
            )
        z[r0:r1] = block.astype(z.dtype, copy=False)
        r0 = r1
    if r0 != shape[0]:
        raise ValueError(f"the blocks hold {r0} rows but the scan shape {shape} needs {shape[0]}")
    z.attrs.update({**(attrs or {}), "complete": True})
    return z


def _chain(first, rest):
    yield first
    yield from rest


def open_complete_zarr(path, attrs=None):
    """The zarr array at ``path`` if :func:`write_zarr_scan` completed it with ``attrs``.

    Parameters
    ----------
    path : str or os.PathLike
        Folder of the zarr store.
    attrs : dict, optional
        Attributes the store must hold with equal values (e.g. the generator's parameters;
        JSON values: lists, not tuples).

    Returns
    -------
    zarr.Array or None
        The store opened read-only, or ``None`` when it is missing, unreadable, incomplete
        (an interrupted write) or made with other ``attrs``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = tempfile.mkdtemp() + "/scan.zarr"
    >>> open_complete_zarr(path) is None
    True
    >>> _ = write_zarr_scan(path, np.zeros((2, 2, 3, 3)), attrs={"seed": 1})
    >>> open_complete_zarr(path, {"seed": 1}).shape
    (2, 2, 3, 3)
    >>> open_complete_zarr(path, {"seed": 2}) is None
    True
    """
    import zarr

    if not os.path.isdir(path):
        return None
    try:
        z = zarr.open_array(str(path), mode="r")
    except (OSError, ValueError, KeyError):  # not a (readable) zarr array
        return None
    stored = z.attrs.asdict()
    if not stored.get("complete"):
        return None
    if any(stored.get(key) != value for key, value in (attrs or {}).items()):
        return None
    return z
