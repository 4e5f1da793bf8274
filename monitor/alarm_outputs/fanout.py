"""The alarm manager's one door to the outputs: a thread and a bounded queue per sink.

A sink that raises, hangs or fails in the background never delays or
silences the others, and the manager never blocks on an output. A failing
sink is reported once through ``on_failure(sink_name, message)`` (the manager
raises the technical alarm ``alarm_output_failed``) and its recovery once
through ``on_recovery``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from monitor.alarm_outputs.sink import AlarmSink
from monitor.clinical.alarm_types import AlarmTransition, Annunciation

log = logging.getLogger(__name__)


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
                call: Callable[[], None]
                if item is _RENDER:
                    annunciation, self._annunciation = self._annunciation, None
                    assert annunciation is not None  # a _RENDER is queued with its annunciation
                    kind, call = "render", partial(self.sink.render, annunciation)
                else:
                    kind, call = "deliver", partial(self.sink.deliver, item)
                self.busy_since = time.monotonic()
            try:
                call()
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
                partial(self._health.fail, sink.name, "sink"),
                partial(self._health.ok, sink.name, "sink"),
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
