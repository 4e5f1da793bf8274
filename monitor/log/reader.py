"""Reading the log back: rows of every kind as one time-ordered stream, for tail, export, report.

The reader opens the database read-only and never takes a write lock, so a
running monitor is never slowed by someone looking at its log.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.log.store import DATABASE_NAME

#: kind -> (table, SQL for the row's name, priority and message, the detail columns)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "alarm": (
        "alarms",
        "name, priority, message",
        ("transition", "map_mmhg", "nee", "evidence", "alarm_id"),
    ),
    "state": ("states", "name, '', message", ("kind", "map_mmhg", "nee", "evidence")),
    "trend": (
        "trends",
        "state, '', ''",
        (
            "map_mmhg",
            "systolic_mmhg",
            "diastolic_mmhg",
            "pulse_rate_bpm",
            "clean_coverage",
            "artifact_coverage",
            "nee",
            "no_pulse",
        ),
    ),  # fmt: skip
    "pump": (
        "pump_events",
        "drug, '', pump_state",
        ("pump", "channel", "concentration", "concentration_unit", "rate_ml_h", "nee"),
    ),
    "event": ("events", "kind, '', message", ("source", "detail")),
    "audit": (
        "audit",
        "action, '', key || ': ' || ifnull(old, '-') || ' -> ' || ifnull(new, '-') "
        "|| ' (by ' || by || ')'",
        ("by", "os_user", "old", "new", "file", "file_hash"),
    ),
}
DEFAULT_KINDS = ("alarm", "state", "event", "audit")  # what a person tails: not the trends
EXPORT_COLUMNS = ("utc", "boot", "stream_s", "kind", "name", "priority", "message", "detail")
_JSON_COLUMNS = {"evidence", "detail"}


class LogReadError(Exception):
    """The log cannot be read; the message names the path."""


@dataclass(frozen=True)
class LogRow:
    utc: float
    boot: int | None
    stream_s: float | None
    kind: str
    name: str
    priority: str
    message: str
    detail: dict[str, Any]
    rowid: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "utc": iso_utc(self.utc), "boot": self.boot, "stream_s": self.stream_s,
            "kind": self.kind, "name": self.name, "priority": self.priority,
            "message": self.message, "detail": self.detail,
        }  # fmt: skip


def iso_utc(utc: float) -> str:
    stamp = datetime.fromtimestamp(utc, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|min|h|d)$")
_UNIT_S = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(text: str, now: float | None = None) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) or an age such as ``2h`` or ``30min``."""
    match = _RELATIVE.match(text.strip())
    if match:
        reference = time.time() if now is None else now
        return reference - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give ISO 8601 (2026-11-26T08:00:00Z) or an age (90min, 2h)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class LogReader:
    """Read-only access to one log directory's database."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / DATABASE_NAME
        if not self.path.is_file():
            raise LogReadError(f"no log at {self.path}")
        try:
            # check_same_thread=False: a forwarder opens its reader and hands it to its own
            # thread; a reader is used by one thread at a time.
            self._conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False
            )
            self._conn.execute("SELECT count(*) FROM boots").fetchone()
        except sqlite3.Error as exc:
            raise LogReadError(f"cannot read the log {self.path}: {exc}") from None
        self._table_columns: dict[str, set[str]] = {}

    def close(self) -> None:
        self._conn.close()

    def rows(
        self,
        kinds: Sequence[str] = DEFAULT_KINDS,
        since: float | None = None,
        until: float | None = None,
        after: dict[str, int] | None = None,
        limit: int | None = None,
    ) -> list[LogRow]:
        """Rows of ``kinds`` with ``since <= utc < until``, in time order.

        ``after`` (kind -> rowid) skips rows already seen: ``tail --follow``.
        ``limit`` takes at most that many of each kind, the oldest first.
        """
        out: list[LogRow] = []
        for kind in kinds:
            table, head, detail_columns = KINDS[kind]
            where, args = ["1"], []
            if since is not None:
                where.append("utc >= ?")
                args.append(since)
            if until is not None:
                where.append("utc < ?")
                args.append(until)
            if after and kind in after:
                where.append("rowid > ?")
                args.append(after[kind])
            columns = ", ".join(
                c if c in self._columns(table) else f"NULL AS {c}" for c in detail_columns
            )  # a column added by a later schema reads as unknown in an older log
            sql = (
                f"SELECT rowid, utc, boot, stream_s, {head}, {columns} "
                f"FROM {table} WHERE {' AND '.join(where)} ORDER BY rowid"
                + ("" if limit is None else f" LIMIT {int(limit)}")
            )
            try:
                fetched = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LogReadError(f"cannot read {table} from {self.path}: {exc}") from None
            for r in fetched:
                detail = {
                    column: json.loads(value) if column in _JSON_COLUMNS and value else value
                    for column, value in zip(detail_columns, r[7:], strict=True)
                }
                out.append(LogRow(r[1], r[2], r[3], kind, r[4], r[5], r[6], detail, r[0]))
        out.sort(key=lambda row: (row.utc, row.stream_s or 0.0))
        return out

    def _columns(self, table: str) -> set[str]:
        if table not in self._table_columns:
            info = self._conn.execute(f"PRAGMA table_info({table})").fetchall()
            self._table_columns[table] = {row[1] for row in info}
        return self._table_columns[table]

    def first_boot_uuid(self) -> str | None:
        """The uuid of the log's first boot: names this log file, whatever its path."""
        return self._one("SELECT uuid FROM boots ORDER BY id LIMIT 1")

    def latest_boot(self) -> int | None:
        return self._one("SELECT max(id) FROM boots")

    def admission_of(self, boot: int | None) -> int | None:
        return self._one("SELECT admission FROM boots WHERE id = ?", boot)

    def admission_start(self, kinds: Sequence[str]) -> dict[str, int]:
        """Per kind, the last rowid before the current admission's first boot."""
        first = self._one(
            "SELECT min(id) FROM boots WHERE admission = "
            "(SELECT admission FROM boots ORDER BY id DESC LIMIT 1)"
        )
        return {
            kind: self._one(f"SELECT max(rowid) FROM {KINDS[kind][0]} WHERE boot < ?", first or 0)
            or 0
            for kind in kinds
        }

    def count_before(self, kind: str, after_rowid: int, utc: float) -> tuple[int, int]:
        """How many rows of ``kind`` after ``after_rowid`` are older than ``utc``, and the last."""
        found = self._row(
            f"SELECT count(*), max(rowid) FROM {KINDS[kind][0]} WHERE rowid > ? AND utc < ?",
            after_rowid,
            utc,
        )
        count, last = (0, None) if found is None else found  # an aggregate gives one row
        return count, last or after_rowid

    def _one(self, sql: str, *args: Any) -> Any:
        found = self._row(sql, *args)
        return None if found is None else found[0]

    def _row(self, sql: str, *args: Any) -> tuple | None:
        try:
            return self._conn.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise LogReadError(f"cannot read {self.path}: {exc}") from None

    def follow(
        self, kinds: Sequence[str], seen: dict[str, int], poll_s: float = 0.5
    ) -> Iterator[LogRow]:
        """Rows written after ``seen`` (kind -> last rowid shown), forever (``tail --follow``)."""
        while True:
            rows = self.rows(kinds, after=seen)
            for row in rows:
                seen[row.kind] = max(seen.get(row.kind, 0), row.rowid)
                yield row
            if not rows:
                time.sleep(poll_s)
