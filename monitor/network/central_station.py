"""The central station's connection: subscribe to the unit's beds and keep the board current.

paho delivers messages on its own thread; the board is only touched under a
lock, and the screen takes copies. Subscribing with QoS 1 gets every bed's
retained messages first, so the board is complete within moments of a
(re)start.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from monitor.network.central_board import BedTile, Board, NewAlarmEvent
from monitor.network.mqtt_link import MqttSettings, make_client

log = logging.getLogger(__name__)


class CentralStation:
    """Subscribes to ``<root>/<unit>/+/#`` (every unit with ``unit="+"``)."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        unit: str = "+",
        client_id: str = "central",
        clock: Callable[[], float] = time.monotonic,
        on_alarm: Callable[[NewAlarmEvent, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.board = Board(settings.topic_root)
        self.topic = f"{settings.topic_root}/{unit}/+/#"
        self.connected = False
        self.problem: str | None = "connecting"
        self._clock = clock
        self._on_alarm = on_alarm
        self._lock = threading.Lock()
        # A persistent session: alarm events published while the station was away (a
        # restart, a network cut) are kept by the broker and delivered when it is back.
        self.client = make_client(
            settings,
            client_id,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            persistent_session=True,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def tiles(self) -> list[BedTile]:
        """The beds, most urgent first (copies: the screen draws them at its own pace)."""
        with self._lock:
            return copy.deepcopy(self.board.ordered(self._clock()))

    def counts(self) -> dict[str, object]:
        with self._lock:
            return {
                "accepted": self.board.accepted,
                "duplicates": self.board.duplicates,
                "rejected": dict(self.board.rejected),
            }

    # -------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.problem = f"broker refused the station: {reason_code}"
            log.warning("%s", self.problem)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            self.problem = f"broker refused the subscription to {self.topic}: {reason_codes[0]}"
            log.warning("%s", self.problem)
            return
        self.connected, self.problem = True, None
        log.info("central: subscribed to %s", self.topic)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self.problem = f"disconnected from the broker ({reason_code}); reconnecting"

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        now = self._clock()
        with self._lock:
            event = self.board.receive(message.topic, bytes(message.payload), now)
        if event is not None and self._on_alarm is not None:
            self._on_alarm(event, now)
