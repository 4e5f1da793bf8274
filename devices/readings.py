"""What devices report, whatever wire it came over: the types both sides of the wire share.

A decoder (``devices.protocols``) produces these, a simulator
(``devices.simulation``) is driven to produce them, and the monitor's beat
core and clinical logic consume them, so none of those need to know a byte
of any wire format. The device adapters for vendor protocols produce the
same types. This module imports nothing of the project.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class TransducerStatus(enum.IntFlag):
    """Status bits a front end sets on a frame; all of them make its samples untrustworthy."""

    ZEROING = 1 << 0  # zeroing in progress: stopcock open to air, pressure is not the patient's
    FAULT = 1 << 1  # transducer fault (open bridge, cable)
    OVERRANGE = 1 << 2  # the ADC is saturated: samples are pinned at a rail


@dataclass(frozen=True, eq=False)
class TransducerFrame:
    """Samples in mmHg as decoded, with where they sit in the stream.

    ``missing_before`` is how many samples the sequence says were lost just
    before this frame (0 for ASCII, which has no sequence); ``sequence`` is
    None for ASCII readings.
    """

    samples: np.ndarray
    sample_rate: float  # as a binary frame states it (whole Hz), or as configured for ASCII
    status: TransducerStatus
    sequence: int | None = None
    missing_before: int = 0


@dataclass(frozen=True, eq=False)
class SampleBlock:
    """Samples ``[start, start + len(samples))`` of the stream, in mmHg, with one status."""

    start: int
    samples: np.ndarray
    status: TransducerStatus
    missing: bool = False  # filled in by the monitor for samples that never arrived

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


class PumpState(enum.Enum):
    """What a channel is doing; only ``running`` and ``bolus`` deliver drug."""

    RUNNING = "running"
    PAUSED = "paused"
    OCCLUDED = "occluded"
    ALARM = "alarm"
    BOLUS = "bolus"
    END_OF_INFUSION = "end_of_infusion"


@dataclass(frozen=True)
class PumpReport:
    """One channel's status as the pump sent it (units as sent; the clinical layer converts).

    ``concentration`` is None when the pump does not report one (a B. Braun
    pump in mL/h mode sends 0): unknown, never zero.
    """

    pump_id: str
    channel: int
    sequence: int
    drug_code: str
    concentration: float | None
    concentration_unit: str
    rate_ml_h: float
    state: PumpState
    dose: float | None = None
    dose_unit: str | None = None


@dataclass(frozen=True)
class PumpHeartbeat:
    """A pump saying it is alive, whatever its channels do."""

    pump_id: str
    sequence: int


PumpSentence = PumpReport | PumpHeartbeat
