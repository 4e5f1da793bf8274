"""Wire captures: every byte a monitor and its devices exchanged, both ways, with its arrival time.

A capture taken beside a real bed (``monitor record``, ``monitor run
--capture``) reproduces a problem at a desk (``monitor sim
--replay-capture``), so the format is plain text an engineer can read, cut
and diff, and a power cut mid-line costs only that line:

    # monitor-capture 1 {"started_utc": "2026-12-06T20:30:00.123456Z", "software": "..."}
    # port {"name": "rack", "path": "/dev/ttyUSB1", "baud": 9600, "protocol": "bcc", ...}
    0.000000 rack tx 1b30...
    0.041500 rack rx 1b30...

The first line names the format and its version, then a JSON object. A
``# port`` line declares a port (JSON) before its first record; the others
are records: seconds since the capture began (monotonic, so a wall-clock
step never moves them), the port's name, ``rx`` (device to monitor) or
``tx`` (monitor to device), and the bytes in lowercase hex. Each port's
records are in time order; two ports' may interleave a few microseconds
out of order (their readers run on their own threads). Other lines
beginning with ``#`` are comments. Full description: docs/protocols.md,
"Wire captures".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

MAGIC = "# monitor-capture"
VERSION = 1
PORT_LINE = "# port "
Direction = Literal["rx", "tx"]
DIRECTIONS = ("rx", "tx")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]*")


class CaptureError(ValueError):
    """A capture that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class CapturedPort:
    """A port as the capture declares it (``protocol`` "" and ``role`` "": recorded passively)."""

    name: str
    path: str
    baud: int
    protocol: str = ""
    role: str = ""

    def line(self) -> str:
        fields = {
            "name": self.name,
            "path": self.path,
            "baud": self.baud,
            "protocol": self.protocol,
            "role": self.role,
        }
        return PORT_LINE + json.dumps(fields)


@dataclass(frozen=True)
class Record:
    t_s: float
    port: str
    direction: Direction
    data: bytes

    def line(self) -> str:
        return f"{self.t_s:.6f} {self.port} {self.direction} {self.data.hex()}"


@dataclass(frozen=True)
class Capture:
    """A whole capture read back: its header, its ports, its records in file order."""

    header: dict[str, object]
    ports: dict[str, CapturedPort]
    records: list[Record]
    truncated: bool  # the last line was cut short (a power cut while writing): left out

    @property
    def duration_s(self) -> float:
        return max((r.t_s for r in self.records), default=0.0)

    def received(self, port: str) -> bytes:
        """Everything ``port``'s device sent, in order."""
        return b"".join(r.data for r in self.records if r.port == port and r.direction == "rx")


def header_line(fields: dict[str, object]) -> str:
    return f"{MAGIC} {VERSION} {json.dumps(fields)}"


def parse_capture(text: str, where: str) -> Capture:
    """A capture's text; CaptureError names ``where`` and the line of the first problem."""
    lines = text.split("\n")
    truncated = bool(lines) and lines[-1] != ""
    if truncated:
        lines = lines[:-1]  # a record cut short by a power cut is no record
    elif lines:
        lines = lines[:-1]
    if not lines or not lines[0].startswith(MAGIC + " "):
        raise CaptureError(f"{where}: line 1: not a capture (it must begin with '{MAGIC}')")
    header = _header(lines[0], where)
    ports: dict[str, CapturedPort] = {}
    records: list[Record] = []
    last_t: dict[str, float] = {}  # per port: each port's reader writes in its own order
    for number, line in enumerate(lines[1:], start=2):
        at = f"{where}: line {number}"
        if line.startswith(PORT_LINE):
            port = _port(line[len(PORT_LINE) :], at)
            ports[port.name] = port
        elif line.startswith("#") or not line.strip():
            continue
        else:
            record = _record(line, at, ports)
            if record.t_s < last_t.get(record.port, 0.0):
                raise CaptureError(
                    f"{at}: time {record.t_s:.6f} s is before {record.port}'s record above"
                )
            last_t[record.port] = record.t_s
            records.append(record)
    return Capture(header, ports, records, truncated)


def read_capture(path: str | Path) -> Capture:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CaptureError(f"cannot read the capture {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CaptureError(f"{path}: not a capture (not text: {exc.reason})") from None
    return parse_capture(text, str(path))


def _header(line: str, where: str) -> dict[str, object]:
    version, _, rest = line[len(MAGIC) + 1 :].partition(" ")
    if version != str(VERSION):
        raise CaptureError(
            f"{where}: line 1: capture version {version!r}; this monitor reads version {VERSION}"
        )
    try:
        fields = json.loads(rest) if rest.strip() else {}
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{where}: line 1: the header is not JSON ({exc.msg})") from None
    if not isinstance(fields, dict):
        raise CaptureError(f"{where}: line 1: the header must be a JSON object")
    return fields


def _port(text: str, at: str) -> CapturedPort:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{at}: the port is not JSON ({exc.msg})") from None
    if not isinstance(fields, dict):
        raise CaptureError(f"{at}: a port must be a JSON object")
    name, path, baud = fields.get("name"), fields.get("path"), fields.get("baud")
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise CaptureError(
            f"{at}: a port needs a name of letters, digits, - _ : or ., got {name!r}"
        )
    if not isinstance(path, str) or isinstance(baud, bool) or not isinstance(baud, int):
        raise CaptureError(f"{at}: port {name} needs a path (text) and a baud (a whole number)")
    return CapturedPort(
        name, path, baud, str(fields.get("protocol") or ""), str(fields.get("role") or "")
    )


def _record(line: str, at: str, ports: dict[str, CapturedPort]) -> Record:
    parts = line.split(" ")
    if len(parts) != 4:
        raise CaptureError(f"{at}: a record is 'SECONDS PORT rx|tx HEX', got {line[:60]!r}")
    t_text, port, direction, hex_text = parts
    try:
        t_s = float(t_text)
    except ValueError:
        raise CaptureError(f"{at}: time {t_text[:20]!r} is not a number of seconds") from None
    if not (t_s >= 0.0 and t_s != float("inf")):
        raise CaptureError(f"{at}: time {t_text[:20]!r} must be 0 s or more")
    if port not in ports:
        raise CaptureError(f"{at}: port {port!r} was not declared by a '# port' line above")
    if direction not in DIRECTIONS:
        raise CaptureError(f"{at}: direction {direction[:10]!r} is neither rx nor tx")
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        raise CaptureError(f"{at}: the bytes are not hexadecimal ({hex_text[:20]!r}...)") from None
    if not data:
        raise CaptureError(f"{at}: a record carries at least one byte")
    return Record(t_s, port, cast(Direction, direction), data)
