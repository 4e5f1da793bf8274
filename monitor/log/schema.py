"""The log's SQLite schema, versioned, with forward migrations.

``PRAGMA user_version`` holds the schema version and ``PRAGMA
application_id`` marks the file as this monitor's, so a foreign SQLite file
is told apart from an old log. Each entry of ``MIGRATIONS`` takes a database
from version N-1 to N inside one transaction; a new version appends an
entry and never edits a published one. docs/log.md describes every table.

Every clinical row carries ``boot`` (the monitor start that wrote it, see
``boots``), ``utc`` (wall time, seconds since the epoch, for people) and
``stream_s`` (stream time of that boot, for durations): a wall-clock step
never changes a duration computed from stream time.
"""

from __future__ import annotations

import sqlite3

APPLICATION_ID = 0x4D4F4E31  # "MON1"

_V1 = """
CREATE TABLE admissions (
    id INTEGER PRIMARY KEY,
    utc REAL NOT NULL,
    weight_kg REAL,
    by TEXT NOT NULL,
    os_user TEXT NOT NULL
);
CREATE TABLE boots (
    id INTEGER PRIMARY KEY,
    admission INTEGER NOT NULL REFERENCES admissions(id),
    uuid TEXT NOT NULL,
    kernel_boot_id TEXT NOT NULL,
    utc REAL NOT NULL,
    boottime_s REAL NOT NULL,
    software TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    resumed_from INTEGER REFERENCES boots(id),
    origin_s REAL NOT NULL,
    gap_s REAL,
    gap_exact INTEGER,
    ended_utc REAL,
    end_reason TEXT
);
CREATE TABLE trends (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    boottime_s REAL NOT NULL,
    map_mmhg REAL,
    systolic_mmhg REAL,
    diastolic_mmhg REAL,
    pulse_rate_bpm REAL,
    clean_coverage REAL NOT NULL,
    artifact_coverage REAL NOT NULL,
    nee REAL,
    no_pulse INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX trends_by_time ON trends (boot, stream_s);
CREATE TABLE pump_events (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    pump TEXT NOT NULL,
    channel INTEGER NOT NULL,
    drug TEXT NOT NULL,
    concentration REAL NOT NULL,
    concentration_unit TEXT NOT NULL,
    rate_ml_h REAL NOT NULL,
    pump_state TEXT NOT NULL,
    nee REAL
);
CREATE TABLE states (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    map_mmhg REAL,
    nee REAL,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE alarms (
    id INTEGER PRIMARY KEY,
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    name TEXT NOT NULL,
    priority TEXT NOT NULL,
    transition TEXT NOT NULL,
    map_mmhg REAL,
    nee REAL,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE events (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    boot INTEGER,
    stream_s REAL,
    utc REAL NOT NULL,
    by TEXT NOT NULL,
    os_user TEXT NOT NULL,
    action TEXT NOT NULL,
    key TEXT NOT NULL,
    old TEXT,
    new TEXT,
    file TEXT,
    file_hash TEXT
);
"""

# Version 2: every beat, optionally (log.beats = "on"); sized in docs/log.md.
_V2 = """
CREATE TABLE beats (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    systolic_mmhg REAL NOT NULL,
    diastolic_mmhg REAL NOT NULL,
    map_mmhg REAL NOT NULL,
    pulse_rate_bpm REAL NOT NULL,
    quality INTEGER NOT NULL
);
CREATE INDEX beats_by_time ON beats (boot, stream_s);
"""

# Version 3: an alarm's identity, the same on every row from raise to clear, across
# restarts (NULL on rows written before it existed).
_V3 = """
ALTER TABLE alarms ADD COLUMN alarm_id TEXT;
CREATE INDEX alarms_by_alarm_id ON alarms (alarm_id);
"""

# Version 4: a pump event's concentration may be unknown (NULL): a B. Braun pump
# programmed in mL/h states none. SQLite cannot drop NOT NULL in place, so the
# table is copied into its new form.
_V4 = """
CREATE TABLE pump_events_v4 (
    boot INTEGER NOT NULL,
    stream_s REAL NOT NULL,
    utc REAL NOT NULL,
    pump TEXT NOT NULL,
    channel INTEGER NOT NULL,
    drug TEXT NOT NULL,
    concentration REAL,
    concentration_unit TEXT NOT NULL,
    rate_ml_h REAL NOT NULL,
    pump_state TEXT NOT NULL,
    nee REAL
);
INSERT INTO pump_events_v4 SELECT * FROM pump_events;
DROP TABLE pump_events;
ALTER TABLE pump_events_v4 RENAME TO pump_events;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)

#: Tables pruned by retention and, first, when the disk is full. The others
#: (admissions, boots, states, alarms, audit) are the record and are kept.
BULK_TABLES = ("beats", "trends", "pump_events", "events")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Bring the schema up to ``target``; return the versions applied (none if current).

    Each step runs in its own transaction with the version bump, so a power
    cut mid-migration leaves the previous version intact.
    """
    applied = []
    for version in range(schema_version(conn) + 1, target + 1):
        statements = [s.strip() for s in MIGRATIONS[version - 1].split(";") if s.strip()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(version)
    return applied
