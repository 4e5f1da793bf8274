"""The infusion pumps' status protocol: NMEA-style ASCII sentences with a checksum.

Real pumps (B. Braun BCC, Draeger Medibus) and NMEA instruments frame
short ASCII records with a start character and a checksum; ours does too,
so it can be read on a terminal and typed by hand in a test. Version 2,
the default, carries a CRC-16::

    $PMST2,<pump>,<channel>,<seq>,<drug>,<conc>,<conc_unit>,<rate_ml_h>,<dose>,<dose_unit>,<state>*HHHH
    $PMHB2,<pump>,<seq>*HHHH

``HHHH`` is the CRC-16/CCITT-FALSE (polynomial 0x1021, initial value
0xFFFF, as the transducer frames use) of every byte between ``$`` and
``*``, in four hex digits. Version 1 (``PMSTA``, ``PMHBT``, ``*HH``: the
XOR of those bytes) is read only when the configuration asks for it: an
8-bit XOR lets two flips of the same bit cancel, so a corrupted rate can
pass as a valid report (docs/protocols.md gives the measurement).

A sentence ends with CR LF. ``pump`` is the pump's id (letters, digits,
``-`` and ``_``, at most 16), ``channel`` 1..16, ``seq`` a per-pump counter
0..65535 shared by both sentences (a jump means lost sentences), ``drug``
the pump's drug code (its library's name, e.g. ``NORAD``), ``conc`` the
concentration as a number with its unit (``ug/mL``), ``rate_ml_h`` the
current rate, ``dose``/``dose_unit`` the programmed dose if the pump knows
it (both empty otherwise), ``state`` one of :class:`PumpState`. A pump sends
a status sentence for every channel on each change and at least every
``HEARTBEAT_S`` seconds, and a heartbeat at that interval even with no
channel running, so silence always means trouble.
"""

from __future__ import annotations

import binascii
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Literal

from devices.protocols.decoding import Decoder
from devices.readings import PumpHeartbeat, PumpReport, PumpSentence, PumpState

HEARTBEAT_S = 2.0
MAX_RATE_ML_H = 1200.0  # the fastest volumetric pumps stop at 999-1200 mL/h
MAX_CONCENTRATION = 1.0e6
MAX_SENTENCE = 160
SEQUENCE_MODULUS = 1 << 16

_NAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
_UNIT = re.compile(r"[A-Za-z/]{1,12}")


PumpProtocol = Literal["v1", "v2"]
PROTOCOL_VERSIONS: tuple[PumpProtocol, ...] = ("v1", "v2")
DEFAULT_PROTOCOL: PumpProtocol = "v2"


def _xor8(data: bytes) -> int:
    return reduce(operator.xor, data, 0)


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, as the transducer frames: poly 0x1021, init 0xFFFF (C in binascii)."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class SentenceFormat:
    """One version of the format: its sentence ids and its checksum."""

    version: PumpProtocol
    report: str
    heartbeat: str
    digits: int  # hex digits after '*'
    checksum: Callable[[bytes], int]

    def frame(self, body: str) -> bytes:
        """``$body*checksum`` CR LF."""
        value = self.checksum(body.encode("ascii"))
        return f"${body}*{value:0{self.digits}X}\r\n".encode("ascii")


FORMATS: dict[PumpProtocol, SentenceFormat] = {
    "v1": SentenceFormat("v1", "PMSTA", "PMHBT", 2, _xor8),
    "v2": SentenceFormat("v2", "PMST2", "PMHB2", 4, _crc16),
}


def sentence_format(protocol: str) -> SentenceFormat:
    """The format of a version name; a ValueError naming the versions otherwise."""
    for fmt in FORMATS.values():
        if fmt.version == protocol:
            return fmt
    known = ", ".join(PROTOCOL_VERSIONS)
    raise ValueError(f"pump protocol {protocol!r} is not one of {known}")


def _number(value: float) -> str:
    return f"{value:.6g}"


def encode_report(report: PumpReport, protocol: PumpProtocol = DEFAULT_PROTOCOL) -> bytes:
    """The status sentence for a report (``PMST2``, or ``PMSTA`` in v1), checksum and CR LF."""
    fmt = sentence_format(protocol)
    if report.concentration is None:
        raise ValueError("a pump sentence always states the concentration; this report has none")
    dose = "" if report.dose is None else _number(report.dose)
    fields = [
        fmt.report,
        report.pump_id,
        str(report.channel),
        str(report.sequence % SEQUENCE_MODULUS),
        report.drug_code,
        _number(report.concentration),
        report.concentration_unit,
        _number(report.rate_ml_h),
        dose,
        report.dose_unit or "",
        report.state.value,
    ]
    return fmt.frame(",".join(fields))


def encode_heartbeat(heartbeat: PumpHeartbeat, protocol: PumpProtocol = DEFAULT_PROTOCOL) -> bytes:
    """The heartbeat sentence (``PMHB2``, or ``PMHBT`` in v1)."""
    fmt = sentence_format(protocol)
    return fmt.frame(f"{fmt.heartbeat},{heartbeat.pump_id},{heartbeat.sequence % SEQUENCE_MODULUS}")


class FieldError(ValueError):
    """A sentence whose checksum holds but whose content no pump could mean."""


def _name(text: str, what: str) -> str:
    if not _NAME.fullmatch(text):
        raise FieldError(f"{what} {text!r} is not 1-16 letters, digits, '-' or '_'")
    return text


def _integer(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not (low <= int(text) <= high):
        raise FieldError(f"{what} {text!r} is not an integer in {low}..{high}")
    return int(text)


def _float(text: str, what: str, low: float, high: float, *, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FieldError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise FieldError(f"{what} {text} is impossible: it must be {bound} and at most {high:g}")
    return value


def _unit(text: str, what: str) -> str:
    if not _UNIT.fullmatch(text):
        raise FieldError(f"{what} {text!r} is not a unit such as ug/mL")
    return text


def _parse_report(name: str, fields: list[str]) -> PumpReport:
    if len(fields) != 10:
        raise FieldError(f"{name} has {len(fields)} fields, expected 10")
    pump, channel, seq, drug, conc, conc_unit, rate, dose, dose_unit, state = fields
    try:
        pump_state = PumpState(state)
    except ValueError:
        known = ", ".join(s.value for s in PumpState)
        raise FieldError(f"state {state!r} is not one of {known}") from None
    if bool(dose) != bool(dose_unit):
        raise FieldError(f"dose {dose!r} and dose unit {dose_unit!r} must be given together")
    return PumpReport(
        pump_id=_name(pump, "pump id"),
        channel=_integer(channel, "channel", 1, 16),
        sequence=_integer(seq, "sequence", 0, SEQUENCE_MODULUS - 1),
        drug_code=_name(drug, "drug code"),
        concentration=_float(conc, "concentration", 0.0, MAX_CONCENTRATION, low_open=True),
        concentration_unit=_unit(conc_unit, "concentration unit"),
        rate_ml_h=_float(rate, "rate (mL/h)", 0.0, MAX_RATE_ML_H),
        state=pump_state,
        dose=_float(dose, "dose", 0.0, MAX_CONCENTRATION) if dose else None,
        dose_unit=_unit(dose_unit, "dose unit") if dose_unit else None,
    )


def _parse_heartbeat(name: str, fields: list[str]) -> PumpHeartbeat:
    if len(fields) != 2:
        raise FieldError(f"{name} has {len(fields)} fields, expected 2")
    return PumpHeartbeat(
        _name(fields[0], "pump id"), _integer(fields[1], "sequence", 0, SEQUENCE_MODULUS - 1)
    )


class PumpLineDecoder(Decoder[PumpSentence]):
    """Incremental decoder of one version's sentences from any number of pumps.

    ``protocol`` is ``"v2"`` (CRC-16) unless the configuration asks for
    ``"v1"`` (8-bit XOR). Counts ``frames``, ``garbage_bytes`` (bytes outside
    a sentence), ``truncated`` (a sentence cut short: no checksum of the
    version's length), ``bad_checksum``, ``wrong_version`` (a sentence of the
    other version: the pump and the port's configuration disagree),
    ``unknown_sentence``, ``invalid_field`` (an impossible value: negative or
    absurd rate, unknown state...; the detail names the field, the value and
    the pump) and ``sequence_gap`` with ``lost_sentences`` per pump.
    """

    def __init__(self, protocol: PumpProtocol = DEFAULT_PROTOCOL) -> None:
        super().__init__()
        self.format = sentence_format(protocol)
        self.protocol = f"pump-nmea-{protocol}"
        self._parsers: dict[str, Callable[[str, list[str]], PumpSentence]] = {
            self.format.report: _parse_report,
            self.format.heartbeat: _parse_heartbeat,
        }
        self._other_versions = {
            name: fmt.version
            for fmt in FORMATS.values()
            if fmt is not self.format
            for name in (fmt.report, fmt.heartbeat)
        }
        self._pending = b""
        self._next_sequence: dict[str, int] = {}

    def _decode(self, data: bytes) -> list[PumpSentence]:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > MAX_SENTENCE:
            # Keep a sentence that began in the run: resynchronising at '$' must not
            # depend on how reads split the line.
            start = self._pending.rfind(b"$")
            if start < 0 or len(self._pending) - start > MAX_SENTENCE:
                start = len(self._pending)
            self._problem("garbage_bytes", f"{start} bytes without a line end", start)
            self._pending = self._pending[start:]
        sentences = []
        for line in lines:
            sentence = self._line(line.rstrip(b"\r"))
            if sentence is not None:
                sentences.append(sentence)
        return sentences

    def _line(self, line: bytes) -> PumpSentence | None:
        start = line.rfind(b"$")
        if start < 0:
            if line:
                self._problem("garbage_bytes", f"{len(line)} bytes with no '$'", len(line))
            return None
        if start:
            self._problem("garbage_bytes", f"{start} bytes before '$'", start)
        raw = line[start + 1 :]
        body, star, checksum = raw.rpartition(b"*")
        name = (body if star else raw).partition(b",")[0].decode("ascii", errors="replace")
        fmt = self.format
        other = self._other_versions.get(name)
        if other is not None:
            self._problem(
                "wrong_version",
                f"wrong protocol version: {name} is pump protocol {other}, this port reads "
                f"{fmt.version} (ports.pump_protocol)",
            )
            return None
        if not star or len(checksum) != fmt.digits:
            self._problem(
                "truncated",
                f"sentence {raw[:24].decode('ascii', errors='replace')!r}... has no "
                f"'*{'H' * fmt.digits}' checksum",
            )
            return None
        text = body.decode("ascii", errors="replace")
        expected = f"{fmt.checksum(body):0{fmt.digits}X}"
        if expected != checksum.decode("ascii", errors="replace").upper():
            self._problem(
                "bad_checksum",
                f"checksum {checksum.decode('ascii', errors='replace')} does not match "
                f"{text[:24]!r}...",
            )
            return None
        parser = self._parsers.get(name)
        if parser is None:
            self._problem(
                "unknown_sentence",
                f"sentence type {name[:12]!r} is not {fmt.report} or {fmt.heartbeat}",
            )
            return None
        fields = text.partition(",")[2].split(",")
        try:
            sentence = parser(name, fields)
        except FieldError as exc:
            self._problem("invalid_field", f"pump {fields[0][:16]!r}: {exc}")
            return None
        self._follow_sequence(sentence.pump_id, sentence.sequence)
        self.counts["frames"] += 1
        return sentence

    def _follow_sequence(self, pump: str, sequence: int) -> None:
        expected = self._next_sequence.get(pump)
        if expected is not None and sequence != expected:
            lost = (sequence - expected) % SEQUENCE_MODULUS
            if lost < SEQUENCE_MODULUS // 2:
                self.counts["lost_sentences"] += lost
                self._problem(
                    "sequence_gap", f"pump {pump}: {lost} sentences lost before {sequence}"
                )
        self._next_sequence[pump] = (sequence + 1) % SEQUENCE_MODULUS
