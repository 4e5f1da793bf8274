"""Alarm outputs ("sinks"): the terminal, sound, a GPIO line and an external command.

The alarm manager decides; sinks only render. They receive every
``AlarmTransition`` (``deliver``) and the full current state as an
``Annunciation`` (``render``). The manager talks to one ``SinkFanout``, which
gives each sink its own worker thread and bounded queue: a sink that raises,
hangs or fails in the background never delays or silences the others, and
the manager never blocks on an output. A failing sink is reported once
through ``on_failure(sink_name, message)`` (the manager raises the technical
alarm ``alarm_output_failed``, or "audio output unavailable" for the audio
sink) and its recovery once through ``on_recovery``. docs/alarm-outputs.md
has the configuration keys and the sound patterns.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

from monitor.alarm_sounds import (
    DEFAULT_SAMPLE_RATE,
    burst,
    burst_duration_s,
    repeat_interval_s,
    write_wav,
)
from monitor.alarm_types import AlarmTransition, Annunciation, Priority

log = logging.getLogger(__name__)

PLAYER_CANDIDATES = ("aplay -q", "paplay", "pw-play")
SOUNDING = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


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


def _tail(stderr: bytes | None, limit: int = 200) -> str:
    """The last line a failed program wrote to stderr, for the failure message."""
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return f": {lines[-1][-limit:]}" if lines else ""


def _stop_process(proc: subprocess.Popen, group: bool = False) -> None:
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


# --- terminal ---------------------------------------------------------------------------------


def format_transition(transition: AlarmTransition) -> str:
    """``  7512.0s  HIGH    physiological  refractory_hypotension raised: <message>``."""
    message = " ".join(transition.message.split())
    return (
        f"{transition.t_s:8.1f}s  {transition.priority.name:<6}  "
        f"{transition.category.value:<13}  {transition.name} "
        f"{transition.transition.value.replace('_', ' ')}: {message}"
    )


class TerminalSink(AlarmSink):
    """One line per transition on a text stream, flushed at once."""

    name = "terminal"

    def __init__(self, stream: TextIO):
        self._stream = stream

    def deliver(self, transition: AlarmTransition) -> None:
        self._stream.write(format_transition(transition) + "\n")
        self._stream.flush()


# --- sound ------------------------------------------------------------------------------------


def find_player(command: str | None) -> list[str] | None:
    """The player's argv (the WAV path goes last): ``command``, else the first one installed."""
    for candidate in [command] if command else PLAYER_CANDIDATES:
        argv = shlex.split(candidate)
        if argv and shutil.which(argv[0]):
            return argv
    return None


class AudioSink(AlarmSink):
    """Plays the burst of ``annunciation.audible`` with an external player, repeated.

    The three bursts are written once as WAV files; a background thread plays
    the audible priority's burst, waits its interburst interval, and plays it
    again. A more urgent priority interrupts a burst at once, silence (None)
    stops it; a less urgent one takes over after the current burst. A player
    that cannot start, exits non-zero or hangs is a failure.
    """

    name = "audio"
    PLAYER_GRACE_S = 10.0  # beyond the burst's length before a player counts as hung

    def __init__(
        self,
        player_command: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        *,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        repeat_interval: Callable[[Priority], float] = repeat_interval_s,
        poll_s: float = 0.05,
    ):
        self._interval = repeat_interval
        self._poll_s = poll_s
        self._cond = threading.Condition()
        self._wanted: Priority | None = None
        self._idle = True
        self._closed = False
        self._thread: threading.Thread | None = None
        self._own_dir: Path | None = None
        self._wavs: dict[Priority, Path] = {}
        self._problem: str | None = None
        self._argv = find_player(player_command)
        if self._argv is None:
            tried = player_command or ", ".join(c.split()[0] for c in PLAYER_CANDIDATES)
            self._problem = f"audio output unavailable: no sound player found (tried {tried})"
            return
        try:
            if workdir is None:
                self._own_dir = Path(tempfile.mkdtemp(prefix="monitor-alarm-sounds-"))
            directory = self._own_dir or Path(workdir)
            directory.mkdir(parents=True, exist_ok=True)
            for priority in SOUNDING:
                path = directory / f"alarm-{priority.label}.wav"
                write_wav(path, burst(priority, sample_rate), sample_rate)
                self._wavs[priority] = path
        except OSError as exc:
            self._problem = f"audio output unavailable: cannot write the alarm sounds: {exc}"
            return
        self._thread = threading.Thread(target=self._run, name="alarm-audio", daemon=True)
        self._thread.start()

    @property
    def wav_paths(self) -> Mapping[Priority, Path]:
        return dict(self._wavs)

    def unavailable(self) -> str | None:
        return self._problem

    def start_note(self) -> str | None:
        if self._problem is not None:
            return self._problem
        directory = self._wavs[Priority.HIGH].parent
        return f"audio: alarm sounds played with '{shlex.join(self._argv)}' from {directory}"

    def render(self, annunciation: Annunciation) -> None:
        audible = annunciation.audible
        with self._cond:
            self._wanted = audible if audible in SOUNDING else None
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing plays or waits to play (for tests and shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._idle or self._closed, timeout_s)

    def _preempted(self, playing: Priority) -> bool:
        wanted = self._wanted
        return self._closed or wanted is None or wanted > playing

    def _run(self) -> None:
        while True:
            with self._cond:
                self._idle = self._wanted is None
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._wanted is not None or self._closed)
                if self._closed:
                    return
                self._idle = False
                priority = self._wanted
            self._play(priority)
            finished = time.monotonic()
            with self._cond:
                while not self._preempted(priority):
                    remaining = finished + self._interval(self._wanted) - time.monotonic()
                    if remaining <= 0.0:
                        break
                    self._cond.wait(remaining)

    def _play(self, priority: Priority) -> None:
        argv = [*self._argv, str(self._wavs[priority])]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            self.report_failure(f"audio player '{argv[0]}' could not start: {exc}")
            return
        deadline = time.monotonic() + burst_duration_s(priority) + self.PLAYER_GRACE_S
        while True:
            try:
                _, stderr = proc.communicate(timeout=self._poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            with self._cond:
                preempted = self._preempted(priority)
            if preempted:
                _stop_process(proc)
                return
            if time.monotonic() > deadline:
                _stop_process(proc)
                self.report_failure(
                    f"audio player '{argv[0]}' hung playing the {priority.label} burst"
                )
                return
        if proc.returncode != 0:
            self.report_failure(
                f"audio player '{argv[0]}' exited with status {proc.returncode}{_tail(stderr)}"
            )
        else:
            self.report_ok()


# --- GPIO -------------------------------------------------------------------------------------


class LineDriver(Protocol):
    """One output line: on (active) or off."""

    def set(self, on: bool) -> None: ...

    def close(self) -> None: ...


class _GpiodV2Line:
    """libgpiod 2.x bindings (``pip install gpiod``, >= 2.0)."""

    def __init__(self, gpiod: Any, chip_path: str, line: int, consumer: str):
        from gpiod.line import Direction, Value

        self._line, self._value = line, Value
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
        self._request = gpiod.request_lines(chip_path, consumer=consumer, config={line: settings})

    def set(self, on: bool) -> None:
        self._request.set_value(self._line, self._value.ACTIVE if on else self._value.INACTIVE)

    def close(self) -> None:
        self._request.release()


class _GpiodV1Line:
    """libgpiod 1.x bindings (Debian/Raspberry Pi OS ``python3-libgpiod``)."""

    def __init__(self, gpiod: Any, chip_path: str, line: int, consumer: str):
        self._chip = gpiod.Chip(chip_path)
        self._line = self._chip.get_line(line)
        self._line.request(consumer=consumer, type=gpiod.LINE_REQ_DIR_OUT, default_val=0)

    def set(self, on: bool) -> None:
        self._line.set_value(1 if on else 0)

    def close(self) -> None:
        self._line.release()
        self._chip.close()


def open_gpio_line(chip: str, line: int, consumer: str = "monitor-alarm") -> LineDriver:
    """Request ``line`` of ``chip`` ("/dev/gpiochip0" or "gpiochip0") as an output, off.

    Raises SinkError with a start-up note when the bindings, the chip or the
    line are not there.
    """
    chip_path = chip if "/" in chip else f"/dev/{chip}"
    try:
        import gpiod
    except ImportError:
        raise SinkError(
            "GPIO output off: python gpiod bindings not installed (pip install gpiod)"
        ) from None
    if not os.path.exists(chip_path):
        raise SinkError(f"GPIO output off: no {chip_path}")
    if hasattr(gpiod, "request_lines"):
        driver_class: type = _GpiodV2Line
    elif hasattr(gpiod, "LINE_REQ_DIR_OUT"):
        driver_class = _GpiodV1Line
    else:
        raise SinkError("GPIO output off: unknown gpiod bindings (libgpiod's gpiod 1.x or 2.x)")
    try:
        return driver_class(gpiod, chip_path, line, consumer)
    except Exception as exc:
        raise SinkError(f"GPIO output off: cannot drive line {line} of {chip_path}: {exc}") from exc


def gpio_mode(annunciation: Annunciation) -> str:
    """The line's pattern: "flash" for an unacknowledged HIGH alarm, "on" for MEDIUM, else "off".

    Acknowledging stops the pattern; pausing the audio does not (a light
    keeps showing an alarm whose sound is paused).
    """
    unacknowledged = {a.priority for a in annunciation.alarms if not a.acknowledged}
    if Priority.HIGH in unacknowledged:
        return "flash"
    if Priority.MEDIUM in unacknowledged:
        return "on"
    return "off"


class GpioSink(AlarmSink):
    """Drives one output line (a light or buzzer): flashing for HIGH, steady for MEDIUM.

    An alarm counts while it is shown and not acknowledged, latched ones
    included. ``driver`` replaces the kernel line (tests, other hardware).
    """

    name = "gpio"

    def __init__(
        self, chip: str, line: int, *, driver: LineDriver | None = None, flash_hz: float = 2.0
    ):
        self._label = f"line {line} of {chip}"
        self._problem: str | None = None
        if driver is None:
            try:
                driver = open_gpio_line(chip, line)
            except SinkError as exc:
                self._problem = str(exc)
        self._driver = driver
        self._half_period_s = 0.5 / flash_hz
        self._cond = threading.Condition()
        self._mode = "off"
        self._closed = False
        self._thread: threading.Thread | None = None
        if driver is not None:
            self._thread = threading.Thread(target=self._run, name="alarm-gpio", daemon=True)
            self._thread.start()

    def unavailable(self) -> str | None:
        return self._problem

    def start_note(self) -> str | None:
        return self._problem or f"GPIO: alarm light/buzzer on {self._label}"

    def render(self, annunciation: Annunciation) -> None:
        mode = gpio_mode(annunciation)
        with self._cond:
            if mode != self._mode:
                self._mode = mode
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        level: bool | None = None
        previous = "off"
        while True:
            with self._cond:
                if self._closed:
                    break
                mode = self._mode
            if mode == "flash":
                lit = not level if previous == "flash" else True
            else:
                lit = mode == "on"
            if lit != level and self._set(lit):
                level = lit
            previous = mode
            # Flashing toggles every half period; a failed write is retried as often.
            retry = mode == "flash" or level != lit
            with self._cond:
                self._cond.wait_for(
                    lambda m=mode: self._closed or self._mode != m,
                    self._half_period_s if retry else None,
                )
        self._set(False)
        try:
            self._driver.close()
        except Exception as exc:
            log.warning("GPIO %s: release failed: %s", self._label, exc)

    def _set(self, on: bool) -> bool:
        try:
            self._driver.set(on)
        except Exception as exc:
            self.report_failure(f"GPIO {self._label}: cannot set the line: {exc}")
            return False
        self.report_ok()
        return True


# --- external command -------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Evidence as strict JSON: numpy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)


def transition_json(transition: AlarmTransition) -> str:
    """The JSON object a command hook receives on stdin."""
    return json.dumps(
        {
            "t_s": _jsonable(transition.t_s),
            "name": transition.name,
            "priority": transition.priority.label,
            "category": transition.category.value,
            "transition": transition.transition.value,
            "message": transition.message,
            "evidence": _jsonable(transition.evidence),
        },
        allow_nan=False,
    )


class CommandSink(AlarmSink):
    """Runs an external program for every transition (paging, a ward system, a script).

    The transition goes to its stdin as one JSON object and into
    MONITOR_ALARM_NAME, MONITOR_ALARM_PRIORITY and MONITOR_ALARM_TRANSITION.
    The command is split with shlex and run without a shell, in its own
    process group, which is killed if it outlasts ``timeout_s``. A missing
    program, a non-zero exit or a timeout is a failure.
    """

    name = "command"

    def __init__(self, command: str, timeout_s: float = 5.0):
        self._argv = shlex.split(command)
        if not self._argv:
            raise ValueError("alarm command is empty")
        self._timeout_s = timeout_s
        self._program = self._argv[0]

    def unavailable(self) -> str | None:
        if shutil.which(self._program) is None:
            return f"alarm command '{self._program}' not found"
        return None

    def start_note(self) -> str | None:
        return self.unavailable() or (
            f"command hook: '{shlex.join(self._argv)}' runs on every alarm transition"
        )

    def deliver(self, transition: AlarmTransition) -> None:
        env = {
            **os.environ,
            "MONITOR_ALARM_NAME": transition.name,
            "MONITOR_ALARM_PRIORITY": transition.priority.label,
            "MONITOR_ALARM_TRANSITION": transition.transition.value,
        }
        try:
            proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise SinkError(f"alarm command '{self._program}' could not start: {exc}") from exc
        try:
            _, stderr = proc.communicate(transition_json(transition).encode(), self._timeout_s)
        except subprocess.TimeoutExpired:
            _stop_process(proc, group=True)
            raise SinkError(
                f"alarm command '{self._program}' did not finish within {self._timeout_s:g} s"
            ) from None
        if proc.returncode != 0:
            raise SinkError(
                f"alarm command '{self._program}' exited with status {proc.returncode}"
                f"{_tail(stderr)}"
            )
        self.report_ok()


# --- fanout -----------------------------------------------------------------------------------


class _Health:
    """Which sinks fail and why; queues a failure once and a recovery once, in order.

    A failure has a source, and only its own kind of success clears it:
    "deliver" and "render" (the call raised; cleared when that call next
    returns, so a no-op render never hides a failing deliver), "stuck" (a
    call that has not returned, a full queue; cleared when any call returns)
    and "sink" (``report_failure``; cleared by ``report_ok``).
    """

    def __init__(self, events: queue.SimpleQueue):
        self._events = events
        self._lock = threading.Lock()
        self._failing: dict[str, dict[str, str]] = {}

    def fail(self, sink: str, source: str, message: str) -> None:
        with self._lock:
            failing = self._failing.setdefault(sink, {})
            if not failing:
                self._events.put(("failed", sink, message))
            failing.setdefault(source, message)

    def ok(self, sink: str, source: str) -> None:
        with self._lock:
            failing = self._failing.get(sink)
            if failing and failing.pop(source, None) is not None and not failing:
                self._events.put(("recovered", sink, ""))

    def failing(self) -> dict[str, str]:
        with self._lock:
            return {s: next(iter(f.values())) for s, f in self._failing.items() if f}


_RENDER = object()  # queue marker: render the latest annunciation


class _Worker:
    """One sink's thread and bounded queue. Renders coalesce: only the latest state matters."""

    def __init__(self, sink: AlarmSink, queue_size: int, health: _Health):
        self.sink = sink
        self.name = sink.name
        self._queue_size = queue_size
        self._health = health
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()
        self._annunciation: Annunciation | None = None
        self._stopping = False
        self.busy_since: float | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"alarm-sink-{self.name}", daemon=True
        )

    def put_transition(self, transition: AlarmTransition) -> bool:
        """Queue a transition; False when the queue is full (the sink is stuck)."""
        with self._cond:
            if self._stopping:
                return True
            pending = len(self._items) - (self._annunciation is not None)
            if pending >= self._queue_size:
                return False
            self._items.append(transition)
            self._cond.notify()
            return True

    def put_annunciation(self, annunciation: Annunciation) -> None:
        with self._cond:
            if self._stopping:
                return
            if self._annunciation is None:
                self._items.append(_RENDER)
                self._cond.notify()
            self._annunciation = annunciation

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._stopping)
                if not self._items:
                    break
                item = self._items.popleft()
                if item is _RENDER:
                    kind, call, arg = "render", self.sink.render, self._annunciation
                    self._annunciation = None
                else:
                    kind, call, arg = "deliver", self.sink.deliver, item
                self.busy_since = time.monotonic()
            try:
                call(arg)
            except Exception as exc:
                log.debug("alarm output %s raised", self.name, exc_info=True)
                self._health.fail(self.name, kind, str(exc) or type(exc).__name__)
            else:
                self._health.ok(self.name, kind)
            finally:
                self.busy_since = None
                self._health.ok(self.name, "stuck")
        try:
            self.sink.close()
        except Exception:
            log.exception("alarm output %s failed to close", self.name)


class SinkFanout:
    """The manager's one door to the outputs: never blocks, never raises.

    Each sink has a worker thread and a queue of ``queue_size`` transitions
    (annunciations coalesce to the latest). A sink that raises, reports a
    failure, cannot start, has a full queue, or has one call running longer
    than ``stall_timeout_s`` is reported once through ``on_failure(name,
    message)``; once all that has cleared, once through ``on_recovery(name)``.
    Callbacks run on the fanout's own supervisor thread, never inside
    ``deliver``/``render``, so they may call back into the manager.
    """

    def __init__(
        self,
        sinks: Iterable[AlarmSink],
        on_failure: Callable[[str, str], None],
        on_recovery: Callable[[str], None] | None = None,
        queue_size: int = 256,
        stall_timeout_s: float = 15.0,
    ):
        self._sinks = list(sinks)
        names = [s.name for s in self._sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"alarm sink names must be unique, got {names}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self._on_failure = on_failure
        self._on_recovery = on_recovery
        self._stall_timeout_s = stall_timeout_s
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._health = _Health(self._events)
        self._closed = False
        self._workers = [_Worker(s, queue_size, self._health) for s in self._sinks]
        for sink in self._sinks:
            sink.bind(
                lambda message, n=sink.name: self._health.fail(n, "sink", message),
                lambda n=sink.name: self._health.ok(n, "sink"),
            )
            try:
                reason = sink.unavailable()
            except Exception as exc:
                reason = f"availability check failed: {exc}"
            if reason:
                self._health.fail(sink.name, "sink", reason)
        self._supervisor = threading.Thread(
            target=self._supervise, name="alarm-sink-supervisor", daemon=True
        )
        self._supervisor.start()
        for worker in self._workers:
            worker.thread.start()

    def deliver(self, transition: AlarmTransition) -> None:
        """Queue a transition for every sink; a full queue is a failure of that sink."""
        if self._closed:
            return
        for worker in self._workers:
            try:
                if not worker.put_transition(transition):
                    self._health.fail(
                        worker.name,
                        "stuck",
                        f"stuck: {worker.name} output not keeping up, transitions dropped",
                    )
            except Exception:
                log.exception("queueing a transition for %s failed", worker.name)

    def render(self, annunciation: Annunciation) -> None:
        """Hand every sink the current state; a sink still busy gets only the latest."""
        if self._closed:
            return
        for worker in self._workers:
            try:
                worker.put_annunciation(annunciation)
            except Exception:
                log.exception("queueing an annunciation for %s failed", worker.name)

    def start_notes(self) -> list[str]:
        notes = []
        for sink in self._sinks:
            try:
                note = sink.start_note()
            except Exception as exc:
                note = f"{sink.name}: {exc}"
            if note:
                notes.append(note)
        return notes

    def failing(self) -> dict[str, str]:
        """Sinks failing now, each with the first reason given."""
        return self._health.failing()

    def close(self, timeout_s: float = 5.0) -> bool:
        """Let every worker drain its queue and close its sink; False if one did not in time."""
        if self._closed:
            return True
        self._closed = True
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [w.name for w in self._workers if w.thread.is_alive()]
        if stuck:
            log.warning("alarm outputs did not stop within %.1f s: %s", timeout_s, stuck)
        self._events.put(None)
        self._supervisor.join(max(0.0, deadline - time.monotonic()) + 1.0)
        return not stuck

    def _supervise(self) -> None:
        poll_s = min(1.0, self._stall_timeout_s / 4.0)
        while True:
            try:
                event = self._events.get(timeout=poll_s)
            except queue.Empty:
                event = ()
            if event is None:
                return
            if event:
                self._dispatch(*event)
            now = time.monotonic()
            for worker in self._workers:
                since = worker.busy_since
                if since is not None and now - since > self._stall_timeout_s:
                    self._health.fail(
                        worker.name,
                        "stuck",
                        f"stuck: {worker.name} output has not returned for "
                        f"{self._stall_timeout_s:g} s",
                    )

    def _dispatch(self, kind: str, sink: str, message: str) -> None:
        try:
            if kind == "failed":
                log.warning("alarm output %s failed: %s", sink, message)
                self._on_failure(sink, message)
            else:
                log.info("alarm output %s recovered", sink)
                if self._on_recovery is not None:
                    self._on_recovery(sink)
        except Exception:
            log.exception("alarm output %s callback failed", kind)


# --- configuration ----------------------------------------------------------------------------


def _setting(settings: Mapping[str, object], key: str, kind: type) -> Any:
    dotted = f"alarms.{key}"
    if dotted not in settings:
        raise ValueError(f"missing setting {dotted}")
    value = settings[dotted]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"setting {dotted} must be {kind.__name__}, got {value!r}")
    return value


def build_sinks(
    settings: Mapping[str, object], stream: TextIO, workdir: str | os.PathLike[str] | None
) -> list[AlarmSink]:
    """The configured outputs: always the terminal, then audio, GPIO and the command hook.

    Reads ``alarms.audio`` ("auto" | "off"), ``alarms.audio_player`` ("" =
    find one), ``alarms.gpio_chip`` ("" = none), ``alarms.gpio_line`` and
    ``alarms.command`` ("" = none); defaults live in config/monitor.toml.
    """
    audio = _setting(settings, "audio", str)
    if audio not in ("auto", "off"):
        raise ValueError(f'setting alarms.audio must be "auto" or "off", got {audio!r}')
    player = _setting(settings, "audio_player", str)
    chip = _setting(settings, "gpio_chip", str)
    line = _setting(settings, "gpio_line", int)
    if line < 0:
        raise ValueError(f"setting alarms.gpio_line must be a line offset >= 0, got {line}")
    command = _setting(settings, "command", str)
    if command and not shlex.split(command):
        raise ValueError(f"setting alarms.command has no program: {command!r}")
    # Everything is checked before anything starts a thread or requests a line.
    sinks: list[AlarmSink] = [TerminalSink(stream)]
    if audio == "auto":
        sinks.append(AudioSink(player or None, workdir))
    if chip:
        sinks.append(GpioSink(chip, line))
    if command:
        sinks.append(CommandSink(command))
    return sinks
