"""Memory of an in-memory uint16 scan's decomposition: no whole float32 copy (issue 17)."""

import tracemalloc
import warnings

import hyperspy.api as hs
import numpy as np
import pytest


@pytest.fixture(scope="module")
def uint16_scan():
    rng = np.random.default_rng(0)
    data = np.empty((48, 48, 128, 128), np.uint16)  # 72 MiB; as float32 it would be 144 MiB
    for i in range(data.shape[0]):
        data[i] = rng.poisson(0.8, size=data.shape[1:])
    s = hs.signals.Signal2D(data)
    s.set_signal_type("nmf_diffraction")
    return s


@pytest.mark.parametrize("masked", [False, True])
def test_uint16_decomposition_allocates_far_less_than_a_float32_copy(uint16_scan, masked,
                                                                     monkeypatch):
    from stemnmf_hs.decomposition import _operators

    # 8 MiB blocks (64 MiB by default) so that this small scan is many blocks
    monkeypatch.setattr(_operators, "_BLOCK_BYTES", 1 << 23)
    s = uint16_scan.deepcopy()
    before = s.data.copy()
    y, x = np.mgrid[:128, :128]
    mask = {"signal_mask": np.hypot(x - 64, y - 64) < 5} if masked else {}
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s.decomposition(algorithm="constrained_nmf", output_dimension=3, n_restarts=1,
                            max_iter=3, init_iter=3, random_state=0, print_info=False,
                            show_progressbar=False, **mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    float32_copy = 4 * s.data.size  # 144 MiB: what converting the scan whole would take
    # the converted blocks, factors and maps: bounded, not scan-sized
    assert peak < 0.4 * float32_copy, (peak / 2**20, float32_copy / 2**20)
    np.testing.assert_array_equal(s.data, before)
    assert s.learning_results.factors.shape == (128 * 128, 3)
