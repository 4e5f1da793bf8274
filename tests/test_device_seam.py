"""Specification of the device seam: protocols by name, and adapters that hold a session.

A device that only answers when asked is read through an adapter that
queues its requests; the port's reader sends them when the port opens, when
they fall due and in reply to what it read, over a real pty.
"""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from devices.protocol_catalogue import CATALOGUE
from devices.protocols.decoding import Decoder
from devices.protocols.pump import PumpLineDecoder, encode_report
from devices.protocols.registry import PROTOCOLS, UnknownProtocol, make_adapter, protocol
from devices.protocols.transducer import encode_frame
from devices.readings import PumpReport, PumpState
from devices.simulation.virtual_ports import VirtualPort
from monitor.edge.serial_link import (
    BEDSIDE_SESSIONS,
    LinkEvent,
    LinkEventKind,
    PortReader,
    PortSettings,
    Received,
    SessionClock,
)

POLL_S = 0.1


class PollingAdapter(Decoder[bytes]):
    """A toy device that speaks lines only when asked: the shape of a data-export session."""

    protocol = "test-polling"

    def __init__(self) -> None:
        super().__init__()
        self._due: float | None = None

    def open_session(self, now: float) -> None:
        self._send(b"HELLO\n")
        self._due = now + POLL_S

    def next_due(self) -> float | None:
        return self._due

    def on_time(self, now: float) -> None:
        if self._due is not None and now >= self._due:
            self._send(b"POLL\n")
            self._due = now + POLL_S

    def _decode(self, data: bytes) -> list[bytes]:
        lines = data.split(b"\n")
        for line in lines:
            if line == b"ANSWER":
                self._send(b"ACK\n")
        return [line for line in lines if line]


def sent_until(port: VirtualPort, enough, timeout_s: float = 5.0) -> bytes:
    """What the monitor wrote to the device until ``enough(sent)`` holds."""
    sent = b""
    deadline = time.monotonic() + timeout_s
    while not enough(sent):
        if time.monotonic() > deadline:
            raise AssertionError(f"the reader did not send in time; sent {sent!r}")
        sent += port.take_sent()
        time.sleep(0.01)
    return sent


def start(
    port: VirtualPort,
    adapter: Decoder,
    inbox: queue.Queue,
    session_clock: SessionClock = BEDSIDE_SESSIONS,
) -> PortReader:
    reader = PortReader(
        PortSettings("transducer", port.path),
        adapter,
        inbox.put,
        backoff_s=(0.05, 0.2),
        session_clock=session_clock,
    )
    reader.start()
    return reader


def test_a_talking_adapter_greets_the_device_when_its_port_opens_then_polls_on_time() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("monitor") as port:
        reader = start(port, PollingAdapter(), inbox)
        try:
            started = time.monotonic()
            sent = sent_until(port, lambda sent: sent.count(b"POLL\n") >= 3)
            took = time.monotonic() - started
        finally:
            reader.stop()
    assert sent.startswith(b"HELLO\n")
    assert took >= 3 * POLL_S * 0.9  # on its own clock, not as fast as the loop can spin
    assert took < 3.0  # and not at the read timeout (1 s) either


def test_a_session_on_a_simulations_clock_polls_in_its_time() -> None:
    inbox: queue.Queue = queue.Queue()
    ten_times = SessionClock(lambda: 10.0 * time.monotonic(), 10.0)
    with VirtualPort("monitor") as port:
        reader = start(port, PollingAdapter(), inbox, ten_times)
        try:
            started = time.monotonic()
            sent_until(port, lambda sent: sent.count(b"POLL\n") >= 10)
            took = time.monotonic() - started
        finally:
            reader.stop()
    assert took < 10 * POLL_S  # ten polls, each 0.1 s of session time: 0.1 s of real time
    assert took >= 10 * POLL_S / 10.0 * 0.9


def test_a_talking_adapter_replies_to_what_it_read_and_delivers_it() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("monitor") as port:
        reader = start(port, PollingAdapter(), inbox)
        try:
            sent_until(port, lambda sent: b"HELLO\n" in sent)
            port.write(b"ANSWER\n")
            sent = sent_until(port, lambda sent: b"ACK\n" in sent)
            items = []
            while not any(isinstance(i, Received) and i.frames for i in items):
                items.append(inbox.get(timeout=5.0))
        finally:
            reader.stop()
    assert b"ACK\n" in sent
    assert [f for i in items if isinstance(i, Received) for f in i.frames] == [b"ANSWER"]


def test_a_reopened_port_is_a_new_session_greeted_again() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("monitor") as port:
        reader = start(port, PollingAdapter(), inbox)
        try:
            first = sent_until(port, lambda sent: b"HELLO\n" in sent)
        finally:
            reader.stop()
        reader = start(port, PollingAdapter(), inbox)
        try:
            again = sent_until(port, lambda sent: b"HELLO\n" in sent)
        finally:
            reader.stop()
    assert first.startswith(b"HELLO\n")
    assert again.startswith(b"HELLO\n")


def test_this_projects_own_formats_talk_only_unasked() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("transducer") as port:
        reader = start(port, make_adapter("binary", "transducer", 250.0), inbox)
        try:
            while not isinstance(item := inbox.get(timeout=5.0), LinkEvent):
                pass
            assert item.kind == LinkEventKind.CONNECTED  # an open port drops what waited
            port.write(encode_frame(np.full(25, 80.0), sequence=0, sample_rate=250))
            items = []
            while not any(isinstance(i, Received) and i.frames for i in items):
                items.append(inbox.get(timeout=5.0))
            time.sleep(0.2)
        finally:
            reader.stop()
        assert port.take_sent() == b""


def test_every_protocol_is_registered_under_the_name_its_adapter_gives() -> None:
    for name, entry in PROTOCOLS.items():
        assert entry.name == name
        assert make_adapter(name, entry.role, 250.0).protocol == name


def test_every_protocol_the_configuration_accepts_has_an_adapter() -> None:
    assert set(PROTOCOLS) == set(CATALOGUE)


def test_each_role_has_its_own_protocols() -> None:
    assert {p.name for p in PROTOCOLS.values() if p.role == "transducer"} >= {"binary", "ascii"}
    assert {p.name for p in PROTOCOLS.values() if p.role == "pumps"} >= {
        "pump-nmea-v1",
        "pump-nmea-v2",
    }


def test_an_unknown_protocol_is_refused_with_the_known_ones_of_its_role() -> None:
    with pytest.raises(UnknownProtocol, match=r"'intellivu' is not a transducer protocol; known: "):
        protocol("intellivu", "transducer")
    with pytest.raises(UnknownProtocol, match="known: bcc, pump-nmea-v1, pump-nmea-v2"):
        protocol("binary", "pumps")  # a transducer's protocol on a pump port


def test_a_pump_adapter_made_by_name_reads_its_version_only() -> None:
    report = PumpReport("P1", 1, 7, "NOREPI", 64.0, "ug/mL", 5.0, PumpState.RUNNING)
    v2 = make_adapter("pump-nmea-v2", "pumps", 250.0)
    assert isinstance(v2, PumpLineDecoder)
    assert len(v2.feed(encode_report(report, "v2"))) == 1
    assert v2.feed(encode_report(report, "v1")) == []
