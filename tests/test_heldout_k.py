"""Held-out choice of k (issue 14): binomial thinning of counts, gain, rule, low dose."""

import warnings

import dask.array as da
import numpy as np
import pytest

from stemnmf_hs import model_selection as ms
from stemnmf_hs.data import simulated_precipitates


@pytest.fixture(scope="module")
def counts():
    # 300 positions of 80 px: a pattern whose intensity drifts slowly along the scan
    rng = np.random.default_rng(0)
    pattern = rng.gamma(0.5, 1.2, size=80)
    lam = np.outer(1 + 0.5 * np.sin(np.arange(300) / 20), pattern)
    return rng.poisson(lam).astype(np.float32)


def test_thinning_keeps_every_count_and_is_reproducible(counts):
    train, test = ms.thin_counts(counts, 0.5, random_state=3)
    assert train.dtype == test.dtype == np.float32
    assert np.array_equal(train + test, counts)
    assert (train >= 0).all() and (test >= 0).all()
    assert np.array_equal(ms.thin_counts(counts, 0.5, random_state=3)[1], test)
    assert not np.array_equal(ms.thin_counts(counts, 0.5, random_state=4)[1], test)
    assert test.sum() / counts.sum() == pytest.approx(0.5, abs=0.02)
    assert ms.thin_counts(counts, 0.2, random_state=3)[1].sum() / counts.sum() == \
        pytest.approx(0.2, abs=0.02)



@pytest.mark.parametrize("n", [1, 5, 40])
def test_thinning_draws_binomial_counts(n):
    # Counts up to 16 are thinned electron by electron (hashes), larger ones by the compiled
    # binomial: both must give Binomial(n, p) (mean n p, variance n p (1 - p)), whatever
    # the row chunks.
    X = np.full((400, 250), float(n), np.float32)
    X[7] = 0
    test = ms.thin_counts(X, 0.3, random_state=9)[1]
    assert (test[7] == 0).all() and (test == np.rint(test)).all()
    assert test.mean() == pytest.approx(0.3 * n * 399 / 400, rel=0.01)
    assert test[X > 0].var() == pytest.approx(n * 0.3 * 0.7, rel=0.03)
    lazy = ms.thin_counts(da.from_array(X, chunks=(37, 250)), 0.3, random_state=9)[1]
    assert np.array_equal(lazy.compute(), test)


def test_thinned_halves_are_independent_poisson():
    lam = np.full((2000, 50), 3.0)
    X = np.random.default_rng(1).poisson(lam).astype(np.float32)
    train, test = ms.thin_counts(X, 0.5, random_state=0)
    # Poisson(1.5) each: mean = variance, and no correlation between the halves.
    assert test.mean() == pytest.approx(1.5, rel=0.02)
    assert test.var() == pytest.approx(1.5, rel=0.04)
    assert abs(np.corrcoef(train.ravel(), test.ravel())[0, 1]) < 0.01


class _CountingArray:
    """Array-like that counts the reads dask makes of it."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.ndim, self.reads = a, a.shape, a.dtype, a.ndim, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.a[key]


def test_thinning_lazy_scan_without_loading(counts):
    src = _CountingArray(counts)
    X = da.from_array(src, chunks=(64, 80), asarray=True)
    before = src.reads                           # dask's own zero-size read for the meta
    train, test = ms.thin_counts(X, 0.5, random_state=5)
    assert isinstance(train, da.Array) and isinstance(test, da.Array)
    assert src.reads == before                   # nothing read until computed
    assert test.chunks == X.chunks
    assert np.array_equal(test.compute(), ms.thin_counts(counts, 0.5, random_state=5)[1])
    t1, t2 = test.compute(), ms.thin_counts(X, 0.5, random_state=5)[1].compute()
    assert np.array_equal(t1, t2)                # reproducible by seed, block by block
    assert np.array_equal(train.compute() + t1, counts)


def test_gain_is_estimated_from_variance_to_mean(counts):
    cm = ms.count_model(counts)
    assert cm.is_counts and cm.gain == 1.0
    assert cm.gain_estimate == pytest.approx(1.0, abs=0.15)
    cm3 = ms.count_model(4 * counts)             # a detector recording 4 counts per electron
    assert cm3.is_counts and cm3.gain == pytest.approx(4.0, rel=0.15)
    assert "gain" in cm3.message
    train, test = ms.thin_counts(4 * counts, random_state=0, gain=cm3.gain)
    assert np.allclose((train + test) / cm3.gain, np.rint(4 * counts / cm3.gain))
    # lazily, one pass (each chunk with a row of either neighbour): the same estimate,
    # whatever the row chunks, and the same decision
    for rows in (1, 7, 64):
        lazy = da.from_array(4 * counts, chunks=(rows, counts.shape[1]))
        assert ms.estimate_gain(lazy) == ms.estimate_gain(4 * counts)
        assert ms.count_model(lazy).gain == cm3.gain


def test_non_count_data_get_a_clear_message(counts):
    for X in (counts / counts.max(), counts - counts.mean(), counts + 0.3):
        cm = ms.count_model(X)
        assert not cm.is_counts and cm.gain is None
        assert "counts" in cm.message
    assert "not whole numbers" in ms.count_model(counts / counts.max()).message
    assert ms.count_model(counts / 7.0, gain=1 / 7.0).is_counts
    with pytest.raises(ValueError, match="test_fraction"):
        ms.thin_counts(counts, 1.0)


def test_heldout_choice_one_standard_error():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    rows = np.stack([base + 0.5, base + 0.1, base + 1e-4 * rng.standard_normal(400),
                     base + 1e-4 * rng.standard_normal(400) - 1e-6, base + 0.05])
    c = ms.heldout_choice([2, 3, 4, 5, 6], rows)
    assert c["k_min"] in (4, 5) and c["k_one_se"] == 4
    assert c["se"].min() == 0.0 and (c["se"] >= 0).all()


@pytest.fixture(scope="module")
def low_dose_estimate():
    # Kimoto's regime: 1e4 electrons per pattern on 128 x 128 px, under one count per pixel
    # (the scan reduced from 36 x 36 to 24 x 24 positions for time).
    s, _ = simulated_precipitates(seed=0, scan_shape=(24, 24), pattern_shape=(128, 128),
                                  electrons_per_pattern=1e4)
    return s.estimate_number_of_components(range(2, 7), random_state=0,
                                           show_progressbar=False)


def test_suggested_k_at_1e4_electrons_per_pattern(low_dose_estimate):
    est = low_dose_estimate
    assert abs(est.suggested_k - 4) <= 1, est.summary()
    assert est.count_model.is_counts and est.count_model.gain == 1.0
    assert set(est.choices) == {"knee", "cao", "heldout_min", "heldout_one_se"}
    h = est.heldout_score
    assert h["metric"] == "deviance" and h["score"].shape == est.k_values.shape
    text = est.summary()
    assert "held-out deviance" in text and "choices:" in text and "counts:" in text


def test_normalised_scan_falls_back_to_cao():
    s, _ = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(32, 32))
    s.data = s.data / s.data.max()
    with pytest.warns(UserWarning, match="No held-out score: .*not whole numbers"):
        est = s.estimate_number_of_components(range(2, 5), max_iter=10, random_state=0,
                                              show_progressbar=False)
    assert est.heldout_score is None and not est.count_model.is_counts
    assert est.suggested_k == est.cao_k
    assert set(est.choices) == {"knee", "cao"}
    assert "counts: the data are not whole numbers" in est.summary()


def test_lazy_scan_gets_the_heldout_score():
    s, _ = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(32, 32))
    lazy = s.as_lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est = lazy.estimate_number_of_components(range(2, 5), max_iter=10, random_state=0,
                                                 show_progressbar=False)
    ref = s.estimate_number_of_components(range(2, 5), max_iter=10, random_state=0,
                                          show_progressbar=False)
    assert est.heldout_score is not None
    # the same draws of the thinning (seeded per pattern), the same scores
    assert est.suggested_k == ref.suggested_k
    np.testing.assert_allclose(est.heldout_score["score"], ref.heldout_score["score"],
                               rtol=1e-4)


def test_heldout_score_costs_the_lazy_sweep_no_pass_of_its_own():
    """Every k's held-out score and train loss come from one pass after the last fit (each
    chunk read once for both halves): the held-out sweep reads the scan only the one pass
    of the count checks (values and gain together) more than Cao's sweep."""
    s, _ = simulated_precipitates(seed=1, scan_shape=(24, 24), pattern_shape=(32, 32))
    passes = {}
    for heldout in (False, True):
        src = _CountingArray(s.data)
        lazy = s.as_lazy()
        lazy.data = da.from_array(src, chunks=(4, 24, 32, 32), asarray=True)
        before = src.reads
        est = lazy.estimate_number_of_components(range(2, 6), max_iter=10, random_state=0,
                                                 show_progressbar=False, heldout=heldout)
        passes[heldout] = (src.reads - before) / 6           # 6 chunks
        assert (est.heldout_score is not None) == heldout
    assert passes[True] == passes[False] + 1, passes


def test_knee_raises_an_undershooting_heldout_choice_to_distinct_components():
    # Held-out lowest at k = 2, the loss's knee at 4: k = 4 when its components are
    # distinct, the largest distinct k below it when k = 4 holds a near-duplicate pair.
    rng = np.random.default_rng(0)
    reps = {k: rng.random((k, 16, 16)) for k in range(2, 7)}
    loss = [10.0, 6.0, 2.0, 1.9, 1.85]
    sel = ms.select_k(range(2, 7), loss, reps, half_width=1)
    assert sel.knee == 4
    rows = np.array([[1.0, 1.1], [1.5, 1.6], [2.0, 2.1], [2.5, 2.6], [3.0, 3.1]])
    held = ms.heldout_choice(range(2, 7), rows)
    out = ms.combine_k(sel, held, reps)
    assert out["choices"]["heldout_min"] == 2 and out["suggested_k"] == 4
    assert "knee" in out["reason"]
    dup = dict(reps)
    dup[4] = np.concatenate([reps[3], reps[3][:1]])  # k = 4 repeats a diffraction
    sel_dup = ms.select_k(range(2, 7), loss, dup, half_width=1)
    assert ms.combine_k(sel_dup, held, dup)["suggested_k"] == 3
