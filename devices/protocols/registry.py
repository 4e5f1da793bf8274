"""The protocols a port can speak, by the name the configuration gives them.

One entry per protocol family, as python-can has one backend per bus: its
facts (``devices.protocol_catalogue``: role, baud rates, line load) and how
to make its adapter (a ``Decoder``) for one port. The monitor asks for a
protocol by name and never imports a protocol module itself, so adding a
device means adding a module, its facts, and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devices.protocol_catalogue import CATALOGUE, ProtocolFacts, Role, names_for
from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.protocols.decoding import Decoder
from devices.protocols.pump import PumpLineDecoder
from devices.protocols.transducer import AsciiTransducerDecoder, BinaryTransducerDecoder


@dataclass(frozen=True)
class PortContext:
    """What an adapter may need to know of its port: the stream's nominal sample rate (a
    format that does not carry its own, ASCII samples, needs it) and the port's name, which
    a protocol with port-local pump names puts before them when two such ports run."""

    sample_rate_hz: float
    pump_id_prefix: str = ""


@dataclass(frozen=True)
class Protocol:
    """One protocol family: its facts, and how to read one port of it."""

    facts: ProtocolFacts
    make: Callable[[PortContext], Decoder]

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def role(self) -> Role:
        return self.facts.role


_MAKERS: dict[str, Callable[[PortContext], Decoder]] = {
    "binary": lambda _port: BinaryTransducerDecoder(),
    "ascii": lambda port: AsciiTransducerDecoder(port.sample_rate_hz),
    "pump-nmea-v1": lambda _port: PumpLineDecoder("v1"),
    "pump-nmea-v2": lambda _port: PumpLineDecoder("v2"),
    "bcc": lambda port: BccPumpAdapter(pump_id_prefix=port.pump_id_prefix),
}
PROTOCOLS: dict[str, Protocol] = {
    name: Protocol(CATALOGUE[name], make) for name, make in _MAKERS.items()
}


class UnknownProtocol(ValueError):
    """A protocol name no entry has; the message lists those of the role asked for."""


def protocol(name: str, role: Role) -> Protocol:
    """The entry named ``name``, which must be one that devices of ``role`` speak."""
    entry = PROTOCOLS.get(name)
    if entry is None or entry.role != role:
        known = ", ".join(names_for(role))
        raise UnknownProtocol(f"{name!r} is not a {role} protocol; known: {known}")
    return entry


def make_adapter(
    name: str, role: Role, sample_rate_hz: float, *, pump_id_prefix: str = ""
) -> Decoder:
    """A fresh adapter for one port speaking ``name``."""
    return protocol(name, role).make(PortContext(sample_rate_hz, pump_id_prefix))
