"""Opening the log again and again, off the monitoring thread, until it opens.

A log that cannot be opened at start (another process holds its write
lock, the directory is not writable yet) must not leave the bedside without
a record for the rest of its run. ``LogOpener`` tries again on its own
thread, after 1 s, then backing off to every 30 s, and says before each
wait when it will try next; the loop thread is told through callbacks
(which should only queue work for it) and never waits for an attempt.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from monitor.log.store import LogError, LogLocked, is_locked
from monitor.log.writer import BedsideLog

log = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0


def unavailable_message(exc: Exception, retry_in_s: float) -> str:
    """The technical alarm's text while there is no log: why, and when the next try is."""
    kept = "alarms are shown and kept in memory until it opens"
    if isinstance(exc, LogLocked) or (isinstance(exc, sqlite3.Error) and is_locked(exc)):
        return f"log locked by another process, retrying in {retry_in_s:g} s; {kept} ({exc})"
    return f"log unavailable, retrying in {retry_in_s:g} s; {kept}: {exc}"


class LogOpener:
    """Calls ``open_log`` on a thread of its own, with back-off, until it returns a log."""

    def __init__(
        self,
        open_log: Callable[[], BedsideLog],
        on_retry: Callable[[str], None],
        on_open: Callable[[BedsideLog], None],
        *,
        first_s: float = FIRST_RETRY_S,
        max_s: float = MAX_RETRY_S,
    ) -> None:
        self._open_log = open_log
        self._on_retry = on_retry
        self._on_open = on_open
        self.first_s, self.max_s = first_s, max_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-opener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more tries; an attempt under way finishes (and is handed over) first."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        delay = self.first_s
        while not self._stop.wait(delay):
            try:
                opened = self._open_log()
            except (LogError, OSError, sqlite3.Error) as exc:
                delay = min(self.max_s, 2 * delay)
                message = unavailable_message(exc, delay)
                log.warning(message)
                self._on_retry(message)
                continue
            self._on_open(opened)
            return
