"""HL7 v2 export: PCD-01 observations and PCD-04 alarm reports over MLLP to an interface engine.

The engine here is a real MLLP listener (python-hl7's asyncio server) that
acknowledges as each test tells it: accept, refuse (AE), stay silent, or not
be there at all. Whatever it does, every report reaches it in log order,
exactly once accepted, with the same control id when sent again.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hl7
import pytest
from hl7.mllp import start_hl7_server
from hl7apy.parser import parse_message

from monitor.analysis.virtual_bench import ScenarioClock
from monitor.configuration.config import default_config
from monitor.configuration.network_settings import NetworkConfigError
from monitor.log.reader import LogReader
from monitor.network.forwarder import Forwarder
from monitor.network.publishing import NetworkPlan

from conftest import play_into_log

pytestmark = pytest.mark.usefixtures("packaged_config_only")

UTC_AT_ZERO = 1.8e9
REPORTED = ("raised", "acknowledged", "audio_paused", "audio_resumed", "escalated",
            "condition_ended", "cleared")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InterfaceEngine:
    """An MLLP listener on its own thread; ``answer(message, n)`` says what to reply to the
    n-th message: an acknowledgement code, None (silence) or "drop" (hang up)."""

    def __init__(self, port: int, answer: Callable[[hl7.Message, int], str | None]) -> None:
        self.port = port
        self.answer = answer
        self.received: list[hl7.Message] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> InterfaceEngine:
        self._thread.start()
        assert self._ready.wait(10), "the interface engine did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start_hl7_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader, writer) -> None:
        try:
            while True:
                message = await reader.readmessage()
                self.received.append(message)
                code = self.answer(message, len(self.received))
                if code == "drop":
                    writer.close()
                    return
                if code is not None:
                    writer.writemessage(message.create_ack(code))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def accept_all(message, n) -> str:
    return "AA"


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> Path:
    """Twenty minutes of artifacts, a zero procedure and a disconnection, logged."""
    directory = tmp_path_factory.mktemp("played")
    play_into_log(directory, "artifact-storm", ScenarioClock(utc_at_zero=UTC_AT_ZERO), 1300.0)
    return directory


@pytest.fixture
def log_dir(played, tmp_path) -> Path:
    shutil.copytree(played, tmp_path / "log")
    return tmp_path / "log"


def exporter(log_dir: Path, port: int, **settings: object) -> Forwarder:
    overrides = {
        "network.bed": "bed07",
        "network.numerics_backlog_h": 24.0,
        "hl7.address": f"127.0.0.1:{port}",
        "hl7.ack_timeout_s": 1.0,
    } | settings
    plan = NetworkPlan.from_config(default_config().with_overrides(overrides, "test"))
    (sender,) = plan.forwarders(log_dir, "test")
    sender.start()
    return sender


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.05)


def logged(log_dir: Path, kind: str) -> list:
    reader = LogReader(log_dir)
    try:
        return reader.rows([kind])
    finally:
        reader.close()


def reported_alarms(log_dir: Path) -> list:
    return [row for row in logged(log_dir, "alarm") if row.detail["transition"] in REPORTED]


def field(message: hl7.Message, segment: str, n: int, which: int = 0) -> str:
    return str(message.segments(segment)[which][n])


def obx_values(message: hl7.Message) -> dict[str, str]:
    """OBX-3's code -> OBX-5."""
    return {str(obx[3][0][0]): str(obx[5]) for obx in message.segments("OBX")}


def test_alarm_transitions_arrive_as_pcd04_reports_in_log_order(log_dir):
    engine = InterfaceEngine(free_port(), accept_all).start()
    sender = exporter(log_dir, engine.port)
    try:
        alarms = reported_alarms(log_dir)
        wait_until(
            lambda: sum("R40" in field(m, "MSH", 9) for m in engine.received) >= len(alarms),
            what="every alarm report",
        )
    finally:
        sender.stop()
        engine.stop()
    reports = [m for m in engine.received if "R40" in field(m, "MSH", 9)]
    assert len(reports) == len(alarms)
    for report, row in zip(reports, alarms, strict=True):
        parse_message(str(report).replace("\n", "\r"), validation_level=1)  # v2.6 structure
        assert field(report, "MSH", 9) == "ORU^R40^ORU_R01"
        assert field(report, "MSH", 12) == "2.6"
        values = obx_values(report)
        assert values["196616"].startswith(row.name)
        phase = {"raised": "start", "cleared": "end"}.get(row.detail["transition"], "continue")
        assert values["68481"] == phase
        priority = {"high": "PH", "medium": "PM", "low": "PL"}[row.priority]
        assert values["68484"] == priority and field(report, "OBX", 8) == priority
        assert values["68485"] == ("SP" if row.name == "hypotension" else "ST")
        assert field(report, "PV1", 3) == "icu^^bed07"
    ids = [field(m, "MSH", 10) for m in engine.received]
    assert len(ids) == len(set(ids))
    # OBR-3 is the alarm's identity: the same on every report from its start to its end.
    by_alarm: dict[str, set[str]] = {}
    for report, row in zip(reports, alarms, strict=True):
        by_alarm.setdefault(row.detail["alarm_id"], set()).add(field(report, "OBR", 3))
    assert all(len(fillers) == 1 for fillers in by_alarm.values())
    assert len({f for fillers in by_alarm.values() for f in fillers}) == len(by_alarm)


def test_observations_go_once_per_interval_with_11073_codes_and_units(log_dir):
    engine = InterfaceEngine(free_port(), accept_all).start()
    sender = exporter(log_dir, engine.port, **{"hl7.observation_interval_s": 300.0})
    trends = logged(log_dir, "trend")
    expected, last = 0, float("-inf")
    for row in trends:
        if row.utc - last >= 300.0 and any(
            row.detail[c] is not None for c in ("map_mmhg", "nee", "pulse_rate_bpm")
        ):
            expected, last = expected + 1, row.utc
    try:
        wait_until(
            lambda: sum("R01" in field(m, "MSH", 9) for m in engine.received) >= expected,
            what="the observation reports",
        )
        time.sleep(0.5)
    finally:
        sender.stop()
        engine.stop()
    reports = [m for m in engine.received if field(m, "MSH", 9) == "ORU^R01^ORU_R01"]
    assert len(reports) == expected
    values = obx_values(reports[-1])
    assert set(values) <= {"150035", "150033", "150034", "149522", "NEE"}
    units = {str(obx[3][0][0]): str(obx[6][0][0]) for obx in reports[-1].segments("OBX")}
    assert units.get("150035", "266016") == "266016" and units.get("NEE", "265619") == "265619"
    assert all(str(obx[18][0][1]) == "EUI-64" for obx in reports[-1].segments("OBX"))


def test_a_refused_message_is_sent_again_with_its_control_id_and_nothing_overtakes_it(log_dir):
    refused_once: dict[str, int] = {}

    def refuse_the_second(message, n) -> str:
        control = field(message, "MSH", 10)
        if n == 2 or control in refused_once and refused_once[control] < 1:
            refused_once[control] = refused_once.get(control, 0) + 1
            return "AE"
        return "AA"

    engine = InterfaceEngine(free_port(), refuse_the_second).start()
    sender = exporter(log_dir, engine.port)
    try:
        alarms = reported_alarms(log_dir)
        wait_until(lambda: len({field(m, "MSH", 10) for m in engine.received}) >= len(alarms) + 1)
        wait_until(lambda: sender.problem is None, what="caught up")
    finally:
        sender.stop()
        engine.stop()
    ids = [field(m, "MSH", 10) for m in engine.received]
    assert ids[1] == ids[2]  # the refused one, again, before anything after it
    assert len(ids) == len(set(ids)) + 1


def test_silence_past_the_timeout_means_sending_again(log_dir):
    def silent_once(message, n) -> str | None:
        return None if n == 1 else "AA"

    engine = InterfaceEngine(free_port(), silent_once).start()
    sender = exporter(log_dir, engine.port)
    try:
        wait_until(lambda: len(engine.received) >= 3, what="the resend")
    finally:
        sender.stop()
        engine.stop()
    first, again = engine.received[0], engine.received[1]
    assert field(first, "MSH", 10) == field(again, "MSH", 10)


def test_an_engine_that_is_not_there_yet_gets_the_backlog_in_order_once_it_is(log_dir):
    port = free_port()
    sender = exporter(log_dir, port)
    try:
        wait_until(lambda: sender.problem and "cannot connect" in sender.problem)
        assert f"127.0.0.1:{port}" in sender.problem
        engine = InterfaceEngine(port, accept_all).start()
        alarms = reported_alarms(log_dir)
        wait_until(
            lambda: sum("R40" in field(m, "MSH", 9) for m in engine.received) >= len(alarms),
            what="the backlog",
        )
    finally:
        sender.stop()
    engine.stop()
    times = [field(m, "MSH", 7) for m in engine.received]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"hl7.address": "engine.hospital"}, "hl7.address"),
        ({"hl7.address": "engine:http"}, "hl7.address"),
        (
            {"hl7.address": "engine:2575", "hl7.sending_application": "A|B"},
            "hl7.sending_application",
        ),
    ],
)
def test_hl7_settings_that_cannot_work_are_refused_naming_the_key(settings, named):
    config = default_config().with_overrides(settings, "test")
    with pytest.raises(NetworkConfigError, match=named):
        NetworkPlan.from_config(config)
