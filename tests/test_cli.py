"""The ``monitor`` command run as a user runs it: a subprocess, its exit code, stdout, stderr."""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devices.simulation.abp_waveform import synthesize_abp
from monitor import core
from monitor.analysis.validation import run_detector
from monitor.cli.args import LogfmtFormatter
from monitor.core.beat_types import QUALITY_NAMES

from conftest import DATA, reference_record

FIXTURE = "cliffordlab_TestICUdata"
FIXTURE_CSV = DATA / FIXTURE / "abp.csv.gz"
MIXED = DATA / "wfdb" / "mixedsignals.hea"
HEADER = "onset,end,time_s,sbp,dbp,map,pulse_rate,clean,flags"
PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
TIMEOUT_S = 60
#: Not the repository root: there `python -m monitor` would import the source
#: tree instead of the installed package with its compiled core.
RUN_DIR = Path(__file__).resolve().parent


def monitor(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
        cwd=RUN_DIR,
    )


def quiet(stderr: str) -> bool:
    """Nothing on stderr but the warning that the pure-Python core runs, when it is forced."""
    lines = stderr.splitlines()
    if PURE_PYTHON:
        lines = [line for line in lines if "pure-Python reference" not in line]
    return lines == []


def rows(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *named: object):
    """Exit 2, and stderr is one line that starts with the command and names what was wrong."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"monitor {command}: ")
    for text in named:
        assert str(text) in result.stderr


def write_csv(path: Path, time: np.ndarray, pressure: np.ndarray) -> Path:
    with path.open("w") as f:
        f.write("time,abp_mmHg\n")
        np.savetxt(f, np.column_stack((time, pressure)), fmt="%.4f", delimiter=",")
    return path


@pytest.fixture(scope="module")
def icu_beats() -> subprocess.CompletedProcess:
    """``monitor beats`` on the ICU fixture, run once for the tests that read its output."""
    return monitor("beats", FIXTURE_CSV)


# --- monitor beats ------------------------------------------------------------


def test_beats_writes_the_documented_header_then_one_parseable_row_per_beat(icu_beats):
    assert icu_beats.returncode == 0, icu_beats.stderr
    assert quiet(icu_beats.stderr)
    lines = icu_beats.stdout.splitlines()
    assert lines[0] == HEADER
    assert len(lines) > 300  # 300 s at 76 bpm
    for row in rows(icu_beats.stdout):
        assert int(row["onset"]) < int(row["end"])
        assert float(row["dbp"]) < float(row["map"]) < float(row["sbp"])
        assert float(row["pulse_rate"]) > 0
        assert row["clean"] in ("0", "1")
        assert set(filter(None, row["flags"].split("|"))) <= set(QUALITY_NAMES)


def test_beats_are_those_the_core_finds_on_the_same_samples(icu_beats):
    record = reference_record(FIXTURE)
    want, _ = run_detector(core.BeatDetector, record.samples, record.fs)
    got = rows(icu_beats.stdout)
    assert [int(r["onset"]) for r in got] == want["onset"].tolist()
    assert [int(r["end"]) for r in got] == want["end"].tolist()
    np.testing.assert_allclose([float(r["map"]) for r in got], want["map"], atol=0.005 + 1e-9)
    np.testing.assert_allclose([float(r["sbp"]) for r in got], want["sbp"], atol=0.05 + 1e-9)
    np.testing.assert_allclose([float(r["dbp"]) for r in got], want["dbp"], atol=0.05 + 1e-9)
    np.testing.assert_allclose(
        [float(r["time_s"]) for r in got], want["onset"] / record.fs, atol=0.0005 + 1e-9
    )
    assert [r["clean"] == "1" for r in got] == want["clean"].tolist()


def test_a_beat_is_clean_exactly_when_it_has_no_flag(icu_beats):
    got = rows(icu_beats.stdout)
    assert any(r["clean"] == "0" for r in got)  # the first beat after learning is isolated
    for row in got:
        assert (row["clean"] == "1") == (row["flags"] == ""), row


def test_the_installed_console_script_is_the_same_command(icu_beats):
    script = shutil.which("monitor", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no monitor console script next to this interpreter")
    result = subprocess.run(
        [script, "beats", str(FIXTURE_CSV)], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == icu_beats.stdout


def test_fs_overrides_a_time_column_in_milliseconds(tmp_path):
    record = synthesize_abp(30.0, 250.0)
    time_s = np.arange(len(record.samples)) / 250.0
    in_seconds = monitor("beats", write_csv(tmp_path / "s.csv", time_s, record.samples))
    in_ms = monitor(
        "beats", write_csv(tmp_path / "ms.csv", 1000 * time_s, record.samples), "--fs", 250
    )
    assert in_ms.returncode == 0, in_ms.stderr
    assert len(rows(in_ms.stdout)) > 25
    assert in_ms.stdout == in_seconds.stdout
    for row in rows(in_ms.stdout):
        assert float(row["time_s"]) == pytest.approx(int(row["onset"]) / 250.0, abs=0.0005)


def test_fs_contradicting_a_wfdb_header_is_refused_naming_both_rates():
    result = monitor("beats", MIXED, "--fs", 125)
    assert_one_line_error(result, "beats", MIXED, "124.945 Hz", "125 Hz")
    assert result.stdout == ""


def test_channel_picks_a_wfdb_signal_by_name():
    chosen = monitor("beats", MIXED, "--channel", "ABP")
    assert chosen.returncode == 0, chosen.stderr
    assert len(rows(chosen.stdout)) > 300  # 230 s at 104 bpm
    assert chosen.stdout == monitor("beats", MIXED).stdout  # ABP is also the default


@pytest.mark.parametrize("channel, units", [("Pleth", "NU"), ("II", "mV")])
def test_a_channel_not_in_mmhg_is_refused(channel, units):
    result = monitor("beats", MIXED, "--channel", channel)
    assert_one_line_error(result, "beats", MIXED, channel, repr(units), "mmHg")
    assert result.stdout == ""


def test_a_missing_channel_lists_the_available_ones():
    result = monitor("beats", MIXED, "--channel", "CVP")
    assert_one_line_error(result, "beats", MIXED, "CVP", "II, III, V, ABP, Pleth, Resp")
    assert result.stdout == ""


def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path):
    result = monitor("beats", tmp_path / "nope.csv")
    assert_one_line_error(result, "beats", tmp_path / "nope.csv")
    assert result.stdout == ""


def test_a_directory_is_a_one_line_error_naming_it(tmp_path):
    result = monitor("beats", tmp_path)
    assert_one_line_error(result, "beats", tmp_path)
    assert result.stdout == ""


BAD_CONTENT = {
    "empty": (b"", "empty file"),
    "binary": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary data"),
    "text junk": (bytes(range(0x80, 0x100)) * 8, "no data rows"),
    "damaged gzip": (b"\x1f\x8b" + b"\xff" * 100, "damaged gzip"),
    "malformed row": (b"time_s,abp_mmHg\n0.000,80\n0.008,81\n0.016,eighty\n", "line 4"),
}


@pytest.mark.parametrize("content, problem", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
def test_a_bad_file_is_a_one_line_error_naming_it_before_any_output(tmp_path, content, problem):
    path = tmp_path / "record.csv"
    path.write_bytes(content)
    result = monitor("beats", path)
    assert_one_line_error(result, "beats", path, problem)
    assert result.stdout == ""


def test_a_reader_closing_the_pipe_early_ends_the_command_quietly(tmp_path):
    """``monitor beats FILE | head -1``: the output must outgrow the pipe's buffer to be cut."""
    record = synthesize_abp(1800.0, 100.0, heart_rate_bpm=150.0)  # ~4500 beats, ~200 kB of CSV
    path = write_csv(tmp_path / "long.csv", np.arange(len(record.samples)) / 100.0, record.samples)
    with (tmp_path / "stderr").open("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "beats", str(path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=RUN_DIR,
        )
        assert process.stdout.readline().decode() == HEADER + "\n"
        process.stdout.close()
        assert process.wait(timeout=TIMEOUT_S) == 0
        stderr.seek(0)
        assert quiet(stderr.read())


@pytest.mark.parametrize("fs_args", [[], ["--fs", 5000]], ids=["ms time column", "fs 5000"])
def test_a_rate_the_core_cannot_run_at_is_a_one_line_error_before_any_output(tmp_path, fs_args):
    record = synthesize_abp(30.0, 250.0)
    path = write_csv(tmp_path / "ms.csv", np.arange(len(record.samples)) * 4.0, record.samples)
    result = monitor("beats", path, *fs_args)
    assert_one_line_error(result, "beats", path, "Hz")
    assert result.stdout == ""


@pytest.mark.parametrize("fs", [0, -125])
def test_a_non_positive_fs_is_refused_without_a_traceback(fs):
    result = monitor("beats", FIXTURE_CSV, "--fs", fs)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "fs" in result.stderr


# --- monitor demo (its end-to-end run is in test_run.py) ----------------------


@pytest.mark.skipif(not PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is not set")
def test_demo_in_this_pure_python_environment_refuses():
    result = monitor("demo")
    assert_one_line_error(result, "demo", core.PURE_PYTHON_SWITCH)


def test_demo_refuses_to_run_on_the_pure_python_reference():
    result = monitor("demo", env={**os.environ, core.PURE_PYTHON_SWITCH: "1"})
    assert_one_line_error(result, "demo", core.PURE_PYTHON_SWITCH)


@pytest.mark.skipif(PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the demo refuses")
def test_demo_refuses_a_speed_that_is_not_positive():
    result = monitor("demo", "--speed", 0)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "speed" in result.stderr


@pytest.mark.skipif(PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the demo refuses")
def test_demo_names_a_scenario_it_does_not_know():
    result = monitor("demo", "--scenario", "no-such-scenario")
    assert_one_line_error(result, "demo", "no-such-scenario")


# --- help and usage -----------------------------------------------------------


@pytest.mark.parametrize(
    "args, explained",
    [
        (["--help"], ["beats", "demo", "run", "--verbose"]),
        (["beats", "--help"], ["record", "--fs", "--channel", "CSV", "WFDB", "flags"]),
        (["demo", "--help"], ["--scenario", "--speed", "--log-dir", "virtual serial ports"]),
    ],
    ids=["monitor", "beats", "demo"],
)
def test_help_explains_the_options_and_exits_0(args, explained):
    result = monitor(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: monitor")
    for text in explained:
        assert text in result.stdout


def test_no_command_is_a_usage_error():
    result = monitor()
    assert result.returncode == 2
    assert result.stderr.startswith("usage: monitor")
    assert "COMMAND" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_log_lines_on_stderr_are_logfmt_one_record_per_line():
    formatter = LogfmtFormatter()
    record = logging.LogRecord(
        "monitor.bedside.live", logging.WARNING, __file__, 1, 'port "a" lost\nretrying', None, None
    )
    record.created, record.msecs = 1.8e9, 250.0
    assert formatter.format(record) == (
        "time=2027-01-15T08:00:00.250Z level=warning logger=monitor.bedside.live "
        'msg="port \\"a\\" lost\\nretrying"'
    )
