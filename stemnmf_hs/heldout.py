"""Held-out score of the number of components on electron counts (issue 14).

Binomial thinning splits Poisson counts into independent train and test parts (a count
thinned with probability ``eps`` gives independent Poisson(``eps`` lambda) and
Poisson((1 - ``eps``) lambda) parts; Neufeld, Dharamshi, Gao & Witten, JMLR 25 (2024),
"Data thinning for convolution-closed distributions"); a fit on the train part is scored by
the Poisson deviance of the test part.  :func:`estimate_gain` / :func:`count_model` decide
whether data are counts (and with which detector gain) before anything is thinned.
:mod:`stemnmf_hs.model_selection` combines the score with Cao's criteria and re-exports
these names.

Math module: arrays in (numpy or dask), arrays out; never imports HyperSpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numba
import numpy as np

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "ELECTRON_GAIN_RANGE",
    "HELDOUT_METRICS",
    "HELDOUT_RULES",
    "CountModel",
    "count_model",
    "estimate_gain",
    "heldout_choice",
    "heldout_pass",
    "heldout_scores",
    "thin_counts",
]

#: Share of the counts thinned into the test half (Neufeld et al. 2024: epsilon).
DEFAULT_TEST_FRACTION = 0.2
#: Held-out choices of :func:`heldout_choice`.
HELDOUT_RULES = ("min", "one_se")
#: Integer-valued data whose variance-to-mean ratio lies in this range are electron counts.
ELECTRON_GAIN_RANGE = (0.5, 2.0)


def _is_dask(X):
    return type(X).__module__.split(".")[0] == "dask"


def _row_blocks(n, block_rows):
    for start in range(0, n, block_rows):
        yield start, min(n, start + block_rows)


def _block_rows(n_features, block_bytes=1 << 24):
    return max(1, block_bytes // max(1, 8 * n_features))


def estimate_gain(X):
    """Variance-to-mean ratio of the counts: the detector gain (counts per electron).

    For Poisson electrons recorded with ``g`` counts each, ``x = g n`` has ``var x = g E[x]``.
    The variance is read off triples of consecutive patterns ``a, b, c`` (neighbouring probe
    positions along the scan rows): the second difference ``d = x_b - (x_a + x_c) / 2`` has
    variance ``g (E x_b + (E x_a + E x_c) / 4)`` where the expected pattern changes linearly
    (or not at all) along the three positions, so per pixel ``f``, ``r_f = sum d^2 / sum
    (x_b + (x_a + x_c) / 4)`` is ``g`` there and larger where the expectation bends.  The
    median of ``r_f`` over the pixels with the most counts (the upper three quarters of the
    pixel totals) is robust to the few pixels (crystal spots at grain edges) whose
    expectation changes abruptly.

    Parameters
    ----------
    X : array_like or dask.array.Array
        ``(n_positions, n_pixels)`` non-negative data, rows in scan order.

    Returns
    -------
    float
        Estimated gain in data units per electron (``nan`` if the data hold no counts).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import estimate_gain
    >>> rng = np.random.default_rng(0)
    >>> counts = rng.poisson(np.full((400, 50), 3.0)).astype(np.float32)
    >>> round(estimate_gain(counts)), round(estimate_gain(8 * counts))
    (1, 8)
    """
    if _is_dask(X):
        import dask

        d2, m = dask.compute(_lazy_triple_sums(X))[0]
    else:
        d2, m = _triple_sums(np.asarray(X))
    return _gain_from_sums(d2, m)


def _triple_sums(X):
    """``(sum_b d^2, sum_b (x_b + (x_a + x_c) / 4))`` per pixel over the triples of
    consecutive rows of ``X`` whose centre ``b`` is a row of ``X`` with both neighbours in
    it, by row blocks (bounded float64 temporaries)."""
    n, f = X.shape
    d2, m = np.zeros(f), np.zeros(f)
    for start, stop in _row_blocks(max(0, n - 2), _block_rows(f)):
        a, b, c = (X[start + i:stop + i].astype(np.float64) for i in range(3))
        d2 += ((b - (a + c) / 2) ** 2).sum(axis=0)
        m += (b + (a + c) / 4).sum(axis=0)
    return d2, m


def _lazy_triple_sums(X):
    """:func:`_triple_sums` of a dask ``X`` as a lazy ``(2, F)`` array: every chunk with one
    row of each neighbour (``map_overlap``), so each triple is counted once, by the chunk
    of its centre, and the scan is read once (with the count checks of
    :func:`count_model` in the same pass)."""
    import dask.array as da

    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    sums = X.map_overlap(lambda x: np.stack(_triple_sums(x)), depth={0: 1, 1: 0},
                         boundary="none", trim=False, dtype=np.float64,
                         chunks=((2,) * X.numblocks[0], (X.shape[1],)))
    return da.stack([sums[0::2].sum(axis=0), sums[1::2].sum(axis=0)])


def _gain_from_sums(d2, m):
    """The median ratio of :func:`estimate_gain` from the per-pixel triple sums."""
    d2, m = np.asarray(d2), np.asarray(m)
    ok = m > 0
    if not ok.any():
        return float("nan")
    keep = ok & (m >= np.quantile(m[ok], 0.25))
    return float(np.median(d2[keep] / m[keep]))


@dataclass
class CountModel:
    """Whether the data are counts that binomial thinning can split (see :func:`count_model`).

    Attributes
    ----------
    is_counts : bool
    gain : float or None
        Data units per electron used for the thinning (``None`` when not counts).
    gain_estimate : float
        Variance-to-mean ratio of :func:`estimate_gain`.
    message : str
        What was decided and why; for data that are not counts, what to do.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import count_model
    >>> cm = count_model(np.random.default_rng(0).poisson(2.0, (100, 20)).astype(float))
    >>> cm.is_counts, cm.gain
    (True, 1.0)
    """

    is_counts: bool
    gain: float | None
    gain_estimate: float
    message: str


def count_model(X, gain=None):
    """Decide whether ``X`` holds counts, and their gain, before thinning.

    * Negative or non-finite values: not counts.
    * ``gain`` given: the data are ``gain`` times electron counts; the electrons
      ``rint(X / gain)`` are thinned.
    * Whole-number data whose variance-to-mean ratio (:func:`estimate_gain`) lies in
      :data:`ELECTRON_GAIN_RANGE` (0.5-2): electron counts (gain 1), thinned as they are.
      Whole numbers with a larger ratio: counts of a detector with that gain (e.g. ADU); the
      electrons ``rint(X / gain_estimate)`` are thinned (a ratio under 0.5 -- e.g. a summed
      or binned integer image -- is refused).
    * Other values (normalised, background-subtracted, calibrated): not counts -- binomial
      thinning needs Poisson counts, and a variance-to-mean ratio alone cannot tell a gain
      from a normalisation.

    Parameters
    ----------
    X : array_like or dask.array.Array
        ``(n_positions, n_pixels)`` data, rows in scan order.
    gain : float, optional
        Known detector gain (data units per electron).

    Returns
    -------
    CountModel

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import count_model
    >>> X = np.random.default_rng(0).poisson(2.0, (100, 20)).astype(float)
    >>> count_model(X / X.max()).is_counts
    False
    >>> count_model(X / X.max(), gain=1 / X.max()).is_counts
    True
    """
    if _is_dask(X):  # the checks and the gain's sums in one pass over the scan
        import dask
        import dask.array as da

        finite, nonneg, whole, sums = dask.compute(
            da.isfinite(X).all(), (X >= 0).all(), (X == da.rint(X)).all(),
            _lazy_triple_sums(X))
        g = _gain_from_sums(*sums)
    else:  # by row blocks: no scan-sized temporaries, and Ctrl-C is answered between them
        X = np.asarray(X)
        finite = nonneg = whole = True
        for start, stop in _row_blocks(X.shape[0], _block_rows(X.shape[1])):
            x = X[start:stop]
            finite = finite and bool(np.isfinite(x).all())
            nonneg = nonneg and bool((x >= 0).all())
            whole = whole and bool((x == np.rint(x)).all())
        g = None
    if not (finite and nonneg):
        return CountModel(False, None, float("nan"),
                          "the data hold negative or non-finite values, so they are not "
                          "counts; binomial thinning needs counts.")
    if g is None:
        g = estimate_gain(X)
    if gain is not None:
        gain = float(gain)
        if not gain > 0:
            raise ValueError(f"gain must be a positive number of data units per electron; "
                             f"got {gain!r}.")
        return CountModel(True, gain, g, f"counts with the given gain {gain:.4g} per electron "
                          f"(variance-to-mean ratio {g:.3g}); thinned as rint(X / gain).")
    if whole and ELECTRON_GAIN_RANGE[0] <= g <= ELECTRON_GAIN_RANGE[1]:
        return CountModel(True, 1.0, g, f"whole numbers with variance-to-mean ratio {g:.3g} "
                          "(about 1): electron counts, thinned as they are.")
    if whole and g > ELECTRON_GAIN_RANGE[1]:
        return CountModel(True, g, g, f"whole numbers with variance-to-mean ratio {g:.3g}: "
                          f"counts of a detector with gain {g:.3g} per electron (estimated); "
                          "the electrons rint(X / gain) are thinned. Pass gain= if known.")
    what = ("whole numbers with a variance-to-mean ratio of "
            f"{g:.3g}, under the 0.5 of counts" if whole else
            "not whole numbers (normalised, background-subtracted or calibrated data?)")
    return CountModel(False, None, g,
                      f"the data are {what}; the held-out score splits counts by binomial "
                      "thinning and needs Poisson counts. If the data are counts times a "
                      f"known gain, pass gain= (data units per electron; the variance-to-mean "
                      f"ratio here is {g:.3g}).")


def _seed_int(random_state):
    if random_state is None or isinstance(random_state, Integral):
        return None if random_state is None else int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int32).max))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator; got "
                     f"{random_state!r}.")


#: Counts up to this are thinned electron by electron with a hash, larger ones by numba's
#: binomial (:func:`_binomial_rows`).
_HASHED_COUNTS = 16
#: splitmix64's increment, 2^64 / golden ratio.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _mix64(z):
    """splitmix64's finaliser (Steele, Lea & Flood, OOPSLA 2014): a 64-bit hash."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def _binomial_rows(block, p, threshold, gain, seed, row0, col0, train, out):
    """``out[i, j] ~ Binomial(rint(block[i, j] / gain), p)`` (float32 division, as numpy's).

    Row ``i`` has the key ``h = mix(mix(mix(seed) ^ (row0 + i)) ^ col0)``.  A count ``n``
    of at most :data:`_HASHED_COUNTS` (nearly every non-zero pixel below ~10^5 electrons
    per pattern) is the number of its electrons ``t < n`` whose splitmix64 output ``mix((h
    + j * golden) ^ (t << 58))`` (pixel ``j``) lies below ``threshold = p 2^64``; larger
    counts take numba's ``np.random.binomial`` from a Mersenne Twister seeded by the row
    key, in pixel order (23 ns a call: on a 0.15-count scan the hashes make the thinning
    1.4x faster); zeros draw nothing.  Every draw depends on ``(seed, row, first column,
    pixel)`` only, not on how the rows are chunked.  ``train``: ``out`` receives the rest
    of the count, ``n - draw``, instead (the same draws: either half from one read of the
    block).
    """
    n_rows, n_cols = block.shape
    base = _mix64(np.uint64(seed))
    for i in range(n_rows):
        h = _mix64(_mix64(base ^ np.uint64(row0 + i)) ^ np.uint64(col0))
        np.random.seed(np.uint32(h & np.uint64(0xFFFFFFFF)))
        for j in range(n_cols):
            v = np.float32(block[i, j])
            if v == 0:
                out[i, j] = 0.0
                continue
            n = np.int64(np.rint(v / gain))
            if n <= 0:
                d = 0
                n = 0
            elif n <= _HASHED_COUNTS:  # n Bernoulli draws, one hash each
                key = h + np.uint64(j) * _GOLDEN
                d = 0
                for t in range(n):
                    if _mix64(key ^ (np.uint64(t) << np.uint64(58))) < threshold:
                        d += 1
            else:
                d = np.random.binomial(n, p)
            out[i, j] = n - d if train else d
    return out


def _thin_block(block, p, gain, seed, half="test", block_info=None, origin=(0, 0)):
    """One half of one block (:func:`_binomial_rows`), float32 in data units, from the
    block in its own dtype (a uint16 chunk is read and converted in the same loop): the
    draws do not depend on the row chunks; the compiled loop releases the GIL (dask's
    threads thin blocks in parallel) and draws nothing for zero counts (sparse low-dose
    scans: ~0.04 s per 16.7 M pixels at 0.15 counts per pixel on one core, 10x numpy's
    per-element binomial)."""
    if block_info is not None and 0 in block_info:
        origin = tuple(loc[0] for loc in block_info[0]["array-location"])
    block = np.ascontiguousarray(block)
    out = np.empty(block.shape, np.float32)
    threshold = np.uint64(min(int(float(p) * 2.0 ** 64), 2 ** 64 - 1))
    _binomial_rows(block, float(p), threshold, np.float32(gain), int(seed), int(origin[0]),
                   int(origin[1]), half == "train", out)
    return out if gain == 1.0 else out * np.float32(gain)


def thin_counts(X, test_fraction=DEFAULT_TEST_FRACTION, random_state=None, gain=1.0):
    """Split counts into independent train and test halves by binomial thinning.

    Every count is sent to the test half with probability ``test_fraction`` (``epsilon``):
    a Poisson(``lambda``) count gives independent Poisson(``epsilon lambda``) and
    Poisson(``(1 - epsilon) lambda``) parts (Neufeld, Dharamshi, Gao & Witten, "Data
    thinning for convolution-closed distributions", JMLR 25, 2024).  A fit on the train half
    predicts ``epsilon / (1 - epsilon)`` times its reconstruction for the test half, and the
    noise of the test half is independent of the fit.

    Parameters
    ----------
    X : array_like or dask.array.Array
        ``(n_positions, n_pixels)`` counts (whole numbers; with ``gain``, ``gain`` times
        whole numbers of electrons).  A dask array is thinned block by block, lazily.
    test_fraction : float, default 0.5
        ``epsilon``, in ``(0, 1)``.
    random_state : int, RandomState or Generator, optional
        Seed; the same seed gives the same halves, in memory and lazily alike (every
        pattern is thinned by its own generator, seeded by a hash of ``(seed, row)``; a dask array
        must not be chunked along the pixels for that).
    gain : float, default 1.0
        Data units per electron: the electrons ``rint(X / gain)`` are thinned and both
        halves returned in data units.

    Returns
    -------
    train, test : numpy.ndarray or dask.array.Array
        ``(n_positions, n_pixels)`` float32; ``train + test == X`` exactly for whole-number
        data with ``gain=1`` (``== gain * rint(X / gain)`` otherwise).

    Raises
    ------
    ValueError
        On a ``test_fraction`` outside ``(0, 1)``, a non-positive gain or a bad
        ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import thin_counts
    >>> X = np.random.default_rng(0).poisson(5.0, (6, 4)).astype(np.float32)
    >>> train, test = thin_counts(X, random_state=0)
    >>> bool((train + test == X).all()), bool((test <= X).all())
    (True, True)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1; got "
                         f"{test_fraction!r}.")
    gain = float(gain)
    if not gain > 0:
        raise ValueError(f"gain must be positive; got {gain!r}.")
    seed = _seed_int(random_state)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    p = float(test_fraction)
    if _is_dask(X):
        import dask.array as da

        # each half straight from the chunk in its own dtype: one read, one float32 write
        # per chunk and pass (no float32 copy of the scan, no subtraction pass)
        train, test = (da.map_blocks(_thin_block, X, p, gain, seed, half, dtype=np.float32)
                       for half in ("train", "test"))
        return train, test
    X = np.asarray(X)
    train, test = np.empty(X.shape, np.float32), np.empty(X.shape, np.float32)
    for start, stop in _row_blocks(X.shape[0], _block_rows(X.shape[1])):
        for half, out in (("train", train), ("test", test)):
            out[start:stop] = _thin_block(X[start:stop], p, gain, seed, half,
                                          origin=(start, 0))
    return train, test


#: Scores of :func:`heldout_scores`.
HELDOUT_METRICS = ("deviance", "squared")


def heldout_scores(test, maps, components, scale, floor=1e-6):
    """Per-pattern held-out scores of one fit: Poisson deviance and squared error.

    The prediction for the test half is ``mu = scale * maps @ components`` (``scale =
    epsilon / (1 - epsilon)`` for a fit on the train half), floored at ``floor`` inside the
    deviance's logarithm.  Per pattern (row), the mean over pixels of the Poisson deviance
    ``2 [y log(y / mu) - (y - mu)]`` and of the squared error ``(y - mu)^2``.  The one-fit
    form of :func:`heldout_pass`.

    Parameters
    ----------
    test : array_like or dask.array.Array
        ``(n_positions, n_pixels)`` test half.
    maps : array_like
        ``(n_positions, k)`` maps of the fit on the train half.
    components : array_like
        ``(k, n_pixels)`` its diffractions.
    scale : float
        Ratio of the test to the train expectation.
    floor : float, default 1e-6
        Smallest prediction in the deviance (data units).

    Returns
    -------
    dict
        ``"deviance"`` and ``"squared"``: ``(n_positions,)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import heldout_scores
    >>> y = np.array([[0.0, 2.0], [1.0, 1.0]])
    >>> s = heldout_scores(y, np.ones((2, 1)), np.array([[1.0, 1.0]]), 1.0)
    >>> s["squared"].tolist()
    [1.0, 0.0]
    """
    return heldout_pass(test, [(maps, components)], scale, floor=floor)["scores"][0]


def heldout_pass(test, fits, scale, train=None, floor=1e-6, show_progressbar=False):
    """Held-out scores of several fits, and their train losses, in one pass over the data.

    For every fit ``(maps, components)`` and every pattern: the scores of
    :func:`heldout_scores` on the test half; with ``train``, also the K-component loss
    ``mean |train - maps @ components|`` (Cao et al. 2025, "K-Component loss") and the
    Frobenius error over the whole train half.  Each block of the halves is read (for lazy
    halves from :func:`thin_counts`: read *and thinned*) once for all fits -- the k sweep's
    19 fits cost one pass, not 38.  Per pattern and fit, the prediction ``mu = scale *
    maps @ components`` is formed block by block and never held whole; the logarithms only
    where the test counts are non-zero.

    Parameters
    ----------
    test : array_like or dask.array.Array
        ``(n_positions, n_pixels)`` test half.
    fits : sequence of (array_like, array_like)
        Per fit, ``(n_positions, k)`` maps and ``(k, n_pixels)`` diffractions of the fit on
        the train half (``k`` may differ between fits).
    scale : float
        Ratio of the test to the train expectation (``epsilon / (1 - epsilon)``).
    train : array_like or dask.array.Array, optional
        ``(n_positions, n_pixels)`` train half (same kind and row chunks as ``test``).
    floor : float, default 1e-6
        Smallest prediction in the deviance (data units).
    show_progressbar : bool, default False
        A progress bar over the blocks (dask's for a lazy scan).

    Returns
    -------
    dict
        ``"scores"``: per fit, the dict of :func:`heldout_scores`; with ``train``,
        ``"loss"`` ``(n_fits,)`` K-component losses (data units per pixel) and ``"error"``
        ``(n_fits,)`` Frobenius errors (data units).

    Raises
    ------
    ValueError
        If a fit's shapes do not match the data.

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import heldout_pass
    >>> y = np.array([[0.0, 2.0], [1.0, 1.0]])
    >>> out = heldout_pass(y, [(np.ones((2, 1)), np.array([[1.0, 1.0]]))], 1.0, train=y)
    >>> out["scores"][0]["squared"].tolist(), out["loss"].tolist()
    ([1.0, 0.0], [0.5])
    """
    n, f = test.shape
    fits = [(np.asarray(m, dtype=np.float32), np.ascontiguousarray(c, dtype=np.float32))
            for m, c in fits]
    for m, c in fits:
        if m.shape[0] != n or c.shape[1] != f or m.shape[1] != c.shape[0]:
            raise ValueError(f"a fit of maps {m.shape} and components {c.shape} does not "
                             f"match data of shape {(n, f)}.")
    if train is not None and tuple(train.shape) != (n, f):
        raise ValueError(f"train {tuple(train.shape)} and test {(n, f)} differ in shape.")
    maps = np.concatenate([m for m, _ in fits], axis=1)
    comps = [c for _, c in fits]
    args = (comps, np.float32(scale), floor)
    if _is_dask(test):
        import dask
        import dask.array as da
        from threadpoolctl import threadpool_limits

        if test.numblocks[1] != 1:
            test = test.rechunk({1: -1})
        M = da.from_array(maps, chunks=(test.chunks[0], -1))
        x = None if train is None else train.rechunk(test.chunks)
        out = da.map_blocks(_pass_chunk, M, test, x, *args, new_axis=2,
                            chunks=(test.chunks[0], (len(fits),), (4,)), dtype=np.float64)
        ctx = _progress(show_progressbar)
        with ctx, threadpool_limits(limits=1, user_api="blas"):
            per_row = dask.compute(out)[0]
    else:
        per_row = np.empty((n, len(fits), 4))
        for start, stop in _row_blocks(n, _block_rows(f)):
            x = None if train is None else train[start:stop]
            per_row[start:stop] = _pass_chunk(maps[start:stop], test[start:stop], x, *args)
    scores = [{"deviance": per_row[:, j, 0], "squared": per_row[:, j, 1]}
              for j in range(len(fits))]
    result = {"scores": scores}
    if train is not None:
        sums = per_row[:, :, 2:].sum(axis=0)
        result["loss"] = sums[:, 0] / max(n * f, 1)
        result["error"] = np.sqrt(sums[:, 1])
        if not np.isfinite(sums).all():
            raise ValueError("the K-component loss is not finite: the data or the "
                             "reconstruction contain NaN or infinite values.")
    return result


def _progress(show):
    if show:
        from dask.diagnostics import ProgressBar

        return ProgressBar()
    import contextlib

    return contextlib.nullcontext()


def _pass_chunk(m, y, x, comps, scale, floor):
    """``(b, n_fits, 4)``: per pattern and fit, mean deviance and mean squared error of the
    test block ``y``, and (with the train block ``x``) ``sum |x - m d|`` and ``sum (x - m
    d)^2`` over the pixels; by sub-blocks of 128 rows (bounded temporaries)."""
    y = np.asarray(y, dtype=np.float32)
    b, f = y.shape
    out = np.zeros((b, len(comps), 4))
    for s in range(0, b, 128):
        e = min(b, s + 128)
        ys = y[s:e]
        idx = np.flatnonzero(ys)               # the log only where y > 0
        yp = ys.ravel()[idx].astype(np.float64)
        rows = np.searchsorted(idx, np.arange(e - s) * f)  # each row's first
        ylogy, y2, ysum = (_row_sums(v, rows) for v in (yp * np.log(yp), yp * yp, yp))
        o = 0
        for j, d in enumerate(comps):
            rec = m[s:e, o:o + d.shape[0]] @ d          # train-scale reconstruction
            o += d.shape[0]
            mu_nz = scale * rec.ravel()[idx].astype(np.float64)
            mu_sum = scale * rec.sum(axis=1, dtype=np.float64)
            mu_mu = scale * scale * np.einsum("ij,ij->i", rec, rec, dtype=np.float64)
            ymu = _row_sums(yp * mu_nz, rows)
            out[s:e, j, 1] = np.maximum(y2 - 2.0 * ymu + mu_mu, 0.0) / f
            # 2 [y log y - y log mu - (y - mu)], summed over the pixels of each pattern
            ylogmu = _row_sums(yp * np.log(np.maximum(mu_nz, floor)), rows)
            out[s:e, j, 0] = 2.0 * (ylogy - ylogmu - ysum + mu_sum) / f
            if x is not None:
                np.subtract(np.asarray(x[s:e], dtype=np.float32), rec, out=rec)
                out[s:e, j, 3] = np.einsum("ij,ij->i", rec, rec, dtype=np.float64)
                np.abs(rec, out=rec)
                out[s:e, j, 2] = rec.sum(axis=1, dtype=np.float64)
    return out


def _row_sums(values, starts):
    """Sums of the consecutive segments of ``values`` that begin at ``starts`` (sorted;
    a segment is empty where the next start equals its own)."""
    out = np.zeros(len(starts))
    if values.size == 0:
        return out
    bounds = np.append(starts, values.size)
    full = np.flatnonzero(bounds[1:] > bounds[:-1])
    out[full] = np.add.reduceat(values, starts[full], dtype=np.float64)
    return out


def heldout_choice(k_values, row_scores):
    """The ``k`` of lowest held-out score, and the smallest ``k`` within one standard error.

    Parameters
    ----------
    k_values : array_like of int
        ``(n,)`` increasing fitted ``k``.
    row_scores : array_like
        ``(n, n_positions)`` per-pattern held-out scores of every fit
        (:func:`heldout_scores`).

    Returns
    -------
    dict
        ``"score"`` ``(n,)`` mean score; ``"se"`` ``(n,)`` standard error of each fit's mean
        score *minus the best fit's* (paired over patterns; 0 at the best); ``"k_min"`` the
        ``k`` of the lowest score; ``"k_one_se"`` the smallest ``k`` whose score is within
        one such standard error of the lowest (the "one-standard-error rule" of Hastie,
        Tibshirani & Friedman, *Elements of Statistical Learning*, 7.10).

    Examples
    --------
    >>> import numpy as np
    >>> from stemnmf_hs.model_selection import heldout_choice
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random(50)
    >>> rows = np.stack([base + 1.0, base + 0.2, base + 0.001 * rng.random(50), base + 0.01])
    >>> c = heldout_choice([1, 2, 3, 4], rows)
    >>> c["k_min"], c["k_one_se"]
    (3, 3)
    """
    ks = np.asarray(k_values, dtype=np.int64)
    rows = np.asarray(row_scores, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] != ks.size:
        raise ValueError(f"row_scores must be (n_k={ks.size}, n_positions); got {rows.shape}.")
    score = rows.mean(axis=1)
    best = int(np.argmin(score))
    diff = rows - rows[best]
    se = diff.std(axis=1, ddof=1) / np.sqrt(max(1, rows.shape[1]))
    within = np.flatnonzero(score - score[best] <= se)
    return {"score": score, "se": se, "k_min": int(ks[best]),
            "k_one_se": int(ks[within[0]])}


# ----------------------------------------------------------------------- the pipeline
