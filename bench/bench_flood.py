"""The monitor under a flood: the rate it survives, comm-loss delay, SIGTERM time, memory.

For each flood rate, a fresh ``python -m monitor run --config FILE --display off`` in its
own process reads two pty pairs this script writes into: a steady 250 Hz transducer and
a pump (``devices.simulation.flood.SteadyDevices``). After a steady start the devices
fall silent and random bytes take both wires (``Babbler``) at the row's rate; then:

* **comm loss**: from the flood's start to ``transducer_comm_lost`` raised in the log
  (alarms are committed at once); ``ports.comm_loss_s`` (10 s) is the least it can be;
* **restored**: from the flood's end (valid frames again) to that alarm's condition ending;
* **SIGTERM**: a second flood, then SIGTERM, to the process's exit;
* **memory**: the largest VmRSS sampled every 0.2 s, against the steady start's;
* **CPU**: the monitor's utime + stime over the first flood, as a share of one core;
* what reached the monitor (bytes written less those the pty dropped) and how many
  ``decode_errors`` events it logged a second.

The first row is the baseline, measured in the same run: no flood, the devices simply
fall silent (an unplugged cable). A row survives when comm loss comes within 20 s, the
valid frames after the flood are read within 20 s and SIGTERM is honoured within 10 s.
A benchmark, not a test: nothing fails. ``--quick`` (CI) runs the baseline and 10x only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from process_stats import cpu_seconds, status_mib
from provenance import command_line, machine_line

from devices.simulation.flood import Babbler, SteadyDevices, line_bytes_per_s
from devices.simulation.virtual_ports import VirtualPort
from monitor.configuration.config import default_config
from monitor.log.store import DATABASE_NAME

DEFAULTS = default_config()
TRANSDUCER_LINE = line_bytes_per_s(DEFAULTS.integer("ports.transducer_baudrate"))
PUMP_LINE = line_bytes_per_s(DEFAULTS.integer("ports.pump_baudrate"))
COMM_LOSS_S = DEFAULTS.number("ports.comm_loss_s")
LIMITS_S = {"comm_loss": 20.0, "restored": 20.0, "sigterm": 10.0}
SAMPLE_S = 0.2


@dataclass(frozen=True)
class Flood:
    """One row: bytes a second on the transducer port and on the pump port (0: silence)."""

    label: str
    transducer: float
    pump: float


FULL = [
    Flood("none (silence): baseline", 0.0, 0.0),
    Flood("10x line rate", 10 * TRANSDUCER_LINE, 10 * PUMP_LINE),
    Flood("100x line rate", 100 * TRANSDUCER_LINE, 100 * PUMP_LINE),
    Flood("2 MB/s per port", 2e6, 2e6),
]
QUICK = FULL[:2]


@dataclass
class Outcome:
    flood: Flood
    comm_loss_s: float = math.nan
    restored_s: float = math.nan
    sigterm_s: float = math.nan
    rss_before_mib: float = math.nan
    rss_peak_mib: float = math.nan
    cpu_pct: float = math.nan
    delivered: tuple[float, float] = (math.nan, math.nan)  # bytes/s reaching each port's reader
    summaries_per_s: float = math.nan
    note: str = ""

    @property
    def survived(self) -> bool:
        return (
            self.comm_loss_s <= LIMITS_S["comm_loss"]
            and self.restored_s <= LIMITS_S["restored"]
            and self.sigterm_s <= LIMITS_S["sigterm"]
        )


def query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def rss_mib(pid: int) -> float:
    """The monitor's VmRSS; NaN once it has ended (it may between two samples)."""
    try:
        return status_mib("VmRSS", pid)
    except OSError:
        return math.nan


def wait_for(condition: Callable[[], object], timeout_s: float, each: Callable[[], None]) -> float:
    """Seconds until ``condition()`` holds (NaN after ``timeout_s``), calling ``each`` meanwhile."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        each()
        if condition():
            return time.monotonic() - start
        time.sleep(SAMPLE_S)
    return math.nan


def babble(flood: Flood, transducer: VirtualPort, pump: VirtualPort) -> list[Babbler]:
    rates = [(transducer, flood.transducer, 1), (pump, flood.pump, 2)]
    return [Babbler(port, rate, seed=seed).start() for port, rate, seed in rates if rate > 0]


def measure(flood: Flood, workdir: Path, hold_s: float) -> Outcome:
    """One fresh monitor through one flood (see the module's docstring)."""
    out = Outcome(flood)
    log_dir = workdir / "log"
    db = log_dir / DATABASE_NAME
    with VirtualPort("transducer") as transducer, VirtualPort("pump") as pump:
        config = workdir / "bed.toml"
        config.write_text(
            f"[ports]\ntransducer = {json.dumps(transducer.path)}\n"
            f"pumps = [{json.dumps(pump.path)}]\nsample_rate_hz = 250.0\n\n"
            f'[alarms]\naudio = "off"\n\n[log]\ndirectory = {json.dumps(str(log_dir))}\n'
        )
        devices = SteadyDevices(transducer, pump).start()
        with open(workdir / "stdout", "wb") as so, open(workdir / "stderr", "wb") as se:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config), "--display",
                 "off"], cwd=workdir, stdout=so, stderr=se,
            )  # fmt: skip
        peak = [0.0]

        def sample() -> None:
            peak[0] = max(peak[0], rss_mib(proc.pid))

        babblers: list[Babbler] = []
        try:
            heard = wait_for(
                lambda: query(db, "SELECT 1 FROM events WHERE kind = 'pump_heard'"), 60.0, sample
            )
            if math.isnan(heard):
                out.note = "the monitor never read the steady devices"
                return out
            time.sleep(2.0)
            out.rss_before_mib = rss_mib(proc.pid)
            cpu0 = cpu_seconds(proc.pid)
            devices.muted.set()
            written = (transducer.bytes_written, pump.bytes_written)
            start = time.monotonic()
            babblers = babble(flood, transducer, pump)
            out.comm_loss_s = wait_for(
                lambda: query(
                    db,
                    "SELECT 1 FROM alarms WHERE name = 'transducer_comm_lost' "
                    "AND transition = 'raised'",
                ),
                60.0,
                sample,
            )
            wait_for(lambda: False, hold_s, sample)
            flood_s = time.monotonic() - start
            out.cpu_pct = 100.0 * (cpu_seconds(proc.pid) - cpu0) / flood_s
            for babbler in babblers:
                babbler.stop()
            out.delivered = (
                (transducer.bytes_written - written[0]) / flood_s,
                (pump.bytes_written - written[1]) / flood_s,
            )
            summaries = query(db, "SELECT count(*) FROM events WHERE kind = 'decode_errors'")
            out.summaries_per_s = (summaries[0][0] if summaries else 0) / flood_s
            devices.muted.clear()
            out.restored_s = wait_for(
                lambda: query(
                    db,
                    "SELECT 1 FROM alarms WHERE name = 'transducer_comm_lost' "
                    "AND transition IN ('condition_ended', 'cleared')",
                ),
                60.0,
                sample,
            )
            babblers = babble(flood, transducer, pump)
            wait_for(lambda: False, 3.0, sample)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                proc.wait(timeout=60.0)
                out.sigterm_s = time.monotonic() - sent
            except subprocess.TimeoutExpired:
                out.note = "SIGTERM ignored for 60 s"
            out.rss_peak_mib = peak[0]
        finally:
            for babbler in babblers:
                babbler.stop()
            devices.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def cell(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def rate_text(bytes_per_s: float) -> str:
    if math.isnan(bytes_per_s):
        return "n/a"
    if bytes_per_s >= 1e5:
        return f"{bytes_per_s / 1e6:.2f} MB/s"
    return f"{bytes_per_s / 1e3:.1f} kB/s"


def print_table(outcomes: Sequence[Outcome]) -> None:
    print(
        "| flood (per port) | reached the monitor: transducer / pump | comm loss after (s) "
        "| restored after (s) | SIGTERM (s) | RSS steady / peak (MiB) | monitor CPU (% of a core) "
        "| decode_errors events/s | verdict |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for o in outcomes:
        verdict = "survived" if o.survived else "FAILED"
        if o.note:
            verdict += f" ({o.note})"
        print(
            f"| {o.flood.label} | {rate_text(o.delivered[0])} / {rate_text(o.delivered[1])} "
            f"| {cell(o.comm_loss_s)} | {cell(o.restored_s)} | {cell(o.sigterm_s, 2)} "
            f"| {cell(o.rss_before_mib)} / {cell(o.rss_peak_mib)} | {cell(o.cpu_pct)} "
            f"| {cell(o.summaries_per_s, 2)} | {verdict} |"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="baseline and 10x only (CI)")
    parser.add_argument("--hold", type=float, default=10.0, help="flood seconds after comm loss")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    floods = QUICK if args.quick else FULL
    hold_s = 2.0 if args.quick else args.hold
    print(command_line())
    print(f"{machine_line()}; load average {os.getloadavg()[0]:.2f} at start")
    print(
        f"line rates (8N1, configured baud / 10): transducer {TRANSDUCER_LINE:.0f} B/s, "
        f"pump {PUMP_LINE:.0f} B/s; ports.comm_loss_s {COMM_LOSS_S:g} s; random bytes in "
        f"small paced writes; the flood held {hold_s:g} s past comm loss"
    )
    print()
    outcomes = []
    for flood in floods:
        print(f"... {flood.label}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
            outcomes.append(measure(flood, Path(tmp), hold_s))
    print_table(outcomes)
    survived = [o.flood.label for o in outcomes[1:] if o.survived]
    print()
    print(f"highest flood survived: {survived[-1] if survived else 'none'}")
    print(f"benchmark wall time: {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
