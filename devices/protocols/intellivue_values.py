"""IntelliVue Data Export value types: the 32-bit FLOAT-Type and the measurement state.

FLOAT-Type is a signed 8-bit base-10 exponent (bits 31-24) and a signed
24-bit mantissa (bits 23-0). Four mantissas are not numbers: NaN (no value),
NRes (not at this resolution), +INF and -INF, whatever the exponent; each
is read as missing, never as a number. Facts from
``mindleaving/patient-monitor-datalogger`` and ``xeonfusion/VSCaptureMP``,
whose tests use the Data Export Programming Guide's examples
(docs/protocols.md).
"""

from __future__ import annotations

import enum
import math

NAN_MANTISSA = 0x7FFFFF
NRES_MANTISSA = -0x800000
POSITIVE_INFINITY_MANTISSA = 0x7FFFFE
NEGATIVE_INFINITY_MANTISSA = -0x7FFFFE
NOT_A_NUMBER = {
    NAN_MANTISSA: "NaN",
    NRES_MANTISSA: "NRes",
    POSITIVE_INFINITY_MANTISSA: "+INF",
    NEGATIVE_INFINITY_MANTISSA: "-INF",
    -0x7FFFFF: "reserved",  # IEEE 11073's reserved FLOAT value
}


class MeasurementState(enum.IntFlag):
    """A numeric's or a sample array's state, a set of bits; 0 is a valid measurement."""

    INVALID = 0x8000
    QUESTIONABLE = 0x4000
    UNAVAILABLE = 0x2000
    CALIBRATION_ONGOING = 0x1000
    TEST_DATA = 0x0800
    DEMO_DATA = 0x0400
    VALIDATED_DATA = 0x0080
    EARLY_INDICATION = 0x0040
    MSMT_ONGOING = 0x0020
    MSMT_STATE_IN_ALARM = 0x0002
    MSMT_STATE_AL_INHIBITED = 0x0001


#: States whose value must not be read as the patient's.
NOT_A_MEASUREMENT = (
    MeasurementState.INVALID
    | MeasurementState.UNAVAILABLE
    | MeasurementState.CALIBRATION_ONGOING
    | MeasurementState.TEST_DATA
    | MeasurementState.DEMO_DATA
)


def float_parts(word: int) -> tuple[int, int]:
    """(exponent, mantissa), both signed, of a 32-bit FLOAT-Type word."""
    exponent = (word >> 24) & 0xFF
    mantissa = word & 0xFFFFFF
    return (
        exponent - 0x100 if exponent & 0x80 else exponent,
        mantissa - 0x1000000 if mantissa & 0x800000 else mantissa,
    )


def decode_float(data: bytes) -> float:
    """Four bytes (big-endian) as their value; a special value is NaN, never a number."""
    if len(data) != 4:
        raise ValueError(f"a FLOAT-Type is 4 bytes, got {len(data)}")
    exponent, mantissa = float_parts(int.from_bytes(data, "big"))
    if mantissa in NOT_A_NUMBER:
        return math.nan
    return mantissa * 10.0**exponent


def encode_float(value: float, exponent: int = -2) -> bytes:
    """``value`` with ``exponent`` (NaN for a missing value), as a monitor sends it."""
    if math.isnan(value):
        return NAN_MANTISSA.to_bytes(4, "big")
    mantissa = round(value / 10.0**exponent)
    if not -0x7FFFFD <= mantissa <= 0x7FFFFD:
        raise ValueError(f"{value} does not fit a FLOAT-Type at exponent {exponent}")
    return ((exponent & 0xFF) << 24 | (mantissa & 0xFFFFFF)).to_bytes(4, "big")
