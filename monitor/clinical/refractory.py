"""The refractory-state detector: what the MAP and the vasopressor dose say together.

Refractory hypotension is MAP below target while the norepinephrine-
equivalent dose is above threshold, sustained. The detector turns a MAP
estimate, an NEE reading and the core's no-pulse verdict at one moment into
a state (with the time it began and the evidence) and tracks refractory
episodes. Its rules, as a transition table, are in ``docs/clinical-logic.md``;
the tests walk that table row by row.

Episode rules (issue 4):

* it opens when MAP < target and NEE > threshold first hold together (an
  unknown NEE cannot open one);
* it is confirmed, and the alarm fires, once they have held for the sustain
  time; interruptions shorter than the bridge time (insufficient signal
  included) do not reset it, a longer one discards an unconfirmed episode;
* a confirmed episode ends only when recovery (MAP >= target + margin, or
  NEE < threshold) has held for the end time; an unknown NEE does not close it.

Every decision is a function of the inputs and stream time, so the same data
give the same timeline live and in ``monitor analyze``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.clinical.map_window import MapEstimate
from monitor.clinical.nee import NEE_UNIT, NeeReading
from monitor.clinical.settings import DetectorSettings


class State(enum.Enum):
    NORMOTENSIVE = "normotensive"  # MAP at target, no vasopressor
    HYPOTENSIVE = "hypotensive"  # MAP below target, not (yet) refractory
    VASOPRESSOR_DEPENDENT = "vasopressor_dependent"  # target held on vasopressors
    REFRACTORY = "refractory"  # a confirmed refractory episode is open
    INSUFFICIENT_SIGNAL = "insufficient_signal"  # too few clean beats to decide
    NO_PULSE = "no_pulse"  # the trace has lost its pulse at a physiological level


class Phase(enum.Enum):
    NONE = "none"
    PENDING = "pending"  # criteria met, not yet for the sustain time
    CONFIRMED = "confirmed"  # sustained: the refractory alarm's condition


class Reading(enum.Enum):
    """What one moment says about the episode criteria."""

    MET = "met"  # MAP < target and NEE > threshold
    NEUTRAL = "neutral"  # MAP < target, NEE unknown: neither for nor against
    INTERRUPTED = "interrupted"  # anything else, insufficient signal included


@dataclass(frozen=True)
class Observation:
    """The detector's inputs at one moment of stream time."""

    t_s: float
    map: MapEstimate
    nee: NeeReading
    no_pulse: bool


@dataclass(frozen=True)
class StateChange:
    t_s: float
    state: State
    previous: State | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EpisodeChange:
    """An episode opened, was confirmed, ended (recovery) or was discarded (long interruption)."""

    t_s: float
    change: str
    start_s: float
    message: str


def classify(obs: Observation, settings: DetectorSettings) -> Reading:
    """Whether this moment meets the refractory criteria, says nothing, or interrupts them."""
    est, nee = obs.map, obs.nee
    if obs.no_pulse or est.map_mmhg is None or est.map_mmhg >= settings.map_target_mmhg:
        return Reading.INTERRUPTED
    if nee.value is None:
        return Reading.NEUTRAL
    return Reading.MET if nee.value > settings.nee_threshold else Reading.INTERRUPTED


def shows_recovery(obs: Observation, settings: DetectorSettings) -> bool:
    """MAP clearly back above target, or NEE back below threshold."""
    est, nee = obs.map, obs.nee
    above = (
        est.map_mmhg is not None
        and est.map_mmhg >= settings.map_target_mmhg + settings.end_margin_mmhg
    )
    weaned = nee.value is not None and nee.value < settings.nee_threshold
    return above or weaned


class RefractoryDetector:
    """Feed ``Observation``s in stream-time order; read state, phase and changes."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.state: State | None = None
        self.state_since_s = 0.0
        self.phase = Phase.NONE
        self.episode_start_s: float | None = None
        self.confirmed_s: float | None = None
        self._interrupted_since: float | None = None
        self._recovering_since: float | None = None
        self._below_since: float | None = None  # MAP below target, for the message
        self._nee_high_since: float | None = None  # NEE above threshold, for the advisory
        self._last_t = -float("inf")  # the last update's time: deadlines lie after it

    # ------------------------------------------------------------- queries
    @property
    def refractory(self) -> bool:
        return self.phase is Phase.CONFIRMED

    def nee_high_for_s(self, t_s: float) -> float:
        """How long NEE has been above threshold (an unknown NEE does not reset it)."""
        return 0.0 if self._nee_high_since is None else t_s - self._nee_high_since

    def next_deadline(self) -> float | None:
        """The next moment after the last update at which a decision falls due with no new input.

        A sustain or advisory time already passed is not announced again: it
        would hide the deadlines still to come.
        """
        s = self.settings
        times = []
        if self.phase is Phase.PENDING and self.episode_start_s is not None:
            times.append(self.episode_start_s + s.sustain_s)
            if self._interrupted_since is not None:
                times.append(self._interrupted_since + s.bridge_s)
        if self.phase is Phase.CONFIRMED and self._recovering_since is not None:
            times.append(self._recovering_since + s.end_s)
        if self._nee_high_since is not None:
            times.append(self._nee_high_since + s.advisory_s)
        return min((t for t in times if t > self._last_t), default=None)

    # -------------------------------------------------------------- update
    def update(self, obs: Observation) -> list[StateChange | EpisodeChange]:
        """Apply one moment; return the episode and state changes it caused."""
        changes: list[StateChange | EpisodeChange] = []
        self._last_t = obs.t_s
        self._track_levels(obs)
        changes += self._update_episode(obs)
        state = self._state_for(obs)
        if state is not self.state:
            changes.append(
                StateChange(
                    obs.t_s, state, self.state, self.explain(state, obs), self.evidence(obs)
                )
            )
            self.state, self.state_since_s = state, obs.t_s
        return changes

    def _track_levels(self, obs: Observation) -> None:
        s = self.settings
        est, nee = obs.map, obs.nee
        if est.map_mmhg is not None:
            if est.map_mmhg < s.map_target_mmhg:
                self._below_since = self._below_since if self._below_since is not None else obs.t_s
            else:
                self._below_since = None
        if nee.value is not None:
            if nee.value > s.nee_threshold:
                if self._nee_high_since is None:
                    self._nee_high_since = obs.t_s
            else:
                self._nee_high_since = None

    def _update_episode(self, obs: Observation) -> list[EpisodeChange]:
        s, t = self.settings, obs.t_s
        reading = classify(obs, s)
        if self.phase is Phase.NONE:
            if reading is Reading.MET:
                self.phase, self.episode_start_s = Phase.PENDING, t
                self._interrupted_since = None
                return [EpisodeChange(t, "opened", t, self._criteria_text(obs))]
            return []
        start = self.episode_start_s
        assert start is not None
        if self.phase is Phase.PENDING:
            if reading is Reading.INTERRUPTED:
                if self._interrupted_since is None:
                    self._interrupted_since = t
                if t - self._interrupted_since >= s.bridge_s:
                    self._close()
                    return [
                        EpisodeChange(
                            t, "discarded", start,
                            f"criteria interrupted for {_minutes(s.bridge_s)} before "
                            f"{_minutes(s.sustain_s)} had passed",
                        )
                    ]  # fmt: skip
                return []
            self._interrupted_since = None
            if reading is Reading.MET and t - start >= s.sustain_s:
                self.phase, self.confirmed_s = Phase.CONFIRMED, t
                self._recovering_since = None
                return [EpisodeChange(t, "confirmed", start, self.explain(State.REFRACTORY, obs))]
            return []
        # Confirmed: only sustained recovery ends it.
        if not shows_recovery(obs, s):
            self._recovering_since = None
            return []
        if self._recovering_since is None:
            self._recovering_since = t
        if t - self._recovering_since < s.end_s:
            return []
        self._close()
        return [
            EpisodeChange(
                t, "ended", start,
                f"recovery held for {_minutes(s.end_s)}: {self._criteria_text(obs)}",
            )
        ]  # fmt: skip

    def end_episode(self, t_s: float, reason: str) -> list[EpisodeChange]:
        """Close an open episode for a reason outside the signal (a new patient)."""
        if self.phase is Phase.NONE or self.episode_start_s is None:
            return []
        change = "ended" if self.phase is Phase.CONFIRMED else "discarded"
        start = self.episode_start_s
        self._close()
        return [EpisodeChange(t_s, change, start, reason)]

    def _close(self) -> None:
        self.phase = Phase.NONE
        self.episode_start_s = self.confirmed_s = None
        self._interrupted_since = self._recovering_since = None

    def _state_for(self, obs: Observation) -> State:
        s = self.settings
        est = obs.map
        if obs.no_pulse:
            return State.NO_PULSE
        if est.map_mmhg is None:
            return State.INSUFFICIENT_SIGNAL
        if self.phase is Phase.CONFIRMED:
            return State.REFRACTORY
        leave_at = s.map_target_mmhg
        if self.state in (State.HYPOTENSIVE, State.REFRACTORY):
            leave_at += s.hysteresis_mmhg
        if est.map_mmhg < leave_at:
            return State.HYPOTENSIVE
        if obs.nee.vasopressor_running:
            return State.VASOPRESSOR_DEPENDENT
        return State.NORMOTENSIVE

    # ------------------------------------------------------------ messages
    def evidence(self, obs: Observation) -> dict[str, Any]:
        est = obs.map
        return {
            "map_mmhg": est.map_mmhg,
            "clean_coverage": round(est.clean_coverage, 3),
            "nee_ug_kg_min": obs.nee.value,
            "nee": obs.nee.explain(),
            "episode_phase": self.phase.value,
            "episode_start_s": self.episode_start_s,
        }

    def _criteria_text(self, obs: Observation) -> str:
        return f"{_map_text(self.settings, obs.map)}, NEE {obs.nee.explain()}"

    def explain(self, state: State, obs: Observation) -> str:
        """The sentence a clinician reads next to the state."""
        return self.explainer(state, obs)()

    def explainer(self, state: State, obs: Observation) -> Callable[[], str]:
        """``explain``, worked out only when called, and the same whenever that is.

        A standing alarm is re-stated at every evaluation and read far less
        often; what the sentence needs of the detector is taken now.
        """
        return functools.partial(
            _sentence,
            self.settings,
            state,
            obs,
            self.phase,
            self.episode_start_s,
            self._below_since,
        )


def _map_text(s: DetectorSettings, est: MapEstimate) -> str:
    """Whole mmHg, unless rounding would land on the target and hide which side it is.

    An open episode outlives a stretch of artifacts, so MAP may be unknown here.
    """
    value, target = est.map_mmhg, s.map_target_mmhg
    if value is None:
        return f"MAP unknown (too few clean beats in {s.map_window_s:.0f} s)"
    shown = f"{value:.1f}" if round(value) == round(target) else f"{value:.0f}"
    return f"MAP {shown} mmHg (median, {s.map_window_s:.0f} s)"


def _sentence(
    s: DetectorSettings,
    state: State,
    obs: Observation,
    phase: Phase,
    episode_start_s: float | None,
    below_since: float | None,
) -> str:
    """The sentence a clinician reads next to ``state``, from the detector's values at ``obs``."""
    t, est, nee = obs.t_s, obs.map, obs.nee
    target = f"{s.map_target_mmhg:.0f}"
    second = nee.second_line_running
    also = f"; second-line already running: {', '.join(second)}" if second else ""
    if state is State.NO_PULSE:
        return "No pulse at a physiological pressure: check the patient"
    if state is State.INSUFFICIENT_SIGNAL:
        return (
            f"Insufficient signal: clean beats cover {100 * est.clean_coverage:.0f}% of the "
            f"last {s.map_window_s:.0f} s ({100 * s.map_min_coverage:.0f}% needed), "
            f"artifacts {100 * est.artifact_coverage:.0f}%"
        )
    if state is State.REFRACTORY:
        held = t - (episode_start_s if episode_start_s is not None else t)
        return (
            f"Refractory hypotension: {_map_text(s, est)} for {_minutes(held)} while NEE "
            f"{nee.explain()}{also}"
        )
    if state is State.HYPOTENSIVE:
        below = t - (below_since if below_since is not None else t)
        text = f"Hypotension: {_map_text(s, est)} below {target} for {_minutes(below)}"
        text += f"; NEE {nee.explain()}{also}"
        if phase is Phase.PENDING and episode_start_s is not None:
            left = s.sustain_s - (t - episode_start_s)
            text += (
                f"; NEE above {s.nee_threshold:g} {NEE_UNIT} with MAP below target for "
                f"{_minutes(t - episode_start_s)}: refractory in {_minutes(left)} "
                "if this lasts"
            )
        return text
    if state is State.VASOPRESSOR_DEPENDENT:
        return f"{_map_text(s, est)} at or above {target} on NEE {nee.explain()}{also}"
    return f"{_map_text(s, est)} at or above {target}, no vasopressor"


def _minutes(seconds: float) -> str:
    if seconds < 120.0:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600.0:
        return f"{seconds / 60.0:.0f} min"
    return f"{seconds / 3600.0:.1f} h"
