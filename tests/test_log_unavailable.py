"""A log that is locked, small or lost never costs monitoring, the record or the weight.

Another process holding the write lock is a second SQLite connection in
``BEGIN EXCLUSIVE``: at start (the monitor retries with back-off and writes
what happened meanwhile once the log opens) and mid-run (the loop never
waits on it; the record is kept in memory and written in order afterwards).
Limits are generous: the point is behaviour, the figures are in
bench/log_write_rate.py.
"""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path

import pytest
from log_rows import rows

from devices.simulation.scenario_file import load_scenario
from devices.simulation.simulator import ScenarioPlayer, play
from devices.simulation.virtual_ports import VirtualPort
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.bedside.demo import demo_config
from monitor.bedside.live import LiveMonitor
from monitor.bedside.view import BedsideView
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.edge.input_items import InputItem
from monitor.log.admission_file import ADMISSION_FILE
from monitor.log.outside import start_admission
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

pytestmark = pytest.mark.usefixtures("packaged_config_only")

CONFIG = default_config()
SETTINGS = ClinicalSettings.from_config(CONFIG)
DRUGS = load_drug_table()
SCENARIO = load_scenario("loss-of-pulse")


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's view of the log: a connection holding its write lock."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def logged_timeline(db: Path) -> tuple[list[tuple], list[tuple]]:
    alarms = rows(db, "SELECT stream_s, name, transition FROM alarms ORDER BY id")
    states = rows(db, "SELECT stream_s, kind, name FROM states ORDER BY rowid")
    return alarms, states


class RecordingScreen:
    """What the bedside showed, frame by frame, while the log was (not) there."""

    def __init__(self, monitor_ref: list[LiveMonitor]) -> None:
        self.monitor_ref = monitor_ref
        self.without_log: list[BedsideView] = []

    def show(self, view: Callable[[], BedsideView], now: float) -> list[str]:
        if self.monitor_ref[0].log is None:
            self.without_log.append(view())
        return []


def corrupt(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(3996)
    db.write_bytes(bytes(data))


# ----------------------------------------------------------- locked at start
def test_a_log_locked_at_start_is_retried_and_then_takes_every_alarm_raised_meanwhile(tmp_path):
    log_dir = tmp_path / "log"
    start_admission(log_dir, 80.0, by="nurse A")  # the log, and the admission file beside it
    db = log_dir / DATABASE_NAME
    holder = hold_write_lock(db)
    player = ScenarioPlayer(SCENARIO)
    ports = {device: VirtualPort(device) for device in player.devices}
    sim_stop = threading.Event()
    seen = []
    try:
        monitor = LiveMonitor(
            demo_config(CONFIG, SCENARIO, ports, log_dir), alarm_stream=io.StringIO(), by="test"
        )
        assert monitor.log is None  # locked: monitoring starts without it...
        assert monitor.bedside.engine.nee.weight_kg == 80.0  # ...with the admission file's weight
        screen = RecordingScreen([monitor])
        simulator = threading.Thread(
            target=play, args=(player, ports),
            kwargs={"speed": 20.0, "stop": sim_stop, "tick_s": 0.5 / 20.0}, daemon=True,
        )  # fmt: skip
        released = threading.Timer(2.0, holder.commit)  # the other process lets go

        def on_entries(entries):
            seen.extend(entries)
            if any(e.name == "log_failed" and e.kind == "cleared" for e in entries):
                monitor.stop_requested.set()  # the log opened and took over

        def start():
            simulator.start()
            released.start()

        watchdog = threading.Timer(90.0, monitor.stop_requested.set)  # never hangs
        watchdog.start()
        try:
            monitor.run(screen, on_entries=on_entries, on_connected=start)
        finally:
            watchdog.cancel()
            released.cancel()
    finally:
        sim_stop.set()
        for port in ports.values():
            port.close()
        holder.close()

    raised = [e for e in seen if e.name == "log_failed" and e.kind == "raised"]
    assert raised and "log locked by another process, retrying in 1 s" in raised[0].message
    shown = [a.message for v in screen.without_log for a in v.alarms if a.name == "log_failed"]
    assert any("log locked by another process, retrying in" in m for m in shown), shown[-3:]
    assert any(v.nee is not None for v in screen.without_log)  # the weight made NEE known
    assert any(e.name == "log_failed" and e.kind == "cleared" for e in seen)

    alarms, states = logged_timeline(db)
    assert alarms[-len(seen_alarms(seen)) :] == seen_alarms(seen)  # all of them, in order
    assert states[-len(seen_states(seen)) :] == seen_states(seen)
    [(message,)] = rows(db, "SELECT message FROM events WHERE kind = 'log_unavailable'")
    assert (
        message.startswith("log unavailable from ") and "log locked by another process" in message
    )
    late = rows(db, "SELECT message FROM events WHERE message LIKE 'log opened % after%'")
    assert len(late) == 1
    assert rows(db, "SELECT a.weight_kg FROM boots b JOIN admissions a ON a.id = b.admission "
                    "ORDER BY b.id DESC LIMIT 1") == [(80.0,)]  # fmt: skip


def seen_alarms(entries) -> list[tuple]:
    return [(e.t_s, e.name, e.kind) for e in entries if e.alarm is not None]


def seen_states(entries) -> list[tuple]:
    return [(e.t_s, e.kind, e.name) for e in entries if e.alarm is None]


# ------------------------------------------------------------- locked mid-run
def test_a_lock_held_mid_run_never_stalls_the_loop_and_every_alarm_change_reaches_the_log(
    tmp_path,
):
    clock = ScenarioClock()
    log = BedsideLog(
        LogSettings.from_config(CONFIG, tmp_path), software="test", config_hash="x",
        clocks=clock.log_clocks(),
    )  # fmt: skip
    db = tmp_path / DATABASE_NAME
    lock_from_s, lock_to_s = 590.0, 840.0  # no_pulse is raised and ends in between
    state = {"holder": None, "last": None, "stall": 0.0, "held_s": 0.0, "problems": {}}

    def on_item(item: InputItem) -> None:
        now = time.monotonic()
        if state["holder"] is not None and state["last"] is not None:
            state["stall"] = max(state["stall"], now - state["last"])
        state["last"] = now
        t_s = clock.now_s  # the scenario's time, this run's stream time
        if state["holder"] is None and lock_from_s <= t_s < lock_to_s:
            state["holder"], state["since"] = hold_write_lock(db), now
        elif state["holder"] and t_s >= lock_to_s:
            state["problems"] = log.problems()
            state["holder"].commit()
            state["holder"].close()
            state["holder"], state["held_s"] = False, now - state["since"]

    run = run_scenario(SCENARIO, SETTINGS, DRUGS, clock=clock, log=log, until_s=1200.0,
                       on_item=on_item)  # fmt: skip
    log.close("finished", 1200.0)

    assert state["holder"] is False and state["held_s"] > 0.0
    assert state["stall"] < 1.0  # the loop went on while locked (a 5 s busy wait before)
    assert "log locked by another process" in state["problems"]["record"]
    during = [e for e in run.timeline if lock_from_s <= e.t_s < lock_to_s and e.alarm]
    assert {("no_pulse", "raised"), ("no_pulse", "condition_ended")} <= {
        (e.name, e.kind) for e in during
    }
    alarms, states = logged_timeline(db)
    assert alarms == seen_alarms(run.timeline)  # every alarm change, in order
    assert states == seen_states(run.timeline)
    [(message, detail)] = rows(
        db, "SELECT message, detail FROM events WHERE kind = 'log_unavailable'"
    )
    assert "log unavailable from " in message and "log locked by another process" in message
    assert '"duration_s":' in detail
    trends = rows(db, f"SELECT count(*) FROM trends WHERE stream_s BETWEEN {lock_from_s} AND "
                      f"{lock_to_s}")  # fmt: skip
    assert trends[0][0] > 0  # the bulk rows waited too, none lost


# ---------------------------------------------------------------- a small disk
Usage = namedtuple("Usage", "total used free")


def test_on_a_small_disk_the_reserve_is_sized_to_it_and_rows_are_written(tmp_path, caplog):
    total = 2 * 2**20

    def small_disk(path: Path) -> Usage:
        used = sum(p.stat().st_size for p in tmp_path.iterdir() if p.is_file())
        return Usage(total, used, total - used)

    clock = ScenarioClock()
    log = BedsideLog(
        LogSettings.from_config(CONFIG, tmp_path), software="test", config_hash="x",
        clocks=clock.log_clocks(), disk_usage=small_disk,
    )  # fmt: skip
    assert CONFIG.number("log.disk_reserve_mb") == 64.0  # more than the whole disk
    run = run_scenario(SCENARIO, SETTINGS, DRUGS, clock=clock, log=log, until_s=700.0)
    problems = log.problems()
    log.close()

    assert "full" not in problems
    db = tmp_path / DATABASE_NAME
    [(note,)] = rows(db, "SELECT message FROM events WHERE message LIKE 'log budget%'")
    assert "log.disk_reserve_mb = 64 MB is more than 5% of this 2.0 MB file system" in note
    assert "kept free on the disk: 1.0 MB" in note
    assert any("log budget" in r.message for r in caplog.records if r.levelname == "WARNING")
    assert logged_timeline(db)[0] == seen_alarms(run.timeline) != []
    assert rows(db, "SELECT count(*) > 100 FROM trends") == [(1,)]


# ------------------------------------------------------------ the admission file
def test_a_log_moved_aside_is_seeded_from_the_admission_file_and_nee_is_known(tmp_path):
    log_dir = tmp_path / "log"
    start_admission(log_dir, 80.0, by="nurse A")
    corrupt(log_dir / DATABASE_NAME)
    ports = {device: VirtualPort(device) for device in ScenarioPlayer(SCENARIO).devices}
    try:
        monitor = LiveMonitor(
            demo_config(CONFIG, SCENARIO, ports, log_dir), alarm_stream=io.StringIO(), by="test"
        )
        assert monitor.log is not None
        monitor.bedside.close()
    finally:
        for port in ports.values():
            port.close()

    assert any("moved to" in n for n in monitor.log.boot.notes)
    assert monitor.bedside.engine.nee.weight_kg == 80.0  # NEE can be known: refractory can fire
    db = log_dir / DATABASE_NAME
    assert rows(db, "SELECT weight_kg, by FROM admissions") == [(80.0, "nurse A")]
    assert any("re-seeded from the admission file" in n for n in monitor.log.boot.notes)


@pytest.mark.parametrize(
    "text", ["{not json", '{"admission": 1, "utc": 0, "weight_kg": -3, "by": "x", "os_user": "y"}']
)
def test_a_bad_admission_file_is_a_warning_and_never_overrides_a_good_log(tmp_path, text, caplog):
    start_admission(tmp_path, 70.0, by="nurse B")
    (tmp_path / ADMISSION_FILE).write_text(text)
    log = BedsideLog(LogSettings.from_config(CONFIG, tmp_path), software="t", config_hash="x")
    log.close()

    assert log.boot.weight_kg == 70.0
    assert any("admission file" in n and "ignored" in n for n in log.boot.notes)
    assert any("ignored" in r.message for r in caplog.records)
    assert '"weight_kg": 70.0' in (tmp_path / ADMISSION_FILE).read_text()  # rewritten from the log


def test_without_a_log_or_admission_file_the_admission_is_started_as_before(tmp_path):
    log = BedsideLog(LogSettings.from_config(CONFIG, tmp_path), software="t", config_hash="x")
    log.close()
    assert log.boot.weight_kg is None
    assert any("started (no earlier admission)" in n for n in log.boot.notes)
