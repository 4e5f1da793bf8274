"""`monitor demo` on a loaded machine: busy processes beside it, and the monitor stalled.

At 120x a host stall of 100 ms is 12 s of scenario time; the simulator plays
in step with the monitor's readers instead of catching up in one burst, so
the truth check holds however slow the machine is (the demo only takes
longer). The scenario is the first 22.5 minutes of ``implausible-pump-report``:
the implausible vasopressin report at 00:20:00 must raise ``implausible_dose``
within 00:20:00-00:20:05, and no pump is ever lost.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from monitor import core
from monitor.log.store import DATABASE_NAME

PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
pytestmark = pytest.mark.skipif(
    PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the live monitor refuses"
)
RUN_DIR = Path(__file__).resolve().parent
BUSY_PROCESSES = 3
STALL_S = 0.25  # each SIGSTOP of the monitor: 30 s of scenario time at 120x
BETWEEN_STALLS_S = 0.75


def first_22_minutes(tmp_path: Path) -> Path:
    """implausible-pump-report cut to 00:22:30, past the report that ends the bad dose."""
    text = (
        resources.files("devices.simulation")
        .joinpath("scenarios/implausible-pump-report.toml")
        .read_text()
    )
    text = text.replace('duration = "00:40:00"', 'duration = "00:22:30"')
    after = r'\[\[expect\.(state|alarm)\]\]\nname = "refractory[a-z_]*"\nwithin = \[[^]]*\]\n'
    text, removed = re.subn(after, "", text)
    assert removed == 2
    path = tmp_path / "implausible-22min.toml"
    path.write_text(text)
    return path


def test_the_demo_passes_its_truth_check_under_load_and_while_the_monitor_stalls(tmp_path):
    scenario = first_22_minutes(tmp_path)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_PROCESSES)
    ]
    demo = None
    stalls = 0
    try:
        demo = subprocess.Popen(
            [sys.executable, "-m", "monitor", "demo", "--scenario", str(scenario),
             "--speed", "120", "--log-dir", str(tmp_path / "log"), "--no-report",
             "--display", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        time.sleep(2.0)  # past the start-up, into the scenario
        while demo.poll() is None and time.monotonic() < deadline:
            demo.send_signal(signal.SIGSTOP)
            time.sleep(STALL_S)
            demo.send_signal(signal.SIGCONT)
            stalls += 1
            time.sleep(BETWEEN_STALLS_S)
        out, err = demo.communicate(timeout=60)
    finally:  # a failing test leaves nothing running
        for process in [*busy, demo]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    assert stalls >= 3, out  # the monitor really was stalled, several times
    assert "Demo finished at stream time 00:22:30." in out
    assert re.search(r"implausible_dose: raised at 00:20:0[0-5], as expected", out), out
    assert re.search(r"hypotension: raised at \d\d:\d\d:\d\d, as expected", out), out
    assert "NOT raised" not in out and "OUTSIDE" not in out and "never should be" not in out
    conn = sqlite3.connect(tmp_path / "log" / DATABASE_NAME)
    try:
        lost = conn.execute("SELECT count(*) FROM alarms WHERE name = 'pump_comm_lost'").fetchone()
        silent = conn.execute(
            "SELECT count(*) FROM events WHERE kind IN ('comm_lost', 'pump_silent')"
        ).fetchone()
        missing = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'input_overflow'"
        ).fetchone()
    finally:
        conn.close()
    assert lost == (0,) and silent == (0,) and missing == (0,)
