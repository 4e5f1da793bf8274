"""The bedside: every alarm is on the disk before any output shows it; log trouble is an alarm."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devices.simulation.scenario_file import load_scenario
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.alarm_outputs.sink import AlarmSink
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.bedside.chain import Bedside
from monitor.clinical.alarm_types import AlarmTransition
from monitor.clinical.engine import EVALUATE_EVERY_S
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

pytestmark = pytest.mark.usefixtures("packaged_config_only")

CONFIG = default_config()
SETTINGS = ClinicalSettings.from_config(CONFIG)
DRUGS = load_drug_table()


class SpySink(AlarmSink):
    """At each delivery, looks in the database, on a connection of its own, for that alarm."""

    name = "spy"

    def __init__(self, database: Path) -> None:
        self.database = database
        self.seen: list[tuple[str, str, float, bool]] = []

    def deliver(self, transition: AlarmTransition) -> None:
        conn = sqlite3.connect(self.database)
        try:
            (count,) = conn.execute(
                "SELECT count(*) FROM alarms WHERE name = ? AND transition = ? AND stream_s = ?",
                (transition.name, transition.transition.value, transition.t_s),
            ).fetchone()
        finally:
            conn.close()
        self.seen.append((transition.name, transition.transition.value, transition.t_s, count > 0))


def run_with_log(directory: Path, scenario: str, until_s: float, outputs=None):
    clock = ScenarioClock()
    log = BedsideLog(
        LogSettings.from_config(CONFIG, directory),
        software="test", config_hash="x", clocks=clock.log_clocks(),
    )  # fmt: skip
    run = run_scenario(
        load_scenario(scenario), SETTINGS, DRUGS, clock=clock, log=log, outputs=outputs,
        until_s=until_s,
    )  # fmt: skip
    return log, run


def test_each_alarm_is_committed_before_any_output_is_called(tmp_path):
    spy = SpySink(tmp_path / DATABASE_NAME)
    failures: list[str] = []
    outputs = SinkFanout([spy], on_failure=lambda sink, message: failures.append(message))
    log, run = run_with_log(tmp_path, "loss-of-pulse", 700.0, outputs)
    outputs.close()
    log.close()

    delivered = [e for e in run.timeline if e.alarm is not None]
    assert any(e.name == "no_pulse" and e.kind == "raised" for e in delivered)
    assert len(spy.seen) == len(delivered)
    assert all(found for *_, found in spy.seen), [s for s in spy.seen if not s[3]]
    assert failures == []


def test_the_log_holds_the_timeline_trends_and_pump_changes(tmp_path):
    log, run = run_with_log(tmp_path, "septic-refractory", 1800.0)
    log.close()
    conn = sqlite3.connect(tmp_path / DATABASE_NAME)
    alarms = conn.execute("SELECT stream_s, name, transition FROM alarms ORDER BY id").fetchall()
    states = conn.execute("SELECT stream_s, kind, name FROM states").fetchall()
    trends = conn.execute("SELECT stream_s FROM trends ORDER BY stream_s").fetchall()
    pumps = conn.execute("SELECT stream_s, drug, rate_ml_h FROM pump_events").fetchall()
    conn.close()

    assert alarms == [(e.t_s, e.name, e.kind) for e in run.timeline if e.alarm is not None]
    assert states == [(e.t_s, e.kind, e.name) for e in run.timeline if e.alarm is None]
    gaps = [b[0] - a[0] for a, b in zip(trends, trends[1:], strict=False)]
    # A point every 5 s, taken at the first evaluation (at least one a second) after that.
    assert len(trends) >= 1800 / 6 and max(gaps) <= 5.0 + EVALUATE_EVERY_S
    # Pumps report every 2 s; only changes are kept.
    assert 0 < len(pumps) < 1800 / 2 / 4


def test_a_log_that_cannot_be_opened_is_a_technical_alarm_and_monitoring_goes_on():
    pipeline = MonitorPipeline(SETTINGS, 250.0, 70.0)
    bedside = Bedside(pipeline, None, log_unavailable="cannot create the log directory /x")
    entries = bedside.start()
    raised = [e for e in entries if e.kind == "raised"]
    assert [(e.name, e.priority) for e in raised] == [("log_failed", "medium")]
    assert "cannot create the log directory /x" in raised[0].message
