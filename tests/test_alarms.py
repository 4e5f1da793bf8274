"""Specification of the alarm behaviours, in the spirit of IEC 60601-1-8.

Each test drives an ``AlarmManager`` with a few alarm specs through stream
time and states one behaviour: condition delay, latching, acknowledge,
audio pause and its break-through, escalation, information signals, the
order of the annunciation, the category of technical alarms, and what
becomes of a standing alarm across a restart.
"""

from __future__ import annotations

import pytest

from monitor.clinical.alarm_types import (
    AlarmTransition,
    Annunciation,
    CarriedAlarm,
    Category,
    Priority,
    Transition,
)
from monitor.clinical.alarms import AlarmManager, AlarmSpec, Condition
from monitor.clinical.engine import alarm_specs
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config

CLINICAL = ClinicalSettings.from_config(default_config())
SETTINGS = CLINICAL.alarms
PAUSE_S, ESCALATION_S = SETTINGS.audio_pause_s, SETTINGS.escalation_s
DELAY_S = SETTINGS.hypotension_delay_s

PHYSIOLOGICAL, TECHNICAL = Category.PHYSIOLOGICAL, Category.TECHNICAL
SPECS = {
    spec.name: spec
    for spec in (
        AlarmSpec("hypotension", Priority.MEDIUM, PHYSIOLOGICAL, DELAY_S),
        AlarmSpec("critical", Priority.HIGH, PHYSIOLOGICAL, SETTINGS.map_critical_delay_s),
        AlarmSpec("refractory", Priority.HIGH, PHYSIOLOGICAL),
        AlarmSpec("low_physio", Priority.LOW, PHYSIOLOGICAL),
        AlarmSpec("artifact", Priority.LOW, TECHNICAL, SETTINGS.artifact_delay_s),
        AlarmSpec("pump_lost", Priority.MEDIUM, TECHNICAL),
        AlarmSpec("tech_high", Priority.HIGH, TECHNICAL),
        AlarmSpec("advisory", Priority.INFO, PHYSIOLOGICAL),
    )
}
ON = Condition(True, "condition holds", {"map_mmhg": 58.0})
T0 = 100.25  # off the whole second: nothing here depends on a tick


def manager() -> AlarmManager:
    return AlarmManager(SPECS, PAUSE_S, ESCALATION_S)


def update(alarms: AlarmManager, t_s: float, *active: str) -> list[AlarmTransition]:
    return alarms.update(t_s, {name: ON for name in active})


def kinds(transitions: list[AlarmTransition]) -> list[tuple[str, Transition]]:
    return [(tr.name, tr.transition) for tr in transitions]


def raised_at(alarms: AlarmManager, t_s: float, *names: str) -> AlarmManager:
    """Raise zero-delay alarms (or wait out the delays) at ``t_s``; the conditions stay on."""
    update(alarms, t_s, *names)
    delays = [alarms.spec(n).delay_s for n in names if alarms.spec(n).delay_s > 0]
    for delay in sorted(delays):
        update(alarms, t_s + delay, *names)
    assert all(alarms.is_raised(n) for n in names)
    return alarms


def shown(annunciation: Annunciation) -> list[str]:
    return [a.name for a in annunciation.alarms]


# ------------------------------------------------------------ the clinically fixed numbers
def test_the_defaults_are_those_of_the_issue() -> None:
    assert SETTINGS.hypotension_delay_s == 60.0
    assert SETTINGS.map_critical_mmhg == 50.0
    assert SETTINGS.map_critical_delay_s == 60.0
    assert SETTINGS.audio_pause_s == 120.0
    assert SETTINGS.escalation_s == 10 * 60.0


@pytest.mark.parametrize(
    "name, priority, category",
    [
        ("refractory_hypotension", Priority.HIGH, PHYSIOLOGICAL),
        ("map_critically_low", Priority.HIGH, PHYSIOLOGICAL),
        ("no_pulse", Priority.HIGH, PHYSIOLOGICAL),
        ("hypotension", Priority.MEDIUM, PHYSIOLOGICAL),
        ("abp_artifact", Priority.LOW, TECHNICAL),
        ("transducer_disconnected", Priority.MEDIUM, TECHNICAL),
        ("transducer_zeroing", Priority.LOW, TECHNICAL),
        ("transducer_comm_lost", Priority.MEDIUM, TECHNICAL),
        ("transducer_restart", Priority.MEDIUM, TECHNICAL),
        ("input_overflow", Priority.MEDIUM, TECHNICAL),
        ("pump_comm_lost", Priority.MEDIUM, TECHNICAL),
        ("unknown_drug", Priority.MEDIUM, TECHNICAL),
        ("unknown_unit", Priority.MEDIUM, TECHNICAL),
        ("weight_missing", Priority.MEDIUM, TECHNICAL),
        ("implausible_dose", Priority.MEDIUM, TECHNICAL),
        ("serial_errors", Priority.LOW, TECHNICAL),
        ("alarm_output_failed", Priority.MEDIUM, TECHNICAL),
        ("log_failed", Priority.MEDIUM, TECHNICAL),
        ("hydrocortisone_advisory", Priority.INFO, PHYSIOLOGICAL),
    ],
)
def test_the_monitor_alarm_table(name: str, priority: Priority, category: Category) -> None:
    spec = alarm_specs(CLINICAL)[name]
    assert (spec.priority, spec.category) == (priority, category)


def test_only_high_physiological_alarms_latch() -> None:
    latching = {name for name, spec in alarm_specs(CLINICAL).items() if spec.latching}
    assert latching == {"refractory_hypotension", "map_critically_low", "no_pulse"}


# -------------------------------------------------------------------- condition delay
@pytest.mark.parametrize("name", ["hypotension", "critical", "artifact"])
def test_an_alarm_is_raised_exactly_when_its_condition_has_held_for_its_delay(name: str) -> None:
    alarms = manager()
    delay = SPECS[name].delay_s
    assert update(alarms, T0, name) == []
    assert update(alarms, T0 + delay - 0.5, name) == []
    assert not alarms.is_raised(name)
    (raised,) = update(alarms, T0 + delay, name)
    assert (raised.t_s, raised.name, raised.transition) == (T0 + delay, name, Transition.RAISED)
    assert raised.message == ON.message
    assert raised.evidence["map_mmhg"] == 58.0


def test_a_zero_delay_alarm_is_raised_at_once() -> None:
    alarms = manager()
    assert kinds(update(alarms, T0, "pump_lost")) == [("pump_lost", Transition.RAISED)]


@pytest.mark.parametrize("name", ["hypotension", "critical", "artifact"])
def test_a_condition_that_ends_before_its_delay_never_raises(name: str) -> None:
    alarms = manager()
    delay = SPECS[name].delay_s
    update(alarms, T0, name)
    assert update(alarms, T0 + delay - 0.5) == []
    assert update(alarms, T0 + delay) == []
    assert update(alarms, T0 + 10 * delay) == []
    assert not alarms.is_raised(name)
    assert shown(alarms.annunciation(T0 + 10 * delay)) == []


def test_a_condition_that_comes_back_waits_its_whole_delay_again() -> None:
    alarms = manager()
    update(alarms, T0, "hypotension")
    update(alarms, T0 + DELAY_S - 1.0)
    again = T0 + DELAY_S - 0.5
    update(alarms, again, "hypotension")
    assert update(alarms, T0 + DELAY_S, "hypotension") == []
    assert kinds(update(alarms, again + DELAY_S, "hypotension")) == [
        ("hypotension", Transition.RAISED)
    ]


# ---------------------------------------------------------------------------- latching
def test_a_high_physiological_alarm_latches_until_acknowledged() -> None:
    alarms = raised_at(manager(), T0, "refractory")
    assert kinds(update(alarms, T0 + 5.0)) == [("refractory", Transition.CONDITION_ENDED)]
    assert alarms.is_raised("refractory")
    annunciation = alarms.annunciation(T0 + 5.0)
    (latched,) = annunciation.alarms
    assert (latched.name, latched.condition_active, latched.acknowledged) == (
        "refractory",
        False,
        False,
    )
    assert annunciation.audible is Priority.HIGH
    assert update(alarms, T0 + 600.0) == []  # stays latched however long
    assert kinds(alarms.acknowledge(T0 + 601.0)) == [
        ("refractory", Transition.ACKNOWLEDGED),
        ("refractory", Transition.CLEARED),
    ]
    assert shown(alarms.annunciation(T0 + 601.0)) == []
    assert alarms.annunciation(T0 + 601.0).audible is None


def test_a_latched_alarm_acknowledged_while_its_condition_lasts_clears_when_it_ends() -> None:
    alarms = raised_at(manager(), T0, "refractory")
    assert kinds(alarms.acknowledge(T0 + 1.0, "refractory")) == [
        ("refractory", Transition.ACKNOWLEDGED)
    ]
    assert kinds(update(alarms, T0 + 2.0)) == [("refractory", Transition.CLEARED)]


@pytest.mark.parametrize("name", ["hypotension", "low_physio", "pump_lost", "tech_high"])
def test_an_alarm_that_does_not_latch_clears_when_its_condition_ends(name: str) -> None:
    alarms = raised_at(manager(), T0, name)
    end = T0 + SPECS[name].delay_s + 1.0
    assert kinds(update(alarms, end)) == [(name, Transition.CLEARED)]
    assert not alarms.is_raised(name)
    assert shown(alarms.annunciation(end)) == []


# ------------------------------------------------------------------------- acknowledge
@pytest.mark.parametrize("name", ["hypotension", "refractory", "pump_lost"])
def test_acknowledge_silences_an_alarm_while_its_condition_lasts(name: str) -> None:
    alarms = raised_at(manager(), T0, name)
    t = T0 + SPECS[name].delay_s
    assert alarms.annunciation(t).audible is SPECS[name].priority
    assert kinds(alarms.acknowledge(t + 1.0, name)) == [(name, Transition.ACKNOWLEDGED)]
    assert update(alarms, t + 2.0, name) == []
    annunciation = alarms.annunciation(t + 2.0)
    assert annunciation.audible is None
    (alarm,) = annunciation.alarms
    assert (alarm.name, alarm.acknowledged, alarm.condition_active) == (name, True, True)


def test_acknowledge_one_alarm_leaves_the_others_sounding() -> None:
    alarms = raised_at(manager(), T0, "pump_lost", "refractory")
    alarms.acknowledge(T0 + 1.0, "refractory")
    assert alarms.annunciation(T0 + 1.0).audible is Priority.MEDIUM


def test_acknowledge_without_a_name_acknowledges_every_alarm() -> None:
    alarms = raised_at(manager(), T0, "pump_lost", "refractory")
    assert sorted(kinds(alarms.acknowledge(T0 + 1.0))) == [
        ("pump_lost", Transition.ACKNOWLEDGED),
        ("refractory", Transition.ACKNOWLEDGED),
    ]
    assert alarms.annunciation(T0 + 1.0).audible is None


# ------------------------------------------------------------------------- audio pause
def test_audio_pause_silences_for_the_pause_time_then_the_alarm_sounds_again() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    pause = T0 + 10.0
    (paused,) = alarms.pause_audio(pause)
    assert (paused.name, paused.transition) == ("pump_lost", Transition.AUDIO_PAUSED)
    assert paused.evidence["until_s"] == pause + PAUSE_S
    annunciation = alarms.annunciation(pause)
    assert annunciation.audible is None
    assert annunciation.alarms[0].audio_paused
    assert update(alarms, pause + PAUSE_S - 0.5, "pump_lost") == []
    assert alarms.annunciation(pause + PAUSE_S - 0.5).audible is None
    assert kinds(update(alarms, pause + PAUSE_S, "pump_lost")) == [
        ("pump_lost", Transition.AUDIO_RESUMED)
    ]
    annunciation = alarms.annunciation(pause + PAUSE_S)
    assert annunciation.audible is Priority.MEDIUM
    assert not annunciation.alarms[0].audio_paused


def test_an_alarm_gone_by_the_end_of_the_pause_does_not_resume() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    alarms.pause_audio(T0 + 10.0)
    assert kinds(update(alarms, T0 + 20.0)) == [("pump_lost", Transition.CLEARED)]
    assert update(alarms, T0 + 10.0 + PAUSE_S) == []
    assert alarms.annunciation(T0 + 10.0 + PAUSE_S).audible is None


def test_an_alarm_acknowledged_during_the_pause_does_not_resume() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    alarms.pause_audio(T0 + 10.0)
    alarms.acknowledge(T0 + 20.0)
    assert update(alarms, T0 + 10.0 + PAUSE_S, "pump_lost") == []
    assert alarms.annunciation(T0 + 10.0 + PAUSE_S).audible is None


def test_a_new_alarm_above_every_sounding_one_breaks_through_the_pause() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    alarms.pause_audio(T0 + 10.0)
    transitions = update(alarms, T0 + 20.0, "pump_lost", "refractory")
    assert ("refractory", Transition.RAISED) in kinds(transitions)
    assert ("refractory", Transition.AUDIO_RESUMED) in kinds(transitions)
    assert alarms.annunciation(T0 + 20.0).audible is Priority.HIGH


@pytest.mark.parametrize("name", ["hypotension", "low_physio", "artifact"])
def test_a_new_alarm_not_above_the_sounding_ones_stays_silent_during_the_pause(name: str) -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    pause = T0 + 10.0
    alarms.pause_audio(pause)
    transitions = update(alarms, pause + 1.0, "pump_lost", name)
    transitions += update(alarms, pause + 1.0 + SPECS[name].delay_s, "pump_lost", name)
    assert kinds(transitions) == [(name, Transition.RAISED)]
    assert alarms.annunciation(pause + 1.0 + SPECS[name].delay_s).audible is None
    resumed = update(alarms, pause + PAUSE_S, "pump_lost", name)
    assert set(kinds(resumed)) == {
        ("pump_lost", Transition.AUDIO_RESUMED),
        (name, Transition.AUDIO_RESUMED),
    }


def test_a_high_alarm_does_not_break_through_a_pause_that_silenced_a_high_one() -> None:
    alarms = raised_at(manager(), T0, "refractory")
    alarms.pause_audio(T0 + 10.0)
    assert kinds(update(alarms, T0 + 20.0, "refractory", "tech_high")) == [
        ("tech_high", Transition.RAISED)
    ]
    assert alarms.annunciation(T0 + 20.0).audible is None


# -------------------------------------------------------------------------- escalation
@pytest.mark.parametrize("name", ["hypotension", "pump_lost"])
def test_a_medium_alarm_left_unacknowledged_escalates_to_high_exactly_at_escalation_time(
    name: str,
) -> None:
    alarms = raised_at(manager(), T0, name)
    raised = T0 + SPECS[name].delay_s
    assert update(alarms, raised + ESCALATION_S - 0.5, name) == []
    (escalated,) = update(alarms, raised + ESCALATION_S, name)
    assert (escalated.name, escalated.transition, escalated.priority) == (
        name,
        Transition.ESCALATED,
        Priority.HIGH,
    )
    assert escalated.category is SPECS[name].category
    annunciation = alarms.annunciation(raised + ESCALATION_S)
    assert annunciation.audible is Priority.HIGH
    assert annunciation.alarms[0].priority is Priority.HIGH
    assert update(alarms, raised + 3 * ESCALATION_S, name) == []  # escalates once


def test_an_acknowledged_medium_alarm_does_not_escalate() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    alarms.acknowledge(T0 + 1.0)
    assert update(alarms, T0 + ESCALATION_S, "pump_lost") == []
    assert update(alarms, T0 + 3 * ESCALATION_S, "pump_lost") == []
    assert alarms.annunciation(T0 + 3 * ESCALATION_S).alarms[0].priority is Priority.MEDIUM


def test_a_low_alarm_does_not_escalate() -> None:
    alarms = raised_at(manager(), T0, "low_physio")
    assert update(alarms, T0 + 3 * ESCALATION_S, "low_physio") == []
    assert alarms.annunciation(T0 + 3 * ESCALATION_S).audible is Priority.LOW


def test_an_escalated_alarm_raised_again_after_clearing_starts_at_its_own_priority() -> None:
    alarms = raised_at(manager(), T0, "pump_lost")
    update(alarms, T0 + ESCALATION_S, "pump_lost")
    alarms.acknowledge(T0 + ESCALATION_S + 1.0)
    (cleared,) = update(alarms, T0 + ESCALATION_S + 2.0)
    assert (cleared.transition, cleared.priority) == (Transition.CLEARED, Priority.HIGH)
    (raised,) = update(alarms, T0 + ESCALATION_S + 3.0, "pump_lost")
    assert (raised.transition, raised.priority) == (Transition.RAISED, Priority.MEDIUM)


# ---------------------------------------------------------------- information and order
def test_an_information_signal_is_shown_but_never_audible() -> None:
    alarms = raised_at(manager(), T0, "advisory")
    annunciation = alarms.annunciation(T0)
    assert shown(annunciation) == ["advisory"]
    assert annunciation.audible is None
    assert update(alarms, T0 + 3 * ESCALATION_S, "advisory") == []  # nor escalates


def test_the_annunciation_lists_the_most_urgent_first_then_the_oldest() -> None:
    alarms = manager()
    update(alarms, T0, "low_physio")
    update(alarms, T0 + 1.0, "low_physio", "advisory")
    update(alarms, T0 + 2.0, "low_physio", "advisory", "pump_lost")
    update(alarms, T0 + 3.0, "low_physio", "advisory", "pump_lost", "tech_high")
    update(alarms, T0 + 4.0, "low_physio", "advisory", "pump_lost", "tech_high", "refractory")
    annunciation = alarms.annunciation(T0 + 4.0)
    assert shown(annunciation) == ["tech_high", "refractory", "pump_lost", "low_physio", "advisory"]
    assert annunciation.audible is Priority.HIGH
    assert annunciation.highest is Priority.HIGH


# ------------------------------------------------------------------------ technical
def test_a_technical_alarm_stays_technical_through_every_transition() -> None:
    alarms = manager()
    transitions = update(alarms, T0, "pump_lost", "tech_high")
    transitions += alarms.pause_audio(T0 + 1.0)
    transitions += update(alarms, T0 + ESCALATION_S, "pump_lost", "tech_high")
    transitions += update(alarms, T0 + ESCALATION_S + 1.0)
    assert {tr.transition for tr in transitions} >= {
        Transition.RAISED,
        Transition.AUDIO_PAUSED,
        Transition.AUDIO_RESUMED,
        Transition.ESCALATED,
        Transition.CLEARED,
    }
    assert {tr.category for tr in transitions} == {TECHNICAL}


def test_a_technical_alarm_is_shown_as_technical_and_a_high_one_does_not_latch() -> None:
    alarms = raised_at(manager(), T0, "tech_high")
    assert [a.category for a in alarms.annunciation(T0).alarms] == [TECHNICAL]
    assert not SPECS["tech_high"].latching
    assert kinds(update(alarms, T0 + 1.0)) == [("tech_high", Transition.CLEARED)]


# --------------------------------------------------------------------------- deadlines
def test_next_deadline_announces_delays_escalations_and_the_pause_end() -> None:
    alarms = manager()
    assert alarms.next_deadline() is None
    update(alarms, T0, "hypotension")
    assert alarms.next_deadline() == T0 + DELAY_S
    update(alarms, T0 + DELAY_S, "hypotension")
    assert alarms.next_deadline() == T0 + DELAY_S + ESCALATION_S
    alarms.pause_audio(T0 + DELAY_S + 1.0)
    assert alarms.next_deadline() == T0 + DELAY_S + 1.0 + PAUSE_S
    update(alarms, T0 + DELAY_S + 1.0 + PAUSE_S, "hypotension")
    assert alarms.next_deadline() == T0 + DELAY_S + ESCALATION_S
    alarms.acknowledge(T0 + DELAY_S + 200.0)
    assert alarms.next_deadline() is None


def test_a_reload_keeps_a_pending_delay_running_from_its_start_against_the_new_delay() -> None:
    m = manager()
    m.update(T0, {"hypotension": ON})
    m.update(T0 + 20.0, {"hypotension": ON})
    shorter = {
        **SPECS,
        "hypotension": AlarmSpec("hypotension", Priority.MEDIUM, PHYSIOLOGICAL, 15.0),
    }
    m.apply_settings(shorter, PAUSE_S, ESCALATION_S)
    (raised,) = m.update(T0 + 20.0, {"hypotension": ON})  # 20 s pending > the new 15 s
    assert raised.transition is Transition.RAISED and raised.t_s == T0 + 20.0


def test_a_reload_never_lowers_the_priority_of_an_alarm_already_shown() -> None:
    m = manager()
    m.update(T0, {"pump_lost": ON})
    lower = {**SPECS, "pump_lost": AlarmSpec("pump_lost", Priority.LOW, TECHNICAL)}
    m.apply_settings(lower, PAUSE_S, ESCALATION_S)
    m.update(T0 + 1.0, {"pump_lost": ON})
    (shown,) = m.annunciation(T0 + 1.0).alarms
    assert shown.priority is Priority.MEDIUM
    m.update(T0 + 2.0, {})
    m.update(T0 + 3.0, {"pump_lost": ON})
    (again,) = m.annunciation(T0 + 3.0).alarms
    assert again.priority is Priority.LOW  # the new priority from its next raise


# ------------------------------------------------------------ across a restart
WINDOW_S = 70.0


def carried(name: str, priority: Priority, condition_active: bool = True) -> CarriedAlarm:
    return CarriedAlarm(f"boot1-{name}", name, priority, "earlier", 1.7e9, condition_active)


def test_a_carried_alarm_whose_condition_holds_again_is_resumed_as_the_same_alarm():
    alarms = manager()
    assert alarms.carry(T0, [carried("hypotension", Priority.HIGH)], WINDOW_S) == []
    assert alarms.annunciation(T0).alarms == ()  # not shown until its condition is found again

    (resumed,) = update(alarms, T0 + 40.0, "hypotension")  # no new delay

    assert resumed.transition is Transition.RESUMED
    assert resumed.alarm_id == "boot1-hypotension"
    assert resumed.priority is Priority.HIGH  # escalated before the restart: never quietened
    assert resumed.evidence["raised_utc"] == 1.7e9
    assert alarms.annunciation(T0 + 40.0).audible is Priority.HIGH  # annunciated again
    (cleared,) = update(alarms, T0 + 100.0)
    assert (cleared.transition, cleared.alarm_id) == (Transition.CLEARED, "boot1-hypotension")


def test_a_carried_alarm_not_found_again_in_its_window_is_cleared_under_its_own_id():
    alarms = manager()
    alarms.carry(T0, [carried("pump_lost", Priority.MEDIUM)], WINDOW_S)
    assert alarms.next_deadline() == T0 + WINDOW_S
    assert update(alarms, T0 + WINDOW_S - 1.0) == []

    (cleared,) = update(alarms, T0 + WINDOW_S)

    assert (cleared.name, cleared.transition) == ("pump_lost", Transition.CLEARED)
    assert cleared.alarm_id == "boot1-pump_lost"
    assert "not found again" in cleared.message
    assert alarms.annunciation(T0 + WINDOW_S).alarms == ()
    # After the window the condition raises a new alarm, after its delay, with a new id.
    (raised,) = update(alarms, T0 + WINDOW_S + 1.0, "pump_lost")
    assert raised.transition is Transition.RAISED and raised.alarm_id != cleared.alarm_id


def test_a_latched_alarm_is_resumed_at_once_and_stays_until_acknowledged():
    alarms = manager()

    (resumed,) = alarms.carry(
        T0, [carried("refractory", Priority.HIGH, condition_active=False)], WINDOW_S
    )

    assert resumed.transition is Transition.RESUMED
    assert resumed.evidence["condition_active"] is False
    (shown,) = alarms.annunciation(T0).alarms
    assert shown.name == "refractory" and not shown.condition_active
    assert update(alarms, T0 + WINDOW_S + 5.0) == []  # the latch holds past the window
    assert kinds(alarms.acknowledge(T0 + 80.0)) == [
        ("refractory", Transition.ACKNOWLEDGED), ("refractory", Transition.CLEARED),
    ]  # fmt: skip


def test_a_latching_alarm_not_found_again_is_resumed_latched_at_the_window_end():
    alarms = manager()
    alarms.carry(T0, [carried("refractory", Priority.HIGH)], WINDOW_S)

    (resumed,) = update(alarms, T0 + WINDOW_S)

    assert resumed.transition is Transition.RESUMED and resumed.alarm_id == "boot1-refractory"
    (shown,) = alarms.annunciation(T0 + WINDOW_S).alarms
    assert not shown.condition_active
    assert alarms.annunciation(T0 + WINDOW_S).audible is Priority.HIGH


def test_a_carried_alarm_already_raised_in_this_run_is_cleared_in_favour_of_it():
    alarms = raised_at(manager(), T0, "pump_lost")
    (own,) = alarms.annunciation(T0).alarms

    (cleared,) = alarms.carry(T0 + 1.0, [carried("pump_lost", Priority.MEDIUM)], WINDOW_S)

    assert (cleared.transition, cleared.alarm_id) == (Transition.CLEARED, "boot1-pump_lost")
    assert [a.name for a in alarms.annunciation(T0 + 1.0).alarms] == [own.name]
    assert update(alarms, T0 + 2.0, "pump_lost") == []  # this run's alarm goes on


def test_an_earlier_patients_alarm_is_cleared_at_once_not_resumed():
    alarms = manager()
    earlier = CarriedAlarm("boot1-refractory", "refractory", Priority.HIGH, "earlier", 1.7e9,
                           condition_active=False, earlier_patient=True)  # fmt: skip

    (cleared,) = alarms.carry(T0, [earlier], WINDOW_S)

    assert (cleared.transition, cleared.alarm_id) == (Transition.CLEARED, "boot1-refractory")
    assert "new admission" in cleared.message
    assert update(alarms, T0 + WINDOW_S) == []  # neither resumed nor latched later


def test_every_raise_has_an_id_of_its_own_and_keeps_it_until_cleared():
    alarms = manager()
    alarms.id_prefix = "run-"
    (first,) = update(alarms, T0, "refractory")
    (acknowledged,) = alarms.acknowledge(T0 + 1.0)
    (cleared,) = update(alarms, T0 + 2.0)
    (second,) = update(alarms, T0 + 3.0, "refractory")
    assert first.alarm_id == acknowledged.alarm_id == cleared.alarm_id == "run-1"
    assert second.alarm_id == "run-2"


# ---------------------------------------------------- words worked out only when read
def test_a_conditions_words_given_as_a_function_are_worked_out_only_when_read() -> None:
    """A standing condition is re-stated at every evaluation; its words cost only when a
    change is logged or the alarm is shown, and then once."""
    calls: list[float] = []

    def words_at(t_s: float) -> Condition:
        return Condition(True, lambda: calls.append(t_s) or f"MAP low at {t_s:g} s")

    alarms = manager()
    for k in range(int(DELAY_S)):
        alarms.update(T0 + k, {"hypotension": words_at(T0 + k)})
    assert calls == []  # pending: nothing said yet
    (raised,) = alarms.update(T0 + DELAY_S, {"hypotension": words_at(T0 + DELAY_S)})
    assert raised.message == f"MAP low at {T0 + DELAY_S:g} s" and len(calls) == 1
    for k in range(1, 30):
        alarms.update(T0 + DELAY_S + k, {"hypotension": words_at(T0 + DELAY_S + k)})
    assert len(calls) == 1  # standing: re-stated, not worked out
    (alarm,) = alarms.annunciation(T0 + DELAY_S + 29).alarms
    assert alarm.message == f"MAP low at {T0 + DELAY_S + 29:g} s"  # the latest words
    alarms.annunciation(T0 + DELAY_S + 29)
    assert len(calls) == 2
    (cleared,) = alarms.update(T0 + DELAY_S + 30, {})
    assert cleared.transition is Transition.CLEARED and cleared.message == alarm.message
