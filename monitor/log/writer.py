"""The bedside's writer: a running bedside's alarms, states, trends, pump events and audit.

Two write paths, because they have different promises:

* **the record** (alarm transitions, detector states and episodes, audit,
  admissions, boots) is written on the caller's thread, on a connection with
  ``synchronous=FULL``: when the log takes the write within a short bound
  (``RECORD_BUSY_MS`` for another process's lock, ``TURN_WAIT_S`` for this
  process's writer thread), the call returns once the commit is on the disk,
  so an alarm is in the log before any output shows it. When it does not,
  the call returns False at once and the write is kept in memory
  (``monitor.log.record``), to be written in order when the log returns;
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

from monitor.clinical.alarm_types import CarriedAlarm, Priority
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.trends import TrendPoint
from monitor.configuration.config import Config
from monitor.log.admission_file import (
    KeptAdmission,
    latest_admission_row,
    read_admission,
    save_admission,
)
from monitor.log.record import RecordBacklog, Write, as_json, entries_write
from monitor.log.schema import BULK_TABLES
from monitor.log.store import LogError, OpenedLog, connect, is_locked, log_error, open_log_database

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
# The disk reserve is log.disk_reserve_mb, but never more than this share of the
# file system (with a floor): on a small disk a fixed reserve leaves the log no room.
RESERVE_SHARE = 0.05
RESERVE_FLOOR_MB = 1.0

# How long a record write may wait, on the monitoring thread, for another process's
# write lock, and for this process's writer thread to finish a transaction; past
# that the write is kept in memory and retried, first after RETRY_FIRST_S, backing
# off to RETRY_MAX_S (wall clock: this is the log's housekeeping, not a clinical timer).
RECORD_BUSY_MS = 100
TURN_WAIT_S = 0.25
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 5.0
CLOSE_WAIT_S = 5.0  # at close, how long kept rows may still wait for the log
BULK_CARRY_LIMIT = 100_000  # bulk rows kept across commits that found the log locked

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


DiskUsage = Callable[[Path], Any]  # shutil.disk_usage's shape: .total, .free in bytes


class BedsideLog:
    """The log of one bedside. Write methods are for the monitor's loop thread only.

    It may be opened on another thread (a retry while monitoring goes on) and
    then handed to the loop's: ``late_by_s`` says how long after this boot's
    stream time 0 that happened, so the boot's clocks still mark its start.
    """

    def __init__(
        self,
        settings: LogSettings,
        *,
        software: str,
        config_hash: str,
        clocks: Clocks = SYSTEM_CLOCKS,
        by: str = "monitor",
        disk_usage: DiskUsage = shutil.disk_usage,
        late_by_s: float = 0.0,
    ) -> None:
        self.settings = settings
        self.clocks = clocks
        self._disk_usage = disk_usage
        opened: OpenedLog = open_log_database(settings.directory, RECORD_BUSY_MS)
        self.path = opened.path
        self._max_pages = max(64, int(settings.max_size_mb * 2**20 // PAGE_SIZE))
        self._record = connect(
            self.path, synchronous="FULL", max_pages=self._max_pages,
            busy_timeout_ms=RECORD_BUSY_MS, check_same_thread=False,
        )  # fmt: skip
        # Checkpoints are the writer's job: an alarm's commit never waits on one.
        self._record.execute("PRAGMA wal_autocheckpoint = 0")
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()
        # One transaction at a time in this process: the record waits (boundedly) for the
        # writer thread's, so a lock the record meets is another process's.
        self._turn = threading.RLock()
        self._backlog = RecordBacklog(clocks.utc)
        self._retry_at = 0.0
        self._retry_every = RETRY_FIRST_S
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._bulk_synchronous = -1  # set by the writer thread once connected
        self._writer_ready = threading.Event()
        try:
            self._reserve, reserve_note = self._sized_reserve()
            budget_note = self._budget_note(reserve_note)
            self.boot = self._start_boot(
                software, config_hash, by, opened.notes, budget_note, late_by_s
            )
        except (sqlite3.Error, OSError) as exc:
            self._record.close()
            if isinstance(exc, sqlite3.Error):
                raise log_error(f"cannot start this boot in the log {self.path}", exc) from None
            raise
        self._writer = threading.Thread(target=self._write_loop, name="log-writer", daemon=True)
        self._writer.start()
        self._writer_ready.wait(timeout=10.0)

    # ------------------------------------------------------------ the budget
    def _sized_reserve(self) -> tuple[int, str]:
        """The disk reserve in bytes, and why: the configured one, capped on a small disk."""
        configured_mb = self.settings.disk_reserve_mb
        total = int(self._disk_usage(self.path.parent).total)
        cap = max(int(RESERVE_FLOOR_MB * 2**20), int(RESERVE_SHARE * total))
        if configured_mb * 2**20 <= cap:
            return int(configured_mb * 2**20), f"log.disk_reserve_mb = {configured_mb:g} MB"
        return cap, (
            f"log.disk_reserve_mb = {configured_mb:g} MB is more than {RESERVE_SHARE:.0%} of this "
            f"{_megabytes(total)} file system, so {_megabytes(cap)} instead "
            f"(at most {RESERVE_SHARE:.0%} of the disk, at least {RESERVE_FLOOR_MB:g} MB)"
        )

    def _budget_note(self, reserve_note: str) -> str:
        """The start note (and console line) saying what the log may use, and why."""
        _, budget = self._page_budget(self._record)
        limit = f"log.max_size_mb = {self.settings.max_size_mb:g} MB"
        bound = limit if budget >= self._max_pages else f"the free disk space, below {limit}"
        note = (
            f"log budget {_megabytes(budget * PAGE_SIZE)} ({bound}); kept free on the disk: "
            f"{_megabytes(self._reserve)} ({reserve_note})"
        )
        if self._reserve < self.settings.disk_reserve_mb * 2**20:
            log.warning(note)
        else:
            log.info(note)
        return note

    # ---------------------------------------------------------------- boot
    def _start_boot(
        self,
        software: str,
        config_hash: str,
        by: str,
        notes: Sequence[str],
        budget_note: str,
        late_by_s: float,
    ) -> Boot:
        utc, boottime, kernel = (
            self.clocks.utc() - late_by_s,
            self.clocks.boottime() - late_by_s,
            self.clocks.kernel_boot_id(),
        )
        conn = self._record
        in_log = latest_admission_row(conn)
        kept, kept_problem = read_admission(self.settings.directory)
        admission = None if in_log is None else (in_log.admission, in_log.weight_kg)
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
        if kept_problem is not None:
            log.warning(kept_problem)
            all_notes.append(kept_problem)
        if late_by_s > 0:
            all_notes.append(
                f"log opened {_duration(late_by_s)} after the monitor started: this boot did not "
                "resume the detector from the log's history"
            )
        with Transaction(conn):
            if admission is None and kept is not None:
                admission = (seed_admission(conn, kept, utc), kept.weight_kg)
                all_notes.append(
                    f"admission {admission[0]} re-seeded from the admission file (admission "
                    f"{kept.admission} of the log that wrote it, by {kept.by}, "
                    + ("no weight" if kept.weight_kg is None else f"{kept.weight_kg:g} kg")
                    + ")"
                )
            elif admission is None:
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
            self._insert_event(conn, boot_id, 0.0, utc, "monitor", "start", budget_note, {})
        self._keep_admission_file(latest_admission_row(conn))
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

    def carried_alarms(self) -> list[CarriedAlarm]:
        """The alarms still standing when the earlier boots ended, oldest first.

        An alarm stands until a ``cleared`` row with its id: one carried into
        a boot that stopped before finding it again is carried again. One of
        an earlier admission comes marked, to be ended rather than resumed.
        """
        rows = self._record.execute(
            "SELECT a.alarm_id, a.name, a.priority, a.transition, a.utc, a.message, "
            "a.evidence, b.admission FROM alarms a JOIN boots b ON a.boot = b.id "
            "WHERE a.alarm_id IN (SELECT alarm_id FROM alarms WHERE id IN (SELECT MAX(id) "
            "FROM alarms WHERE boot < ? AND alarm_id IS NOT NULL GROUP BY alarm_id) "
            "AND transition != 'cleared') ORDER BY a.id",
            (self.boot.id,),
        ).fetchall()
        standing: dict[str, CarriedAlarm] = {}
        for alarm_id, name, priority, transition, utc, message, evidence, admission in rows:
            before = standing.get(alarm_id)
            condition_active = before is None or before.condition_active
            if transition == "condition_ended":
                condition_active = False
            elif transition == "resumed":
                condition_active = json.loads(evidence).get("condition_active", True)
            standing[alarm_id] = CarriedAlarm(
                alarm_id, name, Priority[priority.upper()], message,
                utc if before is None else before.raised_utc, condition_active,
                earlier_patient=admission != self.boot.admission,
            )  # fmt: skip
        return list(standing.values())

    def new_admission(self, weight_kg: float | None, by: str) -> int:
        """Start a new patient's admission: no later boot resumes history from before it."""
        with Transaction(self._record) as conn:
            admission = insert_admission(conn, self.clocks.utc(), weight_kg, by, self.boot.id)
        self._keep_admission_file(latest_admission_row(self._record))
        return admission

    def _keep_admission_file(self, admission: KeptAdmission | None) -> None:
        """The admission file follows the log's latest admission (a good log wins)."""
        if admission is None or read_admission(self.settings.directory)[0] == admission:
            return
        try:
            save_admission(self.settings.directory, admission)
        except OSError as exc:
            log.warning("admission file not written beside the log %s: %s", self.path, exc)

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

        False when the log could not take them within the bound: they are
        kept in memory, in order, and written when it returns (``retry``);
        the caller shows the alarms anyway, at once.
        """
        rows = list(entries)
        if not rows:
            return True
        return self._durably(rows[0].t_s, len(rows), entries_write(rows, self.clocks.utc()))

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
        """One audited change (who, what, from, to), committed (or kept) like an alarm."""
        utc = self.clocks.utc()

        def write(conn: sqlite3.Connection, boot: int) -> None:
            conn.execute(
                "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new, file, "
                "file_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (boot, stream_s, utc, by, os_user(), action, key, old, new, file, file_hash),
            )

        return self._durably(stream_s or 0.0, 1, write)

    def adopt(self, backlog: RecordBacklog, stream_s: float) -> bool:
        """What the bedside kept before this log opened: written first, then the rest."""
        if backlog.outage is None:
            return True
        assert self._backlog.outage is None, "adopt() comes before any record write"
        self._backlog = backlog
        return self.retry(stream_s, force=True)

    def retry(self, stream_s: float, *, force: bool = False) -> bool:
        """Write what the record kept while the log was unavailable, once it is time to try.

        True when nothing is kept (any more). The kept writes go in their
        original order, with their own stream time and UTC, in one
        transaction with the event that says how long the log was
        unavailable. Cheap when nothing is kept: the loop calls it often.
        """
        backlog = self._backlog
        if backlog.outage is None:
            return True
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        until_utc = self.clocks.utc()
        message, detail = backlog.ended(until_utc, stream_s)
        boot = self.boot.id

        def write(conn: sqlite3.Connection) -> None:
            for kept in backlog.writes():
                kept(conn, boot)
            self._insert_event(
                conn, boot, stream_s, until_utc, "monitor", "log_unavailable", message, detail
            )

        failure = self._commit_record(write)
        if failure is None:
            log.warning("log: %s", message)
            backlog.clear()
            self._retry_every = RETRY_FIRST_S
            self._report("record", None)
            return True
        backlog.unavailable(failure, stream_s)
        self._retry_at = now + self._retry_every
        self._retry_every = min(RETRY_MAX_S, 2 * self._retry_every)
        self._report("record", backlog.describe())
        return False

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
        concentration: float | None,
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
            (self.boot.id, t_s, self.clocks.utc(), source, kind, message, as_json(detail)),
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
        deadline = time.monotonic() + CLOSE_WAIT_S
        while not self.retry(stream_s, force=True) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._backlog.outage is not None:
            log.warning(
                "log: %d alarm and state entries were never written: %s",
                self._backlog.kept, self._backlog.outage.reason,
            )  # fmt: skip
        utc = self.clocks.utc()

        def write(conn: sqlite3.Connection) -> None:
            self._insert_event(
                conn, self.boot.id, stream_s, utc, "monitor", "stop", f"monitor {reason}", {}
            )
            conn.execute(
                "UPDATE boots SET ended_utc = ?, end_reason = ? WHERE id = ?",
                (utc, reason, self.boot.id),
            )

        failure = self._commit_record(write)
        if failure is not None:
            log.warning("log: the end of this boot was not recorded: %s", failure)
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

    def _durably(self, stream_s: float, count: int, write: Write) -> bool:
        """Commit ``write`` on the record's connection (FULL) within the bound, else keep it.

        Never ahead of what is already kept: while anything is, a new write
        joins the end of the backlog, and goes in with it.
        """
        outage = self._backlog.outage
        if outage is not None:
            self._backlog.keep(stream_s, count, write, outage.reason)
            return self.retry(stream_s)
        failure = self._commit_record(lambda conn: write(conn, self.boot.id))
        if failure is None:
            return True
        self._backlog.keep(stream_s, count, write, failure)
        self._retry_at = time.monotonic() + RETRY_FIRST_S
        self._retry_every = 2 * RETRY_FIRST_S
        self._report("record", self._backlog.describe())
        return False

    def _commit_record(self, write: Callable[[sqlite3.Connection], None]) -> str | None:
        """One record transaction, waiting at most the bound; None, or why it failed."""
        if not self._turn.acquire(timeout=TURN_WAIT_S):
            return f"log busy: its writer thread held it over {TURN_WAIT_S:g} s ({self.path})"
        try:
            exc = self._commit(self._record, write)
        finally:
            self._turn.release()
        if exc is None:
            return None
        if is_locked(exc):
            return f"log locked by another process ({self.path})"
        return f"log write failed: {exc} ({self.path})"

    def _commit(
        self, conn: sqlite3.Connection, write: Callable[[sqlite3.Connection], None]
    ) -> sqlite3.Error | None:
        """Run ``write`` in one transaction; on a full disk, make room and try once more."""
        for attempt in (1, 2):
            try:
                with Transaction(conn):
                    write(conn)
            except sqlite3.Error as exc:
                if attempt == 1 and _is_full(exc):
                    self._report_full()
                    self._make_room(conn)
                    continue
                return exc
            return None
        return None  # pragma: no cover - the second attempt always returns

    def _make_room(self, conn: sqlite3.Connection, rows: int = PRUNE_CHUNK) -> int:
        """Delete ``rows`` of the oldest bulk rows, from the first table that has any."""
        for table in BULK_TABLES:
            try:
                with self._turn, Transaction(conn):
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
        spare = self._disk_usage(self.path.parent).free - self._reserve
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
            conn = connect(
                self.path, synchronous="FULL", max_pages=self._max_pages,
                busy_timeout_ms=RECORD_BUSY_MS,
            )  # fmt: skip
            # The WAL lives in the reserve: checkpoint (and shrink it) well before it fills
            # that, which on a small disk is long before SQLite's default of 1000 pages.
            wal_pages = max(16, min(1000, self._reserve // PAGE_SIZE // 4))
            conn.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
            conn.execute(f"PRAGMA journal_size_limit = {self._reserve // 2}")
        except (sqlite3.Error, LogError) as exc:
            self._report("bulk", f"trends not recorded: cannot open {self.path}: {exc}")
            self._writer_ready.set()
            return
        self._bulk_synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        self._writer_ready.set()
        next_prune = time.monotonic()
        stopping = False
        carried: dict[str, list[tuple]] = {}  # rows that found the log locked, kept for later
        while not stopping:
            if time.monotonic() >= next_prune:  # at start, then every few minutes
                self._prune(conn)
                next_prune = time.monotonic() + PRUNE_EVERY_S
            batch, stopping = self._collect()
            for table, rows in batch.items():
                carried.setdefault(table, []).extend(rows)
            if carried:
                carried = self._write_batch(conn, carried)
            self._keep_headroom(conn)
        deadline = time.monotonic() + CLOSE_WAIT_S
        while carried and time.monotonic() < deadline:
            time.sleep(0.2)
            carried = self._write_batch(conn, carried)
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

    def _write_batch(
        self, conn: sqlite3.Connection, batch: dict[str, list[tuple]]
    ) -> dict[str, list[tuple]]:
        """Commit ``batch``; what is returned waits for the next try (the log was locked)."""

        def write(conn: sqlite3.Connection) -> None:
            for table, rows in batch.items():
                marks = ",".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", rows)

        count = sum(len(rows) for rows in batch.values())
        with self._turn:
            exc = self._commit(conn, write)
        if exc is None:
            self._report("bulk", None)
            return {}
        if is_locked(exc) and count <= BULK_CARRY_LIMIT:
            self._report(
                "bulk", f"{count} trend and event rows waiting: log locked by another process"
            )
            return batch
        self._report("bulk", f"{count} trend and event rows not recorded: {exc}")
        return {}

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Delete bulk rows older than the retention time, a chunk per transaction."""
        cutoff = self.clocks.utc() - 86400.0 * self.settings.retention_days
        for table in BULK_TABLES:
            while True:
                try:
                    with self._turn, Transaction(conn):
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
            (boot, t_s, utc, source, kind, message, as_json(detail)),
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


def seed_admission(conn: sqlite3.Connection, kept: KeptAdmission, utc: float) -> int:
    """A new log's admission, from the admission file: the patient and weight carry over."""
    admission = conn.execute(
        "INSERT INTO admissions (utc, weight_kg, by, os_user) VALUES (?,?,?,?)",
        (kept.utc, kept.weight_kg, kept.by, kept.os_user),
    ).lastrowid
    assert admission is not None
    conn.execute(
        "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (None, None, utc, "monitor", os_user(), "admission re-seeded", "patient",
         f"admission {kept.admission} (admission file)",
         f"admission {admission}" + ("" if kept.weight_kg is None else f", {kept.weight_kg:g} kg")),
    )  # fmt: skip
    return admission


def _is_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk, or the size limit (max_page_count), has no room."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


def os_user() -> str:
    """Who is logged in, for the audit's ``os_user``: ``by`` is only the name someone gave."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _megabytes(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
