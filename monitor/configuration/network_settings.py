"""The network settings read and checked: the bed's names, the MQTT broker, the HL7 engine.

Pure reading of the configuration (and of the files it names), kept here so
that ``monitor config check``, the start of ``monitor run`` and the network
stage refuse the same values with the same words, without loading the
network stack (paho, hl7apy, asyncio). Every refusal names the file the
value came from and the key.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from monitor.configuration.config import Config, ConfigProblem

#: Unit and bed names: part of every topic and of HL7 fields, so no '/', '+', '#'.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Characters HL7 v2 uses as delimiters (MSH-1 and MSH-2).
HL7_DELIMITERS = "|^~\\&"


class NetworkConfigError(ValueError):
    """A network setting that cannot work; ``problem`` names its file and key."""

    def __init__(self, problem: ConfigProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def _refuse(config: Config, key: str, message: str) -> NetworkConfigError:
    return NetworkConfigError(ConfigProblem(config.source(key), key, message))


def bed_names(config: Config) -> tuple[str, str]:
    """The unit's and this bed's names (the bed's defaults to the host name), checked."""
    unit = config.text("network.unit")
    bed = config.text("network.bed") or socket.gethostname().split(".")[0]
    for key, value in (("network.unit", unit), ("network.bed", bed)):
        if not NAME_PATTERN.match(value):
            raise _refuse(
                config, key,
                f"{value!r} cannot name a bed: use 1-64 letters, digits, '-' or '_' "
                "(it is part of every topic and HL7 message)",
            )  # fmt: skip
    return unit, bed


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to prove who this bed is."""

    host: str
    port: int
    tls: bool
    topic_root: str
    username: str
    password: str | None
    ca_file: str
    cert_file: str
    key_file: str
    keepalive_s: int

    @classmethod
    def from_config(cls, config: Config) -> MqttSettings | None:
        """None when no broker is configured; a ``NetworkConfigError`` for one that cannot work."""
        url = config.text("mqtt.broker")
        if not url:
            return None
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1:
            raise _refuse(
                config, "mqtt.broker",
                f"{url!r} is not a broker: give mqtts://host:8883 (TLS) or mqtt://host:1883",
            )  # fmt: skip
        tls = parts.scheme == "mqtts"
        root = config.text("mqtt.topic_root")
        if not root or any(c in root for c in "+#") or root.startswith("/"):
            raise _refuse(
                config, "mqtt.topic_root",
                f"{root!r}: give a topic without '+' or '#' that does not start with '/'",
            )  # fmt: skip
        password_file = config.text("mqtt.password_file")
        password = None
        if password_file:
            try:
                password = Path(password_file).read_text().strip()
            except OSError as exc:
                raise _refuse(
                    config, "mqtt.password_file", f"cannot read {password_file}: {exc.strerror}"
                ) from None
        for key in ("mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file"):
            path = config.text(key)
            if path and not Path(path).is_file():
                raise _refuse(config, key, f"{path}: no such file")
        if bool(config.text("mqtt.cert_file")) != bool(config.text("mqtt.key_file")):
            raise _refuse(
                config, "mqtt.cert_file" if config.text("mqtt.cert_file") else "mqtt.key_file",
                "a client certificate needs its key: set both mqtt.cert_file and mqtt.key_file",
            )  # fmt: skip
        if (config.text("mqtt.cert_file") or config.text("mqtt.ca_file")) and not tls:
            raise _refuse(
                config, "mqtt.broker",
                f"{url!r}: certificates are configured but the broker URL is not mqtts://",
            )  # fmt: skip
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            topic_root=root,
            username=config.text("mqtt.username"),
            password=password,
            ca_file=config.text("mqtt.ca_file"),
            cert_file=config.text("mqtt.cert_file"),
            key_file=config.text("mqtt.key_file"),
            keepalive_s=config.integer("mqtt.keepalive_s"),
        )


@dataclass(frozen=True)
class Hl7Settings:
    """The interface engine's MLLP listener and how this bed names itself to it."""

    host: str
    port: int
    ack_timeout_s: float
    observation_interval_s: float
    application: str
    facility: str

    @classmethod
    def from_config(cls, config: Config) -> Hl7Settings | None:
        """None when no engine is configured; a ``NetworkConfigError`` for one that cannot work."""
        address = config.text("hl7.address").strip()
        if not address:
            return None
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _refuse(
                config, "hl7.address",
                f"{address!r}: give the interface engine's MLLP listener as host:port",
            )  # fmt: skip
        for key in ("hl7.sending_application", "hl7.sending_facility"):
            name = config.text(key)
            if any(c in name for c in HL7_DELIMITERS) or any(ord(c) < 0x20 for c in name):
                raise _refuse(config, key, f"{name!r}: a name without | ^ ~ \\ & or control codes")
        application = config.text("hl7.sending_application")
        if not application:
            raise _refuse(config, "hl7.sending_application", "empty: MSH-3 must name the sender")
        return cls(
            host=host.strip("[]"),
            port=int(port),
            ack_timeout_s=config.number("hl7.ack_timeout_s"),
            observation_interval_s=config.number("hl7.observation_interval_s"),
            application=application,
            facility=config.text("hl7.sending_facility"),
        )


def network_problems(config: Config) -> list[ConfigProblem]:
    """What in the bed's names, the MQTT or the HL7 settings cannot work (empty: all can)."""
    problems = []
    for check in (bed_names, MqttSettings.from_config, Hl7Settings.from_config):
        try:
            check(config)
        except NetworkConfigError as exc:
            problems.append(exc.problem)
    return problems
