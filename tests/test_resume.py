"""A restart resumes from the log: an episode keeps its true start, a gap stays a gap,
and a standing alarm goes on as the same alarm.

The refractory scenario's episode opens at 5400 s and is confirmed at 7200 s.
The episode tests stop a monitor at 6000 s, in the middle of the pending
episode, and start another on the same log; the alarm tests stop one at
7400 s, with the refractory and hypotension alarms standing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from log_rows import rows

from devices.simulation.scenario_file import load_scenario
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.clinical.engine import RESUME_MARGIN_S, TimelineEntry
from monitor.clinical.refractory import RefractoryDetector
from monitor.clinical.settings import ClinicalSettings
from monitor.clinical.trends import TrendPoint, TrendSampler, replay
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

pytestmark = pytest.mark.usefixtures("packaged_config_only")

CONFIG = default_config()
SETTINGS = ClinicalSettings.from_config(CONFIG)
DRUGS = load_drug_table()
SCENARIO = load_scenario("septic-refractory")
STOP_S = 6000.0
UNTIL_S = 7300.0  # past the confirmation


def confirmed(timeline: list[TimelineEntry]) -> TimelineEntry:
    return next(e for e in timeline if e.kind == "episode" and e.name == "confirmed")


def bedside_run(directory: Path, start_s: float, until_s: float, scenario=SCENARIO, **kwargs):
    """One monitor process: open the log, run ``scenario`` from ``start_s``, close the log."""
    clock = ScenarioClock(start_s)
    log = BedsideLog(
        LogSettings.from_config(CONFIG, directory),
        software="test", config_hash="x", clocks=clock.log_clocks(**kwargs),
    )  # fmt: skip
    run = run_scenario(scenario, SETTINGS, DRUGS, clock=clock, log=log, until_s=until_s)
    log.close()
    return log.boot, run


def admit_new_patient(directory: Path, at_s: float) -> None:
    """``monitor patient new`` between two monitor runs, at scenario time ``at_s``."""
    log = BedsideLog(
        LogSettings.from_config(CONFIG, directory), software="test", config_hash="x",
        clocks=ScenarioClock(at_s).log_clocks(),
    )  # fmt: skip
    log.new_admission(70.0, by="test")
    log.close()


def copy_log(source: Path, target: Path) -> Path:
    for f in source.iterdir():
        shutil.copy2(f, target / f.name)
    return target


@pytest.fixture(scope="module")
def uninterrupted() -> TimelineEntry:
    return confirmed(run_scenario(SCENARIO, SETTINGS, DRUGS, until_s=UNTIL_S).timeline)


@pytest.fixture(scope="module")
def first_half(tmp_path_factory) -> Path:
    """The log of a monitor that ran the first 6000 s and was stopped."""
    directory = tmp_path_factory.mktemp("first-half")
    bedside_run(directory, 0.0, STOP_S)
    return directory


@pytest.fixture
def log_dir(first_half, tmp_path) -> Path:
    return copy_log(first_half, tmp_path)


def test_an_episode_that_began_before_a_restart_keeps_its_true_start(log_dir, uninterrupted):
    boot, run = bedside_run(log_dir, STOP_S, UNTIL_S)

    resumed = confirmed(run.timeline)
    start_on_admission = boot.origin_s + resumed.evidence["episode_start_s"]
    assert start_on_admission == uninterrupted.evidence["episode_start_s"] == 5400.0
    assert boot.origin_s + resumed.t_s == uninterrupted.t_s == 7200.0
    alarm = next(e for e in run.timeline if e.name == "refractory_hypotension")
    assert alarm.kind == "raised" and alarm.t_s == resumed.t_s


def test_a_gap_longer_than_the_bridge_discards_the_pending_episode(log_dir, uninterrupted):
    # The monitor is off for ten minutes: the criteria cannot be shown to hold.
    boot, run = bedside_run(log_dir, STOP_S + 600.0, UNTIL_S + 1800.0)

    assert boot.gap_s == pytest.approx(600.0, abs=5.0) and boot.gap_exact
    discarded = [e for e in run.timeline if e.kind == "episode" and e.name == "discarded"]
    assert len(discarded) == 1 and discarded[0].t_s < 0.0  # it happened during the gap
    assert boot.origin_s + confirmed(run.timeline).t_s > uninterrupted.t_s + 600.0


def test_a_new_patient_is_not_resumed(log_dir):
    admit_new_patient(log_dir, STOP_S)

    boot, run = bedside_run(log_dir, STOP_S, STOP_S + 120.0)

    assert boot.resumed_from is None and boot.origin_s == 0.0
    opened = [e for e in run.timeline if e.kind == "episode" and e.name == "opened"]
    assert opened and opened[0].t_s >= 0.0  # a fresh start, not the last patient's episode


# ------------------------------------------------------------ standing alarms
ALARMS_STANDING_S = 7400.0


@pytest.fixture(scope="module")
def alarms_standing(tmp_path_factory) -> Path:
    """The log of a monitor stopped with the refractory and hypotension alarms standing."""
    directory = tmp_path_factory.mktemp("alarms-standing")
    bedside_run(directory, 0.0, ALARMS_STANDING_S)
    return directory


def alarm_rows(directory: Path) -> list[tuple]:
    return rows(
        directory / DATABASE_NAME,
        "SELECT boot, name, transition, alarm_id FROM alarms WHERE name IN "
        "('refractory_hypotension', 'hypotension') ORDER BY id",
    )


def test_a_standing_alarm_goes_on_after_every_restart_as_the_same_alarm(alarms_standing, tmp_path):
    copy_log(alarms_standing, tmp_path)
    runs = [
        bedside_run(tmp_path, start_s, start_s + 100.0)[1]
        for start_s in (ALARMS_STANDING_S, ALARMS_STANDING_S + 100.0, ALARMS_STANDING_S + 200.0)
    ]

    rows = alarm_rows(tmp_path)
    raised = {name: alarm_id for _, name, transition, alarm_id in rows if transition == "raised"}
    assert set(raised) == {"refractory_hypotension", "hypotension"}  # once each, before
    assert all(boot == 1 for boot, _, transition, _ in rows if transition == "raised")
    for boot in (2, 3, 4):
        resumed = {name: alarm_id for b, name, transition, alarm_id in rows
                   if b == boot and transition == "resumed"}  # fmt: skip
        assert resumed == raised  # the same alarms, by identity
    for run in runs:
        assert not [e for e in run.timeline if e.kind == "raised" and e.name in raised]
        refractory = next(e for e in run.timeline if e.name == "refractory_hypotension")
        assert (refractory.kind, refractory.t_s) == ("resumed", 0.0)  # its episode resumed


def test_an_alarm_carried_into_a_boot_that_stopped_before_finding_it_is_carried_again(
    alarms_standing, tmp_path
):
    copy_log(alarms_standing, tmp_path)
    short = bedside_run(tmp_path, ALARMS_STANDING_S, ALARMS_STANDING_S + 10.0)[1]
    assert not [e for e in short.timeline if e.name == "hypotension"]  # its MAP not judged yet

    later = bedside_run(tmp_path, ALARMS_STANDING_S + 10.0, ALARMS_STANDING_S + 110.0)[1]

    (hypotension,) = [e for e in later.timeline if e.name == "hypotension"]
    first_raise = next(r for r in alarm_rows(tmp_path) if r[1] == "hypotension")
    assert hypotension.kind == "resumed" and hypotension.alarm.alarm_id == first_raise[3]


def test_a_standing_alarm_whose_cause_is_gone_after_the_restart_is_cleared_not_left_standing(
    alarms_standing, tmp_path
):
    """The restarted monitor finds a MAP of 72 mmHg: hypotension is over, unseen."""
    copy_log(alarms_standing, tmp_path)
    recovered = load_scenario("responsive-norepinephrine")
    boot, run = bedside_run(tmp_path, 3600.0, 3700.0, scenario=recovered)

    changes = {e.name: e for e in run.timeline if e.alarm is not None}
    window_s = SETTINGS.detector.map_window_s + RESUME_MARGIN_S
    hypotension, refractory = changes["hypotension"], changes["refractory_hypotension"]
    assert (hypotension.kind, hypotension.t_s) == ("cleared", window_s)
    assert "not found again" in hypotension.message
    # The refractory episode itself resumes from the log, and ends by the detector's rules.
    assert (refractory.kind, refractory.t_s) == ("resumed", 0.0)
    first_raise = {r[1]: r[3] for r in alarm_rows(tmp_path) if r[2] == "raised"}
    assert hypotension.alarm.alarm_id == first_raise["hypotension"]


def test_the_alarms_of_an_earlier_patient_end_when_the_next_boot_starts(alarms_standing, tmp_path):
    copy_log(alarms_standing, tmp_path)
    admit_new_patient(tmp_path, ALARMS_STANDING_S)

    _, run = bedside_run(tmp_path, ALARMS_STANDING_S, ALARMS_STANDING_S + 5.0)

    ended = {e.name: e for e in run.timeline if e.alarm is not None and e.t_s == 0.0}
    first_raise = {r[1]: r[3] for r in alarm_rows(tmp_path) if r[2] == "raised"}
    for name, alarm_id in first_raise.items():
        assert ended[name].kind == "cleared" and ended[name].alarm.alarm_id == alarm_id
        assert "new admission" in ended[name].message


# --------------------------------------------------- replay, without a scenario
def detector_after(points: list[TrendPoint]) -> RefractoryDetector:
    detector = RefractoryDetector(SETTINGS.detector)
    replay(detector, points, points[-1].t_s, 0.0)
    return detector


def test_the_sampler_keeps_every_moment_the_episode_rules_look_at():
    """Replaying only the sampled points rebuilds the same episode as every evaluation."""
    d = SETTINGS.detector
    full = RefractoryDetector(d)
    sampler = TrendSampler(d, interval_s=5.0)
    kept = []
    # MAP drifts across the target and back; NEE crosses the threshold in between.
    for i in range(0, 4000):
        t = -4000.0 + i
        map_mmhg = 66.0 - 3.0 * ((i // 700) % 2) - 0.001 * i
        nee = 0.2 if i < 900 else 0.31
        obs = TrendPoint(t, map_mmhg, None, None, None, 1.0, 0.0, nee, False, "x").observation()
        full.update(obs)
        point = sampler.sample(obs, "x")
        if point is not None:
            kept.append(point)
    rebuilt = RefractoryDetector(d)
    for p in kept:
        rebuilt.update(p.observation())
    assert len(kept) < 4000 / 4
    assert (rebuilt.phase, rebuilt.episode_start_s) == (full.phase, full.episode_start_s)
    assert rebuilt.nee_high_for_s(0.0) == full.nee_high_for_s(0.0)


def test_a_gap_is_insufficient_signal_not_the_last_values_carried_on():
    low = [TrendPoint(-1000.0 + 5 * i, 58.0, None, None, None, 1.0, 0.0, 0.4, False, "x")
           for i in range(10)]  # fmt: skip
    detector = detector_after(low)  # data end at -955 s: a gap of 955 s follows
    assert detector.episode_start_s is None  # discarded after the 5-minute bridge
