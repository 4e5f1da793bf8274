"""The bed's MQTT connection (paho-mqtt): TLS, per-bed credentials, a last will, QoS 1.

paho runs the connection on its own thread and reconnects by itself; this
link only publishes while connected, and says a row is sent once the broker
has acknowledged every message made from it (PUBACK). Rows not acknowledged
are sent again from the log by the ``Forwarder``, with the same ids.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt

from monitor.configuration.network_settings import MqttSettings
from monitor.log.reader import LogReader, LogRow
from monitor.network import bed_messages
from monitor.network.bed_messages import (
    ActiveAlarms,
    BedIdentity,
    Message,
)

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0  # for the broker's PUBACKs of one batch
CONNECT_WAIT_S = 2.0  # how long the forwarder waits for a connection before it says so
QOS = 1  # at least once: alarms and states must arrive; ids make repeats harmless


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    on_connect=None,
    on_disconnect=None,
    persistent_session: bool = False,
) -> mqtt.Client:
    """A paho client with this bed's TLS and credentials (not yet connected).

    A persistent session makes the broker keep QoS 1 messages for the client
    while it is away (the central station's alarm events)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=not persistent_session,
    )
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_file or None,
            certfile=settings.cert_file or None,
            keyfile=settings.key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    client.reconnect_delay_set(1, 30)
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    return client


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


class MqttLink:
    """Publishes a bed's log rows; the broker's last will says when the bed goes silent."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        bed: BedIdentity,
        reader: LogReader,
        after: dict[str, int],
        *,
        software: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.bed = bed
        self.prefix = bed.prefix(settings.topic_root)
        self.software = software
        self._wall_clock = wall_clock
        self._reader = reader
        self.active = ActiveAlarms()
        self._replay_alarms(after.get("alarm", 0))
        self._connected = threading.Event()
        self.refusal: str | None = None  # why the broker refused us, if it did
        self.failure: str | None = None
        self.client = make_client(
            settings,
            f"{bed.unit}-{bed.bed}",
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
        )
        offline = bed_messages.status(bed, False, wall_clock(), software)
        self.client.will_set(
            f"{self.prefix}/{offline.topic}", encode(offline.payload), qos=QOS, retain=True
        )
        self.client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        self.client.loop_start()

    # ------------------------------------------------------------- Link
    def ready(self) -> bool:
        # paho connects on its own thread: give it a moment before calling the link down.
        if self._connected.wait(CONNECT_WAIT_S):
            return True
        where = f"{self.settings.host}:{self.settings.port}"
        self.failure = self.refusal or f"mqtt broker {where}: not connected"
        return False

    def send(self, rows: Sequence[LogRow]) -> int:
        """Publish every row's messages; the count of rows whose messages all got a PUBACK."""
        return self._publish([self._messages(row) for row in rows])

    def send_messages(self, messages: Sequence[Message]) -> int:
        return self._publish([[m] for m in messages])

    def _publish(self, groups: Sequence[Sequence[Message]]) -> int:
        pending: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        for n, group in enumerate(groups):
            for message in group:
                info = self.client.publish(
                    f"{self.prefix}/{message.topic}",
                    encode(message.payload),
                    qos=QOS,
                    retain=message.retained,
                )
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    confirmed = self._confirmed(pending, n)
                    self.failure = f"mqtt: cannot publish ({mqtt.error_string(info.rc)})"
                    return confirmed
                pending.append((n, info))
        return self._confirmed(pending, len(groups))

    def idle(self) -> None:
        """A monitor restarted since the last alarm row: the retained set says so at once
        (alarms with ids stay, until the new boot resumes or clears them).
        """
        latest = self._reader.latest_boot()
        if latest is None or latest == self.active.boot:
            return
        self.active.new_boot(latest)
        standing = self.active.message(
            self.bed, f"{self.bed.log_id}:boots:{latest}:active", self._wall_clock()
        )
        if self.send_messages([standing]) < 1:
            self.active.boot = None  # try again next time

    def close(self) -> None:
        """A clean goodbye: the bed is offline on purpose (the will is for a silent death)."""
        if self._connected.is_set():
            offline = bed_messages.status(self.bed, False, self._wall_clock(), self.software)
            info = self.client.publish(
                f"{self.prefix}/{offline.topic}", encode(offline.payload), qos=QOS, retain=True
            )
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass  # disconnected meanwhile: the will says the same
        self.client.disconnect()
        self.client.loop_stop()

    # ----------------------------------------------------------- messages
    def _messages(self, row: LogRow) -> list[Message]:
        if row.kind == "trend":
            return [bed_messages.numerics(self.bed, row)]
        if row.kind == "state":
            return [bed_messages.state_change(self.bed, row)]
        self.active.apply(row)
        event = bed_messages.alarm_event(self.bed, row)
        standing = self.active.message(self.bed, f"{event.payload['id']}:active", row.utc)
        return [event, standing]

    def _replay_alarms(self, upto: int) -> None:
        """The alarms standing when the last confirmed alarm row was sent."""
        for row in sorted(self._reader.rows(["alarm"]), key=lambda row: row.rowid):
            if row.rowid <= upto:
                self.active.apply(row)

    def _confirmed(self, pending: list[tuple[int, mqtt.MQTTMessageInfo]], sent_rows: int) -> int:
        """Rows, from the first, whose every message the broker acknowledged in time."""
        deadline = time.monotonic() + ACK_TIMEOUT_S
        for n, info in pending:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # dropped by a disconnection
                self.failure = "mqtt: the connection dropped before the broker acknowledged"
                return n
            if not info.is_published():
                self.failure = f"mqtt: no acknowledgement from the broker in {ACK_TIMEOUT_S:g} s"
                return n
        return sent_rows

    # -------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refusal = (
                f"mqtt broker {self.settings.host}:{self.settings.port} refused: {reason_code}"
            )
            log.warning("%s", self.refusal)
            return
        self.refusal = None
        online = bed_messages.status(self.bed, True, self._wall_clock(), self.software)
        client.publish(
            f"{self.prefix}/{online.topic}", encode(online.payload), qos=QOS, retain=True
        )
        self._connected.set()
        log.info("mqtt: connected to %s:%s", self.settings.host, self.settings.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        log.info("mqtt: disconnected (%s)", reason_code)
