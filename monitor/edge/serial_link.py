"""One serial port, read forever on its own thread: open, read, decode, hand over, reopen.

Ports are opened with pyserial's ``serial_for_url``, so ``/dev/ttyUSB0``, a
pty path from the simulator, ``socket://host:port`` and ``loop://`` all
work unchanged. Whatever happens to the port (unplugged, never there, no
permission, a bug in a decoder), the thread reports it as a ``LinkEvent``
and tries again with a growing back-off; it never dies silently. Decoded
frames are handed over at once with the monotonic time they arrived, so
nothing already decoded is lost when the port goes away a moment later.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import serial

from devices.protocols.decoding import Decoder, Problem
from monitor.edge.capture import Tap

log = logging.getLogger(__name__)

# How long a read waits for a first byte. Stopping cancels the read where the port can
# (pyserial's cancel_read on POSIX ports), so this only bounds how late a reader of a
# socket:// port notices a stop; short timeouts cost wake-ups: 20 a second at 50 ms.
DEFAULT_READ_TIMEOUT_S = 1.0
# After a read of a device file that did not fill the buffer (it took all that waited),
# the reader rests before the next, so what arrives meanwhile comes in one read: at 40
# frames a second, one wake-up of the reader and one of the loop per four frames instead
# of per frame, and wake-ups are most of the bedside's CPU. Bytes resting in the port are
# not silence (DeviceInput asks the port), 100 ms is far inside every clinical delay and
# finer than any screen paints (5 a second), and a full read goes on at once.
DEFAULT_GATHER_S = 0.1
# A rest never lets more than this arrive, at the rate the last read saw: a quarter of
# the 4 KB a Linux tty's line discipline holds for its reader (a pty holds 16 KB), so a
# fast device (a replay at 100x, a high baud rate) is read sooner instead of overrunning.
REST_BYTES = 1024
DEFAULT_BACKOFF_S = (0.2, 5.0)
READ_SIZE = 4096


@dataclass(frozen=True)
class PortSettings:
    """Where a device is and how to talk to it; ``role`` names it in every message."""

    role: str
    url: str
    baudrate: int = 115200


class LinkEventKind(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # was open, then failed (unplugged, hung up)
    OPEN_FAILED = "open_failed"  # could not open (missing, permission, busy, bad settings)
    READER_ERROR = "reader_error"  # an unexpected error inside the reader; it carries on


class LinkEvent(NamedTuple):
    role: str
    kind: LinkEventKind
    message: str
    mono: float


class Received(NamedTuple):
    """What one read produced: decoded frames, the problems met, and when it arrived."""

    role: str
    frames: list[Any]
    problems: list[Problem]
    n_bytes: int
    mono: float


Deliver = Callable[[LinkEvent | Received], None]


def describe_port_error(settings: PortSettings, exc: BaseException) -> str:
    """One line naming the port, its role and what is wrong, with the likely fix."""
    where = f"{settings.role} port {settings.url}"
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return f"{where}: no such device (unplugged, or wrong path in the configuration?)"
    if code in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied (is the user in the 'dialout' group?)"
    if code in (errno.EBUSY, errno.EAGAIN):  # EAGAIN: another program holds its lock
        return f"{where}: busy, another program has it open"
    if isinstance(exc, ValueError):
        return f"{where}: invalid settings: {exc} (baud rate {settings.baudrate})"
    return f"{where}: {exc}"


def rest_after_read(read_bytes: int, since_last_read_s: float, longest_s: float) -> float:
    """How long a reader rests after a read of ``read_bytes`` that came ``since_last_read_s``
    after the one before: ``longest_s``, shortened so that at the rate those bytes came no
    more than ``REST_BYTES`` arrive meanwhile, and no rest at all after a full read (more waits).
    """
    if read_bytes >= READ_SIZE or read_bytes <= 0:
        return 0.0
    return max(0.0, min(longest_s, REST_BYTES * since_last_read_s / read_bytes))


@dataclass(frozen=True)
class SessionClock:
    """The clock a device's session runs on (polls, answer timeouts), and its pace.

    Beside a bed it is the monotonic clock. A simulation played at a speed-up
    gives its own scenario clock, so the monitor asks its simulated devices
    as often, and waits for them as long, in scenario time as a bedside does
    in real time, however the host's load makes the scenario lag; ``speed``
    (scenario seconds per real second) only turns a due time into a wait.
    """

    now: Callable[[], float] = time.monotonic
    speed: float = 1.0


BEDSIDE_SESSIONS = SessionClock()
# A session's next moment is waited for at least this long: a simulation whose clock
# lags its speed would otherwise be asked the time in a busy loop.
SHORTEST_SESSION_WAIT_S = 0.001


class PortReader:
    """Owns one port on a daemon thread and delivers ``Received`` and ``LinkEvent`` items.

    ``deliver`` is called from the reader thread; it must be thread-safe
    (a ``queue.Queue.put`` is). ``open_port`` is ``serial.serial_for_url``
    unless a test substitutes its own. ``tap`` (``capture.py``) hears every
    byte read and written, before it is decoded or sent.
    """

    def __init__(
        self,
        settings: PortSettings,
        decoder: Decoder,
        deliver: Deliver,
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        gather_s: float = DEFAULT_GATHER_S,
        backoff_s: tuple[float, float] = DEFAULT_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
        open_port: Callable[..., Any] = serial.serial_for_url,
        session_clock: SessionClock = BEDSIDE_SESSIONS,
        tap: Tap | None = None,
    ) -> None:
        if not gather_s >= 0.0:
            raise ValueError(f"a reader's rest between reads must be 0 s or more, got {gather_s!r}")
        self.settings = settings
        self.decoder = decoder
        self._deliver = deliver
        self._read_timeout_s = read_timeout_s
        self._gather_s = gather_s
        self._backoff_s = backoff_s
        self._clock = clock
        self._open_port = open_port
        self._session = session_clock
        self._tap = tap  # a wire capture's recorder: ("rx" | "tx", bytes, monotonic time)
        self._stop = threading.Event()
        self._port: Any = None  # the open port, for stop() to cancel its read
        self._thread = threading.Thread(
            target=self._run, name=f"reader-{settings.role}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish its current read and close the port."""
        self._stop.set()
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()  # wakes the read at once instead of at its timeout
            except (serial.SerialException, OSError) as exc:  # closed meanwhile: it is ending
                log.debug("cancelling the read of %s: %s", self.settings.role, exc)
        self._thread.join(timeout_s)

    def unread(self) -> int:
        """Bytes the device sent that wait in the port, not read yet (0 while it is not open).

        Asked from the monitor's loop: bytes waiting mean the device is not
        silent, only its reader late.
        """
        port = self._port
        if port is None:
            return 0
        try:
            return int(port.in_waiting)
        except (serial.SerialException, OSError, ValueError, TypeError):
            return 0  # closed meanwhile: its reader reports why

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _event(self, kind: LinkEventKind, message: str) -> None:
        self._deliver(LinkEvent(self.settings.role, kind, message, self._clock()))

    def _run(self) -> None:
        delay = self._backoff_s[0]
        last_failure = ""
        while not self._stop.is_set():
            try:
                port = self._open_port(
                    self.settings.url,
                    baudrate=self.settings.baudrate,
                    timeout=self._read_timeout_s,
                    write_timeout=self._read_timeout_s,  # a device that takes no request
                    exclusive=True,  # one reader per device: a second monitor is refused
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                message = describe_port_error(self.settings, exc)
                if message != last_failure:  # report each new reason once, not every retry
                    self._event(LinkEventKind.OPEN_FAILED, message)
                    last_failure = message
                self._stop.wait(delay)
                delay = min(2.0 * delay, self._backoff_s[1])
                continue
            last_failure = ""
            delay = self._backoff_s[0]
            self._event(
                LinkEventKind.CONNECTED, f"{self.settings.role} port {self.settings.url} open"
            )
            self._port = port
            try:
                self.decoder.open_session(self._session.now())
                self._send_outgoing(port)
                self._read_until_stopped(port)
            except (serial.SerialException, OSError) as exc:
                self._event(LinkEventKind.DISCONNECTED, describe_port_error(self.settings, exc))
            except Exception as exc:  # a bug must be reported, and must not end the reader
                log.exception("reader for %s", self.settings.role)
                self._event(
                    LinkEventKind.READER_ERROR,
                    f"{self.settings.role} port {self.settings.url}: "
                    f"unexpected {type(exc).__name__}: {exc}",
                )
            finally:
                self._port = None
                _close_quietly(port)
            if not self._stop.is_set():
                self._stop.wait(delay)

    def _read_until_stopped(self, port: Any) -> None:
        if _is_posix_device(port):
            self._read_device_file(port)
            return
        while not self._stop.is_set():
            wait = self._wait_s()
            if port.timeout != wait:  # a session's deadline, else the fixed timeout
                port.timeout = wait
            data = port.read(1)  # waits up to the timeout for a first byte
            if data:
                waiting = port.in_waiting
                if waiting:  # and takes the rest of what came with it in the same read
                    data += port.read(min(waiting, READ_SIZE))
                self._hand_over(data, self._clock())
            self._keep_session(port)

    def _read_device_file(self, port: Any) -> None:
        """A device file read the way pyserial reads it, less its per-read bookkeeping.

        pyserial's ``read(1)``, ``in_waiting`` and ``read(n)`` cost three
        select or ioctl calls and two timeout objects per arrival, most of
        the reader's CPU at 40 frames a second; one select on the device and
        pyserial's own abort pipe (what ``cancel_read`` writes to, so
        stopping works as before), then one read of all that waits, does the
        same work.
        """
        device, abort = port.fileno(), port.pipe_abort_read_r
        last_read = self._clock()
        while not self._stop.is_set():
            ready, _, _ = select.select([device, abort], [], [], self._wait_s())
            if abort in ready:
                os.read(abort, 1000)  # a stop cancelled the wait: the loop looks at the flag
                continue
            if not ready:
                self._keep_session(port)
                continue
            try:
                data = os.read(device, READ_SIZE)
            except BlockingIOError:
                continue  # readiness that another reader of the device took
            if not data:  # pyserial's words for the same hang-up
                raise serial.SerialException(
                    "device reports readiness to read but returned no data "
                    "(device disconnected or multiple access on port?)"
                )
            now = self._clock()
            self._hand_over(data, now)
            self._keep_session(port)
            rest = min(
                rest_after_read(len(data), now - last_read, self._gather_s),
                self._wait_s(),  # a request falling due ends the rest
            )
            last_read = now
            if rest > 0.0:
                self._stop.wait(rest)  # a stop ends the rest at once

    def _wait_s(self) -> float:
        """How long a read may wait: its timeout, or less when the session has a request due."""
        due = self.decoder.next_due()
        if due is None:
            return self._read_timeout_s
        # a simulation's clock may lag its speed: waking early only finds nothing due yet
        wait = (due - self._session.now()) / self._session.speed
        if wait <= 0.0:
            return 0.0
        return min(self._read_timeout_s, max(SHORTEST_SESSION_WAIT_S, wait))

    def _keep_session(self, port: Any) -> None:
        """Tell the decoder the time, then send what it queued: replies and requests due.

        What the time alone revealed (a request left unanswered) is handed over at
        once: a device that has gone quiet sends no bytes to carry it.
        """
        self.decoder.on_time(self._session.now())
        problems = self.decoder.take_problems()
        if problems:
            self._deliver(Received(self.settings.role, [], problems, 0, self._clock()))
        self._send_outgoing(port)

    def _send_outgoing(self, port: Any) -> None:
        outgoing = self.decoder.take_outgoing()
        if outgoing:
            if self._tap is not None:
                self._tap("tx", outgoing, self._clock())
            port.write(outgoing)

    def _hand_over(self, data: bytes, mono: float) -> None:
        if self._tap is not None:
            self._tap("rx", data, mono)
        frames = self.decoder.feed(data)
        self._deliver(
            Received(self.settings.role, frames, self.decoder.take_problems(), len(data), mono)
        )


def _is_posix_device(port: Any) -> bool:
    """A device file or pty opened by pyserial's POSIX backend (not a URL handler or a fake)."""
    posix = getattr(serial, "serialposix", None)
    return (
        posix is not None
        and isinstance(port, posix.Serial)
        and getattr(port, "pipe_abort_read_r", None) is not None
    )


def _close_quietly(port: Any) -> None:
    try:
        port.close()
    except Exception as exc:  # closing a vanished device may fail; nothing is left to save
        log.debug("closing port: %s", exc)
