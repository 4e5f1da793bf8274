"""The MAP the clinical layer decides on: a median of clean beats over a rolling window.

A median ignores the odd mis-measured beat; counting only clean beats keeps
a flush, a zeroing or a disconnection from reading as hypotension. When too
little of the window is covered by clean beats the estimate says so (value
None) instead of guessing from what is left. The same window also keeps the
median of every beat, artifacts included: what a monitor without signal
quality would have believed, so suppressed alarms can be counted.
"""

from __future__ import annotations

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


class MapWindow:
    """Beats in, ``MapEstimate`` for any later time out; memory bounded by the window.

    Beats live as rows of one float array (onset, end, MAP, SBP, DBP, rate,
    clean), the live ones contiguous, so an estimate is a few vectorised
    operations rather than a Python loop over a minute of beats.
    """

    def __init__(self, fs: float, window_s: float, min_coverage: float) -> None:
        if not (window_s > 0 and 0.0 < min_coverage <= 1.0):
            raise ValueError("window_s must be positive and min_coverage in (0, 1]")
        self.fs = fs
        self.window_s = window_s
        self.min_coverage = min_coverage
        self._rows = np.empty((256, 7))
        self._first = 0  # index of the oldest live row
        self._end = 0  # one past the newest

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
            self._end += 1

    def _make_room(self) -> None:
        live = self._rows[self._first : self._end]
        if len(live) > len(self._rows) // 2:
            grown = np.empty((2 * len(self._rows), 7))
            grown[: len(live)] = live
            self._rows = grown
        else:
            self._rows[: len(live)] = live
        self._first, self._end = 0, len(live)

    def estimate(self, t_s: float) -> MapEstimate:
        """The estimate over ``[t_s - window_s, t_s]``; beats that ended before it are dropped."""
        start = t_s - self.window_s
        ends = self._rows[self._first : self._end, _END]
        self._first += int(np.searchsorted(ends > start, True))
        rows = self._rows[self._first : self._end]
        overlap = np.minimum(rows[:, _END], t_s) - np.maximum(rows[:, _ONSET], start)
        rows, overlap = rows[overlap > 0.0], overlap[overlap > 0.0]
        clean = rows[:, _CLEAN] > 0.0
        clean_s = float(overlap[clean].sum())
        artifact_s = float(overlap[~clean].sum())
        every_map = rows[:, _MAP][~np.isnan(rows[:, _MAP])]
        naive = float(np.median(every_map)) if len(every_map) else None
        coverage = clean_s / self.window_s
        n_clean = int(clean.sum())
        medians: list[float | None] = [None] * 4
        if n_clean and coverage >= self.min_coverage:
            medians = [float(v) for v in np.median(rows[clean][:, _MAP : _RATE + 1], axis=0)]
        map_mmhg, systolic, diastolic, rate = medians
        return MapEstimate(
            t_s, map_mmhg, systolic, diastolic, rate,
            coverage, artifact_s / self.window_s, len(every_map), n_clean, naive,
        )  # fmt: skip
