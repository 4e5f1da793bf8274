"""The central station's picture of the unit: one tile per bed, built only from what beds publish.

Everything on a tile comes from a bed's retained messages (status, numerics,
state, episode, standing alarms), so a restarted station has the whole
picture again as soon as it subscribes. Anything that is not a bed's message
as docs/network.md defines it (wrong topic, not JSON, another schema, names
that do not match the topic, missing or mistyped fields) is ignored and
counted by reason: a rogue or broken client cannot draw on the board.
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from monitor.configuration.network_settings import NAME_PATTERN
from monitor.network.bed_messages import (
    ALARM_EVENT,
    ALARMS_ACTIVE,
    EPISODE,
    NUMERICS,
    PRIORITY_RANK,
    SCHEMA,
    STATE,
    STATUS,
)

STALE_S = 30.0  # six missed numerics (every 5 s): the bed is shown as silent
SEEN_IDS = 10_000  # alarm event ids remembered, to drop repeats


class Rejected(ValueError):
    """Why a message was ignored (the reason is counted)."""


@dataclass
class BedTile:
    """What the station knows about one bed, and when it last heard from it."""

    unit: str
    bed: str
    last_heard: float = -math.inf  # the station's monotonic clock
    online: bool | None = None
    map_mmhg: float | None = None
    nee: float | None = None
    numerics_utc: str | None = None
    state: str | None = None
    episode: str | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)  # most urgent first

    @property
    def key(self) -> tuple[str, str]:
        return (self.unit, self.bed)

    def highest_alarm(self) -> dict[str, Any] | None:
        return self.alarms[0] if self.alarms else None

    def silent_s(self, now: float) -> float:
        return now - self.last_heard

    def stale(self, now: float, stale_s: float = STALE_S) -> bool:
        return self.online is False or self.silent_s(now) > stale_s

    def urgency(self, now: float) -> tuple:
        """Sort key, most urgent first: highest alarm, refractory, silent, then the name."""
        top = self.highest_alarm()
        rank = PRIORITY_RANK.get(top["priority"], 0) if top else -1
        return (-rank, self.state != "refractory", not self.stale(now), self.unit, self.bed)


@dataclass(frozen=True)
class NewAlarmEvent:
    """An alarm transition seen for the first time (repeats are dropped by id)."""

    unit: str
    bed: str
    payload: dict[str, Any]


class Board:
    """Every bed heard under ``root``; feed it each message with the time it arrived."""

    def __init__(self, root: str = "monitor") -> None:
        self.root = root
        self.tiles: dict[tuple[str, str], BedTile] = {}
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0  # alarm events received again (QoS 1 repeats, a bed's resend)
        self.accepted = 0
        self._seen: OrderedDict[str, None] = OrderedDict()

    def receive(self, topic: str, raw: bytes, now: float) -> NewAlarmEvent | None:
        """Apply one message; an alarm transition seen for the first time is returned."""
        try:
            return self._apply(topic, raw, now)
        except Rejected as why:
            self.rejected[str(why)] += 1
            return None

    def ordered(self, now: float) -> list[BedTile]:
        return sorted(self.tiles.values(), key=lambda tile: tile.urgency(now))

    # ------------------------------------------------------------ parsing
    def _apply(self, topic: str, raw: bytes, now: float) -> NewAlarmEvent | None:
        unit, bed, kind = self._split(topic)
        if not raw:
            # An empty retained message deletes one: a bed taken out of service.
            if kind == STATUS:
                self.tiles.pop((unit, bed), None)
            return None
        payload = _object(raw)
        if payload.get("v") != SCHEMA:
            raise Rejected("unknown schema version")
        if payload.get("unit") != unit or payload.get("bed") != bed:
            raise Rejected("unit or bed differs from the topic")
        message_id = _field(payload, "id", str)
        tile = self.tiles.get((unit, bed)) or BedTile(unit, bed)
        new_event = None
        if kind == STATUS:
            tile.online = _field(payload, "online", bool)
        elif kind == NUMERICS:
            observations = _field(payload, "observations", dict)
            tile.map_mmhg = _value(observations, "map")
            tile.nee = _value(observations, "nee")
            tile.numerics_utc = _field(payload, "utc", str)
            tile.state = _field(payload, "state", str)
        elif kind == STATE:
            tile.state = _field(payload, "state", str)
        elif kind == EPISODE:
            tile.episode = _field(payload, "episode", str)
        elif kind == ALARMS_ACTIVE:
            tile.alarms = [_standing(a) for a in _field(payload, "active", list)]
        elif kind == ALARM_EVENT:
            for name in ("alarm", "priority", "transition"):
                _field(payload, name, str)
            seen_as = f"{unit}/{bed}/{message_id}"  # ids are unique per log, logs per bed
            if seen_as in self._seen:
                self.duplicates += 1
            else:
                self._remember(seen_as)
                new_event = NewAlarmEvent(unit, bed, payload)
        self.tiles[(unit, bed)] = tile
        tile.last_heard = now
        self.accepted += 1
        return new_event

    def _split(self, topic: str) -> tuple[str, str, str]:
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != self.root:
            raise Rejected("topic outside the unit tree")
        unit, bed, kind = parts[1], parts[2], "/".join(parts[3:])
        if not (NAME_PATTERN.match(unit) and NAME_PATTERN.match(bed)):
            raise Rejected("topic outside the unit tree")
        if kind not in (STATUS, NUMERICS, STATE, EPISODE, ALARMS_ACTIVE, ALARM_EVENT):
            raise Rejected("unknown topic")
        return unit, bed, kind

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)


def _object(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise Rejected("not JSON") from None
    if not isinstance(payload, dict):
        raise Rejected("not a JSON object")
    return payload


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise Rejected(f"missing or mistyped field {name!r}")
    return value


def _value(observations: dict[str, Any], name: str) -> float | None:
    entry = observations.get(name)
    if not isinstance(entry, dict):
        raise Rejected(f"missing or mistyped field {name!r}")
    value = entry.get("value")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected(f"missing or mistyped field {name!r}")
    return float(value)


def _standing(alarm: Any) -> dict[str, Any]:
    if not isinstance(alarm, dict):
        raise Rejected("missing or mistyped field 'active'")
    for name in ("alarm", "priority", "message"):
        _field(alarm, name, str)
    return alarm
