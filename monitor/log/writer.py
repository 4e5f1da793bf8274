"""The bedside's writer: a running bedside's alarms, states, trends, pump events and audit.

Two write paths, because they have different promises:

* **the record** (alarm transitions, detector states and episodes, audit,
  admissions, boots) is written on the caller's thread, on a connection with
  ``synchronous=FULL``, and the call returns only once the commit is on the
  disk: an alarm is in the log before any output shows it;
* **bulk data** (trend points, pump events, device events, beats) is queued
  to a writer thread that commits once per ``commit_interval_s``, also with
  FULL, so a power cut loses at most that much of it.

The writer thread also prunes rows older than the retention time in small
steps, and, when the disk (or the configured size limit) is full, deletes
the oldest bulk rows to make room for the record. Problems are reported
through ``problems()`` for the monitor to raise as a technical alarm, never
by raising into the signal path. docs/log.md has the tables and figures.

The admission row, the clocks and the transaction helper are shared with
``monitor.log.outside``, where other processes write admissions and audit
records without a running bedside.
"""

from __future__ import annotations

import getpass
import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.clinical.alarm_types import jsonable
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.trends import TrendPoint
from monitor.configuration.config import Config
from monitor.log.schema import BULK_TABLES
from monitor.log.store import LogError, OpenedLog, connect, open_log_database

log = logging.getLogger(__name__)

PAGE_SIZE = 4096
PRUNE_EVERY_S = 300.0  # how often the writer looks for rows past retention
PRUNE_CHUNK = 2000  # rows deleted per transaction: the writer never holds the lock long
TRIM_CHUNK = 200  # rows per step near the budget: a step stays well inside the trim band
# The log's page budget is its size limit, or, when the disk is shorter, the pages
# it has plus what the disk can spare above the reserve (the WAL and the record's
# room). Near the budget the writer deletes the oldest bulk rows, from FULL_SHARE of
# it down to TRIM_TO_SHARE, so the record itself never finds the log full; the
# storage-full alarm ends below CLEAR_SHARE.
FULL_SHARE = 0.9
TRIM_TO_SHARE = 0.85
CLEAR_SHARE = 0.8

BEAT_COLUMNS = ("stream_s", "systolic_mmhg", "diastolic_mmhg", "map_mmhg", "pulse_rate_bpm")


@dataclass(frozen=True)
class LogSettings:
    directory: Path
    trend_interval_s: float
    commit_interval_s: float
    retention_days: float
    max_size_mb: float
    resume_lookback_s: float
    beats: bool
    disk_reserve_mb: float = 64.0

    @classmethod
    def from_config(cls, config: Config, directory: Path) -> LogSettings:
        return cls(
            directory,
            config.number("log.trend_interval_s"),
            config.number("log.commit_interval_s"),
            config.number("log.retention_days"),
            config.number("log.max_size_mb"),
            3600.0 * config.number("log.resume_lookback_h"),
            config.text("log.beats") == "on",
            config.number("log.disk_reserve_mb"),
        )


@dataclass(frozen=True)
class Clocks:
    """Where the log reads the time: wall clock, time since kernel boot, the kernel boot's id."""

    utc: Callable[[], float]
    boottime: Callable[[], float]
    kernel_boot_id: Callable[[], str]


def _kernel_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


SYSTEM_CLOCKS = Clocks(time.time, lambda: time.clock_gettime(time.CLOCK_BOOTTIME), _kernel_boot_id)


@dataclass(frozen=True)
class Boot:
    """This start of the monitor, and where its stream time sits on the admission's timeline.

    ``origin_s`` is the admission-timeline time of this boot's stream time
    0; the first boot of an admission has 0. ``gap_s`` is the time since the
    previous boot's last data: exact when both ran in one kernel boot
    (monotonic clock), else a lower bound (wall clock and uptime, since a Pi
    without a battery clock may boot with a stale date).
    """

    id: int
    admission: int
    weight_kg: float | None
    origin_s: float
    resumed_from: int | None
    gap_s: float | None
    gap_exact: bool
    notes: tuple[str, ...]


@dataclass(frozen=True)
class History:
    """The detector's inputs before this boot, in this boot's stream time (negative)."""

    points: tuple[TrendPoint, ...]
    data_end_s: float  # where the last boot's data end


class BedsideLog:
    """The log of one bedside. Write methods are for the monitor's loop thread only."""

    def __init__(
        self,
        settings: LogSettings,
        *,
        software: str,
        config_hash: str,
        clocks: Clocks = SYSTEM_CLOCKS,
        by: str = "monitor",
    ) -> None:
        self.settings = settings
        self.clocks = clocks
        opened: OpenedLog = open_log_database(settings.directory)
        self.path = opened.path
        self._max_pages = max(64, int(settings.max_size_mb * 2**20 // PAGE_SIZE))
        self._record = connect(self.path, synchronous="FULL", max_pages=self._max_pages)
        # Checkpoints are the writer's job: an alarm's commit never waits on one.
        self._record.execute("PRAGMA wal_autocheckpoint = 0")
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._bulk_synchronous = -1  # set by the writer thread once connected
        self._writer_ready = threading.Event()
        self.boot = self._start_boot(software, config_hash, by, opened.notes)
        self._writer = threading.Thread(target=self._write_loop, name="log-writer", daemon=True)
        self._writer.start()
        self._writer_ready.wait(timeout=10.0)

    # ---------------------------------------------------------------- boot
    def _start_boot(self, software: str, config_hash: str, by: str, notes: Sequence[str]) -> Boot:
        utc, boottime, kernel = (
            self.clocks.utc(),
            self.clocks.boottime(),
            self.clocks.kernel_boot_id(),
        )
        conn = self._record
        admission = conn.execute(
            "SELECT id, weight_kg FROM admissions ORDER BY id DESC LIMIT 1"
        ).fetchone()
        previous = None
        if admission is not None:
            previous = conn.execute(
                "SELECT id, kernel_boot_id, origin_s, utc, boottime_s FROM boots "
                "WHERE admission = ? ORDER BY id DESC LIMIT 1",
                (admission[0],),
            ).fetchone()
        gap_s: float | None = None
        exact = False
        origin = 0.0
        all_notes = list(notes)
        with Transaction(conn):
            if admission is None:
                admission = (insert_admission(conn, utc, None, by, None), None)
                all_notes.append(f"admission {admission[0]} started (no earlier admission)")
            if previous is not None:
                prev_id, prev_kernel, prev_origin, prev_utc, prev_boottime = previous
                last = conn.execute(
                    "SELECT stream_s, utc, boottime_s FROM trends WHERE boot = ? "
                    "ORDER BY stream_s DESC LIMIT 1",
                    (prev_id,),
                ).fetchone() or (0.0, prev_utc, prev_boottime)
                if prev_kernel == kernel and kernel != "unknown":
                    gap_s, exact = max(0.0, boottime - last[2]), True
                else:
                    gap_s = max(boottime, utc - last[1])
                origin = prev_origin + last[0] + gap_s
            boot_id = conn.execute(
                "INSERT INTO boots (admission, uuid, kernel_boot_id, utc, boottime_s, software, "
                "config_hash, resumed_from, origin_s, gap_s, gap_exact) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    admission[0], str(uuid.uuid4()), kernel, utc, boottime, software, config_hash,
                    None if previous is None else previous[0], origin, gap_s,
                    None if gap_s is None else int(exact),
                ),
            ).lastrowid  # fmt: skip
            assert boot_id is not None
            if gap_s is not None:
                all_notes.append(
                    f"resuming admission {admission[0]} after a gap of "
                    f"{'' if exact else 'at least '}{_duration(gap_s)}"
                )
            for note in all_notes:
                self._insert_event(conn, boot_id, 0.0, utc, "monitor", "start", note, {})
            self._insert_event(
                conn, boot_id, 0.0, utc, "monitor", "start", f"monitor started ({software})",
                {"config_hash": config_hash, "kernel_boot_id": kernel},
            )  # fmt: skip
        return Boot(
            boot_id, admission[0], admission[1], origin,
            None if previous is None else previous[0], gap_s, exact, tuple(all_notes),
        )  # fmt: skip

    def history(self) -> History:
        """This admission's trend points within the look-back, gaps between boots marked."""
        boot = self.boot
        since = boot.origin_s - self.settings.resume_lookback_s
        rows = self._record.execute(
            "SELECT b.id, b.origin_s + t.stream_s AS at, t.map_mmhg, t.systolic_mmhg, "
            "t.diastolic_mmhg, t.pulse_rate_bpm, t.clean_coverage, t.artifact_coverage, t.nee, "
            "t.no_pulse, t.state FROM trends t JOIN boots b ON t.boot = b.id "
            "WHERE b.admission = ? AND b.id < ? AND b.origin_s + t.stream_s >= ? "
            "ORDER BY b.id, t.stream_s",
            (boot.admission, boot.id, since),
        ).fetchall()
        points: list[TrendPoint] = []
        previous_boot = None
        for row in rows:
            row_boot, at_s, map_mmhg, sbp, dbp, rate, clean, artifact, nee, no_pulse, state = row
            if previous_boot is not None and row_boot != previous_boot and points:
                points.append(TrendPoint.gap(points[-1].t_s))
            previous_boot = row_boot
            points.append(
                TrendPoint(
                    at_s - boot.origin_s, map_mmhg, sbp, dbp, rate, clean, artifact, nee,
                    bool(no_pulse), state,
                )
            )  # fmt: skip
        data_end = points[-1].t_s if points else 0.0
        return History(tuple(points), data_end)

    def new_admission(self, weight_kg: float | None, by: str) -> int:
        """Start a new patient's admission: no later boot resumes history from before it."""
        with Transaction(self._record) as conn:
            return insert_admission(conn, self.clocks.utc(), weight_kg, by, self.boot.id)

    def latest_admission(self) -> int:
        """The newest admission in the log: another than this boot's means a new patient."""
        row = self._record.execute("SELECT max(id) FROM admissions").fetchone()
        return int(row[0])

    def durability(self) -> dict[str, int]:
        """SQLite's ``synchronous`` level of each write path (2 = FULL)."""
        level = self._record.execute("PRAGMA synchronous").fetchone()[0]
        return {"record": int(level), "bulk": self._bulk_synchronous}

    # ----------------------------------------------------------- the record
    def record_entries(self, entries: Iterable[TimelineEntry]) -> bool:
        """Commit alarm transitions, states and episodes durably; True once on disk.

        Returns False (and reports the problem) when they could not be
        written: the caller shows the alarms anyway.
        """
        rows = list(entries)
        if not rows:
            return True
        utc = self.clocks.utc()
        boot = self.boot.id

        def write(conn: sqlite3.Connection) -> None:
            for e in rows:
                evidence = _json(e.evidence)
                if e.alarm is not None:
                    conn.execute(
                        "INSERT INTO alarms (boot, stream_s, utc, name, priority, transition, "
                        "map_mmhg, nee, message, evidence) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (boot, e.t_s, utc, e.name, e.priority, e.kind, e.map_mmhg, e.nee,
                         e.message, evidence),
                    )  # fmt: skip
                else:
                    conn.execute(
                        "INSERT INTO states (boot, stream_s, utc, kind, name, map_mmhg, nee, "
                        "message, evidence) VALUES (?,?,?,?,?,?,?,?,?)",
                        (boot, e.t_s, utc, e.kind, e.name, e.map_mmhg, e.nee, e.message,
                         evidence),
                    )  # fmt: skip

        return self._durably("record", write)

    def record_audit(
        self,
        stream_s: float | None,
        by: str,
        action: str,
        key: str,
        old: str | None,
        new: str | None,
        file: str | None = None,
        file_hash: str | None = None,
    ) -> bool:
        """One audited change (who, what, from, to), committed before the call returns."""
        utc, boot = self.clocks.utc(), self.boot.id

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new, file, "
                "file_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (boot, stream_s, utc, by, os_user(), action, key, old, new, file, file_hash),
            )

        return self._durably("record", write)

    # ------------------------------------------------------------- bulk data
    def add_trend(self, point: TrendPoint) -> None:
        self._put(
            "trends",
            (self.boot.id, point.t_s, self.clocks.utc(), self.clocks.boottime(), point.map_mmhg,
             point.systolic_mmhg, point.diastolic_mmhg, point.pulse_rate_bpm,
             point.clean_coverage, point.artifact_coverage, point.nee, int(point.no_pulse),
             point.state),
        )  # fmt: skip

    def add_pump_event(
        self,
        t_s: float,
        pump: str,
        channel: int,
        drug: str,
        concentration: float,
        unit: str,
        rate_ml_h: float,
        pump_state: str,
        nee: float | None,
    ) -> None:
        self._put(
            "pump_events",
            (self.boot.id, t_s, self.clocks.utc(), pump, channel, drug, concentration, unit,
             rate_ml_h, pump_state, nee),
        )  # fmt: skip

    def add_event(
        self, t_s: float, source: str, kind: str, message: str, detail: Mapping[str, Any]
    ) -> None:
        self._put(
            "events",
            (self.boot.id, t_s, self.clocks.utc(), source, kind, message, _json(detail)),
        )

    def add_beats(self, fs: float, beats: Any) -> None:
        """Every beat (only with ``log.beats = "on"``): onset time, pressures, rate, quality."""
        if not self.settings.beats or not len(beats):
            return
        utc, boot = self.clocks.utc(), self.boot.id
        for b in beats:
            self._put(
                "beats",
                (boot, float(b["onset"]) / fs, utc, float(b["sbp"]), float(b["dbp"]),
                 float(b["map"]), float(b["pulse_rate"]), int(b["quality"])),
            )  # fmt: skip

    # -------------------------------------------------------------- health
    def problems(self) -> dict[str, str]:
        """What is wrong with the log now (kind -> message); empty when all is well."""
        with self._lock:
            return dict(self._problems)

    def close(self, reason: str = "stopped", stream_s: float = 0.0) -> None:
        """Flush the queue, record the end of this boot, close the connections."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join(timeout=30.0)
        if self._writer.is_alive():
            log.warning("log writer did not finish within 30 s; queued rows may be lost")
        utc = self.clocks.utc()

        def write(conn: sqlite3.Connection) -> None:
            self._insert_event(
                conn, self.boot.id, stream_s, utc, "monitor", "stop", f"monitor {reason}", {}
            )
            conn.execute(
                "UPDATE boots SET ended_utc = ?, end_reason = ? WHERE id = ?",
                (utc, reason, self.boot.id),
            )

        self._durably("record", write)
        try:
            self._record.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("log checkpoint at close failed: %s", exc)
        self._record.close()

    # ------------------------------------------------------------ internals
    def _put(self, table: str, row: tuple) -> None:
        if not self._closed:
            self._queue.put((table, row))

    def _report(self, kind: str, message: str | None) -> None:
        with self._lock:
            if message is None:
                self._problems.pop(kind, None)
            elif self._problems.get(kind) != message:
                self._problems[kind] = message
                log.warning("log: %s", message)

    def _durably(self, kind: str, write: Callable[[sqlite3.Connection], None]) -> bool:
        """Commit ``write`` on the record's connection (FULL); a failure is reported."""
        return self._commit(
            self._record, write, kind,
            lambda exc: f"alarms and states not recorded: {exc} ({self.path})",
        )  # fmt: skip

    def _commit(
        self,
        conn: sqlite3.Connection,
        write: Callable[[sqlite3.Connection], None],
        kind: str,
        loss: Callable[[sqlite3.Error], str],
    ) -> bool:
        """Run ``write`` in one transaction; on a full disk, make room and try once more.

        A failure is reported under ``kind`` with the message ``loss(exc)``;
        a success ends that report.
        """
        for attempt in (1, 2):
            try:
                with Transaction(conn):
                    write(conn)
            except sqlite3.Error as exc:
                if attempt == 1 and _is_full(exc):
                    self._report_full()
                    self._make_room(conn)
                    continue
                self._report(kind, loss(exc))
                return False
            self._report(kind, None)
            return True
        return False  # pragma: no cover - the second attempt always returns

    def _make_room(self, conn: sqlite3.Connection, rows: int = PRUNE_CHUNK) -> int:
        """Delete ``rows`` of the oldest bulk rows, from the first table that has any."""
        for table in BULK_TABLES:
            try:
                with Transaction(conn):
                    deleted = conn.execute(
                        f"DELETE FROM {table} WHERE rowid IN "
                        f"(SELECT rowid FROM {table} ORDER BY rowid LIMIT ?)",
                        (rows,),
                    ).rowcount
            except sqlite3.Error as exc:
                log.warning("log: making room in %s failed: %s", table, exc)
                continue
            if deleted:
                return deleted
        return 0

    def _report_full(self) -> None:
        self._report(
            "full",
            f"log storage full ({self.path}): the oldest trends and events are deleted "
            "to keep alarms and audit records",
        )

    def _page_budget(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Pages in use, and pages the log may use: its size limit or what the disk spares."""
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        spare = shutil.disk_usage(self.path.parent).free - self.settings.disk_reserve_mb * 2**20
        budget = min(self._max_pages, pages + max(0, int(spare)) // PAGE_SIZE)
        return pages - free_pages, budget

    def _keep_headroom(self, conn: sqlite3.Connection) -> None:
        """Trim near the page budget, so the file stops growing; end the storage-full alarm
        once there is room again."""
        try:
            used, budget = self._page_budget(conn)
            if used >= FULL_SHARE * budget:
                self._report_full()
                while used > TRIM_TO_SHARE * budget and self._make_room(conn, TRIM_CHUNK):
                    used, budget = self._page_budget(conn)
            elif "full" in self.problems() and used < CLEAR_SHARE * budget:
                self._report("full", None)
        except (sqlite3.Error, OSError) as exc:
            log.warning("log: checking its size failed: %s", exc)

    def _write_loop(self) -> None:
        try:
            conn = connect(self.path, synchronous="FULL", max_pages=self._max_pages)
        except (sqlite3.Error, LogError) as exc:
            self._report("bulk", f"trends not recorded: cannot open {self.path}: {exc}")
            self._writer_ready.set()
            return
        self._bulk_synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        self._writer_ready.set()
        next_prune = time.monotonic()
        stopping = False
        while not stopping:
            if time.monotonic() >= next_prune:  # at start, then every few minutes
                self._prune(conn)
                next_prune = time.monotonic() + PRUNE_EVERY_S
            batch, stopping = self._collect()
            if batch:
                self._write_batch(conn, batch)
            self._keep_headroom(conn)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass
        conn.close()

    def _collect(self) -> tuple[dict[str, list[tuple]], bool]:
        """Rows queued during one commit interval, by table; True once close() was called."""
        batch: dict[str, list[tuple]] = {}
        deadline = time.monotonic() + self.settings.commit_interval_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.setdefault(item[0], []).append(item[1])

    def _write_batch(self, conn: sqlite3.Connection, batch: dict[str, list[tuple]]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            for table, rows in batch.items():
                marks = ",".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", rows)

        lost = sum(len(rows) for rows in batch.values())
        self._commit(
            conn, write, "bulk", lambda exc: f"{lost} trend and event rows not recorded: {exc}"
        )

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Delete bulk rows older than the retention time, a chunk per transaction."""
        cutoff = self.clocks.utc() - 86400.0 * self.settings.retention_days
        for table in BULK_TABLES:
            while True:
                try:
                    with Transaction(conn):
                        n = conn.execute(
                            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                            "WHERE utc < ? LIMIT ?)",
                            (cutoff, PRUNE_CHUNK),
                        ).rowcount
                except sqlite3.Error as exc:
                    log.warning("log: pruning %s failed: %s", table, exc)
                    break
                if n < PRUNE_CHUNK:
                    break

    @staticmethod
    def _insert_event(
        conn: sqlite3.Connection,
        boot: int,
        t_s: float,
        utc: float,
        source: str,
        kind: str,
        message: str,
        detail: Mapping[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO events (boot, stream_s, utc, source, kind, message, detail) "
            "VALUES (?,?,?,?,?,?,?)",
            (boot, t_s, utc, source, kind, message, _json(detail)),
        )


_COLUMNS = {
    "trends": "boot, stream_s, utc, boottime_s, map_mmhg, systolic_mmhg, diastolic_mmhg, "
    "pulse_rate_bpm, clean_coverage, artifact_coverage, nee, no_pulse, state",
    "pump_events": "boot, stream_s, utc, pump, channel, drug, concentration, "
    "concentration_unit, rate_ml_h, pump_state, nee",
    "events": "boot, stream_s, utc, source, kind, message, detail",
    "beats": "boot, stream_s, utc, systolic_mmhg, diastolic_mmhg, map_mmhg, pulse_rate_bpm, "
    "quality",
}


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the body raises."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def insert_admission(
    conn: sqlite3.Connection, utc: float, weight_kg: float | None, by: str, boot: int | None
) -> int:
    """A new admission row and its audit record, inside the caller's transaction."""
    admission = conn.execute(
        "INSERT INTO admissions (utc, weight_kg, by, os_user) VALUES (?,?,?,?)",
        (utc, weight_kg, by, os_user()),
    ).lastrowid
    assert admission is not None
    conn.execute(
        "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (boot, None, utc, by, os_user(), "admission", "patient", None,
         f"admission {admission}" + ("" if weight_kg is None else f", {weight_kg:g} kg")),
    )  # fmt: skip
    return admission


def _is_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk, or the size limit (max_page_count), has no room."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


def _json(value: Any) -> str:
    return json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))


def os_user() -> str:
    """Who is logged in, for the audit's ``os_user``: ``by`` is only the name someone gave."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
