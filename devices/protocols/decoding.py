"""What every incremental decoder shares: a byte-in, frames-out interface and loss counters.

A decoder is fed whatever bytes a serial read returned (half a frame, three
frames and some noise, nothing) and hands back the complete frames it
found. It never raises on bad bytes: damage is counted per cause and
described in a bounded list of problems, so the monitor can report "12 bad
checksums on /dev/ttyUSB1" instead of dying. Adding a real device's
protocol means writing one more subclass with one method, ``_decode``.
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

    def feed(self, data: bytes) -> list[Frame]:
        """Decode ``data`` together with what earlier calls left unfinished."""
        return self._decode(data) if data else []

    @abstractmethod
    def _decode(self, data: bytes) -> list[Frame]:
        """Consume ``data`` (non-empty), keep any incomplete tail, return complete frames."""

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
