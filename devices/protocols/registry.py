"""The protocols a port can speak, by the name the configuration gives them.

One entry per protocol family, as python-can has one backend per bus: its
role (what kind of device speaks it) and how to make its adapter (a
``Decoder``) for one port. The monitor asks for
a protocol by name and never imports a protocol module itself, so adding a
device means adding a module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.protocols.decoding import Decoder
from devices.protocols.pump import PumpLineDecoder
from devices.protocols.transducer import AsciiTransducerDecoder, BinaryTransducerDecoder

Role = Literal["transducer", "pumps"]


@dataclass(frozen=True)
class Protocol:
    """One protocol family: who speaks it, and how to read one port of it.

    ``make`` takes the stream's nominal sample rate, which a format that
    does not carry its own rate (ASCII samples) needs.
    """

    name: str
    role: Role
    make: Callable[[float], Decoder]


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol("binary", "transducer", lambda _rate: BinaryTransducerDecoder()),
        Protocol("ascii", "transducer", AsciiTransducerDecoder),
        Protocol("pump-nmea-v1", "pumps", lambda _rate: PumpLineDecoder("v1")),
        Protocol("pump-nmea-v2", "pumps", lambda _rate: PumpLineDecoder("v2")),
        Protocol("bcc", "pumps", lambda _rate: BccPumpAdapter()),
    )
}


class UnknownProtocol(ValueError):
    """A protocol name no entry has; the message lists those of the role asked for."""


def protocol(name: str, role: Role) -> Protocol:
    """The entry named ``name``, which must be one that devices of ``role`` speak."""
    entry = PROTOCOLS.get(name)
    if entry is None or entry.role != role:
        known = ", ".join(sorted(p.name for p in PROTOCOLS.values() if p.role == role))
        raise UnknownProtocol(f"{name!r} is not a {role} protocol; known: {known}")
    return entry


def make_adapter(name: str, role: Role, sample_rate_hz: float) -> Decoder:
    """A fresh adapter for one port speaking ``name``."""
    return protocol(name, role).make(sample_rate_hz)
