"""Admissions and audit records written to the log from outside a running bedside.

``monitor patient new`` and ``patient set`` (a new patient, a corrected
weight), ``monitor config set`` (an audited configuration change) and the
demo write to the same database as the bedside, from their own process,
whether a bedside runs or not. Each write is one transaction on its own
connection with ``synchronous=FULL``, the record's promise: the call returns
only once the commit is on the disk. A running bedside sees a new admission
on its next reload (``BedsideLog.latest_admission``). The admission row, the
clocks and the transaction helper are the bedside writer's, imported from
``monitor.log.writer`` rather than copied, so both write the same rows.
Each admission change is also kept in the admission file beside the log
(``monitor.log.admission_file``), once the log has it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.log.admission_file import KeptAdmission, latest_admission_row, save_admission
from monitor.log.store import LogError, connect, open_log_database
from monitor.log.writer import SYSTEM_CLOCKS, Clocks, Transaction, insert_admission, os_user

log = logging.getLogger(__name__)


def _write_outside(directory: Path, write: Callable[[sqlite3.Connection], Any]) -> Any:
    """One durable transaction on the log from outside a running monitor (the admin commands)."""
    opened = open_log_database(directory)
    conn = connect(opened.path, synchronous="FULL")
    try:
        with Transaction(conn):
            return write(conn)
    finally:
        conn.close()


def start_admission(
    directory: Path, weight_kg: float | None, by: str, clocks: Clocks = SYSTEM_CLOCKS
) -> int:
    """A new patient from outside a running monitor (``monitor patient new``, the demo)."""

    def write(conn: sqlite3.Connection) -> tuple[int, KeptAdmission | None]:
        admission = insert_admission(conn, clocks.utc(), weight_kg, by, None)
        return admission, latest_admission_row(conn)

    admission, kept = _write_outside(directory, write)
    _keep_admission_file(directory, kept)
    return admission


def set_admission_weight(
    directory: Path, weight_kg: float, by: str, clocks: Clocks = SYSTEM_CLOCKS
) -> tuple[int, float | None]:
    """Correct the current admission's weight (audited); returns it and the old weight."""

    def write(conn: sqlite3.Connection) -> tuple[int, float | None, KeptAdmission | None]:
        row = conn.execute("SELECT id, weight_kg FROM admissions ORDER BY id DESC LIMIT 1")
        admission, old = row.fetchone() or (
            insert_admission(conn, clocks.utc(), None, by, None),
            None,
        )
        conn.execute("UPDATE admissions SET weight_kg = ? WHERE id = ?", (weight_kg, admission))
        conn.execute(
            "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (None, None, clocks.utc(), by, os_user(), "weight", f"admission {admission}",
             None if old is None else f"{old:g} kg", f"{weight_kg:g} kg"),
        )  # fmt: skip
        return admission, old, latest_admission_row(conn)

    admission, old, kept = _write_outside(directory, write)
    _keep_admission_file(directory, kept)
    return admission, old


def _keep_admission_file(directory: Path, kept: KeptAdmission | None) -> None:
    """The log's latest admission, also in the admission file (a warning if it cannot be)."""
    if kept is None:
        return
    try:
        save_admission(directory, kept)
    except OSError as exc:
        log.warning("admission file not written in %s: %s", directory, exc)


def record_audit_outside(
    directory: Path,
    by: str,
    action: str,
    key: str,
    old: str | None,
    new: str | None,
    file: str | None = None,
    file_hash: str | None = None,
    clocks: Clocks = SYSTEM_CLOCKS,
) -> bool:
    """An audited change made outside a running monitor; False if the log cannot take it."""

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO audit (boot, stream_s, utc, by, os_user, action, key, old, new, file, "
            "file_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (None, None, clocks.utc(), by, os_user(), action, key, old, new, file, file_hash),
        )

    try:
        _write_outside(directory, write)
    except (sqlite3.Error, LogError, OSError) as exc:
        log.warning("log: audit record not written: %s", exc)
        return False
    return True
