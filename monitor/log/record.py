"""The record's rows, and the record kept in memory while the log cannot take it.

The record (alarm transitions, detector states and episodes, audit) is
committed before the outputs show it, but never at the price of the
monitoring loop: a write that cannot be committed within a short bound
(another process holds the write lock, the disk fails, the log has not
opened yet) is kept here, in order, with its own stream time and UTC. It
is written, in that order, when the log takes writes again, followed by
an event saying how long the log was unavailable. The backlog is bounded:
what does not fit is counted and reported, never dropped in silence.
docs/log.md states the promise.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.clinical.alarm_types import jsonable
from monitor.clinical.engine import TimelineEntry

#: The rows of one record write, for the boot that finally writes them.
Write = Callable[[sqlite3.Connection, int], None]

#: Timeline entries kept while the log is unavailable: hours of a busy bed's
#: alarms and states, a few MB at most.
BACKLOG_LIMIT = 5000


def entries_write(entries: Sequence[TimelineEntry], utc: float) -> Write:
    """Alarm transitions into ``alarms``, state and episode changes into ``states``."""
    rows = tuple(entries)

    def write(conn: sqlite3.Connection, boot: int) -> None:
        for e in rows:
            evidence = as_json(e.evidence)
            if e.alarm is not None:
                conn.execute(
                    "INSERT INTO alarms (boot, stream_s, utc, name, priority, transition, "
                    "map_mmhg, nee, message, evidence, alarm_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (boot, e.t_s, utc, e.name, e.priority, e.kind, e.map_mmhg, e.nee,
                     e.message, evidence, e.alarm.alarm_id or None),
                )  # fmt: skip
            else:
                conn.execute(
                    "INSERT INTO states (boot, stream_s, utc, kind, name, map_mmhg, nee, "
                    "message, evidence) VALUES (?,?,?,?,?,?,?,?,?)",
                    (boot, e.t_s, utc, e.kind, e.name, e.map_mmhg, e.nee, e.message, evidence),
                )  # fmt: skip

    return write


def as_json(value: Any) -> str:
    return json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class Outage:
    """Since when the log has not taken the record's writes, and the latest reason."""

    reason: str
    since_utc: float
    since_stream_s: float


class RecordBacklog:
    """Record writes not yet committed, oldest first; ``utc`` stamps those kept here."""

    def __init__(self, utc: Callable[[], float], limit: int = BACKLOG_LIMIT) -> None:
        self.utc = utc
        self.limit = limit
        self.outage: Outage | None = None
        self._writes: list[Write] = []
        self.kept = 0  # entries in the backlog
        self.lost = 0  # entries that did not fit
        self.lost_from_s: float | None = None
        self.lost_to_s: float | None = None

    def unavailable(self, reason: str, stream_s: float) -> None:
        """The log cannot take writes (again): start the outage, or update its reason."""
        if self.outage is None:
            self.outage = Outage(reason, self.utc(), stream_s)
        elif reason != self.outage.reason:
            self.outage = Outage(reason, self.outage.since_utc, self.outage.since_stream_s)

    def keep(self, stream_s: float, count: int, write: Write, reason: str) -> None:
        """Keep one write of ``count`` entries, or count it lost when the backlog is full."""
        self.unavailable(reason, stream_s)
        if self.kept + count > self.limit:
            self.lost += count
            self.lost_from_s = stream_s if self.lost_from_s is None else self.lost_from_s
            self.lost_to_s = stream_s
            return
        self._writes.append(write)
        self.kept += count

    def keep_entries(self, entries: Sequence[TimelineEntry], reason: str) -> None:
        if entries:
            self.keep(entries[0].t_s, len(entries), entries_write(entries, self.utc()), reason)

    def writes(self) -> list[Write]:
        return list(self._writes)

    def describe(self) -> str:
        """What the technical alarm says while the outage lasts."""
        assert self.outage is not None
        text = (
            f"{self.outage.reason}; {self.kept} alarm and state entries kept in memory since "
            f"stream time {self.outage.since_stream_s:.0f} s, written when the log returns"
        )
        return text + (f"; {self.lost} lost (memory full)" if self.lost else "")

    def ended(self, until_utc: float, until_stream_s: float) -> tuple[str, Mapping[str, Any]]:
        """The event that follows the backlog into the log: how long it was unavailable."""
        assert self.outage is not None
        o = self.outage
        duration = max(0.0, until_utc - o.since_utc)
        message = (
            f"log unavailable from {_utc_text(o.since_utc)} to {_utc_text(until_utc)} "
            f"({duration:.1f} s; stream time {o.since_stream_s:.1f} to {until_stream_s:.1f} s): "
            f"{o.reason}; {self.kept} alarm and state entries written late"
        )
        if self.lost:
            message += (
                f"; {self.lost} entries lost (memory full), stream time {self.lost_from_s:.1f} "
                f"to {self.lost_to_s:.1f} s"
            )
        detail = {
            "since_utc": o.since_utc, "until_utc": until_utc, "duration_s": duration,
            "since_stream_s": o.since_stream_s, "until_stream_s": until_stream_s,
            "written": self.kept, "lost": self.lost, "reason": o.reason,
        }  # fmt: skip
        return message, detail

    def clear(self) -> None:
        self.outage, self._writes, self.kept = None, [], 0
        self.lost, self.lost_from_s, self.lost_to_s = 0, None, None


def _utc_text(utc: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(utc))
