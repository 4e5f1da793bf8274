"""What a reload (SIGHUP) changes, and which part of the running bedside each change touches.

A reload is applied in place: the stream clock, the beat core, the standing
alarms and the episode go on. Only the parts whose settings changed are
rebuilt: the clinical settings are handed to the running engine, a pump port
is closed and opened again only if its own settings changed, the alarm
outputs and the network links are rebuilt only if theirs did. The
transducer makes stream time, so a change to its port, protocol or sampling
rate, and a change to the log, needs a restart: such a reload is refused
with that reason and the running configuration stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.configuration.config import Config, Value

NEEDS_RESTART = (
    "ports.transducer",
    "ports.transducer_baudrate",
    "ports.transducer_protocol",
    "ports.sample_rate_hz",
)
NEEDS_RESTART_SECTIONS = ("log.",)
# ports.device too: a transducer's entry that changed is refused when the ports are read.
PUMP_PORT_KEYS = ("ports.pumps", "ports.pump_baudrate", "ports.pump_protocol", "ports.device")
INPUT_KEYS = ("ports.comm_loss_s", "ports.max_gap_s", "drug_names")
OUTPUT_KEYS = (
    "alarms.audio", "alarms.audio_player", "alarms.gpio_chip", "alarms.gpio_line",
    "alarms.command",
)  # fmt: skip
NETWORK_SECTIONS = ("network.", "mqtt.", "hl7.")


@dataclass(frozen=True)
class ReloadPlan:
    """The settings that differ between the running configuration and the new one."""

    changes: tuple[tuple[str, Value, Value], ...]  # key, running value, new value

    @classmethod
    def between(cls, running: Config, new: Config) -> ReloadPlan:
        return cls(tuple((key, running[key], new[key]) for key in new if running[key] != new[key]))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _, _ in self.changes)

    @property
    def needs_restart(self) -> tuple[str, ...]:
        """Changed keys that cannot be applied to a running bedside."""
        return tuple(
            k for k in self.keys if k in NEEDS_RESTART or k.startswith(NEEDS_RESTART_SECTIONS)
        )

    @property
    def pump_ports(self) -> bool:
        return any(k in PUMP_PORT_KEYS or k in INPUT_KEYS for k in self.keys)

    @property
    def outputs(self) -> bool:
        return any(k in OUTPUT_KEYS for k in self.keys)

    @property
    def network(self) -> bool:
        return any(k.startswith(NETWORK_SECTIONS) for k in self.keys)
