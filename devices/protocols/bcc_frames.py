"""B. Braun Space BCC framing: requests, response blocks, character stuffing, the checksum.

A B. Braun SpaceCom/SpaceStation ("ComDevice") answers a host's requests
over RS-232 or TCP with frames of the form::

    <SOH>nnnnn<STX>bedId/1/1>information<ETX or ETB>ccccc<EOT>

``nnnnn`` is the length of the whole frame, SOH to EOT, and ``ccccc`` the
byte sum modulo 256 from SOH to ETX/ETB, both as five decimal digits. ETB
ends a block that more blocks follow (one block per pump of a ``MEM:GET``
answer), ETX the last. In a response the information is records separated
by RS, each ``time,address,parameter[,value]``. A ComDevice may stuff the
characters D and d out of its frames (D -> EX, E -> EE, d -> ex, e -> ee,
after the length and checksum were worked out on the plain frame); whether
it does is a setting on its web page, so a frame is taken as it came when
its length and checksum hold, else unstuffed. Facts from B. Braun's
Technical Interface Specification BCC (I0022_000030 v4.0, 2019) as the
peers below read it; see docs/protocols.md.
"""

from __future__ import annotations

from typing import NamedTuple

SOH, STX, ETX, EOT, ETB = 0x01, 0x02, 0x03, 0x04, 0x17
RS = 0x1E
ACK, NAK = b"\x06", b"\x15"
BED_SUFFIX = b"/1/1>"
DEFAULT_BED_ID = "1"  # what a host says before the ComDevice has told it its bed id
NO_VALUE = ("_NV", "_NA")  # no value, temporarily not available: never zero
# Digits, length and checksum around the information: SOH 5 STX ... ETX 5 EOT.
FRAME_OVERHEAD = 1 + 5 + 1 + 1 + 5 + 1

_STUFF = {ord("D"): b"EX", ord("E"): b"EE", ord("d"): b"ex", ord("e"): b"ee"}
_UNSTUFF = {b"EX": b"D", b"EE": b"E", b"ex": b"d", b"ee": b"e"}


class BccRecord(NamedTuple):
    """One quadruple: seconds since the ComDevice started, ``501xy`` address, code, value.

    ``value`` is None for "no value" (``_NV``, ``_NA``) and for a record
    that has none (the version answer ``time,50100,V3.30``).
    """

    time_s: int
    address: str
    parameter: str
    value: str | None


class BccFrame(NamedTuple):
    """A checked frame: the bed id it names, its information text, and whether more follow."""

    bed_id: str
    information: str
    more_follow: bool  # ended by ETB: the host acknowledges and the next block comes


def checksum(plain: bytes) -> int:
    """The BCC check of a plain (unstuffed) frame's bytes from SOH to ETX/ETB."""
    return sum(plain) & 0xFF


def stuff(plain: bytes) -> bytes:
    """A plain frame as a stuffing ComDevice sends it: no D or d left."""
    if not any(b in _STUFF for b in plain):
        return plain
    return b"".join(_STUFF.get(b, bytes((b,))) for b in plain)


def unstuff(wire: bytes) -> bytes | None:
    """The plain frame a stuffed one carries, left to right; None if it cannot be stuffed."""
    if b"E" not in wire and b"e" not in wire:
        return None if b"D" in wire or b"d" in wire else wire
    out = bytearray()
    i, n = 0, len(wire)
    while i < n:
        b = wire[i]
        if b in (ord("D"), ord("d")):
            return None  # a stuffing device never sends these
        if b in (ord("E"), ord("e")):
            plain = _UNSTUFF.get(wire[i : i + 2])
            if plain is None:
                return None
            out += plain
            i += 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


def encode_frame(bed_id: str, information: str, *, more_follow: bool = False) -> bytes:
    """A plain (unstuffed) frame; a request is ``area:command``, e.g. ``MEM:GET``."""
    end = ETB if more_follow else ETX
    body = bed_id.encode() + BED_SUFFIX + information.encode()
    length = FRAME_OVERHEAD + len(body)
    head = bytes((SOH,)) + b"%05d" % length + bytes((STX,)) + body + bytes((end,))
    return head + b"%05d" % checksum(head) + bytes((EOT,))


def request(bed_id: str, command: str) -> bytes:
    """A host's request, ``ADMIN:ALIVE``, ``ADMIN:VERSION``, ``MEM:GET`` or ``MEM:GETSLOT#xy``."""
    return encode_frame(bed_id, command)


class FrameError(ValueError):
    """Why a frame was refused; ``kind`` is the decoder's counter name."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def parse_frame(wire: bytes) -> BccFrame:
    """One frame from SOH to EOT as it came, stuffed or not; raises ``FrameError``."""
    plain = _checked(wire)
    if plain is None:
        unstuffed = unstuff(wire)
        plain = _checked(unstuffed) if unstuffed is not None else None
    if plain is None:
        raise FrameError("bad_checksum", _why_refused(wire))
    body = plain[7:-7]
    end = body.find(BED_SUFFIX)
    if end < 1 or end > 15:
        raise FrameError("malformed", "no bed id of 1-15 characters followed by /1/1>")
    try:
        bed_id = body[:end].decode("ascii")
        information = body[end + len(BED_SUFFIX) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError("malformed", f"text that is not UTF-8 at byte {exc.start}") from None
    return BccFrame(bed_id, information, plain[-7] == ETB)


def _checked(plain: bytes) -> bytes | None:
    """``plain`` if its length field, end markers and checksum hold, else None."""
    if len(plain) < FRAME_OVERHEAD or plain[6] != STX or plain[-7] not in (ETX, ETB):
        return None
    length, check = plain[1:6], plain[-6:-1]
    if not (length.isdigit() and check.isdigit()):
        return None
    if int(length) != len(plain) or int(check) != checksum(plain[:-6]):
        return None
    return plain


def _why_refused(wire: bytes) -> str:
    length, check = wire[1:6], wire[-6:-1]
    if not (length.isdigit() and check.isdigit()):
        return "length or checksum field not five digits"
    return (
        f"length field {int(length)} for {len(wire)} bytes, checksum field {int(check)} "
        f"for a sum of {checksum(wire[:-6])}, stuffed or not"
    )


def parse_records(information: str) -> list[BccRecord]:
    """The records of a response's information; raises ``FrameError`` naming the bad one."""
    records = []
    for k, text in enumerate(information.split(chr(RS))):
        fields = text.split(",", 3)
        if len(fields) < 3 or not fields[0].isdigit():
            raise FrameError("malformed", f"record {k + 1} {text[:40]!r} is not time,address,code")
        value = fields[3] if len(fields) == 4 else None
        records.append(
            BccRecord(int(fields[0]), fields[1], fields[2], None if value in NO_VALUE else value)
        )
    return records
