"""What each protocol asks of its port: who speaks it, the baud rates it runs at, its line load.

Facts only, no wire code: the configuration checks a ``[[ports.device]]``
entry against them (``config check`` must not load the decoders), and the
registry (``devices.protocols.registry``) pairs each with the adapter that
reads it. A protocol named here without an adapter there is a test failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["transducer", "pumps"]
ROLES: tuple[Role, ...] = ("transducer", "pumps")
#: The rates a UART and pyserial both name, from the slowest a device here uses.
STANDARD_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
# 8N1: a start bit, 8 data bits and a stop bit carry one byte.
BITS_PER_BYTE = 10
# A line is not filled to its last bit: a quarter spare covers escapes and a device's
# bursts (a front end sends a frame every 25-40 ms, not a steady trickle).
LINE_HEADROOM = 1.25


@dataclass(frozen=True)
class ProtocolFacts:
    """One protocol family's needs.

    ``bytes_per_sample`` (transducers): the line load per sample, so a baud
    rate too slow for the sampling rate is refused before the port is
    opened. ``port_local_ids``: its pump names are positions on its own
    port (a B. Braun rack's ``1-3``), so two such ports must have their
    pumps told apart by the port's name.
    """

    name: str
    role: Role
    default_baud: int
    bauds: tuple[int, ...] = STANDARD_BAUDS
    bytes_per_sample: float = 0.0
    port_local_ids: bool = False
    summary: str = ""

    def slowest_baud(self, sample_rate_hz: float) -> int | None:
        """The slowest allowed baud rate that carries ``sample_rate_hz``, None if none does."""
        needed = BITS_PER_BYTE * self.bytes_per_sample * sample_rate_hz * LINE_HEADROOM
        return next((baud for baud in self.bauds if baud >= needed), None)


CATALOGUE: dict[str, ProtocolFacts] = {
    facts.name: facts
    for facts in (
        # 66 bytes carry 25 samples, plus flags and ~1% escapes (docs/protocols.md).
        ProtocolFacts(
            "binary", "transducer", 115200, bytes_per_sample=2.8,
            summary="this project's framed, CRC-checked transducer frames",
        ),
        # "-12.3\r\n": seven characters a reading.
        ProtocolFacts(
            "ascii", "transducer", 115200, bytes_per_sample=7.0,
            summary="one reading in mmHg per line, for bench tools",
        ),
        ProtocolFacts(
            "pump-nmea-v1", "pumps", 9600, summary="pump sentences, 8-bit XOR (old pumps)"
        ),
        ProtocolFacts("pump-nmea-v2", "pumps", 9600, summary="pump sentences, CRC-16"),
        # SpaceCom's RS-232 speeds (B. Braun BCC specification, docs/protocols.md).
        ProtocolFacts(
            "bcc", "pumps", 9600, bauds=(9600, 19200, 38400, 57600, 115200),
            port_local_ids=True, summary="a B. Braun Space rack (SpaceCom/SpaceStation), polled",
        ),
    )
}  # fmt: skip


def names_for(role: Role) -> list[str]:
    return sorted(name for name, facts in CATALOGUE.items() if facts.role == role)
