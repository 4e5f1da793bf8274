"""The bedside log: durable alarms, bad files moved aside, migrations, retention, a full disk.

Crash safety is tested for real: a child process writes at full speed and is
killed with SIGKILL, again and again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from log_rows import rows

from monitor.clinical.alarm_types import AlarmTransition, Category, Priority, Transition
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.trends import TrendPoint
from monitor.log.schema import APPLICATION_ID, SCHEMA_VERSION, migrate
from monitor.log.store import DATABASE_NAME, LogError
from monitor.log.writer import BedsideLog, Clocks, LogSettings

UTC0 = 1.8e9


class FakeClocks:
    """A wall clock and a boot clock the test moves by hand."""

    def __init__(self, utc: float = UTC0, boottime: float = 100.0, kernel: str = "boot-a"):
        self.utc, self.boottime, self.kernel = utc, boottime, kernel

    def advance(self, seconds: float) -> None:
        self.utc += seconds
        self.boottime += seconds

    def clocks(self) -> Clocks:
        return Clocks(lambda: self.utc, lambda: self.boottime, lambda: self.kernel)


def settings(directory: Path, **changes) -> LogSettings:
    values = dict(
        directory=directory,
        trend_interval_s=5.0,
        commit_interval_s=0.2,
        retention_days=30.0,
        max_size_mb=64.0,
        resume_lookback_s=6 * 3600.0,
        beats=False,
    )
    values.update(changes)
    return LogSettings(**values)


def open_log(directory: Path, clocks: FakeClocks | None = None, **changes) -> BedsideLog:
    clocks = clocks or FakeClocks()
    return BedsideLog(
        settings(directory, **changes), software="test", config_hash="c0ffee",
        clocks=clocks.clocks(),
    )  # fmt: skip


def alarm_entry(t_s: float, name: str = "hypotension", message: str = "MAP 58") -> TimelineEntry:
    transition = AlarmTransition(
        t_s, name, Priority.MEDIUM, Category.PHYSIOLOGICAL, Transition.RAISED, message,
        {"map_mmhg": 58.0, "level_mmhg": float("nan")},
    )  # fmt: skip
    return TimelineEntry(
        t_s, "raised", name, "medium", 58.0, 0.31, message, transition.evidence, transition
    )


def point(t_s: float, map_mmhg: float | None = 70.0, nee: float | None = 0.1) -> TrendPoint:
    return TrendPoint(t_s, map_mmhg, 100.0, 50.0, 80.0, 0.9, 0.0, nee, False, "normotensive")


# ------------------------------------------------------------------- a new log
def test_a_new_log_is_a_versioned_wal_database_of_this_monitor(tmp_path):
    log = open_log(tmp_path / "log")
    log.close()
    path = tmp_path / "log" / DATABASE_NAME
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "PRAGMA application_id") == [(APPLICATION_ID,)]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_alarms_and_trends_are_written_with_synchronous_full(tmp_path):
    log = open_log(tmp_path)
    try:
        assert log.durability() == {"record": 2, "bulk": 2}  # 2 = FULL
    finally:
        log.close()


def test_every_row_carries_utc_stream_time_and_the_boot(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    clocks.advance(12.0)
    assert log.record_entries([alarm_entry(12.0)])
    log.add_trend(point(10.0))
    log.close()
    path = tmp_path / DATABASE_NAME
    assert rows(path, "SELECT boot, stream_s, utc, name, evidence FROM alarms") == [
        (log.boot.id, 12.0, UTC0 + 12.0, "hypotension", '{"map_mmhg":58.0,"level_mmhg":null}')
    ]
    assert rows(path, "SELECT boot, stream_s, utc FROM trends") == [
        (log.boot.id, 10.0, UTC0 + 12.0)
    ]
    starts = rows(path, "SELECT kind, message FROM events WHERE source = 'monitor'")
    assert ("start", "monitor started (test)") in starts
    assert ("stop", "monitor stopped") in starts
    assert rows(path, "SELECT end_reason FROM boots") == [("stopped",)]


# ---------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    "case, reason",
    [
        ("text", "is not an SQLite database"),
        ("corrupt", "cannot be"),
        ("other_program", "is an SQLite database of another program"),
        ("newer", "was written by a newer monitor (schema 99"),
    ],
)
def test_a_bad_log_file_is_moved_aside_and_a_new_log_started(tmp_path, case, reason):
    path = tmp_path / DATABASE_NAME
    if case == "text":
        path.write_text("time_s,map\n1,80\n")
    elif case == "corrupt":
        log = open_log(tmp_path)
        log.record_entries([alarm_entry(1.0)])
        log.close()
        data = bytearray(path.read_bytes())
        data[100:4096] = os.urandom(3996)  # the first page's body: the schema is gone
        path.write_bytes(bytes(data))
    else:
        conn = sqlite3.connect(path)
        if case == "other_program":
            conn.execute("CREATE TABLE songs (title TEXT)")
        else:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 99")
        conn.commit()
        conn.close()
    original = path.read_bytes()

    log = open_log(tmp_path)
    log.close()

    moved = [p for p in tmp_path.iterdir() if p.name.startswith(DATABASE_NAME + ".")]
    moved = [p for p in moved if not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and moved[0].read_bytes() == original  # kept, byte for byte
    note = next(n for n in log.boot.notes if "moved to" in n)
    assert reason in note and moved[0].name in note
    logged = rows(path, "SELECT message FROM events WHERE kind = 'start'")
    assert (note,) in logged  # the new log says what happened to the old one


def test_a_log_directory_that_cannot_exist_is_refused_with_its_path(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(LogError, match=f"cannot create the log directory {blocker / 'log'}"):
        open_log(blocker / "log")


def test_an_older_schema_is_migrated_and_its_rows_kept(tmp_path):
    path = tmp_path / DATABASE_NAME
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO admissions (utc, weight_kg, by, os_user) VALUES (1, 80, 'a', 'b')")
    conn.close()

    log = open_log(tmp_path)
    log.close()

    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "SELECT weight_kg FROM admissions") == [(80.0,)]
    assert log.boot.weight_kg == 80.0
    assert any(f"schema migrated from version 1 to {SCHEMA_VERSION}" in n for n in log.boot.notes)


# ------------------------------------------------------------------- boots
def test_a_restart_in_the_same_kernel_boot_measures_the_gap_exactly(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    log.add_trend(point(0.0))
    clocks.advance(600.0)
    log.add_trend(point(600.0))
    log.close()
    clocks.advance(42.0)
    clocks.utc -= 3600.0  # the wall clock stepped back an hour: it must not matter

    again = open_log(tmp_path, clocks)
    again.close()

    assert again.boot.resumed_from == log.boot.id
    assert (again.boot.gap_s, again.boot.gap_exact) == (42.0, True)
    assert again.boot.origin_s == 642.0


def test_after_a_reboot_the_gap_is_a_lower_bound_that_a_stale_wall_clock_cannot_shrink(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    clocks.advance(600.0)
    log.add_trend(point(600.0))
    log.close()
    # A Pi without a battery clock boots with the date it saved at shutdown.
    rebooted = FakeClocks(utc=clocks.utc - 5.0, boottime=35.0, kernel="boot-b")

    again = open_log(tmp_path, rebooted)
    again.close()

    assert (again.boot.gap_s, again.boot.gap_exact) == (35.0, False)  # at least the uptime
    assert "after a gap of at least 35.0 s" in again.boot.notes[-1]


def test_history_is_this_admissions_trend_points_in_the_new_stream_time(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    for t in (0.0, 5.0, 10.0):
        log.add_trend(point(t, map_mmhg=60.0 + t))
        clocks.advance(5.0)
    log.close()
    clocks.advance(15.0)

    again = open_log(tmp_path, clocks)
    history = again.history()
    again.close()

    assert again.boot.origin_s == 30.0
    assert [(p.t_s, p.map_mmhg) for p in history.points] == [
        (-30.0, 60.0), (-25.0, 65.0), (-20.0, 70.0)
    ]  # fmt: skip
    assert history.data_end_s == -20.0


def test_a_new_admission_is_never_resumed_from_the_previous_patient(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    log.add_trend(point(0.0))
    new = log.new_admission(72.5, by="nurse A")
    log.close()

    again = open_log(tmp_path, clocks)
    history = again.history()
    again.close()

    assert again.boot.admission == new and again.boot.weight_kg == 72.5
    assert again.boot.resumed_from is None and history.points == ()
    audit = rows(tmp_path / DATABASE_NAME, "SELECT by, action, new FROM audit")
    assert audit == [  # the first start's own admission is audited too
        ("monitor", "admission", f"admission {new - 1}"),
        ("nurse A", "admission", f"admission {new}, 72.5 kg"),
    ]


# --------------------------------------------------- retention and a full disk
def test_rows_past_retention_are_pruned_and_the_record_is_kept(tmp_path):
    clocks = FakeClocks()
    log = open_log(tmp_path, clocks)
    log.add_trend(point(0.0))
    log.add_event(0.0, "transducer", "connected", "connected", {})
    log.record_entries([alarm_entry(0.0)])
    log.close()
    clocks.utc += 31 * 86400.0

    again = open_log(tmp_path, clocks, retention_days=30.0)  # prunes when it starts
    again.add_trend(point(1.0))
    again.close()

    path = tmp_path / DATABASE_NAME
    assert rows(path, "SELECT stream_s FROM trends") == [(1.0,)]
    assert rows(path, "SELECT count(*) FROM events WHERE kind = 'connected'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM alarms") == [(1,)]


def test_a_full_log_deletes_old_trends_to_keep_every_alarm_and_says_so(tmp_path):
    log = open_log(tmp_path, max_size_mb=0.25)  # 64 pages of 4 KiB
    written = 0
    deadline = time.monotonic() + 60.0
    while "full" not in log.problems() and time.monotonic() < deadline:
        for _ in range(200):
            log.add_trend(point(float(written)))
            written += 1
        time.sleep(0.05)
    assert "full" in log.problems()
    assert "to keep alarms and audit records" in log.problems()["full"]

    for i in range(50):
        assert log.record_entries([alarm_entry(float(i), message=f"alarm {i} " + "x" * 200)])
    log.close()

    path = tmp_path / DATABASE_NAME
    assert rows(path, "SELECT count(*) FROM alarms") == [(50,)]
    kept = rows(path, "SELECT min(stream_s), count(*) FROM trends")[0]
    assert kept[0] > 0.0 and kept[1] < written  # the oldest went first
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]


TINY_FS_CHILD = textwrap.dedent(
    """
    import json, shutil, sys, time
    from pathlib import Path
    from monitor.clinical.alarm_types import AlarmTransition, Category, Priority, Transition
    from monitor.log.writer import BedsideLog, LogSettings
    from monitor.clinical.engine import TimelineEntry
    from monitor.clinical.trends import TrendPoint

    disk, out = Path(sys.argv[1]), Path(sys.argv[2])
    (disk / "filler").write_bytes(bytes(10 * 2**20))  # 12 MB disk, 1 MB reserve: ~1 MB spare
    log = BedsideLog(
        LogSettings(disk, 5.0, 0.05, 30.0, 1024.0, 3600.0, False, disk_reserve_mb=8.0),
        software="tiny-fs-test", config_hash="x",
    )
    recorded, failed, i = [], 0, 0
    deadline = time.monotonic() + 60.0
    while len(recorded) < 300 and time.monotonic() < deadline:
        for _ in range(200):
            log.add_trend(TrendPoint(i, 60.0, 90.0, 45.0, 80.0, 1.0, 0.0, 0.3, False, "x"))
            i += 1
        if "full" in log.problems():  # the disk is at its reserve: now the alarms
            name = f"alarm-{i}"
            tr = AlarmTransition(i, name, Priority.HIGH, Category.PHYSIOLOGICAL,
                                 Transition.RAISED, "m" * 300, {})
            entry = TimelineEntry(i, "raised", name, "high", 60.0, 0.3, "m", {}, tr)
            if log.record_entries([entry]):
                recorded.append(name)
            else:
                failed += 1
        time.sleep(0.01)
    problems = log.problems()
    log.close()
    shutil.copy(disk / "monitor.db", out)
    print(json.dumps({"recorded": recorded, "failed": failed, "trends": i,
                      "problems": problems, "free": shutil.disk_usage(disk).free}))
    """
)


def tiny_filesystem(size: str, mountpoint: Path, command: list[str]) -> list[str]:
    """``command`` run with a tmpfs of ``size`` at ``mountpoint``, in a private mount namespace.

    Root needs only the mount namespace; anyone else maps to root in a user namespace.
    """
    script = f'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"'
    namespace = ["--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--mount"]
    return ["unshare", *namespace, "sh", "-c", script, str(mountpoint), *command]


def test_on_a_real_full_disk_every_alarm_is_kept_and_the_oldest_trends_make_room(tmp_path):
    mountpoint, copy = tmp_path / "disk", tmp_path / "monitor.db"
    mountpoint.mkdir()
    probe = subprocess.run(tiny_filesystem("1m", mountpoint, ["true"]), capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"this kernel refuses a private tmpfs: {probe.stderr.decode().strip()}")

    command = [sys.executable, "-c", TINY_FS_CHILD, str(mountpoint), str(copy)]
    child = subprocess.run(
        tiny_filesystem("12m", mountpoint, command), capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)

    assert len(result["recorded"]) == 300 and result["failed"] == 0
    assert "log storage full" in result["problems"]["full"]
    assert "record" not in result["problems"] and result["free"] > 0
    stored = {name for (name,) in rows(copy, "SELECT name FROM alarms")}
    assert stored == set(result["recorded"])
    oldest, kept = rows(copy, "SELECT min(stream_s), count(*) FROM trends")[0]
    assert oldest > 0.0 and kept < result["trends"]  # the oldest trends went first
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]


# ------------------------------------------------------------- crash safety
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from monitor.clinical.alarm_types import AlarmTransition, Category, Priority, Transition
    from monitor.log.writer import BedsideLog, LogSettings
    from monitor.clinical.engine import TimelineEntry
    from monitor.clinical.trends import TrendPoint

    run = sys.argv[2]
    log = BedsideLog(
        LogSettings(Path(sys.argv[1]), 5.0, 0.05, 30.0, 64.0, 3600.0, False),
        software="crash-test", config_hash="x",
    )
    i = 0
    while True:
        for _ in range(50):
            log.add_trend(TrendPoint(i, 60.0, 90.0, 45.0, 80.0, 1.0, 0.0, 0.3, False, "x"))
            i += 1
        name = f"{run}-{i}"
        tr = AlarmTransition(i, name, Priority.HIGH, Category.PHYSIOLOGICAL,
                             Transition.RAISED, "m", {})
        log.record_entries([TimelineEntry(i, "raised", name, "high", 60.0, 0.3, "m", {}, tr)])
        print(name, flush=True)  # annunciated: the record said it was on the disk
    """
)


def test_alarms_reported_as_annunciated_survive_sigkill_at_random_moments(tmp_path):
    rng = random.Random(20261126)
    directory = tmp_path / "log"
    reported: list[str] = []
    for run in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory), f"run{run}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(child.stdout,), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30.0
        while not lines and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        reader.join(timeout=10.0)
        assert lines, f"run {run}: the child never wrote an alarm: {child.stderr.read()}"
        reported += [line.strip() for line in lines if line.strip()]

        path = directory / DATABASE_NAME
        assert rows(path, "PRAGMA integrity_check") == [("ok",)]
        stored = {name for (name,) in rows(path, "SELECT name FROM alarms")}
        missing = [name for name in reported if name not in stored]
        assert not missing, f"run {run}: alarms reported but not in the log: {missing[:5]}"
    boots = rows(directory / DATABASE_NAME, "SELECT count(*), count(ended_utc) FROM boots")
    assert boots == [(12, 0)]  # every run was killed, none ended cleanly
