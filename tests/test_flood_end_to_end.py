"""`monitor run` under a flood, end to end: garbage at ten times the line rate on real ptys.

The monitor runs as a subprocess, as a user runs it, on two pty pairs this
test writes into: a steady transducer and pump, then random bytes at 10x
what each configured line carries (8N1: baud / 10 bytes a second), then
the valid frames again. The limits are generous on purpose (comm loss
within 20 s, SIGTERM within 10 s, memory); the measured figures are in
``bench/bench_flood.py`` and docs/performance.md.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices.simulation.flood import Babbler, SteadyDevices, line_bytes_per_s
from devices.simulation.virtual_ports import VirtualPort
from monitor import core
from monitor.configuration.config import default_config
from monitor.log.store import DATABASE_NAME

PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
pytestmark = pytest.mark.skipif(
    PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the live monitor refuses"
)
RUN_DIR = Path(__file__).resolve().parent  # not the checkout: the installed package
FLOOD_FACTOR = 10.0
DEFAULTS = default_config()
TRANSDUCER_FLOOD = FLOOD_FACTOR * line_bytes_per_s(DEFAULTS.integer("ports.transducer_baudrate"))
PUMP_FLOOD = FLOOD_FACTOR * line_bytes_per_s(DEFAULTS.integer("ports.pump_baudrate"))


def query(db: Path, sql: str) -> list[tuple]:
    """Rows from the running monitor's log (it commits alarms at once, events each second)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        conn.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for process {pid}")


def wait_for(condition, timeout_s: float, every_s: float = 0.2, on_each=None) -> float | None:
    """Seconds until ``condition()`` held, or None after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if on_each is not None:
            on_each()
        if condition():
            return time.monotonic() - start
        time.sleep(every_s)
    return None


def floods(transducer: VirtualPort, pump: VirtualPort) -> list[Babbler]:
    return [
        Babbler(transducer, TRANSDUCER_FLOOD, seed=1).start(),
        Babbler(pump, PUMP_FLOOD, seed=2).start(),
    ]


def test_a_flood_at_ten_times_the_line_rate_leaves_the_monitor_live(tmp_path):
    db = tmp_path / "log" / DATABASE_NAME
    with VirtualPort("transducer") as transducer, VirtualPort("pump") as pump:
        devices = SteadyDevices(transducer, pump).start()
        config = tmp_path / "bed.toml"
        config.write_text(
            "[ports]\n"
            f'transducer = "{transducer.path}"\n'
            f'pumps = ["{pump.path}"]\n'
            "sample_rate_hz = 250\n"
            "[alarms]\n"
            'audio = "off"\n'
            "[log]\n"
            f'directory = "{tmp_path / "log"}"\n'
        )
        out, err = (tmp_path / "stdout").open("w"), (tmp_path / "stderr").open("w")
        run = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=out, stderr=err, text=True, cwd=RUN_DIR,
        )  # fmt: skip
        babblers: list[Babbler] = []
        peak = [0.0]

        def sample_memory() -> None:
            peak[0] = max(peak[0], rss_mib(run.pid))

        try:
            heard = wait_for(
                lambda: query(db, "SELECT 1 FROM events WHERE kind = 'pump_heard'"), 60.0
            )
            assert heard is not None, (tmp_path / "stderr").read_text()
            time.sleep(2.0)  # a steady baseline
            before = rss_mib(run.pid)

            devices.muted.set()  # the babble has both wires
            babblers = floods(transducer, pump)
            lost = wait_for(
                lambda: query(
                    db,
                    "SELECT 1 FROM alarms WHERE name = 'transducer_comm_lost' "
                    "AND transition = 'raised'",
                ),
                30.0,
                on_each=sample_memory,
            )
            assert lost is not None and lost <= 20.0, f"comm loss after {lost} s"
            time.sleep(2.0)
            for babbler in babblers:
                babbler.stop()
            devices.muted.clear()  # valid frames after the garbage

            restored = wait_for(
                lambda: query(
                    db,
                    "SELECT 1 FROM events WHERE source = 'transducer' AND kind = 'comm_restored'",
                ),
                20.0,
                on_each=sample_memory,
            )
            assert restored is not None, "the valid frames after the garbage were never read"

            babblers = floods(transducer, pump)
            time.sleep(3.0)
            sample_memory()
            run.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            run.wait(timeout=30)
            stopped_in = time.monotonic() - sent
        finally:  # a failing test leaves no monitor behind
            for babbler in babblers:
                babbler.stop()
            devices.stop()
            if run.poll() is None:
                run.kill()
                run.wait()
            out.close()
            err.close()
    assert stopped_in <= 10.0, f"SIGTERM honoured after {stopped_in:.1f} s"
    assert run.returncode == 0, (tmp_path / "stderr").read_text()
    assert "Monitor stopped at stream time" in (tmp_path / "stdout").read_text()
    assert query(db, "SELECT end_reason FROM boots") == [("stopped",)]
    assert peak[0] <= before + 100.0, f"RSS {before:.0f} MiB before, {peak[0]:.0f} MiB peak"
    summaries = query(db, "SELECT count(*) FROM events WHERE kind = 'decode_errors'")[0][0]
    assert summaries <= 4 * 40  # at most one a second per port, not one per read
