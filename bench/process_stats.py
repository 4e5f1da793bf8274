"""What benchmarks read about processes from /proc, and the one percentile they all report."""

from __future__ import annotations

import math
import os

import numpy as np

CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """utime + stime of a process (all its threads), or of one of its threads, from /proc."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces and brackets
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S  # fields 14 and 15 of stat


def status_mib(key: str, pid: int | str = "self") -> float:
    """A ``Vm*`` line of /proc/PID/status (kB, i.e. KiB) in MiB; NaN if there is none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def nearest_rank(values: np.ndarray | None, q: float) -> float:
    """Nearest rank, never interpolated: from a hundred alarms, one slow commit must show."""
    if values is None or not len(values):
        return math.nan
    return float(np.percentile(values, q, method="higher"))
