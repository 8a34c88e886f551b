"""Tests of the ``stemnmf`` command (``stemnmf_hs.cli``): options, outputs, real files, errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _patterns import CU_CIF

from stemnmf_hs.cli import OUTPUT_FILES, main

#: ../shared/realdata relative to the repository root.
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
FAST = ["-k", "2", "--restarts", "2", "--max-iter", "20", "--no-progressbar"]
OPTIONS = [
    "--components", "-k", "--output", "-o", "--solver", "--no-diffraction-constraint",
    "--no-map-constraint", "--probe-fwhm", "--scan-step", "--restarts", "--max-iter", "--tol",
    "--seed", "--mask-direct-beam", "--clip-negative", "--lazy", "--no-progressbar", "--quiet",
    "--center", "--estimate-k",
]
#: Sections of report.html (its <h2> headings).
REPORT_SECTIONS = ["Input", "Calibration and pattern centre", "Parameters",
                   "Number of components", "Components", "Clustering", "Convergence",
                   "Timings", "Versions"]
#: Where the beam of the offset scan is (px, column first): far from the middle (15.5, 15.5).
BEAM = (20.3, 11.7)


def realfile(name):
    path = REALDATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def assert_outputs(out):
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name


def assert_report(out, n_figures):
    """report.html: one page, every figure embedded, nothing linked, every section."""
    import re

    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == n_figures
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert [h for h in headings if h in REPORT_SECTIONS] == REPORT_SECTIONS
    return page


@pytest.fixture(scope="module")
def offset_scan(tmp_path_factory):
    """A 6 x 6 scan of uncalibrated 32 x 32 patterns, beam at BEAM, two rings mixed."""
    import hyperspy.api as hs

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32]
    r = np.hypot(x - BEAM[0], y - BEAM[1])
    beam = 200 * np.exp(-(r**2) / 3.0)
    rings = [20 * np.exp(-((r - radius) ** 2) / 2.0) for radius in (8, 5)]
    w = rng.random((6, 6))[..., None, None]
    data = rng.poisson(1 + beam + w * rings[0] + (1 - w) * rings[1]).astype(np.float32)
    path = tmp_path_factory.mktemp("offset") / "offset.hspy"
    hs.signals.Signal2D(data).save(path)
    return path


def assert_one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("stemnmf: error: ")
    assert "Traceback" not in err


def test_help_mentions_every_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in OPTIONS:
        assert option in out, option
    assert "default" in out and "stemnmf_output" in out


def test_usage_errors_exit_2(capsys):
    assert main(["-k", "0"]) == 2
    assert_one_line_error(capsys.readouterr().err)
    assert main(["--solver", "nope"]) == 2
    assert_one_line_error(capsys.readouterr().err)
    assert main(["--scan-step", "1.5"]) == 2  # meaningless without --probe-fwhm
    assert_one_line_error(capsys.readouterr().err)


def test_simulation(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(FAST + ["-o", str(out)]) == 0
    assert_outputs(out)
    stdout = capsys.readouterr().out
    assert stdout.strip().splitlines()[-1].endswith(str(out.resolve()))
    summary = (out / "summary.txt").read_text()
    cos = [line for line in summary.splitlines() if "cosine similarity" in line]
    assert len(cos) == 2
    assert "simulation" in summary and "n_iter" in summary and "pyxem" in summary
    values = [float(line.rsplit(" ", 1)[1]) for line in cos]
    assert max(values) > 0.9  # the amorphous matrix is found
    assert "pattern centre (cx, cy) = (64.00, 64.00) px, from the file's calibration" in stdout
    page = assert_report(out, n_figures=4)  # factors, loadings, dendrogram, convergence
    assert "Ground truth (simulation)" in page and "cosine similarity" in page
    assert "K fitted</th><td>2 (given by -k)" in page and "writing results" in page

    import hyperspy.api as hs

    factors = hs.load(out / "factors.hspy")
    loadings = hs.load(out / "loadings.hspy")
    assert factors.data.shape == (2, 128, 128)
    assert loadings.data.shape == (2, 36, 36)
    s = hs.load(out / "decomposition.hspy")
    assert s.learning_results.factors.shape == (128 * 128, 2)


@pytest.mark.parametrize(
    "name",
    [
        "astar_sped_test1.blo",
        "001_4x2_6bit.mib",
        "002_4x2_6bit_roi128.mib",
        "gphase_steel_nbed_subset_2x2.hspy",
        "medipix_fpd_polycrystal_2x2.hdf5",
    ],
)
def test_real_files(name, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(realfile(name)), "-o", str(out), "-q"] + FAST) == 0
    assert_outputs(out)
    captured = capsys.readouterr()
    assert captured.out == ""  # --quiet
    assert "Traceback" not in captured.err
    summary = (out / "summary.txt").read_text()
    assert name in summary and "cosine" not in summary


def test_options_lazy_mask_mu(tmp_path):
    out = tmp_path / "out"
    args = [str(realfile("001_4x2_6bit.mib")), "-o", str(out), "--lazy", "--solver", "mu",
            "--mask-direct-beam", "12", "--probe-fwhm", "2", "--tol", "0", "-q"]
    assert main(args + FAST) == 0
    assert_outputs(out)
    summary = (out / "summary.txt").read_text()
    assert "solver: mu" in summary and "lazy: True" in summary
    assert "radius 12 px" in summary and "scan step: (1.0, 1.0)" in summary
    assert "n_iter: 20" in summary  # tol 0 runs max-iter iterations


def test_single_pattern_refused(tmp_path, capsys):
    path = realfile("amorphous_titan_single_dp.hspy")
    assert main([str(path), "-o", str(tmp_path / "out"), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "(|512, 512)" in err and "2 navigation + 2 signal" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.hspy", "no such file"),
        (lambda d: (d / "junk.xyz").write_text("junk") and d / "junk.xyz", "cannot read"),
        (lambda d: (d / "junk.hspy").write_text("junk") and d / "junk.hspy", "cannot read"),
        (lambda d: d, "folder"),
    ],
)
def test_bad_paths(make, expected, tmp_path, capsys):
    path = make(tmp_path)
    assert main([str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert expected in err


def _save(tmp_path, data, name="scan.hspy"):
    import hyperspy.api as hs

    path = tmp_path / name
    hs.signals.Signal2D(data).save(path, overwrite=True)
    return path


def test_negative_data_refused_then_clipped(tmp_path, capsys):
    data = np.random.default_rng(0).normal(size=(3, 3, 16, 16)).astype(np.float32)
    path = _save(tmp_path, data)
    assert main([str(path), "-o", str(tmp_path / "a"), "-q"] + FAST) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "negative" in err and "--clip-negative" in err
    assert main([str(path), "-o", str(tmp_path / "b"), "-q", "--clip-negative"] + FAST) == 0
    assert_outputs(tmp_path / "b")


def test_wrong_dimensions_and_k(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = _save(tmp_path, rng.random((2, 3, 3, 8, 8), dtype=np.float32), "five.hspy")
    assert main([str(path), "-q"] + FAST) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "(3, 3, 2|8, 8)" in err
    path = _save(tmp_path, rng.random((1, 2, 2, 8, 8), dtype=np.float32), "squeeze.hspy")
    assert main([str(path), "-q", "-k", "5", "--no-progressbar"]) == 1  # 4 positions
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "exceeds the 4 probe positions" in err


def test_console_entry_subprocess(tmp_path):
    out = tmp_path / "out"
    path = realfile("gphase_steel_nbed_subset_2x2.hspy")
    proc = subprocess.run(
        [sys.executable, "-m", "stemnmf_hs.cli", str(path), "-o", str(out)] + FAST,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(str(out.resolve()))
    assert_outputs(out)


def test_header_given_instead_of_mib(tmp_path, capsys):
    header = tmp_path / "scan.hdr"
    header.write_text("HDR,\n")
    assert main([str(header), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "header" in err and str(tmp_path / "scan.mib") in err and "not found" in err
    assert not (tmp_path / "out").exists()


def test_real_header_names_its_mib(capsys):
    header = realfile("001_4x2_6bit.hdr")
    assert main([str(header), "-q"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert f"give its data file {header.with_suffix('.mib')}" in err and "not found" not in err


def test_unknown_extension_lists_readable_formats(tmp_path, capsys):
    path = tmp_path / "junk.xyz"
    path.write_text("junk")
    assert main([str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "readable extensions:" in err and ".mib" in err and ".hspy" in err


@pytest.mark.parametrize("where", ["under_a_file", "is_a_file"])
def test_unwritable_output_refused_before_any_work(where, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "results" if where == "under_a_file" else blocker
    assert main(["-o", str(out)] + FAST) == 1
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert str(out) in captured.err and "--output" in captured.err
    assert "Simulating" not in captured.out and "Constrained NMF" not in captured.out


def test_direct_beam_mask_follows_the_calibrated_centre():
    import hyperspy.api as hs

    from stemnmf_hs.cli import direct_beam_mask

    s = hs.signals.Signal2D(np.zeros((2, 2, 20, 30), np.float32))
    kx, ky = s.axes_manager.signal_axes
    kx.scale = ky.scale = 0.5
    kx.offset, ky.offset = -2.5, -6.0  # centre (cx, cy) = (5, 12) px, not the middle
    mask = direct_beam_mask(s, 3)
    assert mask.shape == (20, 30) and mask.dtype == bool
    rows, cols = np.nonzero(mask)
    assert (cols.mean(), rows.mean()) == (5.0, 12.0)
    assert mask.sum() == 25  # pixels strictly closer than 3 px (pyxem's circular_mask)


def test_former_cli_names_still_importable():
    from stemnmf_hs import cli, data, io

    assert cli.load_scan is io.load_scan and cli.as_scan is io.as_scan
    assert cli.match_ground_truth is data.match_ground_truth


def test_center_option_is_used_printed_and_checked(offset_scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(offset_scan), "-o", str(out), "--center", "20", "12"] + FAST) == 0
    stdout = capsys.readouterr().out
    assert "pattern centre (cx, cy) = (20.00, 12.00) px, given by --center" in stdout
    assert "find_center" not in stdout
    assert "(20.000, 12.000) px, given by --center" in (out / "summary.txt").read_text()
    assert_report(out, n_figures=4)
    import hyperspy.api as hs

    s = hs.load(out / "decomposition.hspy")
    assert tuple(s.metadata.Signal.ConstrainedNMF.parameters.center) == (20.0, 12.0)
    assert [-ax.offset / ax.scale for ax in s.axes_manager.signal_axes] == [20.0, 12.0]
    # outside the pattern: refused before the fit, nothing written
    assert main([str(offset_scan), "-o", str(tmp_path / "bad"), "--center", "40", "3",
                 "-q"] + FAST) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "--center=(40.0, 3.0) lies outside the 32 x 32 pattern" in err
    assert not (tmp_path / "bad").exists()


def test_centre_found_from_the_data_of_an_uncalibrated_scan(offset_scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(offset_scan), "-o", str(out)] + FAST) == 0
    stdout = capsys.readouterr().out
    line = next(ln for ln in stdout.splitlines() if "pattern centre (cx, cy)" in ln)
    assert "found from the data by s.find_center()" in line and "not calibrated" in line
    assert "descan spread" in line
    cx, cy = (float(v) for v in line.split("= (")[1].split(")")[0].split(","))
    assert abs(cx - BEAM[0]) < 0.3 and abs(cy - BEAM[1]) < 0.3  # not the middle (15.5, 15.5)
    assert "found from the data" in (out / "summary.txt").read_text()


def test_estimate_k_chooses_k_and_is_checked_before_any_work(offset_scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(offset_scan), "-o", str(out), "--estimate-k", "1", "3", "-q",
                 "--restarts", "1", "--max-iter", "10", "--no-progressbar"]) == 0
    summary = (out / "summary.txt").read_text()
    assert "suggested by --estimate-k 1 3" in summary and "k sweep: K = 1..3" in summary
    # the pass budget (issue 17): every stage's reads of the data, summed per step
    budget = summary.split("[passes over the data]")[1].split("[")[0]
    for step in ("k sweep", "fit"):
        line = re.search(rf"{step}: (\d+) \((.*)\)", budget)
        stages = dict(item.rsplit(" ", 1) for item in line.group(2).split(", "))
        assert int(line.group(1)) == sum(int(n) for n in stages.values()) > 0
    assert (out / "k_estimate.png").is_file()
    page = assert_report(out, n_figures=4 if "K fitted: 1 " in summary else 5)
    assert "suggested K" in page
    assert main(["--estimate-k", "2", "3"]) == 2  # fewer than 3 values of K
    assert "at least 3 values" in capsys.readouterr().err
    assert main([str(offset_scan), "-o", str(tmp_path / "bad"), "--estimate-k", "2", "40",
                 "-q"]) == 1
    err = capsys.readouterr().err
    assert "KMAX 40 exceeds the 36 probe positions" in err
    assert not (tmp_path / "bad").exists()


def test_no_arguments_in_a_clean_environment(tmp_path):
    """``stemnmf`` (here with few iterations) in an empty folder: its folder, the report,
    no ERROR and no traceback on the terminal."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "NUMBA_CACHE_DIR", "SYSTEMROOT")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "stemnmf_hs.cli", "-k", "2", "--restarts", "1", "--max-iter",
         "5"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    terminal = proc.stdout + proc.stderr
    assert proc.returncode == 0, terminal
    assert "ERROR" not in terminal and "Traceback" not in terminal
    out = tmp_path / "stemnmf_output"
    assert_outputs(out)
    assert_report(out, n_figures=4)
    assert f"Report: {(out / 'report.html').resolve()}" in proc.stdout


@pytest.fixture(scope="module")
def crystal_scan_file(tmp_path_factory):
    """A small simulated Cu-grain scan with its beam energy, saved, and the Cu CIF."""
    from stemnmf_hs.data import simulated_crystal_scan

    folder = tmp_path_factory.mktemp("crystal")
    s, _ = simulated_crystal_scan(scan_shape=(12, 12), pattern_shape=(32, 32))
    s.save(folder / "scan.hspy")
    (folder / "Cu.cif").write_text(CU_CIF)
    return folder




def test_phase_indexes_the_components_and_writes_the_maps(crystal_scan_file, tmp_path,
                                                           capsys):
    from orix import io as orix_io

    out = tmp_path / "out"
    rc = main([str(crystal_scan_file / "scan.hspy"), "--phase",
               str(crystal_scan_file / "Cu.cif"), "-k", "4", "--restarts", "1",
               "--max-iter", "20", "--resolution", "10", "-o", str(out), "--no-progressbar"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Indexing the components against Cu (10 deg grid)" in text
    for name in ("orientation_map.png", "phase_map.png", "templates.png", "crystal_map.h5"):
        assert (out / name).stat().st_size > 0, name
    xmap = orix_io.load(out / "crystal_map.h5")
    assert xmap.shape == (12, 12)
    assert "Cu" in xmap.phases.names
    report = (out / "report.html").read_text()
    assert "Orientation and phase" in report and "score &gt;=" in report
    assert "[orientation and phase]" in (out / "summary.txt").read_text()


@pytest.mark.parametrize("what, expected", [
    ("bad_cif", "phase 'bad' has no space or point group"),
    ("no_energy", "--beam-energy"),
    ("uncalibrated", "reciprocal calibration"),
])
def test_phase_problems_refused_before_the_fit(what, expected, crystal_scan_file, tmp_path,
                                              capsys):
    import hyperspy.api as hs

    scan, cif = crystal_scan_file / "scan.hspy", crystal_scan_file / "Cu.cif"
    if what == "bad_cif":
        cif = tmp_path / "bad.cif"
        cif.write_text("data_nothing\n")
    else:
        s = hs.load(scan)
        if what == "no_energy":
            s.metadata.Acquisition_instrument.TEM.beam_energy = None
            del s.metadata.Acquisition_instrument.TEM.beam_energy
        else:
            for ax in s.axes_manager.signal_axes:
                ax.units = "px"
        scan = tmp_path / "scan.hspy"
        s.save(scan)
    rc = main([str(scan), "--phase", str(cif), "-o", str(tmp_path / "out"), "-q",
               "--no-progressbar"])
    err = capsys.readouterr().err
    assert rc == 1 and expected in err, err
    assert "Constrained NMF" not in err
    assert not (tmp_path / "out" / "factors.hspy").exists()
