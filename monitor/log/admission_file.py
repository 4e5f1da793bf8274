"""The current admission, kept also in a small file beside the log (``admission.json``).

The patient's weight is what makes NEE (and so refractory detection)
possible. It lives in the log's ``admissions`` table, but a log that is
locked at start, or corrupt and moved aside, would lose it. So every
admission written to the log is also written here, atomically (a temporary
file, fsync, rename, fsync of the directory), where the bed's adjustments
are kept. The file is read when the log has no admission or cannot be
opened, and a new log is seeded from it; a good log always wins over the
file, and a bad file is a warning, never a failure.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ADMISSION_FILE = "admission.json"


@dataclass(frozen=True)
class KeptAdmission:
    """An admission as the log's ``admissions`` row holds it."""

    admission: int  # its id in the log that wrote the file
    utc: float  # when it started
    weight_kg: float | None
    by: str
    os_user: str


def latest_admission_row(conn: sqlite3.Connection) -> KeptAdmission | None:
    row = conn.execute(
        "SELECT id, utc, weight_kg, by, os_user FROM admissions ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else KeptAdmission(*row)


def save_admission(directory: Path, kept: KeptAdmission) -> None:
    """Write the file atomically; OSError if the directory cannot take it."""
    path = directory / ADMISSION_FILE
    text = json.dumps(asdict(kept), indent=1, allow_nan=False) + "\n"
    fd, name = tempfile.mkstemp(prefix=f".{ADMISSION_FILE}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_admission(directory: Path) -> tuple[KeptAdmission | None, str | None]:
    """The kept admission, or (None, why not) for a bad file; (None, None) when there is none."""
    path = directory / ADMISSION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"admission file {path} cannot be read ({exc}): ignored"
    try:
        data = json.loads(text)
        kept = KeptAdmission(
            int(data["admission"]), float(data["utc"]),
            None if data["weight_kg"] is None else float(data["weight_kg"]),
            str(data["by"]), str(data["os_user"]),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError) as exc:
        return None, f"admission file {path} is not a valid admission ({exc!r}): ignored"
    weight = kept.weight_kg
    if weight is not None and not (math.isfinite(weight) and weight > 0):
        return None, f"admission file {path} holds an impossible weight ({weight}): ignored"
    return kept, None
