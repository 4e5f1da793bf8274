"""The vocabulary shared by the alarm logic and its outputs.

The alarm manager decides; sinks (terminal, sound, GPIO, a command hook,
later the log) only render. Both sides speak these types, so a sink never
needs to know how an alarm came about, and the manager never knows how it
is shown.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.IntEnum):
    """IEC 60601-1-8 priorities; ``INFO`` is an information signal, not an alarm."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Category(enum.Enum):
    """A technical alarm is about the equipment and never reads as one about the patient."""

    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


#: The alarms about the patient (every other condition is technical), and the
#: information signal that suggests a second-line agent.
PHYSIOLOGICAL = ("refractory_hypotension", "map_critically_low", "no_pulse", "hypotension")
ADVISORY = "hydrocortisone_advisory"


class Transition(enum.Enum):
    """What happened to an alarm; every one of them goes to the log."""

    RAISED = "raised"  # the condition held for its delay: the alarm exists
    ANNUNCIATED = "annunciated"  # handed to the sinks (after the log has it)
    ACKNOWLEDGED = "acknowledged"  # an operator took note: audio stops, a latch may clear
    AUDIO_PAUSED = "audio_paused"  # sound paused for a bounded time
    AUDIO_RESUMED = "audio_resumed"  # the pause ran out with the alarm still there
    ESCALATED = "escalated"  # left unacknowledged too long: priority raised
    CONDITION_ENDED = "condition_ended"  # cause gone, the alarm stays latched until acknowledged
    CLEARED = "cleared"  # gone from the display
    SUPPRESSED = "suppressed"  # would have been raised, but the signal was an artifact
    RESUMED = "resumed"  # an alarm standing before a restart, found again: the same alarm


@dataclass(frozen=True)
class AlarmTransition:
    """One change of one alarm, on the stream clock, with the evidence behind it."""

    t_s: float
    name: str
    priority: Priority
    category: Category
    transition: Transition
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    alarm_id: str = ""  # one alarm's identity from raise to clear, across restarts


@dataclass(frozen=True)
class CarriedAlarm:
    """An alarm standing when the previous run of this admission ended, as its log has it."""

    alarm_id: str
    name: str
    priority: Priority
    message: str
    raised_utc: float
    condition_active: bool  # False: latched after its cause ended, not yet acknowledged
    earlier_patient: bool = False  # standing when a new admission began: it ends, unresumed


@dataclass(frozen=True)
class ActiveAlarm:
    """An alarm as it stands: shown until it is cleared."""

    name: str
    priority: Priority
    category: Category
    message: str
    since_s: float
    condition_active: bool  # False once the cause ended but a latch keeps it shown
    acknowledged: bool
    audio_paused: bool


@dataclass(frozen=True)
class Annunciation:
    """Everything a sink needs to render the current alarm state.

    ``alarms`` are sorted most urgent first; ``audible`` is the highest
    priority among alarms that should be sounding now (None: silence).
    """

    t_s: float
    alarms: tuple[ActiveAlarm, ...]
    audible: Priority | None

    @property
    def highest(self) -> Priority | None:
        return max((a.priority for a in self.alarms), default=None)


def jsonable(value: Any) -> Any:
    """Evidence as strict JSON: numpy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)
