"""A real Mosquitto for the tests (TLS, passwords, ACL), started by tests/broker/start-broker.sh.

``.ci/run`` starts one for the whole run and names it in ``MONITOR_TEST_BROKER``
(``DIR:PORT``); without it the tests start their own. Tests that stop and
restart the broker always get a private one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt

SCRIPT = Path(__file__).resolve().parent / "broker" / "start-broker.sh"
ENVIRONMENT = "MONITOR_TEST_BROKER"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestBroker:
    """One Mosquitto on loopback; ``password(user)`` is the test password of that client."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, directory: Path, port: int, *, owned: bool = True) -> None:
        self.directory = directory
        self.port = port
        self.owned = owned  # False: .ci/run's broker, which the tests must not stop

    @classmethod
    def start_new(cls, directory: Path) -> TestBroker:
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise RuntimeError("mosquitto is not installed (Debian: mosquitto mosquitto-clients)")
        broker = cls(directory, free_port())
        broker.start()
        return broker

    @classmethod
    def from_environment(cls) -> TestBroker | None:
        named = os.environ.get(ENVIRONMENT)
        if not named:
            return None
        directory, port = named.rsplit(":", 1)
        return cls(Path(directory), int(port), owned=False)

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def password_file(self, user: str, where: Path, password: str | None = None) -> Path:
        path = where / f"{user}.password"
        path.write_text((password or f"pw-{user}") + "\n")
        path.chmod(0o600)
        return path

    def bed_config(self, bed: str, where: Path, password: str | None = None) -> dict[str, object]:
        """The configuration keys that make a monitor publish as ``bed`` on this broker."""
        return {
            "network.unit": "icu",
            "network.bed": bed,
            "mqtt.broker": self.url,
            "mqtt.username": bed,
            "mqtt.password_file": str(self.password_file(bed, where, password)),
            "mqtt.ca_file": str(self.ca_file),
            "mqtt.keepalive_s": 5,
        }

    def raw_client(self, user: str, client_id: str) -> mqtt.Client:
        """A plain paho client logged in as ``user`` (a bed, or a rogue), connected and looping."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        client.tls_set(ca_certs=str(self.ca_file))
        client.username_pw_set(user, f"pw-{user}")
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        return client

    def start(self) -> None:
        subprocess.run([str(SCRIPT), str(self.directory), str(self.port)], check=True)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: it saves its persistent sessions first."""
        pid = int((self.directory / "mosquitto.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
