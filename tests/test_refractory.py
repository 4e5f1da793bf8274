"""Specification of the refractory-state detector: the transition table of docs/clinical-logic.md.

The detector is driven with hand-made observations (a MAP estimate, an NEE
reading and the no-pulse verdict at one moment of stream time), so each
test states one rule: the state a moment maps to, in order of precedence,
and how a refractory episode opens, is confirmed, survives interruptions
and ends.
"""

from __future__ import annotations

import pytest

from monitor.clinical.map_window import MapEstimate
from monitor.clinical.nee import NEE_UNIT, ChannelDose, ChannelState, NeeReading
from monitor.clinical.refractory import (
    EpisodeChange,
    Observation,
    Phase,
    Reading,
    RefractoryDetector,
    State,
    StateChange,
    classify,
    shows_recovery,
)
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config

SETTINGS = ClinicalSettings.from_config(default_config()).detector
TARGET = SETTINGS.map_target_mmhg
THRESHOLD = SETTINGS.nee_threshold
MARGIN = SETTINGS.end_margin_mmhg
HYSTERESIS = SETTINGS.hysteresis_mmhg
SUSTAIN_S, BRIDGE_S, END_S = SETTINGS.sustain_s, SETTINGS.bridge_s, SETTINGS.end_s

LOW_MAP = TARGET - 7.0  # clearly hypotensive
CLEAR_MAP = TARGET + MARGIN  # the lowest MAP that counts as recovery
HIGH_NEE = THRESHOLD + 0.06  # clearly above threshold
LOW_NEE = THRESHOLD - 0.15  # on a vasopressor, below threshold
STEP_S = 60.0  # how often the walks below look; the detector needs no particular rate
T0 = 1000.5  # an episode's start, deliberately off the whole second


# ------------------------------------------------------------------------- factories
def estimate(t_s: float, map_mmhg: float | None) -> MapEstimate:
    """A clean-beat MAP, or an insufficient signal (None)."""
    if map_mmhg is None:
        return MapEstimate(t_s, None, None, None, None, 0.2, 0.7, 60, 12, 40.0)
    return MapEstimate(
        t_s, map_mmhg, map_mmhg + 35.0, map_mmhg - 15.0, 95.0, 1.0, 0.0, 95, 95, map_mmhg
    )


def drug_channel(
    code: str,
    name: str,
    dose: float | None,
    unit: str,
    factor: float | None,
    *,
    channel: int = 1,
    state: ChannelState = ChannelState.RUNNING,
    second_line: bool = False,
) -> ChannelDose:
    return ChannelDose(
        pump="P1",
        channel=channel,
        code=code,
        drug=name,
        state=state,
        dose=dose,
        dose_unit=unit,
        nee=None if dose is None or factor is None else dose * factor,
        counted=factor is not None,
        second_line=second_line,
    )


def norepinephrine(dose: float | None, state: ChannelState = ChannelState.RUNNING) -> ChannelDose:
    return drug_channel("NORAD", "norepinephrine", dose, NEE_UNIT, 1.0, state=state)


def vasopressin(u_min: float) -> ChannelDose:
    return drug_channel("VASO", "vasopressin", u_min, "U/min", 2.5, channel=2, second_line=True)


def hydrocortisone() -> ChannelDose:
    return drug_channel("HYDROC", "hydrocortisone", 10.0, "mg/h", None, channel=3, second_line=True)


def nee(value: float | None | NeeReading) -> NeeReading:
    """NEE from norepinephrine alone; None: unknown, its pump silent; 0: nothing running."""
    if isinstance(value, NeeReading):
        return value
    if value is None:
        silent = norepinephrine(None, ChannelState.SILENT)
        return NeeReading(0.0, None, (silent,), ("P1/1 norepinephrine: pump P1 not heard",))
    if value == 0.0:
        return NeeReading(0.0, 0.0, (), ())
    return NeeReading(0.0, value, (norepinephrine(value),), ())


STOPPED_ONLY = NeeReading(0.0, 0.0, (norepinephrine(0.0, ChannelState.STOPPED),), ())
HYDROCORTISONE_ONLY = NeeReading(0.0, 0.0, (hydrocortisone(),), ())
NE_AND_VASOPRESSIN = NeeReading(0.0, 0.31, (norepinephrine(0.21), vasopressin(0.04)), ())


def observe(
    t_s: float,
    map_mmhg: float | None,
    nee_value: float | None | NeeReading,
    no_pulse: bool = False,
) -> Observation:
    return Observation(t_s, estimate(t_s, map_mmhg), nee(nee_value), no_pulse)


def hold(
    det: RefractoryDetector,
    start_s: float,
    end_s: float,
    map_mmhg: float | None,
    nee_value: float | None | NeeReading,
    no_pulse: bool = False,
) -> list[StateChange | EpisodeChange]:
    """Observe the same moment every STEP_S from ``start_s`` up to, not including, ``end_s``."""
    changes: list[StateChange | EpisodeChange] = []
    t = start_s
    while t < end_s:
        changes += det.update(observe(t, map_mmhg, nee_value, no_pulse))
        t += STEP_S
    return changes


def episode(changes: list[StateChange | EpisodeChange]) -> list[tuple[float, str, float]]:
    return [(c.t_s, c.change, c.start_s) for c in changes if isinstance(c, EpisodeChange)]


def states(changes: list[StateChange | EpisodeChange]) -> list[State]:
    return [c.state for c in changes if isinstance(c, StateChange)]


def confirmed_at_t0() -> RefractoryDetector:
    """A detector whose episode began at T0 and was confirmed at T0 + sustain."""
    det = RefractoryDetector(SETTINGS)
    hold(det, T0, T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE)
    det.update(observe(T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE))
    assert det.phase is Phase.CONFIRMED
    return det


# ------------------------------------------------------------ the clinically fixed numbers
def test_the_defaults_are_those_of_the_issue() -> None:
    assert SETTINGS.map_target_mmhg == 65.0
    assert SETTINGS.nee_threshold == 0.25
    assert SETTINGS.sustain_s == 30 * 60.0
    assert SETTINGS.bridge_s == 5 * 60.0
    assert SETTINGS.end_s == 10 * 60.0
    assert SETTINGS.end_margin_mmhg == 2.0
    assert SETTINGS.advisory_s == 4 * 3600.0


# --------------------------------------------------------------- what one moment says
@pytest.mark.parametrize(
    "map_mmhg, nee_value, no_pulse, reading",
    [
        pytest.param(TARGET - 0.1, THRESHOLD + 0.01, False, Reading.MET, id="both-just-met"),
        pytest.param(LOW_MAP, HIGH_NEE, False, Reading.MET, id="met"),
        pytest.param(TARGET, HIGH_NEE, False, Reading.INTERRUPTED, id="map-at-target"),
        pytest.param(LOW_MAP, THRESHOLD, False, Reading.INTERRUPTED, id="nee-at-threshold"),
        pytest.param(LOW_MAP, LOW_NEE, False, Reading.INTERRUPTED, id="nee-below-threshold"),
        pytest.param(LOW_MAP, 0.0, False, Reading.INTERRUPTED, id="no-vasopressor"),
        pytest.param(None, HIGH_NEE, False, Reading.INTERRUPTED, id="insufficient-signal"),
        pytest.param(LOW_MAP, HIGH_NEE, True, Reading.INTERRUPTED, id="no-pulse"),
        pytest.param(LOW_MAP, None, False, Reading.NEUTRAL, id="nee-unknown"),
        pytest.param(TARGET, None, False, Reading.INTERRUPTED, id="at-target-nee-unknown"),
    ],
)
def test_classify_says_met_only_for_map_below_target_with_nee_above_threshold(
    map_mmhg: float | None, nee_value: float | None, no_pulse: bool, reading: Reading
) -> None:
    assert classify(observe(0.0, map_mmhg, nee_value, no_pulse), SETTINGS) is reading


@pytest.mark.parametrize(
    "map_mmhg, nee_value, recovered",
    [
        pytest.param(CLEAR_MAP, HIGH_NEE, True, id="map-at-target-plus-margin"),
        pytest.param(CLEAR_MAP - 0.1, HIGH_NEE, False, id="map-just-under-margin"),
        pytest.param(TARGET, HIGH_NEE, False, id="map-at-target"),
        pytest.param(LOW_MAP, THRESHOLD - 0.01, True, id="nee-below-threshold"),
        pytest.param(LOW_MAP, THRESHOLD, False, id="nee-at-threshold"),
        pytest.param(LOW_MAP, None, False, id="nee-unknown"),
        pytest.param(None, HIGH_NEE, False, id="insufficient-signal"),
        pytest.param(None, LOW_NEE, True, id="insufficient-signal-nee-weaned"),
        pytest.param(CLEAR_MAP, None, True, id="map-clear-nee-unknown"),
    ],
)
def test_recovery_is_map_at_target_plus_margin_or_nee_below_threshold(
    map_mmhg: float | None, nee_value: float | None, recovered: bool
) -> None:
    assert shows_recovery(observe(0.0, map_mmhg, nee_value), SETTINGS) is recovered


# ------------------------------------------------------------------- the state table
@pytest.mark.parametrize(
    "no_pulse, map_mmhg, nee_value, state",
    [
        pytest.param(True, LOW_MAP, HIGH_NEE, State.NO_PULSE, id="no-pulse-beats-all"),
        pytest.param(True, None, HIGH_NEE, State.NO_PULSE, id="no-pulse-beats-no-map"),
        pytest.param(False, None, HIGH_NEE, State.INSUFFICIENT_SIGNAL, id="no-map"),
        pytest.param(False, None, 0.0, State.INSUFFICIENT_SIGNAL, id="no-map-no-drug"),
        pytest.param(False, LOW_MAP, HIGH_NEE, State.HYPOTENSIVE, id="criteria-not-sustained"),
        pytest.param(False, LOW_MAP, LOW_NEE, State.HYPOTENSIVE, id="low-on-low-nee"),
        pytest.param(False, LOW_MAP, 0.0, State.HYPOTENSIVE, id="low-no-drug"),
        pytest.param(False, LOW_MAP, None, State.HYPOTENSIVE, id="low-nee-unknown"),
        pytest.param(False, TARGET - 0.1, 0.0, State.HYPOTENSIVE, id="just-below-target"),
        pytest.param(False, TARGET, LOW_NEE, State.VASOPRESSOR_DEPENDENT, id="at-target-on-ne"),
        pytest.param(
            False, TARGET + 10, HIGH_NEE, State.VASOPRESSOR_DEPENDENT, id="above-on-high-nee"
        ),
        pytest.param(False, TARGET, None, State.VASOPRESSOR_DEPENDENT, id="at-target-nee-unknown"),
        pytest.param(False, TARGET, 0.0, State.NORMOTENSIVE, id="at-target-no-drug"),
        pytest.param(False, TARGET, STOPPED_ONLY, State.NORMOTENSIVE, id="stopped-channel"),
        pytest.param(
            False, TARGET, HYDROCORTISONE_ONLY, State.NORMOTENSIVE, id="only-unconverted-agent"
        ),
    ],
)
def test_state_of_one_moment_in_order_of_precedence(
    no_pulse: bool, map_mmhg: float | None, nee_value: float | NeeReading | None, state: State
) -> None:
    det = RefractoryDetector(SETTINGS)
    changes = det.update(observe(100.0, map_mmhg, nee_value, no_pulse))
    assert det.state is state
    assert states(changes) == [state]


@pytest.mark.parametrize(
    "no_pulse, map_mmhg, nee_value, state",
    [
        pytest.param(True, None, HIGH_NEE, State.NO_PULSE, id="no-pulse"),
        pytest.param(False, None, HIGH_NEE, State.INSUFFICIENT_SIGNAL, id="no-map"),
        pytest.param(False, LOW_MAP, HIGH_NEE, State.REFRACTORY, id="criteria-met"),
        pytest.param(False, LOW_MAP, None, State.REFRACTORY, id="nee-unknown"),
        pytest.param(False, CLEAR_MAP, HIGH_NEE, State.REFRACTORY, id="map-recovering"),
        pytest.param(False, LOW_MAP, LOW_NEE, State.REFRACTORY, id="nee-weaning"),
    ],
)
def test_a_confirmed_episode_reads_refractory_unless_no_pulse_or_no_signal(
    no_pulse: bool, map_mmhg: float | None, nee_value: float | None, state: State
) -> None:
    det = confirmed_at_t0()
    det.update(observe(T0 + SUSTAIN_S + 60.0, map_mmhg, nee_value, no_pulse))
    assert det.state is state
    assert det.phase is Phase.CONFIRMED


def test_hypotension_is_left_only_at_target_plus_hysteresis() -> None:
    det = RefractoryDetector(SETTINGS)
    det.update(observe(0.0, LOW_MAP, LOW_NEE))
    det.update(observe(1.0, TARGET, LOW_NEE))
    assert det.state is State.HYPOTENSIVE
    det.update(observe(2.0, TARGET + HYSTERESIS / 2, LOW_NEE))
    assert det.state is State.HYPOTENSIVE
    det.update(observe(3.0, TARGET + HYSTERESIS, LOW_NEE))
    assert det.state is State.VASOPRESSOR_DEPENDENT


def test_hypotension_is_entered_just_below_target_with_no_hysteresis() -> None:
    det = RefractoryDetector(SETTINGS)
    det.update(observe(0.0, TARGET, 0.0))
    assert det.state is State.NORMOTENSIVE
    det.update(observe(1.0, TARGET - 0.1, 0.0))
    assert det.state is State.HYPOTENSIVE


def test_an_episode_ended_by_weaning_leaves_refractory_with_the_hysteresis() -> None:
    det = confirmed_at_t0()
    start = T0 + SUSTAIN_S + 1.0
    hold(det, start, start + END_S, TARGET + HYSTERESIS / 2, LOW_NEE)
    changes = det.update(observe(start + END_S, TARGET + HYSTERESIS / 2, LOW_NEE))
    assert [c for _, c, _ in episode(changes)] == ["ended"]
    assert det.state is State.HYPOTENSIVE


def test_each_state_change_carries_its_time_the_previous_state_and_the_evidence() -> None:
    det = RefractoryDetector(SETTINGS)
    (first,) = det.update(observe(10.0, TARGET + 10, LOW_NEE))
    assert (first.t_s, first.state, first.previous) == (10.0, State.VASOPRESSOR_DEPENDENT, None)
    assert det.update(observe(11.0, TARGET + 10, LOW_NEE)) == []
    (second,) = det.update(observe(12.0, LOW_MAP, LOW_NEE))
    assert (second.t_s, second.state, second.previous) == (
        12.0,
        State.HYPOTENSIVE,
        State.VASOPRESSOR_DEPENDENT,
    )
    assert det.state_since_s == 12.0
    assert second.evidence["map_mmhg"] == LOW_MAP
    assert second.evidence["nee_ug_kg_min"] == LOW_NEE
    assert second.evidence["episode_phase"] == Phase.NONE.value


# ---------------------------------------------------------------------- episode rules
def test_an_episode_opens_when_map_below_target_and_nee_above_threshold_first_hold() -> None:
    det = RefractoryDetector(SETTINGS)
    assert episode(det.update(observe(T0 - 60.0, LOW_MAP, LOW_NEE))) == []
    assert episode(det.update(observe(T0 - 30.0, TARGET, HIGH_NEE))) == []
    changes = det.update(observe(T0, LOW_MAP, HIGH_NEE))
    assert episode(changes) == [(T0, "opened", T0)]
    assert (det.phase, det.episode_start_s) == (Phase.PENDING, T0)
    assert det.state is State.HYPOTENSIVE
    assert episode(det.update(observe(T0 + 60.0, LOW_MAP, HIGH_NEE))) == []


def test_an_unknown_nee_cannot_open_an_episode() -> None:
    det = RefractoryDetector(SETTINGS)
    changes = hold(det, T0, T0 + 2 * SUSTAIN_S, LOW_MAP, None)
    assert episode(changes) == []
    assert det.phase is Phase.NONE
    assert det.state is State.HYPOTENSIVE


def test_an_episode_is_confirmed_exactly_at_start_plus_sustain() -> None:
    det = RefractoryDetector(SETTINGS)
    changes = hold(det, T0, T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE)
    changes += det.update(observe(T0 + SUSTAIN_S - 0.5, LOW_MAP, HIGH_NEE))
    assert det.phase is Phase.PENDING
    assert State.REFRACTORY not in states(changes)
    changes = det.update(observe(T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE))
    assert episode(changes) == [(T0 + SUSTAIN_S, "confirmed", T0)]
    assert states(changes) == [State.REFRACTORY]
    assert det.refractory
    assert det.confirmed_s == T0 + SUSTAIN_S


INTERRUPTIONS = {
    "map-at-target": (TARGET, HIGH_NEE, False),
    "nee-at-threshold": (LOW_MAP, THRESHOLD, False),
    "nee-below-threshold": (LOW_MAP, LOW_NEE, False),
    "insufficient-signal": (None, HIGH_NEE, False),
    "no-pulse": (None, HIGH_NEE, True),
}


@pytest.mark.parametrize("kind", INTERRUPTIONS)
def test_an_interruption_shorter_than_the_bridge_does_not_reset_a_pending_episode(
    kind: str,
) -> None:
    map_mmhg, nee_value, no_pulse = INTERRUPTIONS[kind]
    det = RefractoryDetector(SETTINGS)
    gap = T0 + 600.0
    changes = hold(det, T0, gap, LOW_MAP, HIGH_NEE)
    changes += hold(det, gap, gap + BRIDGE_S - 0.5, map_mmhg, nee_value, no_pulse)
    changes += det.update(observe(gap + BRIDGE_S - 0.5, map_mmhg, nee_value, no_pulse))
    changes += hold(det, gap + BRIDGE_S - 0.25, T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE)
    changes += det.update(observe(T0 + SUSTAIN_S - 0.5, LOW_MAP, HIGH_NEE))
    assert episode(changes) == [(T0, "opened", T0)]
    confirmed = det.update(observe(T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE))
    assert episode(confirmed) == [(T0 + SUSTAIN_S, "confirmed", T0)]


@pytest.mark.parametrize("kind", INTERRUPTIONS)
def test_an_interruption_of_the_bridge_time_discards_a_pending_episode(kind: str) -> None:
    map_mmhg, nee_value, no_pulse = INTERRUPTIONS[kind]
    det = RefractoryDetector(SETTINGS)
    gap = T0 + 600.0
    hold(det, T0, gap, LOW_MAP, HIGH_NEE)
    hold(det, gap, gap + BRIDGE_S, map_mmhg, nee_value, no_pulse)
    assert episode(det.update(observe(gap + BRIDGE_S - 0.5, map_mmhg, nee_value, no_pulse))) == []
    assert det.phase is Phase.PENDING
    changes = det.update(observe(gap + BRIDGE_S, map_mmhg, nee_value, no_pulse))
    assert episode(changes) == [(gap + BRIDGE_S, "discarded", T0)]
    assert (det.phase, det.episode_start_s) == (Phase.NONE, None)
    # The criteria coming back open a new episode, with its own sustain time.
    again = gap + BRIDGE_S + 10.0
    assert episode(det.update(observe(again, LOW_MAP, HIGH_NEE))) == [(again, "opened", again)]
    changes = hold(det, again + STEP_S, again + SUSTAIN_S, LOW_MAP, HIGH_NEE)
    assert episode(changes) == []
    assert episode(det.update(observe(again + SUSTAIN_S, LOW_MAP, HIGH_NEE))) == [
        (again + SUSTAIN_S, "confirmed", again)
    ]


def test_an_unknown_nee_does_not_discard_a_pending_episode() -> None:
    det = RefractoryDetector(SETTINGS)
    changes = hold(det, T0, T0 + 600.0, LOW_MAP, HIGH_NEE)
    changes += hold(det, T0 + 600.0, T0 + 600.0 + 2 * BRIDGE_S, LOW_MAP, None)
    assert det.phase is Phase.PENDING
    changes += hold(det, T0 + 600.0 + 2 * BRIDGE_S, T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE)
    changes += det.update(observe(T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE))
    assert episode(changes) == [(T0, "opened", T0), (T0 + SUSTAIN_S, "confirmed", T0)]


def test_an_unknown_nee_at_the_sustain_time_defers_confirmation_until_the_criteria_show() -> None:
    det = RefractoryDetector(SETTINGS)
    hold(det, T0, T0 + SUSTAIN_S - 60.0, LOW_MAP, HIGH_NEE)
    changes = hold(det, T0 + SUSTAIN_S - 60.0, T0 + SUSTAIN_S + 90.0, LOW_MAP, None)
    assert det.phase is Phase.PENDING
    assert episode(changes) == []
    later = T0 + SUSTAIN_S + 90.0
    assert episode(det.update(observe(later, LOW_MAP, HIGH_NEE))) == [(later, "confirmed", T0)]


RECOVERIES = {
    "map-at-target-plus-margin": (CLEAR_MAP, HIGH_NEE),
    "nee-below-threshold": (LOW_MAP, THRESHOLD - 0.01),
    "both": (TARGET + 10.0, LOW_NEE),
}


@pytest.mark.parametrize("kind", RECOVERIES)
def test_a_confirmed_episode_ends_when_recovery_has_held_for_the_end_time(kind: str) -> None:
    map_mmhg, nee_value = RECOVERIES[kind]
    det = confirmed_at_t0()
    r0 = T0 + SUSTAIN_S + 600.25
    changes = hold(det, T0 + SUSTAIN_S + 60.0, r0, LOW_MAP, HIGH_NEE)
    changes += hold(det, r0, r0 + END_S, map_mmhg, nee_value)
    changes += det.update(observe(r0 + END_S - 0.5, map_mmhg, nee_value))
    assert episode(changes) == []
    assert det.phase is Phase.CONFIRMED
    changes = det.update(observe(r0 + END_S, map_mmhg, nee_value))
    assert episode(changes) == [(r0 + END_S, "ended", T0)]
    assert det.phase is Phase.NONE
    assert not det.refractory
    assert det.state is not State.REFRACTORY


def test_a_recovery_shorter_than_the_end_time_does_not_end_it_and_starts_again() -> None:
    det = confirmed_at_t0()
    r0 = T0 + SUSTAIN_S + 60.0
    changes = hold(det, r0, r0 + END_S - 60.0, CLEAR_MAP, HIGH_NEE)
    changes += det.update(observe(r0 + END_S - 60.0, LOW_MAP, HIGH_NEE))  # relapse
    r1 = r0 + END_S - 30.0
    changes += hold(det, r1, r1 + END_S, CLEAR_MAP, HIGH_NEE)
    assert episode(changes) == []
    assert episode(det.update(observe(r1 + END_S, CLEAR_MAP, HIGH_NEE))) == [
        (r1 + END_S, "ended", T0)
    ]


@pytest.mark.parametrize(
    "map_mmhg", [TARGET, TARGET + MARGIN / 2, CLEAR_MAP - 0.1], ids=["at", "mid", "just-under"]
)
def test_map_between_target_and_target_plus_margin_is_not_recovery(map_mmhg: float) -> None:
    det = confirmed_at_t0()
    start = T0 + SUSTAIN_S + 60.0
    changes = hold(det, start, start + 3 * END_S, map_mmhg, HIGH_NEE)
    assert episode(changes) == []
    assert det.phase is Phase.CONFIRMED
    assert det.state is State.REFRACTORY


def test_nee_at_threshold_is_not_recovery() -> None:
    det = confirmed_at_t0()
    start = T0 + SUSTAIN_S + 60.0
    assert episode(hold(det, start, start + 3 * END_S, LOW_MAP, THRESHOLD)) == []
    assert det.phase is Phase.CONFIRMED


@pytest.mark.parametrize("map_mmhg", [LOW_MAP, None], ids=["map-low", "insufficient-signal"])
def test_an_unknown_nee_does_not_close_a_confirmed_episode(map_mmhg: float | None) -> None:
    det = confirmed_at_t0()
    start = T0 + SUSTAIN_S + 60.0
    assert episode(hold(det, start, start + 6 * END_S, map_mmhg, None)) == []
    assert det.phase is Phase.CONFIRMED


def test_an_unknown_nee_resets_a_recovery_count() -> None:
    det = confirmed_at_t0()
    r0 = T0 + SUSTAIN_S + 60.0
    changes = hold(det, r0, r0 + END_S / 2, LOW_MAP, LOW_NEE)  # weaning
    changes += det.update(observe(r0 + END_S / 2, LOW_MAP, None))  # a pump goes silent
    r1 = r0 + END_S / 2 + 30.0
    changes += hold(det, r1, r1 + END_S, LOW_MAP, LOW_NEE)
    assert episode(changes) == []
    assert det.phase is Phase.CONFIRMED
    assert episode(det.update(observe(r1 + END_S, LOW_MAP, LOW_NEE))) == [(r1 + END_S, "ended", T0)]


# ---------------------------------------------------------------------------- deadlines
def test_next_deadline_announces_sustain_bridge_and_end() -> None:
    det = RefractoryDetector(SETTINGS)
    assert det.next_deadline() is None
    det.update(observe(T0, LOW_MAP, HIGH_NEE))
    assert det.next_deadline() == T0 + SUSTAIN_S
    gap = T0 + 600.0
    det.update(observe(gap, TARGET, HIGH_NEE))
    assert det.next_deadline() == gap + BRIDGE_S
    det.update(observe(gap + 60.0, LOW_MAP, HIGH_NEE))
    assert det.next_deadline() == T0 + SUSTAIN_S
    det.update(observe(T0 + SUSTAIN_S, LOW_MAP, HIGH_NEE))
    recovery = T0 + SUSTAIN_S + 60.25
    det.update(observe(recovery, LOW_MAP, LOW_NEE))
    assert det.next_deadline() == recovery + END_S
    det.update(observe(recovery + END_S, LOW_MAP, LOW_NEE))
    assert det.phase is Phase.NONE
    assert det.next_deadline() is None


def test_a_passed_advisory_time_does_not_hide_the_sustain_deadline() -> None:
    det = RefractoryDetector(SETTINGS)
    # NEE above threshold for longer than the advisory time, target held.
    hold(det, 0.0, SETTINGS.advisory_s + 120.0, TARGET + 10.0, HIGH_NEE)
    start = SETTINGS.advisory_s + 120.5
    det.update(observe(start, LOW_MAP, HIGH_NEE))
    assert det.phase is Phase.PENDING
    assert det.next_deadline() == start + SUSTAIN_S


def test_a_passed_sustain_time_does_not_hide_the_bridge_deadline() -> None:
    det = RefractoryDetector(SETTINGS)
    hold(det, T0, T0 + 60.0, LOW_MAP, HIGH_NEE)
    hold(det, T0 + 60.0, T0 + SUSTAIN_S + 60.0, LOW_MAP, None)  # still pending, not confirmed
    gap = T0 + SUSTAIN_S + 60.5
    det.update(observe(gap, TARGET, None))
    assert det.phase is Phase.PENDING
    assert det.next_deadline() == gap + BRIDGE_S


# -------------------------------------------------------------------------- explanation
def test_refractory_explanation_gives_map_window_minutes_nee_drugs_and_second_line() -> None:
    det = RefractoryDetector(SETTINGS)
    hold(det, 0.0, SUSTAIN_S, 58.0, NE_AND_VASOPRESSIN)
    det.update(observe(SUSTAIN_S, 58.0, NE_AND_VASOPRESSIN))
    assert det.refractory
    text = det.explain(State.REFRACTORY, observe(47 * 60.0, 58.0, NE_AND_VASOPRESSIN))
    assert text == (
        f"Refractory hypotension: MAP 58 mmHg (median, {SETTINGS.map_window_s:.0f} s) for 47 min "
        f"while NEE 0.31 {NEE_UNIT} (norepinephrine 0.21 + vasopressin 0.04 U/min); "
        "second-line already running: vasopressin"
    )


def test_the_confirmation_message_says_how_long_the_criteria_held() -> None:
    det = RefractoryDetector(SETTINGS)
    hold(det, 0.0, SUSTAIN_S, 58.0, NE_AND_VASOPRESSIN)
    changes = det.update(observe(SUSTAIN_S, 58.0, NE_AND_VASOPRESSIN))
    (confirmed,) = [c for c in changes if isinstance(c, EpisodeChange)]
    (state,) = [c for c in changes if isinstance(c, StateChange)]
    for message in (confirmed.message, state.message):
        assert f"for {SUSTAIN_S / 60:.0f} min" in message
        assert "MAP 58 mmHg" in message
        assert "vasopressin" in message


def test_the_hypotension_explanation_while_pending_says_when_refractory_falls_due() -> None:
    det = RefractoryDetector(SETTINGS)
    hold(det, 0.0, 600.0, 58.0, NE_AND_VASOPRESSIN)
    text = det.explain(State.HYPOTENSIVE, observe(600.0, 58.0, NE_AND_VASOPRESSIN))
    assert text.startswith("Hypotension: MAP 58 mmHg")
    assert f"refractory in {(SUSTAIN_S - 600.0) / 60:.0f} min" in text
    assert "second-line already running: vasopressin" in text


# -------------------------------------------------------------- the hydrocortisone clock
def test_the_advisory_clock_runs_while_nee_is_above_threshold() -> None:
    det = RefractoryDetector(SETTINGS)
    det.update(observe(100.0, TARGET + 10.0, LOW_NEE))
    assert det.nee_high_for_s(100.0) == 0.0
    det.update(observe(200.0, TARGET + 10.0, HIGH_NEE))
    assert det.nee_high_for_s(200.0 + 3600.0) == 3600.0
    assert det.next_deadline() == 200.0 + SETTINGS.advisory_s


def test_an_unknown_nee_does_not_reset_the_advisory_clock() -> None:
    det = RefractoryDetector(SETTINGS)
    det.update(observe(200.0, TARGET + 10.0, HIGH_NEE))
    det.update(observe(1000.0, TARGET + 10.0, None))
    det.update(observe(2000.0, TARGET + 10.0, HIGH_NEE))
    assert det.nee_high_for_s(2000.0) == 1800.0


@pytest.mark.parametrize("nee_value", [THRESHOLD, LOW_NEE, 0.0], ids=["at", "below", "none"])
def test_nee_at_or_below_threshold_resets_the_advisory_clock(nee_value: float) -> None:
    det = RefractoryDetector(SETTINGS)
    det.update(observe(200.0, TARGET + 10.0, HIGH_NEE))
    det.update(observe(1000.0, TARGET + 10.0, nee_value))
    assert det.nee_high_for_s(1000.0) == 0.0
    det.update(observe(1500.0, TARGET + 10.0, HIGH_NEE))
    assert det.nee_high_for_s(2000.0) == 500.0


# ------------------------------------------------------------------ a new admission
def test_a_new_admission_ends_a_confirmed_episode_and_discards_a_pending_one() -> None:
    confirmed = confirmed_at_t0()
    later = T0 + SUSTAIN_S + 60.0
    assert episode(confirmed.end_episode(later, "new admission")) == [(later, "ended", T0)]
    assert confirmed.phase is Phase.NONE and confirmed.episode_start_s is None

    pending = RefractoryDetector(SETTINGS)
    hold(pending, T0, T0 + 120.0, LOW_MAP, HIGH_NEE)
    (change,) = pending.end_episode(T0 + 120.0, "new admission")
    assert (change.change, change.start_s, change.message) == ("discarded", T0, "new admission")
    assert pending.end_episode(T0 + 121.0, "again") == []  # nothing open: nothing to end


def test_a_confirmed_episode_is_explained_while_artifacts_hide_the_map() -> None:
    det = confirmed_at_t0()
    later = T0 + SUSTAIN_S + 30.0
    text = det.explain(State.REFRACTORY, observe(later, None, HIGH_NEE))
    assert text.startswith("Refractory hypotension: MAP unknown (too few clean beats in 60 s)")


# ---------------------------------------------------------------- words read later
def test_a_sentence_asked_for_now_and_read_later_says_what_it_said_now() -> None:
    """An alarm's words may be read long after the moment they describe (a latched alarm,
    a display): they must not pick up what the detector learned since."""
    det = RefractoryDetector(SETTINGS)
    hold(det, T0, T0 + 20 * 60.0, LOW_MAP, HIGH_NEE)
    moment = observe(T0 + 20 * 60.0, LOW_MAP, HIGH_NEE)
    det.update(moment)
    words = det.explainer(State.HYPOTENSIVE, moment)
    said_now = det.explain(State.HYPOTENSIVE, moment)
    assert "refractory in 10 min" in said_now
    hold(det, T0 + 21 * 60.0, T0 + SUSTAIN_S + 5 * 60.0, LOW_MAP, HIGH_NEE)  # confirmed since
    det.update(observe(T0 + SUSTAIN_S + 6 * 60.0, CLEAR_MAP, LOW_NEE))
    assert det.phase is Phase.CONFIRMED
    assert words() == said_now
