"""What a bed publishes, built from its log rows: JSON with units, IEEE 11073 codes and an id.

One log row makes one message, and its id is the row's identity in that log
(``<log id>:<table>:<rowid>``): a message sent twice, after a reconnection
or a restart, carries the same id, so a consumer never takes it for a new
alarm. The topic tree and every payload are in docs/network.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from monitor.clinical.alarm_types import ADVISORY, PHYSIOLOGICAL
from monitor.log.reader import KINDS, LogRow, iso_utc

SCHEMA = 1  # the payloads' version: a consumer refuses one it does not know

# Topics under <root>/<unit>/<bed>/
STATUS = "status"  # retained: online, or offline (the broker's last will)
NUMERICS = "numerics"  # retained: the latest trend point
STATE = "state"  # retained: the detector's latest state
EPISODE = "episode"  # retained: the latest episode change
ALARM_EVENT = "alarms/event"  # every alarm transition, in order; not retained
ALARMS_ACTIVE = "alarms/active"  # retained: the alarms standing after the last transition
RETAINED = frozenset({STATUS, NUMERICS, STATE, EPISODE, ALARMS_ACTIVE})


@dataclass(frozen=True)
class Code:
    """An IEEE 11073-10101 term (or a local one) and its unit's code."""

    reference_id: str
    code: int | None  # None: no 11073 term exists (a local code)
    unit: str
    unit_code: int


# clinical-facts.md section 8. NEE has no 11073 term: a local one, marked as such.
OBSERVATIONS: dict[str, tuple[str, Code]] = {
    "map": ("map_mmhg", Code("MDC_PRESS_BLD_ART_MEAN", 150035, "mmHg", 266016)),
    "systolic": ("systolic_mmhg", Code("MDC_PRESS_BLD_ART_SYS", 150033, "mmHg", 266016)),
    "diastolic": ("diastolic_mmhg", Code("MDC_PRESS_BLD_ART_DIA", 150034, "mmHg", 266016)),
    "pulse_rate": ("pulse_rate_bpm", Code("MDC_BLD_PULS_RATE_INV", 149522, "/min", 264864)),
    "nee": ("nee", Code("LOCAL_NEE", None, "ug/kg/min", 265619)),
}


@dataclass(frozen=True)
class Message:
    """One publication: where, what, and whether the broker keeps it for late subscribers."""

    topic: str  # below the bed's prefix
    payload: dict[str, Any]

    @property
    def retained(self) -> bool:
        return self.topic in RETAINED


@dataclass(frozen=True)
class BedIdentity:
    """Who is publishing: names in the topic tree, and the log whose rows are sent."""

    unit: str
    bed: str
    log_id: str  # the uuid of the log's first boot: row ids are unique within one log

    def prefix(self, root: str) -> str:
        return f"{root}/{self.unit}/{self.bed}"

    def envelope(self, message_id: str, utc: float) -> dict[str, Any]:
        return {
            "v": SCHEMA,
            "id": message_id,
            "unit": self.unit,
            "bed": self.bed,
            "utc": iso_utc(utc),
            "utc_s": round(utc, 3),
        }

    def row_id(self, row: LogRow) -> str:
        return f"{self.log_id}:{KINDS[row.kind][0]}:{row.rowid}"


def category(alarm: str) -> str:
    return "physiological" if alarm in PHYSIOLOGICAL or alarm == ADVISORY else "technical"


def _rounded(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def numerics(bed: BedIdentity, row: LogRow) -> Message:
    """A trend point: MAP, systolic, diastolic, pulse rate and NEE; null where unknown."""
    observations = {}
    for name, (column, code) in OBSERVATIONS.items():
        observations[name] = {
            "value": _rounded(row.detail[column]),
            "unit": code.unit,
            "unit_code": code.unit_code,
            "code": code.code,
            "reference_id": code.reference_id,
        }
    payload = bed.envelope(bed.row_id(row), row.utc) | {
        "stream_s": row.stream_s,
        "state": row.name,
        "observations": observations,
        "signal": {
            "clean_coverage": row.detail["clean_coverage"],
            "artifact_coverage": row.detail["artifact_coverage"],
            "no_pulse": bool(row.detail["no_pulse"]),
        },
    }
    return Message(NUMERICS, payload)


def state_change(bed: BedIdentity, row: LogRow) -> Message:
    """A detector state or an episode change, with the numbers behind it."""
    is_episode = row.detail["kind"] == "episode"
    payload = bed.envelope(bed.row_id(row), row.utc) | {
        "stream_s": row.stream_s,
        ("episode" if is_episode else "state"): row.name,
        "message": row.message,
        "map_mmhg": _rounded(row.detail["map_mmhg"]),
        "nee_ug_kg_min": _rounded(row.detail["nee"]),
        "evidence": row.detail["evidence"],
    }
    return Message(EPISODE if is_episode else STATE, payload)


def alarm_event(bed: BedIdentity, row: LogRow) -> Message:
    """One alarm transition, as the log has it."""
    payload = bed.envelope(bed.row_id(row), row.utc) | {
        "stream_s": row.stream_s,
        "alarm": row.name,
        "priority": row.priority,
        "category": category(row.name),
        "transition": row.detail["transition"],
        "alarm_id": row.detail.get("alarm_id"),
        "message": row.message,
        "map_mmhg": _rounded(row.detail["map_mmhg"]),
        "nee_ug_kg_min": _rounded(row.detail["nee"]),
        "evidence": row.detail["evidence"],
    }
    return Message(ALARM_EVENT, payload)


def status(bed: BedIdentity, online: bool, utc: float, software: str) -> Message:
    """Online when connected; the broker publishes the offline one as the last will."""
    payload = bed.envelope(f"{bed.log_id}:status:{'online' if online else 'offline'}", utc)
    return Message(STATUS, payload | {"online": online, "software": software})


@dataclass(frozen=True)
class StandingAlarm:
    name: str
    priority: str
    category: str
    message: str
    since_utc: float
    condition_active: bool = True
    acknowledged: bool = False
    audio_paused: bool = False
    alarm_id: str | None = None  # None: a row from before alarms had ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "alarm": self.name,
            "alarm_id": self.alarm_id,
            "priority": self.priority,
            "category": self.category,
            "message": self.message,
            "since": iso_utc(self.since_utc),
            "condition_active": self.condition_active,
            "acknowledged": self.acknowledged,
            "audio_paused": self.audio_paused,
        }


class ActiveAlarms:
    """The alarms standing at a bed, rebuilt from its alarm rows in log order.

    An alarm with an id stands across a restart until a ``cleared`` row with
    that id: the new boot resumes it (``resumed``, the same alarm) or clears
    it. An alarm from a log written before ids existed goes at a new boot,
    as it did then (its condition raises it again).
    """

    def __init__(self) -> None:
        self.boot: int | None = None
        self.standing: dict[str, StandingAlarm] = {}  # by alarm id (by name for old rows)

    def apply(self, row: LogRow) -> None:
        if row.boot != self.boot:
            self.new_boot(row.boot)
        alarm_id = row.detail.get("alarm_id")
        key, transition = alarm_id or row.name, row.detail["transition"]
        current = self.standing.get(key)
        if transition == "raised":
            self.standing[key] = StandingAlarm(
                row.name, row.priority, category(row.name), row.message, row.utc, alarm_id=alarm_id
            )
        elif transition == "resumed":
            evidence = row.detail["evidence"] or {}
            since = evidence.get("raised_utc") if current is None else current.since_utc
            self.standing[key] = StandingAlarm(
                row.name, row.priority, category(row.name), row.message,
                row.utc if since is None else since,
                condition_active=evidence.get("condition_active", True), alarm_id=alarm_id,
            )  # fmt: skip
        elif current is None:
            return
        elif transition == "cleared":
            del self.standing[key]
        else:
            self.standing[key] = _changed(current, transition, row.priority)

    def new_boot(self, boot: int | None) -> None:
        """A restarted monitor: only alarms with an id carry over, to be resumed or cleared."""
        self.boot = boot
        self.standing = {k: a for k, a in self.standing.items() if a.alarm_id is not None}

    def message(self, bed: BedIdentity, message_id: str, utc: float) -> Message:
        ordered = sorted(self.standing.values(), key=_urgency)
        payload = bed.envelope(message_id, utc) | {"active": [a.as_dict() for a in ordered]}
        return Message(ALARMS_ACTIVE, payload)


PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1, "info": 0}


def _urgency(alarm: StandingAlarm) -> tuple[int, float]:
    return (-PRIORITY_RANK.get(alarm.priority, 0), alarm.since_utc)


def _changed(alarm: StandingAlarm, transition: str, priority: str) -> StandingAlarm:
    if transition == "acknowledged":
        return replace(alarm, acknowledged=True, audio_paused=False)
    if transition == "audio_paused":
        return replace(alarm, audio_paused=True)
    if transition == "audio_resumed":
        return replace(alarm, audio_paused=False)
    if transition == "escalated":
        return replace(alarm, priority=priority)
    if transition == "condition_ended":
        return replace(alarm, condition_active=False)
    return alarm  # annunciated, suppressed: nothing a screen shows changes
