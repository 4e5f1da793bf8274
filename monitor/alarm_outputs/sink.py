"""What every alarm output is: the ``AlarmSink`` contract and the helpers outputs share.

The alarm manager decides; sinks only render. They receive every
``AlarmTransition`` (``deliver``) and the full current state as an
``Annunciation`` (``render``), always through ``SinkFanout``
(``alarm_fanout.py``), which isolates a slow or failing sink from the others.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from monitor.clinical.alarm_types import AlarmTransition, Annunciation

log = logging.getLogger(__name__)


class SinkError(Exception):
    """An output failed; the message says which and how, for the technical alarm."""


class AlarmSink(ABC):
    """One way of showing alarms. Every method may be slow or raise: the fanout isolates it.

    A sink whose work happens in the background (a sound player, a flashing
    line) reports its health itself with ``report_failure``/``report_ok``;
    ``unavailable()`` names a sink that cannot work at all (no sound player).
    """

    _on_fail: Callable[[str], None] | None = None
    _on_ok: Callable[[], None] | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """Short and unique among the sinks; names the output in notes and failures."""

    # deliver, render and close are optional: no-ops unless a sink needs them.
    def deliver(self, transition: AlarmTransition) -> None:  # noqa: B027
        """Show one change of one alarm."""

    def render(self, annunciation: Annunciation) -> None:  # noqa: B027
        """Show the whole current alarm state."""

    def close(self) -> None:  # noqa: B027
        """Stop background work and release devices; called once, after the last call."""

    def start_note(self) -> str | None:
        """One line for start-up: what this output will do, or why it will not."""
        return None

    def unavailable(self) -> str | None:
        """Why this sink cannot work at all (reported as a failure at start), or None."""
        return None

    def bind(self, on_fail: Callable[[str], None], on_ok: Callable[[], None]) -> None:
        """Where ``report_failure``/``report_ok`` go; set by the fanout."""
        self._on_fail, self._on_ok = on_fail, on_ok

    def report_failure(self, message: str) -> None:
        """Tell the fanout this output is failing (it reports only the first of a run)."""
        if self._on_fail is not None:
            self._on_fail(message)
        else:
            log.warning("alarm output %s failed: %s", self.name, message)

    def report_ok(self) -> None:
        """Tell the fanout this output worked; ends a failure it reported itself."""
        if self._on_ok is not None:
            self._on_ok()


class BackgroundSink(AlarmSink):
    """A sink whose work runs on its own thread (a repeating sound, a flashing line).

    ``render`` changes what the thread should do under ``_cond`` and
    notifies; ``close`` tells the thread to finish and waits for it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The background loop; returns soon after ``_closed`` is set."""

    def _start(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


def stderr_tail(stderr: bytes | None, limit: int = 200) -> str:
    """The last line a failed program wrote to stderr, for the failure message."""
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return f": {lines[-1][-limit:]}" if lines else ""


def stop_process(proc: subprocess.Popen, group: bool = False) -> None:
    """Terminate (then kill) a child, or its whole process group, and reap it."""
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.terminate()
        proc.communicate(timeout=2.0)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
