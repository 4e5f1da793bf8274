"""Writing a wire capture while the ports are read: every byte, both ways, as it passed.

Each port's reader hands its bytes to ``CaptureWriter.tap`` on its own
thread; the writer puts each in one line (``devices/capture_file.py``) and
flushes at least once a second, so a power cut loses at most that second.
A capture is a diagnostic, never part of monitoring: a write that fails
(a full disk, a pulled USB stick) stops the capture, says so once, and the
ports go on being read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from devices.capture_file import CapturedPort, Direction, Record, header_line

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
#: What a port's reader calls with each read or write: direction, bytes, monotonic time.
Tap = Callable[[Direction, bytes, float], None]


class CaptureOpenError(OSError):
    """The capture file cannot be created; the message names it."""


class CaptureWriter:
    """One capture file, written from any number of reader threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        software: str,
        clock: Callable[[], float] = time.monotonic,
        utc: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._declared: set[str] = set()
        self.records = 0
        self.failure: str | None = None
        try:
            self._file: TextIO | None = self.path.open("w", encoding="utf-8")
            started = utc().isoformat(timespec="microseconds").replace("+00:00", "Z")
            self._file.write(header_line({"started_utc": started, "software": software}) + "\n")
            self._file.flush()
        except OSError as exc:
            raise CaptureOpenError(
                f"cannot write the capture {path}: {exc.strerror or exc}"
            ) from None
        self._flushed = self._started

    def tap(self, port: CapturedPort) -> Tap:
        """Declare ``port`` (once, however often it is reopened) and return its recorder."""
        with self._lock:
            if port.name not in self._declared:
                self._declared.add(port.name)
                self._write(port.line())

        def record(direction: Direction, data: bytes, mono: float) -> None:
            t_s = max(0.0, mono - self._started)
            with self._lock:
                self._write(Record(t_s, port.name, direction, data).line())
                self.records += 1

        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    self._fail(exc)
                self._file = None

    def _write(self, line: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(line + "\n")
            now = self._clock()
            if now - self._flushed >= FLUSH_EVERY_S:
                self._file.flush()
                self._flushed = now
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failure = f"capture {self.path} stopped: {exc.strerror or exc}"
        log.warning(self.failure)
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # the reason is already told; what was flushed is kept
