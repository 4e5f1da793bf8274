"""The bounded hand-over from the reader threads to the monitor's loop, and its drop policy.

A babbling device, a wrong baud rate or a pty can deliver far more than any
loop can use (megabytes a second of garbage, valid frames faster than the
line could carry them). Whatever arrives, what waits here is bounded, and
what cannot wait is accounted for, never lost silently:

* **decode problems** are not queued at all: each port's are counted per
  kind here (with the first description of each kind) and handed over as a
  tally, which ``DeviceInput`` summarises at most once a second per port;
  bytes that decoded to nothing are counted the same way, for the
  communications-loss message;
* **link events** (connected, disconnected, open failed, reader error) are
  never dropped: a reader makes at most a few a second (its reopen back-off
  starts at 0.2 s), so they cannot fill memory;
* **transducer frames** beyond ``max_frames`` waiting are dropped and
  become a ``Dropped`` marker in their place in the order, counting their
  samples: the loop turns it into missing samples, so stream time still
  advances and the beat core sees a gap;
* **pump sentences** beyond ``max_sentences`` waiting on a port are dropped
  the same way and counted; the loop reports them (``input_overflow``), so
  the staff know a dose may be out of date until the next report (a pump
  resends every channel every 2 s).

Dropped is the newest arrival, not the oldest: what is kept stays in arrival
order with its own time, and a marker sits where the lost data would have
been. ``take`` hands over at most a budget of frames, so one turn of the
loop is bounded too.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass, field

from monitor.edge.serial_link import LinkEvent, Received

DEFAULT_MAX_FRAMES = 2000  # transducer frames waiting: 50 s of 25-sample frames at 1000 Hz
DEFAULT_MAX_SENTENCES = 1000  # per pump port: 80 s of sentences at 9600 baud's line rate


@dataclass
class Dropped:
    """Arrivals from ``role`` that did not fit, in their place in the order.

    ``mono`` is when the first of them arrived; the counts grow while no
    later arrival from the port has been accepted.
    """

    role: str
    mono: float
    arrivals: int = 0
    samples: int = 0  # transducer samples (they become missing samples)
    sentences: int = 0  # pump sentences


Arrival = LinkEvent | Received | Dropped


@dataclass
class Tally:
    """A port's decode problems and undecodable bytes since the last ``take``."""

    problems: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # first description of each kind
    bytes_without_frames: int = 0


@dataclass(frozen=True)
class Backlog:
    """What waits for the loop: arrivals, frames among them, and the oldest one's age (s)."""

    arrivals: int
    frames: int
    oldest_s: float


class Handover:
    """Thread-safe, bounded: readers ``put``, the loop ``take``s."""

    def __init__(
        self,
        transducer_role: str,
        roles: Collection[str],
        *,
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_sentences: int = DEFAULT_MAX_SENTENCES,
    ) -> None:
        if max_frames < 1 or max_sentences < 1:
            raise ValueError("the hand-over needs room for at least one frame per port")
        self._transducer = transducer_role
        self._max_sentences = max_sentences
        self._limits = {r: max_frames if r == transducer_role else max_sentences for r in roles}
        self._queue: deque[Arrival] = deque()
        self._waiting = dict.fromkeys(roles, 0)  # frames waiting, per port
        self._open: dict[str, Dropped] = {}  # the marker still counting, per port
        self._tallies = {r: Tally() for r in roles}
        self._tallied: set[str] = set()  # ports whose tally has something since the last take
        self._bytes = dict.fromkeys(roles, 0)  # every byte handed over, per port
        self._lock = threading.Lock()
        # One token each time the queue stops being empty: the loop waits on it in C
        # (a Condition's wait builds and discards a lock in Python at every arrival).
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()

    def add_role(self, role: str) -> None:
        """A port added while running (a reload): same limits as the other pump ports."""
        with self._lock:
            self._limits.setdefault(role, self._max_sentences)
            self._waiting.setdefault(role, 0)
            self._tallies.setdefault(role, Tally())
            self._bytes.setdefault(role, 0)

    def put(self, item: LinkEvent | Received) -> None:
        """Called on a reader's thread; never blocks for long, never grows without bound."""
        with self._lock:
            was_empty = not self._queue
            if isinstance(item, LinkEvent):
                self._queue.append(item)
            else:
                self._received(item)
            if was_empty and self._queue:  # garbage alone does not wake the loop
                self._wake.put(None)

    def _received(self, item: Received) -> None:
        role = item.role
        self._bytes[role] += item.n_bytes
        if item.problems:
            tally = self._tallies[role]
            for problem in item.problems:
                tally.problems[problem.kind] += problem.n
                tally.examples.setdefault(problem.kind, problem.detail)
            self._tallied.add(role)
        if not item.frames:
            self._tallies[role].bytes_without_frames += item.n_bytes
            if item.n_bytes:
                self._tallied.add(role)
            return
        n = len(item.frames)
        if self._waiting[role] + n <= self._limits[role]:
            self._open.pop(role, None)  # later drops need a marker after this arrival
            self._waiting[role] += n
            self._queue.append(item)
            return
        marker = self._open.get(role)
        if marker is None:
            marker = self._open[role] = Dropped(role, item.mono)
            self._queue.append(marker)
        marker.arrivals += 1
        if role == self._transducer:
            marker.samples += sum(len(frame.samples) for frame in item.frames)
        else:
            marker.sentences += n

    def take(self, budget: int, timeout_s: float) -> tuple[list[Arrival], dict[str, Tally]]:
        """Arrivals in order up to ``budget`` frames (at least one), and every port's tally.

        Waits up to ``timeout_s`` for something to arrive when nothing waits.
        """
        if timeout_s > 0:
            with self._lock:
                empty = not self._queue
            if empty:
                try:
                    self._wake.get(timeout=timeout_s)
                except queue.Empty:
                    pass
        with self._lock:
            arrivals: list[Arrival] = []
            frames = 0
            while self._queue and (not arrivals or frames < budget):
                item = self._queue.popleft()
                if isinstance(item, Received):
                    self._waiting[item.role] -= len(item.frames)
                    frames += len(item.frames)
                elif isinstance(item, Dropped) and self._open.get(item.role) is item:
                    del self._open[item.role]  # handed over: its counts are final
                arrivals.append(item)
            tallies = {role: self._tallies[role] for role in self._tallied}
            for role in self._tallied:
                self._tallies[role] = Tally()
            self._tallied.clear()
            if not self._queue:  # a token from arrivals just taken would wake the next wait
                while not self._wake.empty():
                    self._wake.get_nowait()
            return arrivals, tallies

    def waiting(self, role: str) -> int:
        """Frames from ``role`` handed over and not yet taken."""
        with self._lock:
            return self._waiting[role]

    def bytes_in(self) -> dict[str, int]:
        """Every byte the readers have handed over so far, per port (kept, dropped or garbage)."""
        with self._lock:
            return dict(self._bytes)

    def backlog(self, now_mono: float) -> Backlog:
        """How far behind the loop is."""
        with self._lock:
            oldest = now_mono - self._queue[0].mono if self._queue else 0.0
            return Backlog(len(self._queue), sum(self._waiting.values()), oldest)
