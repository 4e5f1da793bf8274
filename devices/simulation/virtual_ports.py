"""Virtual serial ports: pseudo-terminal pairs the monitor opens exactly like ``/dev/ttyUSB0``.

The simulator writes a device's bytes into the master side; the slave side
is a real tty device file (``/dev/pts/N``) that pyserial opens, configures
and reads as it would a USB adapter. The simulator keeps its own handle on
the slave open, so a monitor that closes the port and reopens it (an
unplug test, a restart) finds the device still there, as a real adapter
would be. Writes never block: when nobody reads and the kernel buffer is
full, bytes are dropped and counted, as they would be on a real wire.
"""

from __future__ import annotations

import errno
import os
import tty
from pathlib import Path


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
