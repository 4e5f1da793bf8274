"""Philips IntelliVue Data Export over MIB/RS-232: frames, their transparency and their FCS.

On the wire a message is ``BOF | escaped(header | user data | FCS) | EOF``:
BOF 0xC0, EOF 0xC1; the header is the protocol id (0x11, Data Export),
the message type (0x01) and the user data's length (16 bits, big-endian);
the FCS is PPP's 16-bit frame check (RFC 1662; CRC-16/X-25) over header
and user data before escaping, sent least significant byte first. Inside
the flags, 0xC0, 0xC1 and 0x7D are sent as 0x7D and the byte XOR 0x20
(header and FCS included); 0x7D before an EOF aborts the frame. Facts from
``mindleaving/patient-monitor-datalogger`` (MIT) and
``xeonfusion/VSCaptureMP`` (LGPL), read for facts only (docs/protocols.md).
"""

from __future__ import annotations

from dataclasses import dataclass

BOF, EOF, ESCAPE = 0xC0, 0xC1, 0x7D
ESCAPE_XOR = 0x20
DATA_EXPORT = 0x11
MESSAGE_TYPE = 0x01
HEADER_BYTES = 4
FCS_BYTES = 2
# Running the frame check over a frame and its own FCS leaves this residue (RFC 1662).
GOOD_FCS = 0xF0B8
_ESCAPED = {BOF, EOF, ESCAPE}


def _fcs_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0x8408 if value & 1 else value >> 1
        table.append(value)
    return tuple(table)


_TABLE = _fcs_table()


def fcs_run(data: bytes, fcs: int = 0xFFFF) -> int:
    """PPP's frame check over ``data``, continued from ``fcs`` (not complemented)."""
    for byte in data:
        fcs = (fcs >> 8) ^ _TABLE[(fcs ^ byte) & 0xFF]
    return fcs


def fcs16(data: bytes) -> int:
    """The FCS a sender puts after ``data``: the one's complement of the running check."""
    return fcs_run(data) ^ 0xFFFF


def escape(plain: bytes) -> bytes:
    out = bytearray()
    for byte in plain:
        if byte in _ESCAPED:
            out += bytes((ESCAPE, byte ^ ESCAPE_XOR))
        else:
            out.append(byte)
    return bytes(out)


def encode_frame(user_data: bytes) -> bytes:
    """One Data Export message as the RS-232 port carries it."""
    if len(user_data) > 0xFFFF:
        raise ValueError(f"a frame carries at most 65535 bytes, got {len(user_data)}")
    plain = bytes((DATA_EXPORT, MESSAGE_TYPE)) + len(user_data).to_bytes(2, "big") + user_data
    return bytes((BOF,)) + escape(plain + fcs16(plain).to_bytes(2, "little")) + bytes((EOF,))


class FrameError(ValueError):
    """Why a frame between its flags was refused; ``kind`` is its loss counter's name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Frame:
    protocol_id: int
    message_type: int
    user_data: bytes


def unescape(body: bytes) -> bytes:
    """The bytes between the flags as sent before escaping; FrameError if an escape dangles."""
    out = bytearray()
    pending = False
    for byte in body:
        if pending:
            out.append(byte ^ ESCAPE_XOR)
            pending = False
        elif byte == ESCAPE:
            pending = True
        else:
            out.append(byte)
    if pending:
        raise FrameError("truncated", "the frame ends in an escape byte")
    return bytes(out)


def parse_body(body: bytes) -> Frame:
    """The escaped bytes between BOF and EOF, checked: FrameError says what is wrong."""
    plain = unescape(body)
    if len(plain) < HEADER_BYTES + FCS_BYTES:
        raise FrameError("truncated", f"{len(plain)} bytes: shorter than a header and its FCS")
    if fcs_run(plain) != GOOD_FCS:
        raise FrameError("bad_checksum", f"frame check fails over {len(plain)} bytes")
    length = int.from_bytes(plain[2:4], "big")
    data = plain[HEADER_BYTES:-FCS_BYTES]
    if length != len(data):
        raise FrameError(
            "bad_length", f"the header says {length} bytes of data, the frame holds {len(data)}"
        )
    if plain[0] != DATA_EXPORT:
        raise FrameError("bad_protocol", f"protocol id 0x{plain[0]:02x}, not Data Export (0x11)")
    return Frame(plain[0], plain[1], data)


#: Longest escaped body believed: twice the largest message a monitor sends over RS-232
#: (peers cite 1000 and 1456 bytes), and every byte escaped; beyond it is noise.
MAX_BODY_BYTES = 2 * (HEADER_BYTES + 1456 + FCS_BYTES)


@dataclass(frozen=True)
class Damage:
    """A frame (or bytes) refused: the counter's name, and where in the stream it began."""

    kind: str
    offset: int
    detail: str


class FrameReader:
    """Whole frames out of a byte stream, however the reads cut it; never raises.

    Bytes outside BOF ... EOF are garbage. A BOF before the EOF ends the
    frame it interrupts (cut short, as by a plugged cable), and ``7D C1``
    aborts a frame as the sender means it; each refusal is returned with
    the stream offset where its frame began, and costs only that frame.
    """

    def __init__(self) -> None:
        self._body = bytearray()
        self._in_frame = False
        self._start = 0  # stream offset of the current frame's BOF
        self._offset = 0  # stream offset of the next byte fed
        self._garbage_from: int | None = None

    def feed(self, data: bytes) -> tuple[list[Frame], list[Damage]]:
        frames: list[Frame] = []
        damage: list[Damage] = []
        for byte in data:
            offset, self._offset = self._offset, self._offset + 1
            if byte == BOF:
                self._end_garbage(offset, damage)
                if self._in_frame:
                    damage.append(Damage("truncated", self._start, "cut short by a BOF"))
                self._in_frame, self._start = True, offset
                self._body.clear()
            elif not self._in_frame:
                if self._garbage_from is None:
                    self._garbage_from = offset
            elif byte == EOF:
                self._in_frame = False
                self._finish(frames, damage)
            elif len(self._body) >= MAX_BODY_BYTES:
                damage.append(Damage("too_long", self._start, f"over {MAX_BODY_BYTES} bytes"))
                self._in_frame = False
                self._garbage_from = offset
            else:
                self._body.append(byte)
        return frames, damage

    def _finish(self, frames: list[Frame], damage: list[Damage]) -> None:
        body = bytes(self._body)
        self._body.clear()
        if body.endswith(bytes((ESCAPE,))):
            damage.append(Damage("aborted", self._start, "the sender aborted the frame"))
            return
        try:
            frames.append(parse_body(body))
        except FrameError as exc:
            damage.append(Damage(exc.kind, self._start, str(exc)))

    def _end_garbage(self, offset: int, damage: list[Damage]) -> None:
        if self._garbage_from is not None:
            n = offset - self._garbage_from
            damage.append(Damage("garbage_bytes", self._garbage_from, f"{n} bytes outside a frame"))
            self._garbage_from = None
