"""Specification of the scenario format: packaged scenarios load, and every mistake is named."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.infusion import rate_from_dose
from devices.protocols.pump import HEARTBEAT_S
from devices.readings import PumpState
from devices.simulation.scenario import (
    ALARM_NAMES,
    STATE_NAMES,
    Scenario,
    ScenarioError,
    trajectory_at,
    trajectory_values,
)
from devices.simulation.scenario_file import list_scenarios, load_scenario

PACKAGED = [
    "artifact-storm",
    "implausible-pump-report",
    "loss-of-pulse",
    "pump-silent",
    "responsive-norepinephrine",
    "septic-refractory",
]
# NEE factors of config/drugs.toml for the codes the packaged scenarios use.
NEE_FACTOR = {"NORAD": 1.0, "NOREPI": 1.0, "VASO": 2.5}

MINIMAL = """
[scenario]
name = "tiny"
title = "A tiny scenario"
duration = "00:10:00"
weight_kg = 70

[transducer]
sample_rate_hz = 250

[physiology]
heart_rate_bpm = 80
map_mmhg = [[0, 75], ["00:05:00", 60]]
pulse_pressure_mmhg = 40

[[pump]]
id = "P1"

[[infusion]]
pump = "P1"
channel = 1
drug = "NORAD"
concentration = 64
concentration_unit = "ug/mL"
dose_unit = "ug/kg/min"
steps = [{ at = 0, dose = 0.1 }, { at = "00:02:00", state = "paused" }]
"""


def write(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text))


def error_for(tmp_path: Path, text: str) -> ScenarioError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value), "the message must name the file"
    return caught.value


# -- packaged scenarios --------------------------------------------------------


def test_list_scenarios_lists_the_six_packaged_ones():
    assert list_scenarios() == PACKAGED


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_scenario_loads_with_expectations(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.source == f"builtin:{name}"
    assert scenario.title and scenario.description.strip() and scenario.expect.notes.strip()
    assert scenario.expect.alarms or scenario.expect.states
    for expectation in scenario.expect.alarms + scenario.expect.states:
        start, end = expectation.within_s
        assert 0.0 <= start <= end <= scenario.duration_s


def nee_at(scenario: Scenario, t_s: float) -> float:
    """NEE from the schedule, counting only running channels (enough for these scenarios)."""
    total = 0.0
    for infusion in scenario.infusions:
        steps = [s for s in infusion.steps if s.t_s <= t_s]
        if steps and steps[-1].state is PumpState.RUNNING:
            total += NEE_FACTOR[infusion.drug_code] * steps[-1].dose
    return total


def test_septic_refractory_window_follows_the_nee_crossing_plus_30_min():
    scenario = load_scenario("septic-refractory")
    times = np.arange(0.0, scenario.duration_s, 1.0)
    above = [t for t in times if nee_at(scenario, t) > 0.25]
    crossing = above[0]
    assert crossing == 5400.0  # 01:30:00, NE 0.20 -> 0.30
    assert trajectory_at(scenario.physiology.map_mmhg, crossing) < 65.0
    (refractory,) = [s for s in scenario.expect.states if s.name == "refractory"]
    assert refractory.within_s[0] <= crossing + 1800.0 <= refractory.within_s[1]
    # A reset at the end of the syringe swap would land outside the windows.
    (swap,) = [s for s in scenario.infusions[0].steps if s.state is PumpState.PAUSED]
    alarm = next(a for a in scenario.expect.alarms if a.name == "refractory_hypotension")
    assert swap.t_s + 60.0 + 1800.0 > max(refractory.within_s[1], alarm.within_s[1])


def test_responsive_norepinephrine_never_reaches_refractory_doses():
    scenario = load_scenario("responsive-norepinephrine")
    assert max(nee_at(scenario, s.t_s) for s in scenario.infusions[0].steps) < 0.25
    assert "refractory" in scenario.expect.never_states


def test_loss_of_pulse_steps_pulse_pressure_to_zero_at_ten_minutes():
    pp = load_scenario("loss-of-pulse").physiology.pulse_pressure_mmhg
    assert trajectory_at(pp, 599.9) == 42.0
    assert trajectory_at(pp, 600.0) == 0.0
    assert trajectory_at(pp, 780.0) == 42.0


def test_artifact_parameters_and_computed_durations():
    artifacts = load_scenario("artifact-storm").artifacts
    flush = artifacts[1]
    assert flush.kind == "fast_flush" and flush.duration_s == pytest.approx(0.04 + 2.0 + 1.0)
    garbage = [a for a in artifacts if a.kind == "garbage"]
    assert [a.params["bytes"] for a in garbage] == [200, 2000]
    assert all(a.duration_s == 0.0 for a in garbage)
    spikes = next(a for a in artifacts if a.kind == "spikes")
    assert dict(spikes.params) == {"height_mmhg": 310.0, "count": 5}
    with pytest.raises(TypeError):
        spikes.params["count"] = 6  # type: ignore[index]


def test_vocabularies_are_the_clinical_contract():
    assert {"refractory_hypotension", "implausible_dose", "transducer_restart"} <= set(ALARM_NAMES)
    assert len(ALARM_NAMES) == 16
    assert STATE_NAMES == (
        "normotensive",
        "hypotensive",
        "vasopressor_dependent",
        "refractory",
        "insufficient_signal",
        "no_pulse",
    )


# -- a file given by path --------------------------------------------------------


def test_minimal_file_resolves_defaults_and_steps(tmp_path):
    scenario = load_text(tmp_path, MINIMAL)
    assert scenario.source == str(tmp_path / "case.toml")
    assert scenario.seed == 0 and scenario.description == ""
    assert scenario.transducer.frame_samples == round(250 / 40)
    assert scenario.transducer.protocol == "binary"
    assert scenario.transducer.nano_mmhg_per_count == 10_000_000
    assert scenario.pumps[0].heartbeat_s == HEARTBEAT_S and scenario.pumps[0].silent == ()
    assert scenario.physiology.heart_rate_bpm == ((0.0, 80.0),)
    running, paused = scenario.infusions[0].steps
    assert running.state is PumpState.RUNNING
    assert running.rate_ml_h == pytest.approx(rate_from_dose(0.1, "ug/kg/min", 64, "ug/mL", 70))
    assert paused.state is PumpState.PAUSED
    assert (paused.rate_ml_h, paused.dose) == (running.rate_ml_h, running.dose)
    assert scenario.expect.alarms == () and scenario.expect.never_alarms == ()


def test_path_scenario_name_need_not_match_its_file(tmp_path):
    assert load_scenario(write(tmp_path, MINIMAL, "other.toml")).name == "tiny"


def test_rate_step_reports_the_dose_it_delivers(tmp_path):
    text = MINIMAL.replace("{ at = 0, dose = 0.1 }", "{ at = 0, rate_ml_h = 6.5625 }")
    step = load_text(tmp_path, text).infusions[0].steps[0]
    assert step.dose == pytest.approx(0.1)


def test_rate_only_infusion_has_no_dose(tmp_path):
    text = MINIMAL.replace('dose_unit = "ug/kg/min"\n', "").replace("dose = 0.1", "rate_ml_h = 5")
    infusion = load_text(tmp_path, text).infusions[0]
    assert infusion.dose_unit is None and infusion.steps[0].dose is None


def test_missing_weight_is_allowed_with_rate_only_pumps(tmp_path):
    text = (
        MINIMAL.replace("weight_kg = 70\n", "")
        .replace('dose_unit = "ug/kg/min"\n', "")
        .replace("dose = 0.1", "rate_ml_h = 5")
    )
    assert load_text(tmp_path, text).weight_kg is None


def test_unknown_units_need_both_dose_and_rate(tmp_path):
    text = MINIMAL.replace('"ug/kg/min"', '"mcg/kg/min"')
    error = error_for(tmp_path, text)
    assert "infusion[1].steps[1].dose" in str(error) and "mcg/kg/min" in str(error)
    both = text.replace("dose = 0.1", "dose = 0.1, rate_ml_h = 6")
    assert load_text(tmp_path, both).infusions[0].steps[0].rate_ml_h == 6.0


def test_dose_and_rate_that_disagree_are_an_error(tmp_path):
    error = error_for(tmp_path, MINIMAL.replace("dose = 0.1", "dose = 0.1, rate_ml_h = 8"))
    assert "infusion[1].steps[1].rate_ml_h" in str(error) and "6.562" in str(error)


def test_scenario_error_survives_pickling(tmp_path):
    error = error_for(tmp_path, MINIMAL.replace("seed", "x").replace("weight_kg", "wieght_kg"))
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.key == error.key


# -- every class of mistake names the file, the key path and what is allowed ----


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        ("duration =", "duraton =", "scenario.duraton", "unknown key"),
        ('id = "P1"', 'id = "P1"\nheartbeat = 2', "pump[1].heartbeat", "heartbeat_s"),
        ("{ at = 0, dose = 0.1 }", "{ at = 0, doze = 0.1 }", "infusion[1].steps[1].doze", "dose"),
        ("[transducer]", "[transduser]", "transduser", "transducer"),
        ('duration = "00:10:00"', 'duration = "1:75:00"', "scenario.duration", "HH:MM:SS"),
        ('duration = "00:10:00"', 'duration = "ten minutes"', "scenario.duration", "HH:MM:SS"),
        ('duration = "00:10:00"', "duration = -5", "scenario.duration", "0 or more"),
        ('duration = "00:10:00"', "duration = true", "scenario.duration", "boolean"),
        ('["00:05:00", 60]', '["00:11:00", 60]', "physiology.map_mmhg[2][1]", "after the end"),
        ("[[0, 75], [", '[["00:06:00", 75], [', "physiology.map_mmhg[2]", "sorted"),
        ("heart_rate_bpm = 80", "heart_rate_bpm = 300", "physiology.heart_rate_bpm", "250"),
        ("pulse_pressure_mmhg = 40", "pulse_pressure_mmhg = -1", "physiology.pulse", "0 to 150"),
        ('title = "A tiny scenario"\n', "", "scenario.title", "required"),
        ("sample_rate_hz = 250", "sample_rate_hz = 50", "transducer.sample_rate_hz", "100 to 1000"),
        ('dose_unit = "ug/kg/min"\n', "", "infusion[1].steps[1].dose", "dose_unit"),
        ("weight_kg = 70\n", "", "infusion[1].steps[1].dose", "weight_kg"),
        ('pump = "P1"', 'pump = "P2"', "infusion[1].pump", "P1"),
        ("channel = 1", "channel = 17", "infusion[1].channel", "1 to 16"),
        (
            '{ at = "00:02:00", state = "paused" }',
            '{ at = 0, state = "paused" }',
            "infusion[1].steps[2].at",
            "sorted",
        ),
        ('state = "paused"', 'state = "stopped"', "infusion[1].steps[2].state", "occluded"),
        (
            '{ at = "00:02:00", state = "paused" }',
            '{ at = "00:02:00" }',
            "infusion[1].steps[2]",
            "state, dose or rate_ml_h",
        ),
    ],
)
def test_mistake_is_named_with_its_key_path(tmp_path, old, new, key, says):
    assert MINIMAL.count(old) == 1
    error = error_for(tmp_path, MINIMAL.replace(old, new))
    assert key in str(error)
    assert says in str(error)


def test_per_kg_rate_without_weight_names_the_dose_unit(tmp_path):
    text = MINIMAL.replace("weight_kg = 70\n", "").replace("dose = 0.1", "rate_ml_h = 5")
    error = error_for(tmp_path, text)
    assert error.key == "infusion[1].dose_unit" and "weight_kg" in error.problem


def test_two_infusions_on_one_channel(tmp_path):
    second = MINIMAL[MINIMAL.index("[[infusion]]") :]
    error = error_for(tmp_path, MINIMAL + second)
    assert error.key == "infusion[2].channel" and "infusion[1]" in error.problem


@pytest.mark.parametrize(
    ("artifact", "key", "says"),
    [
        ('kind = "smudge"\nat = 10\nduration_s = 1', "artifact[1].kind", "fast_flush"),
        ('kind = "damping"\nat = 10\nduration_s = 5\nfactr = 0.3', "artifact[1].factr", "factor"),
        ('kind = "damping"\nat = 10\nduration_s = 5\nfactor = 2', "artifact[1].factor", "(0, 1]"),
        ('kind = "damping"\nat = 10', "artifact[1].duration_s", "required"),
        ('kind = "fast_flush"\nat = 10\nduration_s = 3', "artifact[1].duration_s", "unknown"),
        ('kind = "fast_flush"\nat = 10\nringing_s = 0.01', "artifact[1].ringing_s", "die out"),
        ('kind = "clipping"\nat = 10\nduration_s = 5', "artifact[1].rail_mmhg", "required"),
        ('kind = "zeroing"\nat = 10\nduration_s = 5\nseed = 1.5', "artifact[1].seed", "integer"),
        ('kind = "garbage"\nat = 10\nbytes = 0', "artifact[1].bytes", "1 to"),
        ('kind = "dropout"\nat = "00:09:59"\nduration_s = 5', "artifact[1].at", "past the end"),
        ("at = 10\nduration_s = 5", "artifact[1].kind", "required"),
    ],
)
def test_artifact_mistakes(tmp_path, artifact, key, says):
    error = error_for(tmp_path, MINIMAL + f"\n[[artifact]]\n{artifact}\n")
    assert key in str(error)
    assert says in str(error)


def test_transducer_fault_needs_the_binary_protocol(tmp_path):
    text = MINIMAL.replace("sample_rate_hz = 250", 'sample_rate_hz = 250\nprotocol = "ascii"')
    error = error_for(
        tmp_path, text + '\n[[artifact]]\nkind = "transducer_fault"\nat = 1\nduration_s = 2\n'
    )
    assert error.key == "artifact[1].kind" and "ascii" in error.problem


def test_calibration_must_cover_the_transducer_range(tmp_path):
    text = MINIMAL.replace("sample_rate_hz = 250", "sample_rate_hz = 250\nzero_counts = 30000")
    assert "-50..300" in str(error_for(tmp_path, text))


@pytest.mark.parametrize(
    ("expect", "key", "says"),
    [
        (
            '[[expect.alarm]]\nname = "hypotensoin"\nwithin = [0, 60]',
            "expect.alarm[1].name",
            "refractory_hypotension",
        ),
        (
            '[[expect.state]]\nname = "shock"\nwithin = [0, 60]',
            "expect.state[1].name",
            "vasopressor_dependent",
        ),
        (
            '[expect]\nnever_alarms = ["no_pulse", "pulse_lost"]',
            "expect.never_alarms[2]",
            "no_pulse",
        ),
        (
            '[[expect.alarm]]\nname = "hypotension"\nwithin = [60, 0]',
            "expect.alarm[1].within",
            "before it starts",
        ),
        (
            '[[expect.alarm]]\nname = "hypotension"\nwithin = [0, "01:00:00"]',
            "expect.alarm[1].within[2]",
            "after the end",
        ),
        (
            '[expect]\nnever_alarms = ["hypotension"]\n[[expect.alarm]]\nname = "hypotension"\n'
            "within = [0, 60]",
            "expect.alarm[1].name",
            "never_alarms",
        ),
        ('[expect]\nnotez = ""', "expect.notez", "notes"),
    ],
)
def test_expectation_mistakes(tmp_path, expect, key, says):
    error = error_for(tmp_path, MINIMAL + "\n" + expect + "\n")
    assert key in str(error)
    assert says in str(error)


def test_silent_periods_must_be_sorted_and_inside_the_scenario(tmp_path):
    for silent, key in [
        ('[["00:05:00", "00:04:00"]]', "pump[1].silent[1]"),
        ("[[10, 20], [15, 30]]", "pump[1].silent[2]"),
        ('[[10, "00:20:00"]]', "pump[1].silent[1][2]"),
    ]:
        text = MINIMAL.replace('id = "P1"', f'id = "P1"\nsilent = {silent}')
        assert key in str(error_for(tmp_path, text))


def test_toml_syntax_error_names_the_file(tmp_path):
    assert "not valid TOML" in str(error_for(tmp_path, MINIMAL + "\n[scenario\n"))


def test_unknown_packaged_name_lists_the_packaged_ones():
    with pytest.raises(ScenarioError, match="septic-refractory"):
        load_scenario("septic-refactory")


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nowhere.toml")


# -- times and trajectories ------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ('"04:00:00"', 14400.0),
        ('"01:30"', 90.0),  # MM:SS
        ('"00:00:05.5"', 5.5),
        ('"100:00:00"', 360000.0),
        ("90", 90.0),
        ("12.25", 12.25),
        ("00:02:30", 150.0),  # an unquoted TOML local time
    ],
)
def test_time_forms(tmp_path, written, seconds):
    text = (
        MINIMAL.replace('duration = "00:10:00"', f"duration = {written}")
        .replace('"00:05:00"', "1")
        .replace('"00:02:00"', "2")
    )
    assert load_text(tmp_path, text).duration_s == seconds


@pytest.mark.parametrize("written", ['"1:2:3:4"', '"00:60:00"', '"10:61"', '"1:xx:00"', '""'])
def test_bad_time_strings(tmp_path, written):
    text = MINIMAL.replace('duration = "00:10:00"', f"duration = {written}")
    assert "scenario.duration" in str(error_for(tmp_path, text))


KNOTS = ((10.0, 60.0), (20.0, 80.0), (20.0, 50.0), (40.0, 50.0), (50.0, 70.0))


def test_trajectory_interpolates_holds_and_steps():
    assert trajectory_at(KNOTS, -5.0) == 60.0
    assert trajectory_at(KNOTS, 10.0) == 60.0
    assert trajectory_at(KNOTS, 15.0) == pytest.approx(70.0)
    assert trajectory_at(KNOTS, 19.999) == pytest.approx(80.0, abs=0.01)
    assert trajectory_at(KNOTS, 20.0) == 50.0  # at a step the later knot holds
    assert trajectory_at(KNOTS, 45.0) == pytest.approx(60.0)
    assert trajectory_at(KNOTS, 50.0) == 70.0
    assert trajectory_at(KNOTS, 1e9) == 70.0
    assert trajectory_at(((0.0, 72.0),), 123.0) == 72.0


@given(st.lists(st.floats(-20.0, 80.0, allow_nan=False), min_size=1, max_size=50))
def test_vectorised_trajectory_matches_the_scalar_one(times):
    for knots in (KNOTS, ((5.0, 1.0),), ((0.0, 1.0), (0.0, 2.0))):
        expected = [trajectory_at(knots, t) for t in times]
        np.testing.assert_allclose(trajectory_values(knots, np.array(times)), expected)


def test_three_knots_at_one_time_are_an_error(tmp_path):
    text = MINIMAL.replace(
        'map_mmhg = [[0, 75], ["00:05:00", 60]]',
        "map_mmhg = [[0, 75], [60, 70], [60, 65], [60, 1]]",
    )
    assert "physiology.map_mmhg[4]" in str(error_for(tmp_path, text))


def test_durations_are_positive_and_bounded(tmp_path):
    for written in ("0", '"200:00:00"'):
        text = MINIMAL.replace('duration = "00:10:00"', f"duration = {written}")
        assert "scenario.duration" in str(error_for(tmp_path, text))
    assert math.isclose(load_scenario("septic-refractory").duration_s, 4 * 3600.0)
