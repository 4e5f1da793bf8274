"""What every device adapter shares: bytes in, frames out, loss counters, and a session.

A decoder is fed whatever bytes a serial read returned (half a frame, three
frames and some noise, nothing) and hands back the complete frames it
found. It never raises on bad bytes: damage is counted per cause and
described in a bounded list of problems, so the monitor can report "12 bad
checksums on /dev/ttyUSB1" instead of dying.

A decoder is also its protocol's adapter: a device that only answers when
asked (a patient monitor's data export, a pump rack) needs requests,
keep-alives and re-association, so the port's reader tells the decoder when
the port opened and when its next request falls due, and writes what it
queued. The decoder only queues bytes; the reader does the I/O. A device
that talks unasked, as this project's own formats do, keeps the defaults:
no session, nothing to send. Adding a protocol means one subclass with
``_decode``, and for a talking device the session hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from typing import Generic, NamedTuple, TypeVar

Frame = TypeVar("Frame")

MAX_PENDING_PROBLEMS = 64


class Problem(NamedTuple):
    """Damage a decoder saw: its counter name, what was wrong, and how many times.

    ``n`` is 1 for a described problem; the summary of those beyond the
    bound carries how many of that kind were counted but not described.
    """

    kind: str
    detail: str
    n: int = 1


class Decoder(ABC, Generic[Frame]):
    """Incremental decoder: ``feed(bytes) -> frames``; never raises on what it is fed.

    ``counts`` tallies frames and every kind of loss (``bad_checksum``,
    ``truncated``, ``garbage_bytes``, ``sequence_gap``...) since creation;
    ``take_problems()`` returns the problems described since the last call,
    at most ``MAX_PENDING_PROBLEMS`` of them, and one summary per kind for
    the rest, so every occurrence is counted and memory stays bounded.
    """

    protocol: str = ""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._problems: list[Problem] = []
        self._unreported: Counter[str] = Counter()
        self._outgoing = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Decode ``data`` together with what earlier calls left unfinished."""
        return self._decode(data) if data else []

    @abstractmethod
    def _decode(self, data: bytes) -> list[Frame]:
        """Consume ``data`` (non-empty), keep any incomplete tail, return complete frames."""

    def open_session(self, now: float) -> None:
        """The port opened at ``now`` (monotonic s): queue what the device must hear first.

        A reopened port is a new session: whatever the device was asked before is gone.
        """

    def next_due(self) -> float | None:
        """When ``on_time`` must next be called (monotonic s), or None while nothing is due."""
        return None

    def on_time(self, now: float) -> None:
        """Queue what is due by ``now``: replies to what was read, requests, keep-alives.

        Called after every read and whenever ``next_due`` comes; the only
        place an adapter learns the time, so ``feed`` stays a function of bytes.
        """

    def take_outgoing(self) -> bytes:
        """The bytes queued for the device since the last call, for the reader to write."""
        if not self._outgoing:  # every read asks, and most adapters never send
            return b""
        outgoing, self._outgoing = bytes(self._outgoing), bytearray()
        return outgoing

    def _send(self, data: bytes) -> None:
        self._outgoing += data

    def take_problems(self) -> list[Problem]:
        """Problems since the last call, plus one summary per kind of those not kept."""
        problems, self._problems = self._problems, []
        for kind, n in self._unreported.items():
            problems.append(Problem(kind, f"{n} further {kind} counted, not described", n))
        self._unreported.clear()
        return problems

    def _problem(self, kind: str, detail: str, count: int = 1) -> None:
        self.counts[kind] += count
        if len(self._problems) < MAX_PENDING_PROBLEMS:
            self._problems.append(Problem(kind, detail))
        else:
            self._unreported[kind] += 1
