"""Opening the log's database file safely: create, migrate, or move a bad file aside.

A Pi's log directory may hold a file that is corrupt (a power cut during a
write to an SD card without a safe write cache), foreign (someone copied
another SQLite file there) or written by a newer monitor. None of these may
stop the monitor or be silently overwritten: the file is moved aside, with
its WAL, under a name that says why, and a new log starts. Each such move is
returned as a note for the log's first boot record and the console.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.configuration.config import Config
from monitor.log.schema import APPLICATION_ID, SCHEMA_VERSION, migrate, schema_version

DATABASE_NAME = "monitor.db"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000


class LogError(Exception):
    """The log cannot be used at all; the message names the path and the reason."""


class LogLocked(LogError):
    """Another process holds the log's write lock: it may be free again soon."""


def is_locked(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the write lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


@dataclass(frozen=True)
class OpenedLog:
    path: Path
    notes: tuple[str, ...]  # what was done to get here (a file moved aside, a migration)


def default_log_directory() -> Path:
    """``$XDG_DATA_HOME/monitor``, else ``~/.local/share/monitor``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "monitor"


def configured_log_directory(config: Config) -> Path:
    """``log.directory``, or the user's data directory when it is empty."""
    configured = config.text("log.directory").strip()
    return Path(configured).expanduser() if configured else default_log_directory()


def connect(
    path: Path,
    *,
    synchronous: str,
    max_pages: int | None = None,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, the given durability.

    ``busy_timeout_ms`` is how long a write waits for another connection's
    lock; ``check_same_thread=False`` for a connection opened on one thread
    and handed to another (never used by two at once).
    """
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        check_same_thread=check_same_thread,
    )
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise LogError(f"{path}: the file system does not support SQLite's WAL mode ({mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    if max_pages is not None:
        conn.execute(f"PRAGMA max_page_count = {max_pages}")
    return conn


def open_log_database(directory: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> OpenedLog:
    """The log's path, ready at the current schema; bad files are moved aside first.

    Raises LogError when the directory cannot hold a log at all (not
    creatable, read-only, not a directory), LogLocked when another process
    holds the write lock for longer than ``busy_timeout_ms``.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(f"cannot create the log directory {directory}: {exc.strerror}") from None
    path = directory / DATABASE_NAME
    notes: list[str] = []
    problem = _problem_with(path) if path.exists() else None
    if problem is not None:
        notes.append(_move_aside(path, *problem))
    try:
        conn = connect(path, synchronous="FULL", busy_timeout_ms=busy_timeout_ms)
    except sqlite3.Error as exc:
        raise log_error(f"cannot open the log {path}", exc) from None
    try:
        before = schema_version(conn)
        applied = migrate(conn)
        conn.execute("BEGIN IMMEDIATE")  # proves the file is writable now, not at the first alarm
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise log_error(f"cannot write the log {path}", exc) from None
    finally:
        conn.close()
    if applied and before > 0:
        notes.append(f"log {path}: schema migrated from version {before} to {applied[-1]}")
    return OpenedLog(path, tuple(notes))


def log_error(what: str, exc: sqlite3.Error) -> LogError:
    """``what`` failed: LogLocked when another process holds the lock, else LogError."""
    if is_locked(exc):
        return LogLocked(f"{what}: locked by another process ({exc})")
    return LogError(f"{what}: {exc}")


def _problem_with(path: Path) -> tuple[str, str] | None:
    """(tag, reason) when the file is not a usable log of this monitor, else None."""
    try:
        with path.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise LogError(f"cannot read the log {path}: {exc.strerror}") from None
    if not header:
        return None  # an empty file: SQLite makes it a database
    if header != SQLITE_HEADER:
        return "foreign", "is not an SQLite database"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return "corrupt", f"cannot be opened ({exc})"
    try:
        check = [row[0] for row in conn.execute("PRAGMA quick_check")]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = schema_version(conn)
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        if is_locked(exc):  # held by another process, not damaged: never moved aside
            raise log_error(f"cannot check the log {path}", exc) from None
        return "corrupt", f"cannot be read ({exc})"
    finally:
        conn.close()
    if check != ["ok"]:
        return "corrupt", f"fails SQLite's integrity check ({'; '.join(check[:3])})"
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        return "foreign", "is an SQLite database of another program"
    if version > SCHEMA_VERSION:
        return "newer", (
            f"was written by a newer monitor (schema {version}; this one knows up to "
            f"{SCHEMA_VERSION})"
        )
    return None


def _move_aside(path: Path, tag: str, reason: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
    try:
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.rename(target.with_name(target.name + suffix))
        path.rename(target)
    except OSError as exc:
        raise LogError(f"the log {path} {reason}, and cannot be moved aside: {exc}") from None
    return f"log {path} {reason}: moved to {target.name}; a new log was started"
