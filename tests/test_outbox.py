"""Store and forward from the log: what a destination still has to get, and its cursor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.analysis.virtual_bench import ScenarioClock
from monitor.log.outside import start_admission
from monitor.network.outbox import BATCH_ROWS, Outbox

from conftest import play_into_log

pytestmark = pytest.mark.usefixtures("packaged_config_only")

UTC_AT_ZERO = 1.8e9
KINDS = ("trend", "state", "alarm")
DAY_S = 86400.0


@pytest.fixture(scope="module")
def two_admissions(tmp_path_factory) -> Path:
    """Ten minutes of one patient, then twenty of the next, in one log."""
    directory = tmp_path_factory.mktemp("log")
    clock = ScenarioClock(utc_at_zero=UTC_AT_ZERO)
    play_into_log(directory, "pump-silent", clock, 600.0)
    start_admission(directory, 70.0, "test")
    play_into_log(directory, "pump-silent", ScenarioClock(utc_at_zero=UTC_AT_ZERO + 700.0), 1300.0)
    return directory


@pytest.fixture
def log_dir(two_admissions, tmp_path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(two_admissions, copy)
    return copy


def outbox(log_dir: Path, backlog_s: float = DAY_S, now: float = UTC_AT_ZERO + 2000.0) -> Outbox:
    return Outbox(log_dir, "test", KINDS, numerics_backlog_s=backlog_s, wall_clock=lambda: now)


def drain(box: Outbox) -> list:
    rows = []
    while batch := box.pending():
        rows += batch
        box.confirm(batch)
    return rows


def test_a_new_destination_gets_the_current_patient_in_log_order(log_dir):
    box = outbox(log_dir)
    rows = drain(box)
    assert {row.boot for row in rows} == {2}  # the second admission's boot only
    assert {row.kind for row in rows} == set(KINDS)
    for kind in KINDS:
        ids = [row.rowid for row in rows if row.kind == kind]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert [row.utc for row in rows] == sorted(row.utc for row in rows)


def test_batches_are_bounded_and_confirmed_rows_never_come_back(log_dir):
    box = outbox(log_dir)
    first = box.pending()
    assert 0 < sum(row.kind == "trend" for row in first) <= BATCH_ROWS
    box.confirm(first)
    assert not {(r.kind, r.rowid) for r in box.pending()} & {(r.kind, r.rowid) for r in first}


def test_the_cursor_survives_a_restart_and_unconfirmed_rows_are_sent_again(log_dir):
    box = outbox(log_dir)
    batch = box.pending()
    box.confirm(batch[:5])
    box.close()
    again = outbox(log_dir)
    assert again.pending()[0] == batch[5]


def test_numerics_older_than_the_backlog_are_passed_over_but_alarms_never(log_dir):
    everything = drain(outbox(log_dir))
    (log_dir / "forwarded-test.json").unlink()
    recent = outbox(log_dir, backlog_s=60.0, now=UTC_AT_ZERO + 1300.0)
    rows = drain(recent)
    assert all(row.utc >= UTC_AT_ZERO + 1240.0 for row in rows if row.kind == "trend")
    assert recent.passed_over == sum(
        row.kind == "trend" and row.utc < UTC_AT_ZERO + 1240.0 for row in everything
    )
    alarms = [row for row in everything if row.kind == "alarm"]
    assert alarms and [row for row in rows if row.kind == "alarm"] == alarms


def test_an_unreadable_cursor_means_sending_the_admission_again(log_dir, caplog):
    box = outbox(log_dir)
    expected = drain(box)
    box.close()
    (log_dir / "forwarded-test.json").write_text("{torn")
    assert drain(outbox(log_dir)) == expected
    assert "unreadable" in caplog.text


def test_a_cursor_of_another_log_file_does_not_skip_this_ones_rows(log_dir, tmp_path):
    box = outbox(log_dir)
    expected = drain(box)
    box.close()
    cursor = (log_dir / "forwarded-test.json").read_text()
    (log_dir / "forwarded-test.json").write_text(cursor.replace(box.log_id, "another-log"))
    assert drain(outbox(log_dir)) == expected
