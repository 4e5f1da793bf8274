"""Trend points: what the log keeps of the detector's inputs, and how a restart replays them.

The engine evaluates several times a second; the log keeps a point every
``interval_s`` and, in between, every moment at which something the episode
rules look at changed (criteria met or not, recovery shown or not, NEE above
threshold or not, pulse, signal). Replaying those points through a fresh
detector therefore rebuilds its episode exactly: the same start, the same
confirmation, the same recovery clock. See docs/log.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.clinical.map_window import MapEstimate
from monitor.clinical.nee import NeeReading
from monitor.clinical.refractory import (
    EpisodeChange,
    Observation,
    RefractoryDetector,
    StateChange,
    classify,
    shows_recovery,
)
from monitor.clinical.settings import DetectorSettings


@dataclass(frozen=True)
class TrendPoint:
    """One logged moment: the numerics shown at the bedside and the detector's inputs."""

    t_s: float
    map_mmhg: float | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    pulse_rate_bpm: float | None
    clean_coverage: float
    artifact_coverage: float
    nee: float | None
    no_pulse: bool
    state: str

    @classmethod
    def gap(cls, t_s: float) -> TrendPoint:
        """Where data end: nothing known from here to the next point."""
        return cls(t_s, None, None, None, None, 0.0, 0.0, None, False, "gap")

    def observation(self, t_s: float | None = None) -> Observation:
        """The detector input this point stands for (at ``t_s``, default its own time)."""
        t = self.t_s if t_s is None else t_s
        estimate = MapEstimate(
            t, self.map_mmhg, self.systolic_mmhg, self.diastolic_mmhg, self.pulse_rate_bpm,
            self.clean_coverage, self.artifact_coverage, 0, 0, None,
        )  # fmt: skip
        reading = NeeReading(t, self.nee, (), () if self.nee is not None else ("not logged",))
        return Observation(t, estimate, reading, self.no_pulse)


def _key(obs: Observation, settings: DetectorSettings) -> tuple:
    nee = obs.nee.value
    return (
        classify(obs, settings),
        shows_recovery(obs, settings),
        None if nee is None else nee > settings.nee_threshold,
        obs.map.map_mmhg is None,
        obs.no_pulse,
    )


class TrendSampler:
    """Decides which evaluations become trend points: periodic, plus every change that matters."""

    def __init__(self, settings: DetectorSettings, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"trend interval must be positive, got {interval_s}")
        self.settings = settings
        self.interval_s = interval_s
        self._last_t: float | None = None
        self._last_key: tuple | None = None

    def sample(self, obs: Observation, state: str) -> TrendPoint | None:
        key = _key(obs, self.settings)
        due = self._last_t is None or obs.t_s - self._last_t >= self.interval_s
        if not due and key == self._last_key:
            return None
        self._last_t, self._last_key = obs.t_s, key
        est = obs.map
        return TrendPoint(
            obs.t_s, est.map_mmhg, est.systolic_mmhg, est.diastolic_mmhg, est.pulse_rate_bpm,
            est.clean_coverage, est.artifact_coverage, obs.nee.value, obs.no_pulse, state,
        )  # fmt: skip


def replay(
    detector: RefractoryDetector, points: Iterable[TrendPoint], data_end_s: float, until_s: float
) -> list[StateChange | EpisodeChange]:
    """Rebuild ``detector`` from logged points, then a gap without data up to ``until_s``.

    Each point holds until the next, and decisions falling due in between
    (a sustain time, a bridge running out) are taken at their own time. From
    ``data_end_s`` on nothing is known: the gap is insufficient signal, never
    invented values. Returns the changes that fell inside the gap, the ones a
    restart has to report.
    """
    previous: TrendPoint | None = None
    for point in points:
        if previous is not None:
            _hold(detector, previous, point.t_s)
        detector.update(point.observation())
        previous = point
    if previous is None:
        return []
    gap_start = max(data_end_s, previous.t_s)
    _hold(detector, previous, gap_start)
    nothing = TrendPoint.gap(gap_start)
    changes = detector.update(nothing.observation())
    changes += _hold(detector, nothing, until_s)
    return changes


def _hold(
    detector: RefractoryDetector, point: TrendPoint, before_s: float
) -> list[StateChange | EpisodeChange]:
    """Apply ``point``'s values at every deadline strictly before ``before_s``."""
    changes: list[StateChange | EpisodeChange] = []
    while (due := detector.next_deadline()) is not None and due < before_s:
        changes += detector.update(point.observation(due))
    return changes
