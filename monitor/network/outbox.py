"""The rows of the log one destination has not yet confirmed, and the cursor that says so.

Store and forward without a second store: the log already keeps every
trend, state and alarm durably, in order. A destination (the MQTT broker,
the HL7 interface engine) keeps only a cursor, the last row id of each kind
it confirmed, in a small file beside the log. The cursor is replaced
atomically but not synced: after a power cut it may be a little behind, and
the rows since are sent again with the same message ids, which consumers
drop as duplicates. Nothing is ever skipped.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from itertools import takewhile
from pathlib import Path

from monitor.log.reader import LogReader, LogRow

log = logging.getLogger(__name__)

BATCH_ROWS = 200  # of each kind per read: a day's backlog goes out in pieces


class Outbox:
    """What ``destination`` still has to receive from the log in ``log_dir``.

    With no cursor yet (or a cursor of another log) the destination starts
    at the current admission: the patient in the bed, not the bed's whole
    history. Trend rows older than ``numerics_backlog_s`` are passed over:
    after a long outage, numerics that old are history for the log and the
    report, not news for a central station; states and alarms are never
    passed over.
    """

    def __init__(
        self,
        log_dir: Path,
        destination: str,
        kinds: Sequence[str],
        *,
        numerics_backlog_s: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = LogReader(log_dir)
        self.kinds = tuple(kinds)
        self.path = log_dir / f"forwarded-{destination}.json"
        self.log_id = self.reader.first_boot_uuid() or "empty"
        self._backlog_s = numerics_backlog_s
        self._wall_clock = wall_clock
        self.after = self._load() or self.reader.admission_start(self.kinds)
        self.passed_over = 0  # trend rows older than the backlog window

    def close(self) -> None:
        self.reader.close()

    def pending(self) -> list[LogRow]:
        """The next rows to send (at most ``BATCH_ROWS`` of each kind).

        Each kind stays in log order (a wall clock stepped back must not
        reorder it, or confirming a prefix could skip a row); kinds are
        interleaved by time.
        """
        by_kind = []
        for kind in self.kinds:
            since = None
            if kind == "trend":
                since = self._wall_clock() - self._backlog_s
                self._skip_trends_before(since)
            rows = self.reader.rows([kind], since=since, after=self.after, limit=BATCH_ROWS)
            by_kind.append(sorted(rows, key=lambda row: row.rowid))
        # A kind cut short by the batch size cuts the others at the same time, so that
        # batch after batch the kinds stay interleaved in time.
        full = [rows[-1].utc for rows in by_kind if len(rows) == BATCH_ROWS]
        if full:
            horizon = min(full)
            by_kind = [list(takewhile(lambda r: r.utc <= horizon, rows)) for rows in by_kind]
        return list(heapq.merge(*by_kind, key=lambda row: row.utc))

    def confirm(self, rows: Sequence[LogRow]) -> None:
        """The destination has these rows: move the cursor past them and keep it."""
        for row in rows:
            self.after[row.kind] = max(self.after.get(row.kind, 0), row.rowid)
        self._save()

    # ------------------------------------------------------------ cursor
    def _load(self) -> dict[str, int] | None:
        try:
            saved = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # Sending again from the admission's start is safe: the ids do not change.
            log.warning(
                "forwarding cursor %s unreadable (%s): resending this admission", self.path, exc
            )
            return None
        if not isinstance(saved, dict) or saved.get("log_id") != self.log_id:
            return None  # a new log file: its rows are all new
        after = saved.get("after", {})
        return {kind: int(after.get(kind, 0)) for kind in self.kinds}

    def _save(self) -> None:
        staged = self.path.with_suffix(".tmp")
        staged.write_text(json.dumps({"log_id": self.log_id, "after": self.after}))
        os.replace(staged, self.path)

    def _skip_trends_before(self, since: float) -> None:
        count, last = self.reader.count_before("trend", self.after.get("trend", 0), since)
        if count:
            self.passed_over += count
            self.after["trend"] = last
