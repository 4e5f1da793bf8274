"""systemd service notifications (sd_notify protocol) with the standard library only.

Under ``Type=notify`` systemd passes the name of an AF_UNIX datagram socket
in ``$NOTIFY_SOCKET``; the service sends newline-separated ``KEY=VALUE``
assignments to it: ``READY=1`` when start-up is done, ``WATCHDOG=1`` as a
heartbeat, ``STOPPING=1``, ``STATUS=...`` for ``systemctl status``. A name
starting with ``@`` is in the abstract namespace (a leading NUL byte).
``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) say whether the watchdog
(``WatchdogSec=``) expects heartbeats and how often. See sd_notify(3) and
sd_watchdog_enabled(3).

The monitor must keep monitoring whatever happens to systemd, so nothing
here raises on a failed send: it returns False and logs one warning. The
python-systemd package would add a compiled dependency to the Pi for a few
lines of protocol.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: After a failed heartbeat, try again this soon rather than a whole interval later.
WATCHDOG_RETRY_S = 1.0

_warned: set[str] = set()  # socket names already warned about: one warning each


def _warn_once(name: str, problem: str) -> None:
    if name not in _warned:
        _warned.add(name)
        log.warning(
            "systemd notification to %r failed: %s (further failures not logged)", name, problem
        )


def _address(name: str) -> bytes | None:
    """The socket address for a $NOTIFY_SOCKET value, or None if it is not an AF_UNIX name."""
    if name.startswith("@"):
        return b"\0" + os.fsencode(name[1:])
    if name.startswith("/"):
        return os.fsencode(name)
    return None  # e.g. systemd's "vsock:" form, which this monitor never runs under


def notify(*assignments: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``assignments`` (``"READY=1"``, ``"STATUS=..."``) to systemd in one datagram.

    Returns True if the datagram was handed to the socket. Returns False
    without doing anything when $NOTIFY_SOCKET is unset or empty (not run by
    systemd, or not ``Type=notify``), and False with one logged warning when
    sending fails: the monitor never stops because systemd is unreachable.
    A newline inside one assignment would start another, so it becomes a space.
    """
    environ = os.environ if env is None else env
    name = environ.get("NOTIFY_SOCKET", "")
    if not name or not assignments:
        return False
    address = _address(name)
    if address is None:
        _warn_once(name, "not an AF_UNIX socket name (must start with '/' or '@')")
        return False
    message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # A full queue on systemd's side must not stall the main loop.
            sock.setblocking(False)
            sock.sendto(message, address)
    except OSError as exc:
        _warn_once(name, str(exc))
        return False
    return True


def watchdog_interval_s(
    env: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between ``WATCHDOG=1`` heartbeats, or None when no watchdog expects them.

    Half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, so that
    one late heartbeat still arrives in time. $WATCHDOG_PID, when set, must
    be ``pid`` (default: this process): the variables are inherited by
    children, whose heartbeats systemd would not accept. Malformed values
    give None with a warning, since systemd would then restart the service.
    """
    environ = os.environ if env is None else env
    usec_text = environ.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    pid_text = environ.get("WATCHDOG_PID", "")
    if pid_text:
        if not (pid_text.isascii() and pid_text.isdigit()):
            log.warning("WATCHDOG_PID=%r is not a process id: watchdog off", pid_text)
            return None
        if int(pid_text) != (os.getpid() if pid is None else pid):
            return None  # meant for another process (we were started by it)
    if not (usec_text.isascii() and usec_text.isdigit()) or int(usec_text) == 0:
        log.warning(
            "WATCHDOG_USEC=%r is not a positive number of microseconds: watchdog off", usec_text
        )
        return None
    return int(usec_text) / 2 / 1_000_000


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``interval_s`` of the caller's monotonic clock.

    The main loop calls ``maybe_ping(time.monotonic())`` on every iteration:
    it is a subtraction unless a heartbeat is due. If the loop hangs, the
    heartbeats stop and systemd restarts the service (``WatchdogSec=``).
    The clock is passed in and ``send`` injected, so tests need neither time
    nor systemd.
    """

    def __init__(self, interval_s: float, send: Callable[[str], bool] = notify) -> None:
        if not interval_s > 0:
            raise ValueError(f"watchdog interval must be positive, got {interval_s!r}")
        self.interval_s = interval_s
        self.last_ping_s: float | None = None  # monotonic time of the last sent heartbeat
        self._send = send
        self._retry_at_s: float | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, pid: int | None = None
    ) -> Watchdog | None:
        """The watchdog systemd configured for this process, or None if there is none."""
        interval_s = watchdog_interval_s(env, pid)
        if interval_s is None:
            return None
        return cls(interval_s, lambda assignment: notify(assignment, env=env))

    def maybe_ping(self, now: float) -> bool:
        """Send a heartbeat if one is due at ``now``; True if one was sent.

        The first call always sends. A failed send is tried again after
        ``WATCHDOG_RETRY_S`` (or the interval, if shorter), not on every call.
        """
        if self.last_ping_s is not None and now - self.last_ping_s < self.interval_s:
            return False
        if self._retry_at_s is not None and now < self._retry_at_s:
            return False
        if self._send("WATCHDOG=1"):
            self.last_ping_s = now
            self._retry_at_s = None
            return True
        self._retry_at_s = now + min(WATCHDOG_RETRY_S, self.interval_s)
        return False
