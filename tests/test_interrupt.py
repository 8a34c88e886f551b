"""Ctrl-C stops every mode within 2 s and leaves the signal as it was (issue 15, item 6).

One child process (the imports cost several seconds) runs the modes in turn, each fitting
with ``max_iter=10**6, tol=0`` so that it is surely still fitting on any machine.  It prints
a marker just before each fit; the test sends SIGINT 2 s after the marker and measures how
long the child takes to report the ``KeyboardInterrupt`` (it catches it and goes on to the
next mode).  The last mode, compressed, lets the interrupt end the process: the test measures
the exit too, as the issue asks (subprocess, SIGINT after 2 s of fitting, exit within 2 s).

The child calls ``gc.freeze()`` before the first fit: the interpreter's own teardown of the
~330,000 objects that importing pyxem creates takes ~1.4 s on a loaded 2-core machine, in any
program, and is not what is measured here.
"""

import copy
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from stemnmf_hs.decomposition import as_operator

#: Seconds of fitting before SIGINT, and the most the interrupt may take.
FIT_SECONDS = 2.0
LATENCY = 2.0

CHILD = r"""
import gc
import sys
import warnings

warnings.simplefilter("ignore")
import numpy as np

from stemnmf_hs.signals import NMFDiffraction2D


def scan(ny=32, nx=32, side=64, k=5):
    rng = np.random.default_rng(0)
    maps = rng.random((ny * nx, k), dtype=np.float32)
    patterns = rng.random((k, side * side), dtype=np.float32)
    data = (maps @ patterns).reshape(ny, nx, side, side)
    data += rng.random(data.shape, dtype=np.float32)
    return NMFDiffraction2D(data)


s = scan()
lazy = s.as_lazy()
lazy.data = lazy.data.rechunk((8, 32, 64, 64))
FIT = dict(algorithm="constrained_nmf", output_dimension=4, n_restarts=4, random_state=0,
           center=(32.0, 32.0), print_info=False, show_progressbar=False)


def run(mode, n_iter):
    if mode == "exact":
        s.decomposition(max_iter=n_iter, tol=0, **FIT)
    elif mode == "lazy":
        lazy.decomposition(max_iter=n_iter, tol=0, **FIT)
    elif mode == "compressed":  # init_iter: the ALS start over the restarts, in threads
        s.decomposition(max_iter=n_iter, init_iter=n_iter, tol=0, compression="auto", **FIT)
    elif mode == "sweep":
        s.estimate_number_of_components(range(2, 6), max_iter=n_iter, tol=0, heldout=False,
                                        center=(32.0, 32.0), random_state=0,
                                        show_progressbar=False)


modes = sys.argv[1:]
for mode in modes:  # warm-up: imports, numba kernels compiled or loaded from the cache
    run(mode, 2)
gc.freeze()
for mode in modes:
    print("START", mode, flush=True)
    try:
        run(mode, 10**6)
    except KeyboardInterrupt as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        print("INTERRUPTED", mode, notes, flush=True)
        if mode == modes[-1]:
            raise
    except BaseException as exc:
        print("ERROR", mode, repr(exc), flush=True)
        raise
    else:
        print("FINISHED", mode, flush=True)
"""

MODES = ("exact", "lazy", "sweep", "compressed")


def _reader(stream, lines):
    """Put ``(time, line)`` of every line of ``stream`` on ``lines``; ``None`` at the end."""
    for line in stream:
        lines.put((time.perf_counter(), line.strip()))
    lines.put((time.perf_counter(), None))


def _next_line(lines, timeout, log):
    try:
        when, line = lines.get(timeout=timeout)
    except queue.Empty:
        return None, None
    log.append(line)
    return when, line


@pytest.fixture(scope="module")
def interrupted_child():
    """Run the child through :data:`MODES`, interrupting each after 2 s of fitting.

    Returns ``latency`` (``{mode: seconds from SIGINT to the reported KeyboardInterrupt}``,
    ``None`` for a mode that did not report one within 10 s, after which the child is
    killed), the ``notes`` the interrupts carried, ``exit_after`` (seconds from the last
    SIGINT to the process's exit), the ``returncode``, the child's ``log`` and ``stderr``.
    """
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("SIGINT via send_signal is POSIX only")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *MODES], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines, log = queue.Queue(), []
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    latency, notes, exit_after = {}, {}, None
    try:
        for mode in MODES:
            when, line = _next_line(lines, 300, log)  # imports, warm-up, previous mode
            if line != f"START {mode}":
                break
            time.sleep(max(0.0, when + FIT_SECONDS - time.perf_counter()))
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGINT)
            sent = time.perf_counter()
            when, line = _next_line(lines, 10, log)
            if line is None or not line.startswith(f"INTERRUPTED {mode}"):
                latency[mode] = None
                break
            latency[mode] = when - sent
            notes[mode] = line[len(f"INTERRUPTED {mode}"):].strip()
        else:
            proc.wait(timeout=10)
            exit_after = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"latency": latency, "notes": notes, "exit_after": exit_after,
            "returncode": proc.returncode, "log": log, "stderr": proc.stderr.read()}


def _latency(child, mode):
    """Seconds from SIGINT to ``mode``'s KeyboardInterrupt, failing the test without one."""
    if mode not in child["latency"]:
        pytest.fail(f"{mode} was not reached; the child said {child['log']}\n"
                    f"{child['stderr'][-2000:]}")
    latency = child["latency"][mode]
    assert latency is not None, (f"{mode}: no KeyboardInterrupt within 10 s of SIGINT; the "
                                 f"child said {child['log']}")
    return latency


@pytest.mark.parametrize("mode", ["exact", "lazy", "sweep"])
def test_ctrl_c_stops_each_mode_within_2_s(interrupted_child, mode):
    latency = _latency(interrupted_child, mode)
    assert latency < LATENCY, f"{mode}: KeyboardInterrupt took {latency:.2f} s after SIGINT"


def test_ctrl_c_ends_compressed_fit_process_within_2_s(interrupted_child):
    """The issue's test: compressed mode, SIGINT after 2 s of fitting, exit within 2 s."""
    latency = _latency(interrupted_child, "compressed")
    assert latency < LATENCY, f"KeyboardInterrupt took {latency:.2f} s after SIGINT"
    assert interrupted_child["exit_after"] < LATENCY, (
        f"the process exited {interrupted_child['exit_after']:.2f} s after SIGINT")
    # Ended by the KeyboardInterrupt itself (Python re-raises SIGINT), not by another error.
    assert interrupted_child["returncode"] == -signal.SIGINT, interrupted_child["stderr"][-2000:]
    last = interrupted_child["stderr"].strip().splitlines()
    assert "KeyboardInterrupt" in "\n".join(last[-3:]), interrupted_child["stderr"][-2000:]


@pytest.mark.parametrize("mode", ["exact", "lazy", "compressed"])
def test_interrupted_decomposition_says_the_signal_is_unchanged(interrupted_child, mode):
    _latency(interrupted_child, mode)
    assert "the signal is unchanged" in interrupted_child["notes"][mode]


# ------------------------------------------------------------------ in process: nothing changed
class _InterruptingBar:
    """Stands in for ``tqdm.auto.tqdm`` (the progress-bar hook of every fit): Ctrl-C on the
    third iteration."""

    def __init__(self, iterable, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        for i, item in enumerate(self.iterable):
            if i == 2:
                raise KeyboardInterrupt
            yield item


def _state(signal_):
    """Deep copies of what a decomposition may change: data, learning_results, metadata."""
    data = signal_.data.compute() if hasattr(signal_.data, "compute") else signal_.data
    return (np.array(data, copy=True), copy.deepcopy(signal_.learning_results.__dict__),
            signal_.metadata.as_dictionary())


def _assert_same(before, after):
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1].keys() == after[1].keys()
    for key, value in before[1].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, after[1][key])
        else:
            assert value == after[1][key], key
    np.testing.assert_equal(before[2], after[2])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("previous_fit", [False, True])
@pytest.mark.parametrize("compression", [None, "auto"])
def test_interrupted_decomposition_leaves_signal_unchanged(monkeypatch, lazy, previous_fit,
                                                           compression):
    import tqdm.auto

    from stemnmf_hs.signals import NMFDiffraction2D

    rng = np.random.default_rng(0)
    s = NMFDiffraction2D((rng.random((144, 3)) @ rng.random((3, 576))).reshape(12, 12, 24, 24))
    if lazy:
        s = s.as_lazy()
    fit = {"algorithm": "constrained_nmf", "n_restarts": 2, "max_iter": 6, "init_iter": 3,
           "random_state": 0, "print_info": False, "compression": compression,
           "center": (12, 12)}
    if previous_fit:
        s.decomposition(output_dimension=2, show_progressbar=False, **fit)
    before = _state(s)
    monkeypatch.setattr(tqdm.auto, "tqdm", _InterruptingBar)
    with pytest.raises(KeyboardInterrupt) as info:
        s.decomposition(output_dimension=3, show_progressbar=True, **fit)
    assert "the signal is unchanged" in " ".join(info.value.__notes__)
    _assert_same(before, _state(s))


def test_blocked_products_equal_one_product():
    """Products over a matrix above 128 MiB run block by block (so Ctrl-C is answered
    between blocks) and equal the single product."""
    rng = np.random.default_rng(0)
    X = rng.random((4200, 8200), dtype=np.float32)  # 138 MB: two row blocks
    op = as_operator(X, check_values=False)
    B = rng.random((8200, 3), dtype=np.float32)
    Y = rng.random((4200, 3), dtype=np.float32)
    np.testing.assert_allclose(op.matmat(B), X @ B, rtol=1e-5)
    np.testing.assert_allclose(op.rmatmat(Y), X.T @ Y, rtol=1e-5)
