"""The bedside log: SQLite that survives power loss, written by the bedside, read by everyone else.

Schema and migrations, safe opening, the writer (alarms committed before
they sound), admissions and audit written from other processes, the reader
and the trend report. May import ``monitor.clinical`` (what it records) and
below; never the outputs, network, bedside, screens or command line.
"""
