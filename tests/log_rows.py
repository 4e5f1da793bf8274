"""Reading a log's rows in a test: one short-lived connection per query, closed at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """``sql``'s rows from the database at ``path`` (a running monitor's log, too)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
