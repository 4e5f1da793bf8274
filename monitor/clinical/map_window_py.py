"""Pure-Python reference of the MAP window: a median of clean beats over a rolling window.

The readable twin of ``ext/map_window.pyx``: same class, same signatures,
the same arithmetic in the same order, so both give the same estimates to
the bit (tests assert it); :mod:`monitor.clinical.map_window` picks one.

A median ignores the odd mis-measured beat; counting only clean beats keeps
a flush, a zeroing or a disconnection from reading as hypotension. When too
little of the window is covered by clean beats the estimate says so (value
None) instead of guessing from what is left. The same window also keeps the
median of every beat, artifacts included: what a monitor without signal
quality would have believed, so suppressed alarms can be counted.

The engine asks for an estimate at every beat and every second (about
57,000 times in 6 h), so the medians are kept incrementally: sorted columns
updated by the one or two beats that enter or leave the window between two
estimates, rather than two full medians of the window each time.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MapEstimate:
    """MAP and its companions at one moment; ``map_mmhg`` is None on insufficient signal."""

    t_s: float
    map_mmhg: float | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    pulse_rate_bpm: float | None
    clean_coverage: float  # share of the window covered by clean beats
    artifact_coverage: float  # share covered by beats that were not clean
    beats: int  # every beat in the window
    clean_beats: int
    naive_map_mmhg: float | None  # median of every beat, artifacts included

    @property
    def valid(self) -> bool:
        return self.map_mmhg is not None


_ONSET, _END, _MAP, _SBP, _DBP, _RATE, _CLEAN = range(7)


class _SortedColumn:
    """A multiset of floats whose median is numpy's, to the bit.

    Non-NaN values are kept sorted; NaNs are only counted, because
    ``np.median`` of an array holding a NaN is NaN.
    """

    __slots__ = ("nans", "values")

    def __init__(self) -> None:
        self.values: list[float] = []
        self.nans = 0

    def add(self, value: float) -> None:
        if math.isnan(value):
            self.nans += 1
        else:
            insort(self.values, value)

    def remove(self, value: float) -> None:
        if math.isnan(value):
            self.nans -= 1
        else:
            del self.values[bisect_left(self.values, value)]

    def median(self) -> float:
        return math.nan if self.nans else _median(self.values)


class MapWindow:
    """Beats in, ``MapEstimate`` for any later time out; memory bounded by the window.

    Beats live as rows of one float array (onset, end, MAP, SBP, DBP, rate,
    clean), the live ones contiguous, so which beats overlap the window and
    how much of it they cover are a few vectorised operations (coverage is
    summed afresh each time: a running sum would drift). A beat is a member
    while it overlaps the window; its values sit in sorted columns (every
    non-NaN MAP, and the clean beats' MAP, SBP, DBP and rate) that give the
    medians without sorting the window again.
    """

    def __init__(self, fs: float, window_s: float, min_coverage: float) -> None:
        self.fs = fs
        self.configure(window_s, min_coverage)
        self._rows = np.empty((256, 7))
        self._member = np.zeros(256, dtype=bool)  # row overlapped the window at the last estimate
        self._first = 0  # index of the oldest live row
        self._end = 0  # one past the newest
        self._every_map: list[float] = []  # sorted non-NaN MAPs of the member beats
        self._clean = [_SortedColumn() for _ in range(_MAP, _RATE + 1)]
        self._clean_beats = 0

    def configure(self, window_s: float, min_coverage: float) -> None:
        """A new window length and coverage; the beats already held are kept (a reload)."""
        if not (window_s > 0 and 0.0 < min_coverage <= 1.0):
            raise ValueError("window_s must be positive and min_coverage in (0, 1]")
        self.window_s = window_s
        self.min_coverage = min_coverage

    def add(self, beats: Iterable[np.void]) -> None:
        """Beats from the core (``BEAT_DTYPE`` rows), in the order it emitted them."""
        for b in beats:
            if self._end == len(self._rows):
                self._make_room()
            self._rows[self._end] = (
                b["onset"] / self.fs,
                b["end"] / self.fs,
                b["map"],
                b["sbp"],
                b["dbp"],
                b["pulse_rate"],
                b["clean"],
            )
            self._member[self._end] = False
            self._end += 1

    def _make_room(self) -> None:
        first, end = self._first, self._end
        n = end - first
        if n > len(self._rows) // 2:
            rows, member = np.empty((2 * len(self._rows), 7)), np.zeros(2 * len(self._rows), bool)
            rows[:n], member[:n] = self._rows[first:end], self._member[first:end]
            self._rows, self._member = rows, member
        else:
            self._rows[:n], self._member[:n] = self._rows[first:end], self._member[first:end]
        self._first, self._end = 0, n

    def _join(self, i: int) -> None:
        row = self._rows[i].tolist()
        if not math.isnan(row[_MAP]):
            insort(self._every_map, row[_MAP])
        if row[_CLEAN] > 0.0:
            self._clean_beats += 1
            for column, value in zip(self._clean, row[_MAP : _RATE + 1], strict=True):
                column.add(value)

    def _leave(self, i: int) -> None:
        row = self._rows[i].tolist()
        if not math.isnan(row[_MAP]):
            del self._every_map[bisect_left(self._every_map, row[_MAP])]
        if row[_CLEAN] > 0.0:
            self._clean_beats -= 1
            for column, value in zip(self._clean, row[_MAP : _RATE + 1], strict=True):
                column.remove(value)

    def estimate(self, t_s: float) -> MapEstimate:
        """The estimate over ``[t_s - window_s, t_s]``; beats that ended before it are dropped."""
        start = t_s - self.window_s
        first, end = self._first, self._end
        dropped = int(np.searchsorted(self._rows[first:end, _END] > start, True))
        if dropped:
            for i in np.flatnonzero(self._member[first : first + dropped]).tolist():
                self._leave(first + i)
            first = self._first = first + dropped
        rows = self._rows[first:end]
        overlap = np.minimum(rows[:, _END], t_s) - np.maximum(rows[:, _ONSET], start)
        inside = overlap > 0.0
        member = self._member[first:end]
        for i in np.flatnonzero(inside != member).tolist():
            if inside[i]:
                self._join(first + i)
            else:
                self._leave(first + i)
        member[:] = inside
        clean = rows[:, _CLEAN] > 0.0
        clean_s = float(overlap[inside & clean].sum())
        artifact_s = float(overlap[inside & ~clean].sum())
        every_map = self._every_map
        naive = _median(every_map) if every_map else None
        coverage = clean_s / self.window_s
        n_clean = self._clean_beats
        medians: list[float | None] = [None] * 4
        if n_clean and coverage >= self.min_coverage:
            medians = [column.median() for column in self._clean]
        map_mmhg, systolic, diastolic, rate = medians
        return MapEstimate(
            t_s, map_mmhg, systolic, diastolic, rate,
            coverage, artifact_s / self.window_s, len(every_map), n_clean, naive,
        )  # fmt: skip


def _median(values: list[float]) -> float:
    """Median of a sorted, NaN-free list, as ``np.median`` computes it: an even count's is
    ``(a + b) / 2`` of the two middle values (numpy's mean of the two)."""
    half = len(values) // 2
    return values[half] if len(values) % 2 else (values[half - 1] + values[half]) / 2
