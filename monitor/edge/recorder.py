"""``monitor record``: the ports' sessions run as a monitor runs them, every byte captured.

A patient monitor or a pump rack sends nothing until it is asked, so a
recorder that only listened would capture silence. Each port with a
protocol gets that protocol's adapter, which opens its session (association,
polls, acknowledgements) exactly as ``monitor run`` would; a port without
one is recorded passively (a device that sends unasked, our own
transducer frames). Nothing here interprets a reading clinically: the
capture is for an engineer, and a replay of it for the monitor.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devices.capture_file import CapturedPort, Direction
from devices.protocol_catalogue import CATALOGUE
from devices.protocols.decoding import Decoder
from devices.protocols.registry import make_adapter
from monitor.edge.capture import CaptureWriter
from monitor.edge.serial_link import LinkEvent, LinkEventKind, PortReader, PortSettings, Received

#: A passive port's "protocol": its bytes are kept as they came, nothing is sent.
PASSIVE = ""
# Our own ASCII samples carry no rate: a recorder decodes them at the usual one (the
# capture keeps the bytes whatever the rate; only the frame count depends on it).
NOMINAL_RATE_HZ = 250.0


class PassiveDecoder(Decoder[bytes]):
    """Decodes nothing and asks nothing: the capture keeps what the device sent unasked."""

    protocol = PASSIVE

    def _decode(self, data: bytes) -> list[bytes]:
        return []


@dataclass(frozen=True)
class RecordedPort:
    """A port to record: where it is, and the protocol whose session runs on it."""

    path: str
    baud: int
    protocol: str = PASSIVE

    @property
    def role(self) -> str:
        facts = CATALOGUE.get(self.protocol)
        return facts.role if facts is not None else ""


@dataclass
class PortTally:
    """What one port carried during the recording."""

    name: str
    port: RecordedPort
    bytes_rx: int = 0
    bytes_tx: int = 0
    frames: int = 0
    opened: bool = False
    problems: Counter[str] = field(default_factory=Counter)


def port_names(ports: Sequence[RecordedPort]) -> list[str]:
    """Names as the monitor gives them: ``transducer``, ``pump1``...; ``port1``... when passive."""
    names, counters = [], Counter[str]()
    for port in ports:
        stem = {"transducer": "transducer", "pumps": "pump"}.get(port.role, "port")
        counters[stem] += 1
        n = counters[stem]
        names.append("transducer" if stem == "transducer" and n == 1 else f"{stem}{n}")
    return names


def record(
    ports: Sequence[RecordedPort],
    writer: CaptureWriter,
    *,
    duration_s: float | None,
    stop: threading.Event,
    on_event: Callable[[LinkEvent], None],
    reader_factory: Callable[..., PortReader] = PortReader,
) -> list[PortTally]:
    """Record ``ports`` into ``writer`` until ``duration_s`` (wall clock) passes or ``stop``."""
    tallies = [PortTally(name, port) for name, port in zip(port_names(ports), ports, strict=True)]
    lock = threading.Lock()
    readers = []
    for tally in tallies:
        port = tally.port
        captured = CapturedPort(tally.name, port.path, port.baud, port.protocol, port.role)
        readers.append(
            reader_factory(
                PortSettings(tally.name, port.path, port.baud),
                _decoder(port),
                _deliverer(tally, lock, on_event),
                tap=_counting(tally, lock, writer.tap(captured)),
            )
        )
    deadline = None if duration_s is None else time.monotonic() + duration_s
    for reader in readers:
        reader.start()
    try:
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0.0:
                break
            stop.wait(0.2 if left is None else min(0.2, left))
    finally:
        for reader in readers:
            reader.stop()
        writer.close()
    return tallies


def _decoder(port: RecordedPort) -> Decoder:
    if port.protocol == PASSIVE:
        return PassiveDecoder()
    return make_adapter(port.protocol, CATALOGUE[port.protocol].role, NOMINAL_RATE_HZ)


def _deliverer(
    tally: PortTally, lock: threading.Lock, on_event: Callable[[LinkEvent], None]
) -> Callable[[LinkEvent | Received], None]:
    def deliver(item: LinkEvent | Received) -> None:
        if isinstance(item, LinkEvent):
            if item.kind is LinkEventKind.CONNECTED:
                tally.opened = True
            on_event(item)
            return
        with lock:
            tally.frames += len(item.frames)
            for problem in item.problems:
                tally.problems[problem.kind] += problem.n

    return deliver


def _counting(
    tally: PortTally, lock: threading.Lock, tap: Callable[[Direction, bytes, float], None]
) -> Callable[[Direction, bytes, float], None]:
    def counted(direction: Direction, data: bytes, mono: float) -> None:
        with lock:
            if direction == "rx":
                tally.bytes_rx += len(data)
            else:
                tally.bytes_tx += len(data)
        tap(direction, data, mono)

    return counted
