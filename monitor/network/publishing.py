"""The bedside's forwarders, as its configuration asks for them (none by default)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.configuration.config import Config
from monitor.configuration.network_settings import Hl7Settings, MqttSettings, bed_names
from monitor.log.reader import LogReadError
from monitor.network.bed_messages import BedIdentity
from monitor.network.forwarder import Forwarder
from monitor.network.hl7_link import Hl7Link
from monitor.network.hl7_messages import Sender, device_eui64
from monitor.network.mqtt_link import MqttLink
from monitor.network.outbox import Outbox

log = logging.getLogger(__name__)

MQTT_KINDS = ("trend", "state", "alarm")
HL7_KINDS = ("trend", "alarm")


@dataclass(frozen=True)
class NetworkPlan:
    """What to forward where, checked before anything starts."""

    unit: str
    bed: str
    numerics_backlog_s: float
    mqtt: MqttSettings | None
    hl7: Hl7Settings | None

    @classmethod
    def from_config(cls, config: Config) -> NetworkPlan:
        """A ``NetworkConfigError`` names a setting that cannot work."""
        mqtt = MqttSettings.from_config(config)
        hl7 = Hl7Settings.from_config(config)
        unit, bed = bed_names(config)
        backlog_s = 3600.0 * config.number("network.numerics_backlog_h")
        return cls(unit, bed, backlog_s, mqtt, hl7)

    def forwarders(self, log_dir: Path, software: str) -> list[Forwarder]:
        """Not started. A log that cannot be read for forwarding leaves the bedside alone."""
        out = []
        if self.mqtt is not None:
            outbox = self._outbox(log_dir, "mqtt", MQTT_KINDS)
            if outbox is not None:
                identity = BedIdentity(self.unit, self.bed, outbox.log_id)
                link = MqttLink(self.mqtt, identity, outbox.reader, outbox.after, software=software)
                out.append(Forwarder(outbox, link))
        if self.hl7 is not None:
            outbox = self._outbox(log_dir, "hl7", HL7_KINDS)
            if outbox is not None:
                sender = Sender(
                    self.hl7.application, self.hl7.facility, self.unit, self.bed,
                    device_eui64(), outbox.log_id,
                )  # fmt: skip
                out.append(Forwarder(outbox, Hl7Link(self.hl7, sender, outbox.reader)))
        return out

    def _outbox(self, log_dir: Path, destination: str, kinds: tuple[str, ...]) -> Outbox | None:
        try:
            return Outbox(
                log_dir, destination, kinds,
                numerics_backlog_s=self.numerics_backlog_s, wall_clock=time.time,
            )  # fmt: skip
        except LogReadError as exc:
            log.warning("%s: not forwarding: %s", destination, exc)
            return None
