"""The two lines every benchmark prints first, so a table can be traced to its run and machine."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    """platform.processor() is empty on Linux; /proc/cpuinfo names the CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def command_line() -> str:
    return f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}"


def machine_line() -> str:
    return (
        f"machine: {platform.platform()}; {cpu_model()}; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; numpy {np.__version__}"
    )
