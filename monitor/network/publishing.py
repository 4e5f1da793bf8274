"""The bedside's forwarders, as its configuration asks for them (none by default)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.config import Config
from monitor.log_reader import LogReadError
from monitor.network.bed_messages import BedIdentity
from monitor.network.forwarder import Forwarder
from monitor.network.mqtt_link import MqttLink, MqttSettings, bed_names
from monitor.network.outbox import Outbox

log = logging.getLogger(__name__)

MQTT_KINDS = ("trend", "state", "alarm")


@dataclass(frozen=True)
class NetworkPlan:
    """What to forward where, checked before anything starts."""

    unit: str
    bed: str
    numerics_backlog_s: float
    mqtt: MqttSettings | None

    @classmethod
    def from_config(cls, config: Config) -> NetworkPlan:
        """A ``NetworkConfigError`` names a setting that cannot work."""
        mqtt = MqttSettings.from_config(config)
        unit, bed = bed_names(config)
        backlog_s = 3600.0 * float(config["network.numerics_backlog_h"])
        return cls(unit, bed, backlog_s, mqtt)

    def forwarders(self, log_dir: Path, software: str) -> list[Forwarder]:
        """Not started. A log that cannot be read for forwarding leaves the bedside alone."""
        out = []
        if self.mqtt is not None:
            try:
                outbox = Outbox(
                    log_dir,
                    "mqtt",
                    MQTT_KINDS,
                    numerics_backlog_s=self.numerics_backlog_s,
                    wall_clock=time.time,
                )
            except LogReadError as exc:
                log.warning("mqtt: not publishing: %s", exc)
                return out
            identity = BedIdentity(self.unit, self.bed, outbox.log_id)
            link = MqttLink(self.mqtt, identity, outbox.reader, outbox.after, software=software)
            out.append(Forwarder(outbox, link))
        return out
