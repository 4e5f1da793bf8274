"""Beds publishing to a real Mosquitto (TLS, passwords, ACL) and the central station's board.

Each bed is a real log (a scenario played through the monitor) forwarded by
the real ``Forwarder`` and ``MqttLink``; the station is the real
``CentralStation``. Faults: a wrong password, a bed writing into another
bed's topic, the broker stopped and restarted mid-stream, a slow consumer,
a rogue client sending garbage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from log_rows import rows
from mqtt_broker import TestBroker, free_port
from tmux_pane import TmuxPane

from monitor import core
from monitor.analysis.virtual_bench import ScenarioClock
from monitor.configuration.config import default_config
from monitor.configuration.network_settings import MqttSettings
from monitor.log.reader import LogReader, LogRow
from monitor.network.bed_messages import ActiveAlarms, BedIdentity
from monitor.network.central_station import CentralStation
from monitor.network.forwarder import Forwarder
from monitor.network.mqtt_link import encode
from monitor.network.publishing import NetworkPlan

from conftest import play_into_log

pytestmark = pytest.mark.usefixtures("packaged_config_only")
# `monitor run` refuses the pure-Python core (as in test_run.py); the compiled run covers it.
live_monitor = pytest.mark.skipif(
    os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0"),
    reason=f"{core.PURE_PYTHON_SWITCH} is set: the live monitor refuses",
)

RUN_DIR = Path(__file__).resolve().parent  # not the checkout: the installed package
UTC_AT_ZERO = time.time() - 3600.0  # an hour ago: inside the numerics backlog
SCENARIO = "artifact-storm"  # artifacts, zeroing, a disconnection: alarms raised and cleared


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> TestBroker:
    shared = TestBroker.from_environment()
    if shared is not None:
        yield shared
        return
    own = TestBroker.start_new(tmp_path_factory.mktemp("broker"))
    yield own
    own.stop()


@pytest.fixture
def private_broker(tmp_path) -> TestBroker:
    own = TestBroker.start_new(tmp_path / "broker")
    yield own
    try:
        own.stop()
    except (OSError, ValueError):
        pass  # already stopped by the test


def play(log_dir: Path, until_s: float, start_s: float = 0.0) -> None:
    """The scenario from ``start_s`` to ``until_s``, logged (a second call is a restart)."""
    play_into_log(log_dir, SCENARIO, ScenarioClock(start_s, utc_at_zero=UTC_AT_ZERO), until_s)


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> Path:
    """One bed's log, copied for every bed of a test."""
    directory = tmp_path_factory.mktemp("played")
    play(directory, 1300.0)
    return directory


def bed_log(played: Path, where: Path) -> Path:
    copy = where / "log"
    shutil.copytree(played, copy)
    return copy


def forwarder(
    broker: TestBroker, bed: str, log_dir: Path, where: Path, password: str | None = None
) -> Forwarder:
    config = default_config().with_overrides(broker.bed_config(bed, where, password), "test")
    (sender,) = NetworkPlan.from_config(config).forwarders(log_dir, "test")
    sender.start()
    return sender


def station_settings(broker: TestBroker, where: Path, user: str = "central") -> MqttSettings:
    overrides = {
        "mqtt.broker": broker.url,
        "mqtt.username": user,
        "mqtt.password_file": str(broker.password_file(user, where)),
        "mqtt.ca_file": str(broker.ca_file),
    }
    settings = MqttSettings.from_config(default_config().with_overrides(overrides, "test"))
    assert settings is not None
    return settings


class Watcher:
    """A central station that remembers every new alarm event it was handed."""

    def __init__(self, settings: MqttSettings, client_id: str, slow_s: float = 0.0) -> None:
        self.events: list[dict] = []
        self.slow_s = slow_s
        self.station = CentralStation(settings, client_id=client_id, on_alarm=self._alarm)
        self.station.start()
        wait_until(lambda: self.station.connected, what="the station subscribed")

    def _alarm(self, event, now) -> None:
        time.sleep(self.slow_s)
        self.events.append(event.payload)

    def tile(self, bed: str):
        return next((t for t in self.station.tiles() if t.bed == bed), None)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.1)


def logged_alarms(log_dir: Path) -> list:
    reader = LogReader(log_dir)
    try:
        return reader.rows(["alarm"])
    finally:
        reader.close()


def forwarded_everything(log_dir: Path) -> bool:
    """The bed's cursor has reached the last row of every kind it sends."""
    try:
        cursor = json.loads((log_dir / "forwarded-mqtt.json").read_text())["after"]
    except (OSError, ValueError):
        return False
    reader = LogReader(log_dir)
    try:
        last = {kind: max((r.rowid for r in reader.rows([kind])), default=0) for kind in cursor}
    finally:
        reader.close()
    return cursor == last


def alarm_ids(rows, log_dir: Path) -> set[str]:
    reader = LogReader(log_dir)
    try:
        log_id = reader.first_boot_uuid()
    finally:
        reader.close()
    return {f"{log_id}:alarms:{row.rowid}" for row in rows}


def test_several_beds_at_once_appear_on_the_central_station(broker, played, tmp_path):
    watcher = Watcher(station_settings(broker, tmp_path), f"central-{time.monotonic_ns()}")
    beds = ["bed01", "bed02", "bed03"]
    senders = []
    for bed in beds:
        (tmp_path / bed).mkdir()
        senders.append(forwarder(broker, bed, bed_log(played, tmp_path / bed), tmp_path / bed))
    try:
        alarms = logged_alarms(played)
        wait_until(
            lambda: sum(e["bed"] in beds for e in watcher.events) >= 3 * len(alarms),
            what="every bed's alarm events",
        )
        wait_until(
            lambda: all(forwarded_everything(tmp_path / b / "log") for b in beds),
            what="every bed's log sent",
        )
        reader = LogReader(played)
        last_trend = reader.rows(["trend"])[-1]
        reader.close()
        expected = ActiveAlarms()
        for row in alarms:
            expected.apply(row)
        wait_until(lambda: all(watcher.tile(b).state == last_trend.name for b in beds))
        for bed in beds:
            tile = watcher.tile(bed)
            assert tile.online is True
            assert tile.map_mmhg == pytest.approx(last_trend.detail["map_mmhg"], abs=1e-3)
            assert {a["alarm"] for a in tile.alarms} == set(expected.standing)
            events = [e for e in watcher.events if e["bed"] == bed]
            assert [e["transition"] for e in events] == [r.detail["transition"] for r in alarms]
            assert [e["alarm"] for e in events] == [r.name for r in alarms]
        # A station started now rebuilds the same board from the retained messages alone.
        late = Watcher(station_settings(broker, tmp_path), f"central-late-{time.monotonic_ns()}")
        wait_until(lambda: all(late.tile(b) is not None for b in beds), what="the rebuilt board")
        wait_until(lambda: all(late.tile(b).alarms == watcher.tile(b).alarms for b in beds))
        for bed in beds:
            rebuilt, seen = late.tile(bed), watcher.tile(bed)
            assert (rebuilt.map_mmhg, rebuilt.nee, rebuilt.state, rebuilt.online) == (
                seen.map_mmhg,
                seen.nee,
                seen.state,
                seen.online,
            )
        late.station.stop()
    finally:
        for sender in senders:
            sender.stop()
        watcher.station.stop()


def test_a_wrong_password_is_refused_and_said(broker, played, tmp_path):
    sender = forwarder(broker, "bed04", bed_log(played, tmp_path), tmp_path, password="wrong")
    try:
        wait_until(lambda: sender.problem and "refused" in sender.problem, what="a refusal")
        assert "not authori" in sender.problem.lower() or "bad user" in sender.problem.lower()
        assert sender.sent == 0
    finally:
        sender.stop()


def test_a_bed_cannot_write_into_another_beds_topic(broker, tmp_path):
    watcher = Watcher(station_settings(broker, tmp_path), f"central-{time.monotonic_ns()}")
    intruder = broker.raw_client("bed05", "bed05-intruder")
    try:
        status = {"v": 1, "id": "x", "online": True, "unit": "icu"}
        forged = intruder.publish(
            "monitor/icu/bed06/status", json.dumps(status | {"bed": "bed06"}), qos=1, retain=True
        )
        own = intruder.publish(
            "monitor/icu/bed05/status", json.dumps(status | {"bed": "bed05"}), qos=1, retain=True
        )
        forged.wait_for_publish(10)
        own.wait_for_publish(10)
        wait_until(lambda: watcher.tile("bed05") is not None, what="the bed's own topic")
        time.sleep(0.5)
        assert watcher.tile("bed06") is None  # the broker dropped it: not allowed
    finally:
        intruder.publish("monitor/icu/bed05/status", b"", qos=1, retain=True).wait_for_publish(5)
        intruder.loop_stop()
        intruder.disconnect()
        watcher.station.stop()


def test_a_broker_restart_loses_no_alarm_and_repeats_none_as_new(private_broker, tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    play(log_dir, 600.0)
    watcher = Watcher(station_settings(private_broker, tmp_path), "central-restart")
    sender = forwarder(private_broker, "bed07", log_dir, tmp_path)
    try:
        first = logged_alarms(log_dir)
        wait_until(lambda: len(watcher.events) >= len(first), what="the first alarms")
        private_broker.stop()
        play(log_dir, 1300.0, start_s=600.0)  # the bed goes on while the broker is down
        private_broker.start()
        every = logged_alarms(log_dir)
        assert len(every) > len(first)
        wait_until(lambda: len(watcher.events) >= len(every), 60.0, "the alarms from the outage")
        time.sleep(1.0)  # any repeat would arrive now
        ids = [e["id"] for e in watcher.events]
        assert sorted(ids) == sorted(alarm_ids(every, log_dir))  # each once, none missing
    finally:
        sender.stop()
        watcher.station.stop()


def test_a_slow_consumer_does_not_hold_the_bed_back(broker, played, tmp_path):
    watcher = Watcher(
        station_settings(broker, tmp_path), f"central-slow-{time.monotonic_ns()}", slow_s=0.2
    )
    sender = forwarder(broker, "bed08", bed_log(played, tmp_path), tmp_path)
    try:
        alarms = logged_alarms(played)
        wait_until(lambda: forwarded_everything(tmp_path / "log"), what="the bed sent all")
        wait_until(
            lambda: sum(e["bed"] == "bed08" for e in watcher.events) >= len(alarms),
            60.0,
            "the slow consumer",
        )
        assert [e["id"] for e in watcher.events if e["bed"] == "bed08"] == sorted(
            alarm_ids(alarms, played), key=lambda i: int(i.rsplit(":", 1)[1])
        )
    finally:
        sender.stop()
        watcher.station.stop()


def test_a_rogue_clients_garbage_is_ignored_and_counted(broker, tmp_path):
    watcher = Watcher(station_settings(broker, tmp_path), f"central-{time.monotonic_ns()}")
    rogue = broker.raw_client("rogue", "rogue")
    try:
        garbage = [
            ("monitor/icu/rogue/numerics", b"\xff\xfe not json"),
            ("monitor/icu/rogue/numerics", b'{"v": 1, "unit": "icu", "bed": "bed01", "id": "x"}'),
            ("monitor/icu/rogue/alarms/event", b'{"v": 7}'),
            ("monitor/icu/rogue/shell", b"rm -rf /"),
        ]
        for topic, payload in garbage:
            rogue.publish(topic, payload, qos=1).wait_for_publish(10)
        wait_until(
            lambda: sum(watcher.station.counts()["rejected"].values()) >= len(garbage),
            what="every rogue message counted",
        )
        assert watcher.station.counts()["rejected"] == {
            "not JSON": 1,
            "unit or bed differs from the topic": 1,
            "unknown schema version": 1,
            "unknown topic": 1,
        }
        assert watcher.tile("rogue") is None
    finally:
        rogue.loop_stop()
        rogue.disconnect()
        watcher.station.stop()


def test_monitor_central_prints_the_board(broker, played, tmp_path):
    sender = forwarder(broker, "bed09", bed_log(played, tmp_path), tmp_path)
    password = broker.password_file("central", tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "central", "--broker", broker.url,
             "--username", "central", "--password-file", str(password),
             "--ca-file", str(broker.ca_file), "--client-id", "central-cli",
             "--display", "plain", "--interval", "1", "--duration", "6"],
            capture_output=True, text=True, timeout=60, cwd=RUN_DIR,
        )  # fmt: skip
    finally:
        sender.stop()
    assert done.returncode == 0, done.stderr
    last_board = done.stdout.strip().split("\n\n")[-1]
    assert "connected" in last_board.splitlines()[0]
    (line,) = [line for line in last_board.splitlines() if "icu/bed09" in line]
    assert "MAP" in line and "heard" in line


def toml_file(path: Path, settings: dict[str, object]) -> Path:
    """A configuration file from dotted keys (JSON strings and numbers are TOML too)."""
    sections: dict[str, list[str]] = {}
    for key, value in settings.items():
        section, name = key.split(".")
        sections.setdefault(section, []).append(f"{name} = {json.dumps(value)}")
    path.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))
    return path


@contextmanager
def running_bed(tmp_path: Path, network: dict[str, object]) -> Iterator[subprocess.Popen]:
    """``monitor run`` on simulator ports with these network settings; killed if left."""
    links = tmp_path / "ports"
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sim", "--scenario", "loss-of-pulse", "--speed", "10",
         "--link-dir", str(links), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=RUN_DIR,
    )  # fmt: skip
    run = None
    try:
        wait_until(lambda: (links / "P1").exists(), what="the simulator's ports")
        settings = {
            "ports.transducer": str(links / "transducer"),
            "ports.pumps": [str(links / "P1")],
            "ports.sample_rate_hz": 125.0,
            "alarms.audio": "off",
            "log.directory": str(tmp_path / "log"),
        } | network
        config = toml_file(tmp_path / "bed.toml", settings)
        run = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), "--display", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
        )  # fmt: skip
        yield run
    finally:
        for process in (run, sim):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


@live_monitor
def test_monitor_run_publishes_while_it_runs_and_says_goodbye(broker, tmp_path):
    watcher = Watcher(station_settings(broker, tmp_path), f"central-{time.monotonic_ns()}")
    try:
        with running_bed(tmp_path, broker.bed_config("bed10", tmp_path)) as run:
            wait_until(lambda: watcher.tile("bed10") and watcher.tile("bed10").online, 60.0)
            wait_until(lambda: watcher.tile("bed10").state is not None, 60.0, "a first state")
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=30)
            assert run.returncode == 0, err
        wait_until(lambda: watcher.tile("bed10").online is False, what="the clean goodbye")
    finally:
        watcher.station.stop()


@live_monitor
def test_a_bed_that_dies_is_declared_offline_by_its_last_will(broker, tmp_path):
    watcher = Watcher(station_settings(broker, tmp_path), f"central-{time.monotonic_ns()}")
    try:
        with running_bed(tmp_path, broker.bed_config("bed11", tmp_path)) as run:
            wait_until(lambda: watcher.tile("bed11") and watcher.tile("bed11").online, 60.0)
            run.kill()  # no goodbye: the broker notices the silence (1.5 keep-alives of 5 s)
            run.wait()
            wait_until(lambda: watcher.tile("bed11").online is False, 30.0, "the last will")
    finally:
        watcher.station.stop()


@live_monitor
def test_an_unreachable_broker_never_holds_the_bed_back(tmp_path):
    closed = TestBroker(tmp_path / "nowhere", free_port())  # nothing listens there
    network = closed.bed_config("bed12", tmp_path) | {"mqtt.ca_file": ""}
    with running_bed(tmp_path, network) as run:
        db = tmp_path / "log" / "monitor.db"
        wait_until(lambda: recorded(db, "trends") >= 3, 60.0, "trend points")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert count(db, "states") > 0  # the detector ran and logged as usual
    network = [
        message for (message,) in rows(db, "SELECT message FROM events WHERE source = 'network'")
    ]
    assert network and f"127.0.0.1:{closed.port}: not connected" in network[0]


def count(db: Path, table: str) -> int:
    return rows(db, f"SELECT count(*) FROM {table}")[0][0]


def recorded(db: Path, table: str) -> int:
    """Rows in ``table`` so far: 0 until the log exists, and while its file is there a
    moment before its schema."""
    try:
        return count(db, table) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


@live_monitor
def test_a_network_setting_that_cannot_work_refuses_the_start_naming_the_key(tmp_path):
    config = tmp_path / "bed.toml"
    config.write_text('[ports]\ntransducer = "/dev/null"\n[mqtt]\nbroker = "ftp://broker"\n')
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config), "--display", "off",
         "--log-dir", str(tmp_path / "log")],
        capture_output=True, text=True, timeout=60, cwd=RUN_DIR,
    )  # fmt: skip
    assert done.returncode == 2
    assert "mqtt.broker" in done.stderr and "mqtts://" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_central_station_on_a_real_terminal_shows_the_most_urgent_bed_first(
    broker, played, tmp_path
):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (Debian: apt-get install tmux); CI installs it")
    quiet = forwarder(broker, "bed13", bed_log(played, tmp_path), tmp_path)
    urgent = broker.raw_client("bed14", "bed14-test")
    bed = BedIdentity("icu", "bed14", "test-log")
    standing = ActiveAlarms()
    standing.apply(
        LogRow(time.time(), 1, 0.0, "alarm", "refractory_hypotension", "high", "MAP 58",
               {"transition": "raised", "map_mmhg": 58.0, "nee": 0.4, "evidence": {}}, 1)
    )  # fmt: skip
    message = standing.message(bed, "test-log:alarms:1:active", time.time())
    urgent.publish(
        f"monitor/icu/bed14/{message.topic}", encode(message.payload), qos=1, retain=True
    ).wait_for_publish(10)
    password = broker.password_file("central", tmp_path)
    command = [sys.executable, "-m", "monitor", "central", "--broker", broker.url,
               "--username", "central", "--password-file", str(password),
               "--ca-file", str(broker.ca_file), "--client-id", f"central-tmux-{os.getpid()}",
               "--unit", "icu", "--display", "curses"]  # fmt: skip
    pane = TmuxPane(command, tmp_path)
    try:
        text = pane.wait_for("both beds", lambda text: "icu/bed13" in text and "icu/bed14" in text)
        assert "HIGH refractory_hypotension" in text
        assert text.index("icu/bed14") < text.index("icu/bed13")  # the urgent one first
        assert "connected" in text.splitlines()[0]
        pane.tmux("send-keys", "q")
        after = pane.wait_for("the exit status", lambda text: "monitor exit status:" in text)
    finally:
        pane.close()
        quiet.stop()
        urgent.publish("monitor/icu/bed14/alarms/active", b"", qos=1, retain=True)
        urgent.loop_stop()
        urgent.disconnect()
    assert "monitor exit status: 0" in after
