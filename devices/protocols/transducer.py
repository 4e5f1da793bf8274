"""The pressure transducer's wire formats: a framed binary stream and a plain ASCII one.

Binary frames borrow the good habits of the serial protocols of real
monitors (GE S/5, IntelliVue, HDLC): a 0x7E flag byte opens and closes every
frame and never occurs inside one (0x7E and 0x7D in the payload are sent as
0x7D followed by the byte XOR 0x20), so a receiver resynchronises at the
next flag whatever garbage came before. The payload, little-endian::

    offset size  field
    0      1     version (1)
    1      1     status flags (TransducerStatus)
    2      2     sample rate, Hz (uint16)
    4      4     sequence: index of the frame's first sample, modulo 2**32
    8      2     zero_counts (int16)            } calibration: mmHg = (counts -
    10     4     nano_mmhg_per_count (uint32)   } zero_counts) * nano_mmhg_per_count / 1e9
    14     2n    n samples, int16 counts, 1 <= n <= MAX_SAMPLES_PER_FRAME
    14+2n  2     CRC-16/CCITT-FALSE of bytes 0..14+2n-1, big-endian

A front end that reports millimetres of mercury in fixed point sends
``FIXED_POINT_MMHG`` (0 counts, 0.01 mmHg per count: an integer scale
in nano-mmHg, so 0.01 arrives exact); one that sends raw ADC
counts sends its current calibration, which changes after each zeroing.
Because the sequence counts samples, not frames, a gap in it is exactly the
number of samples lost.

The ASCII mode is what a hobby microcontroller prints: one reading in mmHg
per line (``"93.4\\r\\n"``), no sequence, no status, at a rate the
configuration states. A garbled line still stands for one sample period, so
it becomes a missing sample (NaN) rather than disappearing and shortening time.
"""

from __future__ import annotations

import binascii
import math
import struct
from dataclasses import dataclass

import numpy as np

from devices.protocols.decoding import Decoder
from devices.readings import TransducerFrame, TransducerStatus

VERSION = 1
FLAG = 0x7E
ESCAPE = 0x7D
MAX_SAMPLES_PER_FRAME = 250
SEQUENCE_MODULUS = 1 << 32

_HEADER = struct.Struct("<BBHIhI")
_CRC = struct.Struct(">H")
_MIN_PAYLOAD = _HEADER.size + 2 + _CRC.size
_MAX_PAYLOAD = _HEADER.size + 2 * MAX_SAMPLES_PER_FRAME + _CRC.size
_INT16_MIN, _INT16_MAX = -32768, 32767
_FLAG_BYTE = bytes([FLAG])


KNOWN_STATUS = int(TransducerStatus.ZEROING | TransducerStatus.FAULT | TransducerStatus.OVERRANGE)


@dataclass(frozen=True)
class Calibration:
    """Linear map from int16 counts on the wire to mmHg, as the wire carries it."""

    zero_counts: int
    nano_mmhg_per_count: int

    def __post_init__(self) -> None:
        if not (_INT16_MIN <= self.zero_counts <= _INT16_MAX):
            raise ValueError(f"zero_counts must fit in int16, got {self.zero_counts}")
        if not (1 <= self.nano_mmhg_per_count <= 0xFFFFFFFF):
            raise ValueError(
                f"nano_mmhg_per_count must be 1..2**32-1, got {self.nano_mmhg_per_count}"
            )

    @property
    def mmhg_per_count(self) -> float:
        return self.nano_mmhg_per_count / 1e9


FIXED_POINT_MMHG = Calibration(0, 10_000_000)


def _crc16(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF (binascii does it in C)."""
    return binascii.crc_hqx(data, 0xFFFF)


def _escape(payload: bytes) -> bytes:
    return payload.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")


def _unescape(body: bytes) -> bytes:
    # 0x7D only ever starts an escape, and 0x5D/0x5E follow it, so two
    # left-to-right replacements undo _escape exactly.
    return body.replace(b"\x7d\x5e", b"\x7e").replace(b"\x7d\x5d", b"\x7d")


def encode_frame(
    samples_mmhg: np.ndarray,
    *,
    sequence: int,
    sample_rate: int,
    status: int = 0,
    calibration: Calibration = FIXED_POINT_MMHG,
) -> bytes:
    """One binary frame, flags included. Samples beyond the int16 range set OVERRANGE.

    Raises ValueError for what no front end could send: no samples, too many,
    NaN, or a rate or sequence out of its field.
    """
    values = np.asarray(samples_mmhg, dtype=np.float64)
    if not (1 <= values.size <= MAX_SAMPLES_PER_FRAME) or values.ndim != 1:
        raise ValueError(f"a frame holds 1 to {MAX_SAMPLES_PER_FRAME} samples, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError("samples must be finite; send a lost stretch as a sequence gap")
    if not (1 <= sample_rate <= 0xFFFF):
        raise ValueError(f"sample rate must be 1..65535 Hz, got {sample_rate}")
    if not (0 <= sequence < SEQUENCE_MODULUS):
        raise ValueError(f"sequence must be 0..2**32-1, got {sequence}")
    counts = np.rint(values / calibration.mmhg_per_count) + calibration.zero_counts
    if np.any((counts < _INT16_MIN) | (counts > _INT16_MAX)):
        status |= TransducerStatus.OVERRANGE
        counts = np.clip(counts, _INT16_MIN, _INT16_MAX)
    payload = (
        _HEADER.pack(
            VERSION,
            int(status),
            sample_rate,
            sequence,
            calibration.zero_counts,
            calibration.nano_mmhg_per_count,
        )
        + counts.astype("<i2").tobytes()
    )
    payload += _CRC.pack(_crc16(payload))
    return _FLAG_BYTE + _escape(payload) + _FLAG_BYTE


class BinaryTransducerDecoder(Decoder[TransducerFrame]):
    """Incremental decoder of binary transducer frames.

    Counts ``frames``, ``garbage_bytes`` (bytes outside any frame),
    ``truncated`` (a frame too short to hold a header and a sample),
    ``oversized`` (bytes between flags beyond the longest frame),
    ``bad_checksum``, ``malformed`` (odd sample bytes, zero rate, bad
    calibration), ``unsupported_version``, ``unknown_status_bits``,
    ``sequence_gap`` with ``missing_samples``, ``sequence_restart`` and
    ``rate_change``. Damage costs only the frames it touched.
    """

    protocol = "binary"

    def __init__(self) -> None:
        super().__init__()
        self._pending = b""  # bytes after the last flag
        self._synced = False  # a flag has been seen, so _pending starts a frame
        self._next_sequence: int | None = None
        self._rate: int | None = None

    def _decode(self, data: bytes) -> list[TransducerFrame]:
        pieces = (self._pending + data).split(_FLAG_BYTE)
        self._pending = pieces.pop()
        if not self._synced:
            if pieces:
                self._synced = True
                if pieces[0]:
                    self._problem(
                        "garbage_bytes",
                        f"{len(pieces[0])} bytes before the first frame",
                        len(pieces[0]),
                    )
                pieces = pieces[1:]
            elif len(self._pending) > 2 * _MAX_PAYLOAD:
                self._problem(
                    "garbage_bytes",
                    f"{len(self._pending)} bytes without a frame flag",
                    len(self._pending),
                )
                self._pending = b""
        elif len(self._pending) > 2 * _MAX_PAYLOAD:
            # No closing flag where a frame must have ended: noise, not a frame.
            self._problem("oversized", f"{len(self._pending)} bytes without a closing flag")
            self._pending = b""
            self._synced = False
        frames = []
        for piece in pieces:
            if piece:
                frame = self._frame(piece)
                if frame is not None:
                    frames.append(frame)
        return frames

    def _frame(self, body: bytes) -> TransducerFrame | None:
        payload = _unescape(body) if b"\x7d" in body else body
        size = len(payload)
        if size < _MIN_PAYLOAD:
            self._problem("truncated", f"frame of {size} bytes, shorter than {_MIN_PAYLOAD}")
            return None
        if size > _MAX_PAYLOAD:
            self._problem("oversized", f"frame of {size} bytes, longer than {_MAX_PAYLOAD}")
            return None
        (crc,) = _CRC.unpack_from(payload, size - 2)
        if _crc16(memoryview(payload)[:-2]) != crc:
            self._problem("bad_checksum", f"CRC mismatch in a {size}-byte frame")
            return None
        version, status, rate, sequence, zero, nano_scale = _HEADER.unpack_from(payload)
        if version != VERSION:
            self._problem("unsupported_version", f"protocol version {version}, expected {VERSION}")
            return None
        sample_bytes = size - _HEADER.size - _CRC.size
        if sample_bytes % 2 or rate == 0 or nano_scale == 0:
            self._problem(
                "malformed",
                f"frame seq {sequence}: {sample_bytes} sample bytes, rate {rate} Hz, "
                f"calibration {nano_scale} nano-mmHg/count",
            )
            return None
        if status & ~KNOWN_STATUS:
            self._problem("unknown_status_bits", f"status 0x{status:02x} has undefined bits")
            status &= KNOWN_STATUS
        counts = np.frombuffer(payload, "<i2", sample_bytes // 2, _HEADER.size)
        scale = nano_scale / 1e9
        # int32: int16 counts minus a non-zero zero_counts can leave the int16 range.
        samples = (counts.astype(np.int32) - zero) * scale if zero else counts * scale
        missing = self._follow_sequence(sequence, rate, counts.size)
        self.counts["frames"] += 1
        return TransducerFrame(samples, rate, TransducerStatus(status), sequence, missing)

    def _follow_sequence(self, sequence: int, rate: int, n: int) -> int:
        """Samples lost before this frame; a backwards jump is a front-end restart, not a gap."""
        missing = 0
        if self._rate is not None and rate != self._rate:
            self._problem("rate_change", f"sample rate changed from {self._rate} to {rate} Hz")
        elif self._next_sequence is not None and sequence != self._next_sequence:
            ahead = (sequence - self._next_sequence) % SEQUENCE_MODULUS
            if ahead < SEQUENCE_MODULUS // 2:
                missing = ahead
                self.counts["missing_samples"] += ahead
                self._problem("sequence_gap", f"{ahead} samples missing before sequence {sequence}")
            else:
                self._problem(
                    "sequence_restart",
                    f"sequence went back from {self._next_sequence} to {sequence}",
                )
        self._rate = rate
        self._next_sequence = (sequence + n) % SEQUENCE_MODULUS
        return missing


ASCII_MAX_LINE = 32
ASCII_RANGE_MMHG = (-50.0, 400.0)


def encode_ascii(samples_mmhg: np.ndarray) -> bytes:
    """Readings as a microcontroller's ``println`` would send them, one per line, 0.1 mmHg."""
    return "".join(f"{value:.1f}\r\n" for value in np.asarray(samples_mmhg, float)).encode()


class AsciiTransducerDecoder(Decoder[TransducerFrame]):
    """One reading in mmHg per line, at a rate the configuration states.

    Counts ``frames`` (one per feed that completed any line), ``readings``,
    ``bad_line`` (not a number, or outside -50..400 mmHg: kept as a missing
    sample) and ``garbage_bytes`` (a run longer than any reading, dropped).
    """

    protocol = "ascii"

    def __init__(self, sample_rate: float) -> None:
        super().__init__()
        if not (1 <= sample_rate <= 0xFFFF):
            raise ValueError(f"sample rate must be 1..65535 Hz, got {sample_rate}")
        self.sample_rate = sample_rate
        self._pending = b""
        self._dropping = False  # inside an over-long run: its end is no reading either

    def _decode(self, data: bytes) -> list[TransducerFrame]:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if self._dropping and lines:
            rest = lines.pop(0)
            if rest:
                self._problem(
                    "garbage_bytes", f"{len(rest)} more bytes of an over-long line", len(rest)
                )
            self._dropping = False
        if len(self._pending) > ASCII_MAX_LINE:
            self._problem(
                "garbage_bytes",
                f"{len(self._pending)} bytes without a line end",
                len(self._pending),
            )
            self._pending = b""
            self._dropping = True
        values = []
        low, high = ASCII_RANGE_MMHG
        for line in lines:
            # Measured before stripping, like the pending run above, so that how
            # reads split the stream cannot change what is a reading.
            if len(line) > ASCII_MAX_LINE:
                self._problem("garbage_bytes", f"{len(line)}-byte line is no reading", len(line))
                continue
            text = line.strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (low <= value <= high):
                self._problem("bad_line", f"{text[:ASCII_MAX_LINE]!r} is not a reading in mmHg")
                value = math.nan
            values.append(value)
        if not values:
            return []
        self.counts["frames"] += 1
        self.counts["readings"] += len(values)
        samples = np.array(values, dtype=np.float64)
        return [TransducerFrame(samples, self.sample_rate, TransducerStatus(0))]
