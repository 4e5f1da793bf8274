"""Virtual serial ports: pseudo-terminal pairs the monitor opens exactly like ``/dev/ttyUSB0``.

The simulator writes a device's bytes into the master side; the slave side
is a real tty device file (``/dev/pts/N``) that pyserial opens, configures
and reads as it would a USB adapter. The simulator keeps its own handle on
the slave open, so a monitor that closes the port and reopens it (an
unplug test, a restart) finds the device still there, as a real adapter
would be. Writes never block: when nobody reads and the kernel buffer is
full, bytes are dropped and counted, as they would be on a real wire. That
same handle tells how many bytes the monitor has not read yet (``unread``),
so a simulator can keep in step with its reader, and an emulator of a device
that answers requests reads what the monitor sent (``take_sent``).
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import termios
import time
import tty
from collections.abc import Callable, Mapping
from pathlib import Path

# A port with nothing left unread whose reader still has not handed over everything written
# for this long lost those bytes (a reopening port discards what waits): stop waiting for them.
LOST_AFTER_S = 0.5


class VirtualPort:
    """One pty pair standing in for one serial device; ``path`` is what the monitor opens."""

    def __init__(self, name: str, link: Path | None = None) -> None:
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(self.path)
        self.bytes_written = 0
        self.bytes_dropped = 0

    @property
    def device(self) -> str:
        """The name to give the monitor: the stable link if there is one, else the pty."""
        return str(self.link) if self.link is not None else self.path

    def write(self, data: bytes) -> None:
        """Send bytes now; what the kernel cannot take is dropped and counted."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: no reader right now
                    raise
                break
            self.bytes_written += sent
            view = view[sent:]
        self.bytes_dropped += len(view)

    def take_sent(self) -> bytes:
        """What the monitor wrote to the device since the last call (b"" when nothing came)."""
        chunks = []
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: the monitor's side is closed
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def unread(self) -> int:
        """Bytes written that no reader has taken yet (waiting in the slave's input queue)."""
        count = array.array("i", [0])
        try:
            fcntl.ioctl(self._slave, termios.FIONREAD, count)
        except OSError:  # closed: nothing waits any more
            return 0
        return count[0]

    def close(self) -> None:
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def __enter__(self) -> VirtualPort:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ReaderInStep:
    """True once a reader has handed over every byte written to the ports: ``play``'s ``in_step``.

    Counting what the reader handed over, not only what left the pty, also
    covers the moment between a reader's read and its hand-over, when a pump
    sentence written next could overtake the samples sent before it.
    ``received`` gives the reader's counts by the same names as ``ports``.
    """

    def __init__(
        self,
        ports: Mapping[str, VirtualPort],
        received: Callable[[], Mapping[str, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ports = ports
        self._received = received
        self._clock = clock
        self._lost = dict.fromkeys(ports, 0)
        self._short_since: float | None = None  # nothing unread, yet not all handed over

    def __call__(self) -> bool:
        received = self._received()
        short = [
            name
            for name, port in self._ports.items()
            if received.get(name, 0) + self._lost[name] < port.bytes_written
        ]
        if not short:
            self._short_since = None
            return True
        if any(self._ports[name].unread() for name in short):
            self._short_since = None
            return False
        now = self._clock()
        if self._short_since is None:
            self._short_since = now
        elif now - self._short_since > LOST_AFTER_S:
            for name in short:
                self._lost[name] = self._ports[name].bytes_written - received.get(name, 0)
            self._short_since = None
            return True
        return False
