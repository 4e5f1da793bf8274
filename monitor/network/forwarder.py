"""A thread that sends what the log holds to one destination, and only ever from the log.

The bedside loop never waits for it: the loop commits to the log and, at
most, wakes this thread. The thread reads the rows its destination has not
confirmed (``Outbox``), hands them to a ``Link`` (MQTT, HL7 over MLLP),
and moves the cursor past the rows the link confirmed. A link that is down
or slow only delays the rows; they stay in the log and go out in order once
it is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from monitor.log.reader import LogReadError, LogRow
from monitor.network.outbox import Outbox

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the log is looked at when nobody wakes the thread
RETRY_S = 2.0  # after a failed send, before the same rows are tried again


class LinkDown(Exception):
    """The destination cannot take rows now; the message says why (it goes on the screen)."""


class Link(Protocol):
    """One destination's transport."""

    name: str
    failure: str | None  # why the destination is not taking rows, when it is not

    def ready(self) -> bool:
        """Connected now (connecting if it can); if not, ``failure`` says why."""
        ...

    def send(self, rows: Sequence[LogRow]) -> int:
        """Send rows in order; return how many of the first ones the destination confirmed."""
        ...

    def idle(self) -> None:
        """Everything in the log is confirmed (a moment for housekeeping)."""
        ...

    def close(self) -> None: ...


class Forwarder:
    """Owns one link and its outbox on a daemon thread."""

    def __init__(self, outbox: Outbox, link: Link, *, poll_s: float = POLL_S) -> None:
        self.outbox = outbox
        self.link = link
        self.poll_s = poll_s
        self.sent = 0  # rows confirmed since start
        self.problem: str | None = None  # why the destination is behind, if it is
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"forward-{link.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New rows are in the log (called by the bedside loop; never blocks)."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self.link.close()
        self.outbox.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                more = self._forward_once()
            except LinkDown as exc:
                why = str(exc)
            except LogReadError as exc:
                why = f"cannot read the log: {exc}"
            except Exception as exc:  # a bug must be reported and must not end forwarding
                log.exception("forwarding to %s", self.link.name)
                why = f"unexpected {type(exc).__name__}: {exc}"
            else:
                if not more:
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                continue
            self._behind(why)
            self._stop.wait(RETRY_S)

    def _forward_once(self) -> bool:
        """Send one batch; True if more may be waiting."""
        if not self.link.ready():
            raise LinkDown(self.link.failure or f"{self.link.name}: not connected")
        rows = self.outbox.pending()
        if not rows:
            self.link.idle()
            self._caught_up()
            return False
        confirmed = self.link.send(rows)
        if confirmed:
            self.outbox.confirm(rows[:confirmed])
            self.sent += confirmed
        if confirmed < len(rows):
            why = self.link.failure or "not confirmed"
            raise LinkDown(f"{why} ({len(rows) - confirmed} rows waiting in the log)")
        return True

    def _behind(self, why: str) -> None:
        if why != self.problem:
            log.warning("%s", why)
        self.problem = why

    def _caught_up(self) -> None:
        if self.problem is not None:
            log.info("%s: caught up", self.link.name)
        self.problem = None
