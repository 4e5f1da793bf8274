"""Reading the log back: tail, export (round trip), the trend report, and their refusals."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from monitor.analysis.virtual_bench import ScenarioClock
from monitor.cli import main
from monitor.clinical.alarm_types import AlarmTransition, Category, Priority, Transition
from monitor.clinical.engine import TimelineEntry
from monitor.configuration.config import default_config
from monitor.log.reader import KINDS, LogReader, iso_utc, parse_time
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

from conftest import play_into_log

pytestmark = pytest.mark.usefixtures("packaged_config_only")

CONFIG = default_config()
UTC_AT_ZERO = 1.8e9  # 2027-01-15T08:00:00Z


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    """Twenty minutes of the refractory scenario, logged."""
    directory = tmp_path_factory.mktemp("log")
    play_into_log(directory, "pump-silent", ScenarioClock(utc_at_zero=UTC_AT_ZERO), 1300.0)
    return directory


def table_count(directory: Path, table: str) -> int:
    conn = sqlite3.connect(directory / DATABASE_NAME)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_export_as_json_lines_round_trips_every_row(log_dir, capsys):
    assert main(["log", "export", "--log-dir", str(log_dir), "--format", "jsonl"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    reader = LogReader(log_dir)
    expected = [row.as_dict() for row in reader.rows(list(KINDS))]
    reader.close()
    assert exported == expected
    for kind, (table, *_) in KINDS.items():
        assert sum(r["kind"] == kind for r in exported) == table_count(log_dir, table)
    assert any(r["kind"] == "alarm" and r["name"] == "pump_comm_lost" for r in exported)


def test_export_as_csv_keeps_the_same_rows_and_a_time_range_selects(log_dir, capsys):
    since, until = "2027-01-15T08:15:00Z", "2027-01-15T08:21:00Z"
    args = ["log", "export", "--log-dir", str(log_dir), "--since", since, "--until", until]
    assert main([*args, "--kind", "trend", "--kind", "alarm"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    assert {r["kind"] for r in rows} == {"trend", "alarm"}
    assert all(parse_time(since) <= parse_time(r["utc"]) < parse_time(until) for r in rows)
    assert [r["utc"] for r in rows] == sorted(r["utc"] for r in rows)
    pump_lost = next(r for r in rows if r["name"] == "pump_comm_lost")
    assert json.loads(pump_lost["detail"])["transition"] == "raised"
    assert float(pump_lost["stream_s"]) == pytest.approx(1208.0, abs=1.0)


def test_tail_shows_the_latest_alarms_and_states_one_line_each(log_dir, capsys):
    assert main(["log", "tail", "--log-dir", str(log_dir), "-n", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("2027-01-15T08:21:40") and "monitor stopped" in lines[-1]


def test_the_report_draws_a_png(log_dir, tmp_path, capsys):
    out = tmp_path / "trend.png"
    assert main(["report", "--log-dir", str(log_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "alarms raised" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["log", "tail", "--log-dir", "{missing}"], "no log at {missing}/monitor.db"),
        (["log", "export", "--log-dir", "{log}", "--since", "last week"], "is not a time"),
        (["report", "--log-dir", "{log}", "--out", "x.png", "--since", "2030-01-01"],
         "no trend data"),
    ],
)  # fmt: skip
def test_reading_refusals_are_one_line_and_exit_2(log_dir, tmp_path, capsys, argv, message):
    fill = {"missing": str(tmp_path / "missing"), "log": str(log_dir)}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.format(**fill) in err and "Traceback" not in err


def test_times_are_iso_utc_or_an_age():
    assert parse_time("2027-01-15T08:00:00Z") == UTC_AT_ZERO
    assert parse_time("2027-01-15T09:00:00+01:00") == UTC_AT_ZERO
    assert parse_time("90min", now=UTC_AT_ZERO) == UTC_AT_ZERO - 5400.0
    assert iso_utc(UTC_AT_ZERO + 0.25) == "2027-01-15T08:00:00.250Z"


def test_tail_follow_shows_rows_committed_after_it_started(tmp_path):
    clocks = ScenarioClock(utc_at_zero=UTC_AT_ZERO)
    log = BedsideLog(
        LogSettings.from_config(CONFIG, tmp_path), software="test", config_hash="x",
        clocks=clocks.log_clocks(),
    )  # fmt: skip
    tail = subprocess.Popen(
        [sys.executable, "-m", "monitor", "log", "tail", "--follow", "--log-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(30.0, tail.kill)  # a failing test ends, never hangs
    watchdog.start()
    try:
        # The start notes: tail is up and reading.
        assert "admission 1 started" in tail.stdout.readline()
        assert "monitor started" in tail.stdout.readline()
        assert "log budget" in tail.stdout.readline()
        assert "audit admission: patient: - -> admission 1 (by monitor)" in tail.stdout.readline()
        transition = AlarmTransition(
            12.0, "no_pulse", Priority.HIGH, Category.PHYSIOLOGICAL, Transition.RAISED,
            "No pulse: check the patient", {},
        )  # fmt: skip
        entry = TimelineEntry(12.0, "raised", "no_pulse", "high", None, None,
                              transition.message, {}, transition)  # fmt: skip
        assert log.record_entries([entry])
        followed = tail.stdout.readline()
        assert "no_pulse HIGH raised: No pulse: check the patient" in followed
    finally:
        watchdog.cancel()
        tail.kill()
        tail.wait()
        log.close()
