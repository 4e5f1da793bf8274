"""The bed's devices, port by port: ``[[ports.device]]`` tables and the older ``[ports]`` keys.

A bed may have a transducer on a USB adapter speaking this project's frames
and a B. Braun rack reached over TCP, so each device names its own path,
protocol, baud rate and role. The ``[ports]`` keys (``transducer``,
``pumps`` and their protocol and baud keys) still describe a bed whose pumps
all speak one protocol; both may be used together, and each port is
named once, whichever way. What is checked here is what would make a port
unreadable: an unknown protocol, a protocol of the other role, a baud rate
the protocol cannot run at or that cannot carry the sampling rate, one port
read twice (two readers split its bytes, and neither sees whole frames),
two transducers (one bed has one stream clock). Each problem names the
file and the entry (``ports.device[2].baud``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import cast

from devices.protocol_catalogue import CATALOGUE, ROLES, Role, names_for
from monitor.configuration.config import Config, ConfigProblem

TRANSDUCER: Role = "transducer"
FIELDS = ("role", "path", "protocol", "baud", "name")
REQUIRED = ("role", "path", "protocol")
#: How the older keys name a pump protocol, and the protocol they mean.
PUMP_PROTOCOL_KEYS = {"v1": "pump-nmea-v1", "v2": "pump-nmea-v2", "bcc": "bcc"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# A pyserial URL whose baud rate means nothing: a TCP socket carries bytes, not bits.
_NO_LINE_RATE = ("socket://",)


@dataclass(frozen=True)
class DevicePort:
    """One device's port as configured, and where (file and key) it was configured."""

    name: str  # "transducer", "pump1", or the entry's own name: how messages name the port
    role: Role
    path: str
    protocol: str
    baud: int
    # Where it was configured: not part of what the port is, so moving a device from the
    # [ports] keys to a [[ports.device]] table (or to another file) reopens nothing.
    key: str = field(compare=False)  # "ports.transducer", "ports.pumps", "ports.device[2]"
    source: str = field(compare=False)
    pump_id_prefix: str = ""  # "rack-left:" when two ports number their pumps alike


@dataclass(frozen=True)
class DevicePorts:
    """Every configured port, in order (the transducer first), and what is wrong with them."""

    transducer: DevicePort | None
    pumps: tuple[DevicePort, ...]
    problems: tuple[ConfigProblem, ...]

    def all(self) -> tuple[DevicePort, ...]:
        return (*([self.transducer] if self.transducer else []), *self.pumps)


def port_identity(url: str) -> str:
    """What makes two port names the same device: a path's real target, a URL as written."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme.lower()}://{rest}"
    return os.path.realpath(url)


def configured_ports(config: Config) -> DevicePorts:
    """The ports the configuration names, each checked; a broken entry is left out."""
    problems: list[ConfigProblem] = []
    ports = _ports_from_keys(config, problems)
    for i, entry in enumerate(config.tables("ports.device"), start=1):
        port = _device_entry(entry, i, config, problems, taken=[p.name for p in ports])
        if port is not None:
            ports.append(port)
    ports = _without_collisions(ports, config, problems)
    transducers = [p for p in ports if p.role == TRANSDUCER]
    for extra in transducers[1:]:
        problems.append(
            ConfigProblem(
                extra.source,
                extra.key,
                f"a second transducer ({extra.path}); {transducers[0].key} already names "
                f"{transducers[0].path}: a bed has one arterial line and one stream clock",
            )
        )
    pumps = [p for p in ports if p.role != TRANSDUCER]
    return DevicePorts(
        transducers[0] if transducers else None, tuple(_told_apart(pumps)), tuple(problems)
    )


def port_problems(config: Config) -> list[ConfigProblem]:
    """What ``config check`` and a start refuse about the ports (see the module's docstring)."""
    return list(configured_ports(config).problems)


def _ports_from_keys(config: Config, problems: list[ConfigProblem]) -> list[DevicePort]:
    ports = []
    url = config.text("ports.transducer").strip()
    if url:
        ports.append(
            DevicePort(
                TRANSDUCER, TRANSDUCER, url, config.text("ports.transducer_protocol"),
                config.integer("ports.transducer_baudrate"), "ports.transducer",
                config.source("ports.transducer"),
            )
        )  # fmt: skip
    protocol = PUMP_PROTOCOL_KEYS[config.text("ports.pump_protocol")]
    for i, url in enumerate(config.texts("ports.pumps"), start=1):
        source = config.source("ports.pumps")
        if not url.strip():
            problems.append(
                ConfigProblem(
                    source, "ports.pumps",
                    f"pump{i}'s port is empty: name its port (e.g. /dev/ttyUSB1) or remove it",
                )
            )  # fmt: skip
            continue
        ports.append(
            DevicePort(
                f"pump{i}", "pumps", url.strip(), protocol, config.integer("ports.pump_baudrate"),
                "ports.pumps", source,
            )
        )  # fmt: skip
    if ports and ports[0].role == TRANSDUCER:
        too_slow = _line_rate_problem(ports[0], config.number("ports.sample_rate_hz"))
        if too_slow:
            key = "ports.transducer_baudrate"
            problems.append(ConfigProblem(config.source(key), key, too_slow))
    return ports


def _device_entry(
    entry: Mapping[str, object],
    index: int,
    config: Config,
    problems: list[ConfigProblem],
    taken: list[str],
) -> DevicePort | None:
    key, source = f"ports.device[{index}]", config.source("ports.device")
    before = len(problems)

    def problem(part: str, message: str) -> None:
        problems.append(ConfigProblem(source, f"{key}.{part}" if part else key, message))

    unknown = sorted(entry.keys() - set(FIELDS))
    if unknown:
        problem("", f"unknown fields {unknown}; allowed {list(FIELDS)}")
    for part in REQUIRED:
        if not str(entry.get(part, "")).strip():
            problem(part, f"missing: every device names its {', '.join(REQUIRED)}")
    role, path, protocol = (str(entry.get(f, "")).strip() for f in REQUIRED)
    if role and role not in ROLES:
        problem("role", f"{role!r} is not a role; one of {', '.join(ROLES)}")
    facts = CATALOGUE.get(protocol)
    if protocol and facts is None:
        known = "; ".join(f"{r}: {', '.join(names_for(r))}" for r in ROLES)
        problem("protocol", f"{protocol!r} is not a protocol this monitor reads ({known})")
    elif facts is not None and role in ROLES and facts.role != role:
        problem(
            "protocol",
            f"{protocol!r} is spoken by {facts.role}, not {role}; "
            f"{role} speak {', '.join(names_for(cast(Role, role)))}",
        )
    baud = entry.get("baud", facts.default_baud if facts else 0)
    if isinstance(baud, bool) or not isinstance(baud, int):
        problem("baud", f"must be a whole number of bits a second, got {baud!r}")
    elif facts is not None and baud not in facts.bauds and not no_line_rate(path):
        problem(
            "baud",
            f"{baud} is not a rate {protocol} runs at; one of "
            + ", ".join(str(b) for b in facts.bauds),
        )
    name = str(entry.get("name", "")).strip()
    if name and (not _NAME.fullmatch(name) or name == TRANSDUCER or name in taken):
        problem(
            "name",
            f"{name!r} must be unique, not 'transducer', and letters, digits, - or _ (up to 32)",
        )
    if len(problems) > before:
        return None
    if role == TRANSDUCER:
        name = TRANSDUCER
    elif not name:
        name = _next_pump_name(taken)
    port = DevicePort(name, cast(Role, role), path, protocol, cast(int, baud), key, source)
    too_slow = _line_rate_problem(port, config.number("ports.sample_rate_hz"))
    if too_slow:
        problem("baud", too_slow)
        return None
    return port


def _next_pump_name(taken: list[str]) -> str:
    n = 1
    while f"pump{n}" in taken:
        n += 1
    return f"pump{n}"


def no_line_rate(path: str) -> bool:
    """A path whose baud rate means nothing (a TCP socket carries bytes, not bits)."""
    return path.lower().startswith(_NO_LINE_RATE)


def _line_rate_problem(port: DevicePort, rate_hz: float) -> str | None:
    """A transducer's baud rate must carry its samples: frames would back up, then drop."""
    facts = CATALOGUE.get(port.protocol)
    if facts is None or not facts.bytes_per_sample or no_line_rate(port.path):
        return None
    slowest = facts.slowest_baud(rate_hz)
    if slowest is not None and port.baud >= slowest:
        return None
    needs = f"needs at least {slowest}" if slowest else "no rate it runs at does"
    return (
        f"{port.baud} baud cannot carry {port.protocol} samples at {rate_hz:g} Hz "
        f"(ports.sample_rate_hz; {needs})"
    )


def _without_collisions(
    ports: list[DevicePort], config: Config, problems: list[ConfigProblem]
) -> list[DevicePort]:
    """One reader per port: a port named twice is refused at its second naming."""
    seen: dict[str, DevicePort] = {}
    kept = []
    for port in ports:
        earlier = seen.setdefault(port_identity(port.path), port)
        if earlier is port:
            kept.append(port)
            continue
        whose = (
            "the transducer's" if earlier.role == TRANSDUCER else f"{earlier.name}'s"
        ) + f" ({earlier.key})"
        problems.append(
            ConfigProblem(
                port.source,
                port.key,
                f"{port.name}'s port {port.path!r} is already {whose}: each port has one "
                "device and one reader (a pump rack on one port reports all its pumps)",
            )
        )
    return kept


def _told_apart(pumps: list[DevicePort]) -> list[DevicePort]:
    """Ports whose protocol numbers pumps by position (two racks both have a ``1-1``) put
    their port's name before each pump's when more than one of them runs."""
    local = [p for p in pumps if CATALOGUE[p.protocol].port_local_ids]
    if len(local) < 2:
        return pumps
    return [replace(p, pump_id_prefix=f"{p.name}:") if p in local else p for p in pumps]
