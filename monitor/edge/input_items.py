"""What the edge hands on: samples, pump observations and device events, on stream time.

The beat core and the clinical logic consume these; keeping them apart from
the readers (``device_input``, ``serial_link``) means neither imports a
serial port to name what it is given.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devices.readings import PumpHeartbeat, PumpReport, SampleBlock
from monitor.configuration.drug_table import Drug


@dataclass(frozen=True)
class PumpObservation:
    """A pump sentence and the stream time it arrived; ``drug`` is None if the code is unknown.

    ``conflict`` says why the report's dose cannot be trusted although its
    drug is known (``configuration.drug_names``), and the report is the one
    to read: a concentration the pump did not state is the one configured.
    """

    t_s: float
    role: str
    sentence: PumpReport | PumpHeartbeat
    drug: Drug | None = None
    conflict: str | None = None


class DeviceEventKind(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    OPEN_FAILED = "open_failed"
    READER_ERROR = "reader_error"
    COMM_LOST = "comm_lost"
    COMM_RESTORED = "comm_restored"
    DECODE_ERRORS = "decode_errors"
    TRANSDUCER_STATUS = "transducer_status"
    TRANSDUCER_RESTART = "transducer_restart"  # a sequence jump no loss explains
    INPUT_OVERFLOW = "input_overflow"  # arrivals the hand-over could not keep, counted
    PUMP_SILENT = "pump_silent"
    PUMP_HEARD = "pump_heard"
    UNKNOWN_DRUG = "unknown_drug"


@dataclass(frozen=True)
class DeviceEvent:
    """Something about a device the alarm layer must know; ``message`` is for people."""

    t_s: float
    role: str
    kind: DeviceEventKind
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)


InputItem = SampleBlock | PumpObservation | DeviceEvent
