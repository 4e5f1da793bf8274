"""Specification of the simulated SpaceCom, and of the adapter and the rack talking to each other.

The rack is checked against the facts of docs/protocols.md (the answer to
each request, block by block); the conversation with the adapter shows
both sides agree. That proves consistency, not correctness: the adapter's
correctness rests on the published frames (tests/test_bcc_pumps.py).
"""

from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

from devices.protocols.bcc_frames import ACK, NAK, parse_frame, parse_records, request, unstuff
from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.readings import PumpHeartbeat, PumpReport, PumpState
from devices.simulation.bcc_rack import BccRack
from devices.simulation.scenario import InfusionSpec, InfusionStep, PumpSpec
from monitor.edge.serial_link import LinkEvent, LinkEventKind, PortReader, PortSettings, Received

RUN, PAUSE = (
    InfusionStep(0.0, PumpState.RUNNING, 6.0, None),
    InfusionStep(30.0, PumpState.PAUSED, 6.0, None),
)
NORAD = InfusionSpec("P1", 1, "NORAD", 80.0, "ug/mL", None, (RUN, PAUSE))
VASO = InfusionSpec(
    "P2", 1, "VASO", 0.4, "U/mL", None, (InfusionStep(10.0, PumpState.RUNNING, 6.0, None),)
)


def records(wire: bytes):
    return parse_records(parse_frame(wire).information)


def alive(rack: BccRack) -> None:
    answer = rack.hear(0.0, request("1", "ADMIN:ALIVE"))
    assert parse_frame(answer).bed_id == "ComSystem"
    assert [r.parameter for r in records(answer)] == ["GNACK"]


def test_mem_get_is_answered_one_block_per_pump_each_after_an_ack() -> None:
    rack = BccRack([NORAD, VASO])
    alive(rack)
    first = rack.hear(12.0, request("ComSystem", "MEM:GET"))
    assert parse_frame(first).more_follow
    assert {r.address for r in records(first)} == {"50100", "50111"}
    assert rack.hear(12.1, b"") == b""  # nothing more until the host acknowledges
    second = rack.hear(12.2, ACK)
    assert not parse_frame(second).more_follow
    values = {r.parameter: r.value for r in records(second)}
    assert values["INSOL"] == "VASO" and values["INDCONU"] == "36" and values["INM3"] == "1"
    assert rack.hear(12.3, ACK) == b""  # the answer is complete


def test_a_nak_has_the_last_block_sent_again() -> None:
    rack = BccRack([NORAD, VASO])
    alive(rack)
    first = rack.hear(12.0, request("ComSystem", "MEM:GET"))
    assert rack.hear(12.1, NAK) == first


def test_a_request_under_the_default_bed_id_after_alive_is_refused() -> None:
    rack = BccRack([NORAD])
    alive(rack)
    answer = rack.hear(1.0, request("1", "MEM:GET"))
    assert [(r.parameter, r.value) for r in records(answer)] == [("GNERR", "68")]


def test_a_rack_without_pumps_answers_no_data() -> None:
    rack = BccRack([])
    alive(rack)
    answer = rack.hear(1.0, request("ComSystem", "MEM:GET"))
    assert [(r.parameter, r.value) for r in records(answer)] == [("GNERR", "11")]


def test_a_stuffing_rack_sends_no_d() -> None:
    rack = BccRack([NORAD], stuffing=True)
    answer = rack.hear(0.0, request("1", "ADMIN:ALIVE"))
    assert b"D" not in answer and b"d" not in answer
    assert unstuff(answer) is not None


def converse(rack: BccRack, until_s: float, step_s: float = 0.05) -> list:
    """The adapter and the rack on one clock, as the reader and the simulator would run them."""
    adapter = BccPumpAdapter()
    adapter.open_session(0.0)
    sentences, t = [], 0.0
    while t < until_s:
        asked = adapter.take_outgoing()
        if asked:
            answer = rack.hear(t, asked)
            sentences += [(t, s) for s in adapter.feed(answer)]
        adapter.on_time(t)
        t = round(t + step_s, 6)
    assert adapter.counts["no_answer"] == 0 and adapter.counts["garbage_bytes"] == 0
    return sentences


def test_the_adapter_reads_the_scenarios_pumps_every_poll() -> None:
    sentences = converse(BccRack([NORAD, VASO]), until_s=40.0)
    reports = [(t, s) for t, s in sentences if isinstance(s, PumpReport)]
    norad = [(t, s.state) for t, s in reports if s.drug_code == "NORAD"]
    assert norad[0][1] is PumpState.RUNNING and norad[-1][1] is PumpState.PAUSED
    times = [t for t, _ in norad]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 2.5  # every 2 s poll
    first = next(s for _, s in reports if s.drug_code == "NORAD")
    assert (first.pump_id, first.concentration, first.concentration_unit, first.rate_ml_h) == (
        "1-1", 80.0, "ug/mL", 6.0,
    )  # fmt: skip
    vaso_before = [s for t, s in sentences if s.pump_id == "1-2" and t < 10.0]
    assert vaso_before and all(isinstance(s, PumpHeartbeat) for s in vaso_before)


def test_a_silent_pump_is_left_out_of_the_answer() -> None:
    silent = PumpSpec("P2", silent=((15.0, 25.0),))
    sentences = converse(BccRack([NORAD, VASO], [silent]), until_s=30.0)
    heard = [t for t, s in sentences if s.pump_id == "1-2"]
    assert not [t for t in heard if 15.5 < t < 25.0]
    assert [t for t in heard if t > 25.0]


def test_more_pumps_than_a_pillar_holds_are_refused() -> None:
    with pytest.raises(ValueError, match="24 pumps"):
        BccRack([NORAD] * 25)


class TcpRack:
    """A SpaceStation on TCP, as its Ethernet port serves BCC: one host at a time."""

    def __init__(self, rack: BccRack) -> None:
        self.rack, self._time = rack, time.monotonic
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        self.hang_up = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        started = self._time()
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.settimeout(0.05)
            with connection:
                while not (self.stop.is_set() or self.hang_up.is_set()):
                    try:
                        data = connection.recv(4096)
                    except TimeoutError:
                        data = b""
                    answer = self.rack.hear(self._time() - started, data)
                    if answer:
                        connection.sendall(answer)
            self.hang_up.clear()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.close()


def test_the_adapter_reads_a_rack_over_tcp_and_reconnects_after_the_rack_hangs_up() -> None:
    """socket://host:4001 is how a SpaceStation on the unit's network is reached."""
    import queue

    tcp = TcpRack(BccRack([NORAD]))
    inbox: queue.Queue = queue.Queue()
    adapter = BccPumpAdapter(poll_s=0.5)
    reader = PortReader(
        PortSettings("rack", tcp.url, 9600), adapter, inbox.put, read_timeout_s=0.1,
        backoff_s=(0.1, 0.5),
    )  # fmt: skip

    def next_report() -> PumpReport:
        while True:
            item = inbox.get(timeout=20)
            if isinstance(item, Received):
                reports = [f for f in item.frames if isinstance(f, PumpReport)]
                if reports:
                    return reports[0]

    reader.start()
    try:
        first = next_report()
        tcp.hang_up.set()  # the SpaceStation restarts, or the switch drops the link
        kinds = []
        while LinkEventKind.CONNECTED not in kinds:
            item = inbox.get(timeout=20)
            if isinstance(item, LinkEvent):
                kinds.append(item.kind)
        again = next_report()
    finally:
        reader.stop()
        tcp.close()
    assert (first.pump_id, first.drug_code, first.concentration) == ("1-1", "NORAD", 80.0)
    assert LinkEventKind.DISCONNECTED in kinds and tcp.connections == 2
    assert again.pump_id == "1-1"
