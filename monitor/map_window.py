"""The MAP the clinical layer decides on: a median of clean beats over a rolling window.

A median ignores the odd mis-measured beat; counting only clean beats keeps
a flush, a zeroing or a disconnection from reading as hypotension. When too
little of the window is covered by clean beats the estimate says so (value
None) instead of guessing from what is left. The same window also keeps the
median of every beat, artifacts included: what a monitor without signal
quality would have believed, so suppressed alarms can be counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MapEstimate:
    """MAP and its companions at one moment; ``map_mmhg`` is None when the signal is insufficient."""

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


@dataclass(frozen=True)
class _Beat:
    onset_s: float
    end_s: float
    map: float
    sbp: float
    dbp: float
    rate: float
    clean: bool


class MapWindow:
    """Beats in, ``MapEstimate`` for any later time out; memory bounded by the window."""

    def __init__(self, fs: float, window_s: float, min_coverage: float) -> None:
        if not (window_s > 0 and 0.0 < min_coverage <= 1.0):
            raise ValueError("window_s must be positive and min_coverage in (0, 1]")
        self.fs = fs
        self.window_s = window_s
        self.min_coverage = min_coverage
        self._beats: deque[_Beat] = deque()

    def add(self, beats: Iterable[np.void]) -> None:
        """Beats from the core (``BEAT_DTYPE`` rows), in the order it emitted them."""
        for b in beats:
            self._beats.append(
                _Beat(
                    float(b["onset"]) / self.fs,
                    float(b["end"]) / self.fs,
                    float(b["map"]),
                    float(b["sbp"]),
                    float(b["dbp"]),
                    float(b["pulse_rate"]),
                    bool(b["clean"]),
                )
            )

    def estimate(self, t_s: float) -> MapEstimate:
        """The estimate over ``[t_s - window_s, t_s]``; beats that ended before it are dropped."""
        start = t_s - self.window_s
        while self._beats and self._beats[0].end_s <= start:
            self._beats.popleft()
        clean_s = artifact_s = 0.0
        clean: list[_Beat] = []
        every_map: list[float] = []
        for beat in self._beats:
            overlap = min(beat.end_s, t_s) - max(beat.onset_s, start)
            if overlap <= 0.0:
                continue
            if beat.map == beat.map:
                every_map.append(beat.map)
            if beat.clean:
                clean_s += overlap
                clean.append(beat)
            else:
                artifact_s += overlap
        coverage = clean_s / self.window_s
        naive = float(np.median(every_map)) if every_map else None
        if not clean or coverage < self.min_coverage:
            return MapEstimate(
                t_s, None, None, None, None, coverage, artifact_s / self.window_s,
                len(every_map), len(clean), naive,
            )  # fmt: skip
        return MapEstimate(
            t_s,
            float(np.median([b.map for b in clean])),
            float(np.median([b.sbp for b in clean])),
            float(np.median([b.dbp for b in clean])),
            float(np.median([b.rate for b in clean])),
            coverage,
            artifact_s / self.window_s,
            len(every_map),
            len(clean),
            naive,
        )
