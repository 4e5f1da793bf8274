"""What the log writes to an SD card: bytes per hour at 1000 Hz, in real time.

The writer thread commits per wall-clock second, so an accelerated run
cannot show the write rate: one simulated hour played in seconds is a
handful of commits. Each configuration here therefore runs a monitor in
real time, in its own process (the kernel counts I/O per process): the
``septic-refractory`` scenario resampled to 1000 Hz (100-sample frames),
played through the live input path by ``monitor.analysis.virtual_bench``, paced to
the wall clock, logging into a fresh directory with the packaged settings
plus the variant's changes. The configurations run side by side; each
uses a few per cent of a core.

Columns, each scaled to one hour of running:

* **written**: bytes the process handed to ``write()`` (``wchar`` of
  ``/proc/self/io``): the WAL frames, checkpoints into the database file,
  and nothing else of note (the monitor prints nothing here);
* **device**: bytes the kernel sent to the block device for this process
  (``write_bytes``); 0 on file systems that do not count them (tmpfs,
  some overlays);
* **writes**: ``write()`` calls;
* **grows**: database plus WAL size at the end, what the disk keeps;
* **x default**: written, as a multiple of the default configuration's.

The reference line is what storing the waveform itself would cost: 1000
16-bit samples a second. Run as ``python bench/log_write_rate.py``
(60 minutes per configuration, all at once); ``--minutes`` sets the
length; ``--quick`` runs 20 s, a smoke test for CI whose figures mean
little (the first WAL checkpoint comes later).

``--lock-stall S`` measures instead what another process holding the log's
write lock for S seconds (a second connection in ``BEGIN EXCLUSIVE``) costs
the monitoring loop: ``loss-of-pulse`` in real time from 580 s, the lock
taken at 600 s (no_pulse is raised at 607 s), the longest gap between two
input items handled (the pacing's own sleep left out), against the same
run without a lock, and whether every alarm change reached the log.
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from provenance import command_line, machine_line

from devices.simulation.scenario import Scenario
from devices.simulation.scenario_file import load_scenario
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.edge.input_items import InputItem
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

SCENARIO = "septic-refractory"
SAMPLE_RATE_HZ = 1000
FRAME_SAMPLES = 100
START_S = 2400.0  # the hour in which MAP falls below target: alarms and states too
WAVEFORM_BYTES_PER_S = 2 * SAMPLE_RATE_HZ

VARIANTS: dict[str, dict[str, object]] = {
    "default (trend 5 s, commit 1 s)": {},
    "trend every 1 s": {"log.trend_interval_s": 1.0},
    "every beat": {"log.beats": "on"},
    "every beat, commit 5 s": {"log.beats": "on", "log.commit_interval_s": 5.0},
}


@dataclass(frozen=True)
class Measured:
    """One configuration's run: what it wrote, over how long."""

    seconds: float
    wchar: int
    write_bytes: int
    syscw: int
    stored_bytes: int

    def per_hour(self, value: float) -> float:
        return value * 3600.0 / self.seconds


def process_io() -> dict[str, int]:
    with open("/proc/self/io") as f:
        return {key: int(value) for key, value in (line.split(":") for line in f)}


def scenario_at_1000_hz() -> Scenario:
    scenario = load_scenario(SCENARIO)
    transducer = dataclasses.replace(
        scenario.transducer, sample_rate_hz=SAMPLE_RATE_HZ, frame_samples=FRAME_SAMPLES
    )
    return dataclasses.replace(scenario, transducer=transducer)


def run_variant(changes: dict[str, object], seconds: float) -> Measured:
    """A real-time monitor with its log in a fresh directory; runs in a child process."""
    config = default_config().with_overrides(changes, "benchmark variant")
    clock = ScenarioClock(START_S)
    started = time.monotonic()

    def keep_pace(_item: InputItem) -> None:
        ahead = (clock.now_s - START_S) - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)

    with tempfile.TemporaryDirectory(prefix="log-write-rate-") as directory:
        before = process_io()
        log = BedsideLog(
            LogSettings.from_config(config, Path(directory)),
            software="bench",
            config_hash="bench",
            clocks=clock.log_clocks(),
        )
        run_scenario(
            scenario_at_1000_hz(),
            ClinicalSettings.from_config(config),
            load_drug_table(),
            clock=clock,
            log=log,
            until_s=START_S + seconds,
            on_item=keep_pace,
        )
        log.close()
        after = process_io()
        elapsed = time.monotonic() - started
        stored = sum(p.stat().st_size for p in Path(directory).glob(f"{DATABASE_NAME}*"))
    return Measured(
        elapsed,
        after["wchar"] - before["wchar"],
        after["write_bytes"] - before["write_bytes"],
        after["syscw"] - before["syscw"],
        stored,
    )


@dataclass(frozen=True)
class Stall:
    longest_s: float
    alarm_changes: int
    logged: int
    unavailable: str


class LockedRun:
    """Paces a run in real time, takes and releases the lock, times the gaps between items."""

    def __init__(self, clock: ScenarioClock, db: Path, lock_s: float, lock_at_s: float) -> None:
        self.clock, self.db, self.lock_s, self.lock_at_s = clock, db, lock_s, lock_at_s
        self.from_s = clock.now_s
        self.started = time.monotonic()
        self.last: float | None = None
        self.longest_s = 0.0
        self.holder: sqlite3.Connection | None = None
        self.release_at: float | None = None

    def __call__(self, _item: InputItem) -> None:
        now = time.monotonic()
        if self.last is not None:  # time spent handling the previous item, sleep left out
            self.longest_s = max(self.longest_s, now - self.last)
        if self.lock_s > 0 and self.release_at is None and self.clock.now_s >= self.lock_at_s:
            self.holder = sqlite3.connect(self.db, isolation_level=None)
            self.holder.execute("BEGIN EXCLUSIVE")
            self.release_at = now + self.lock_s
        if self.holder is not None and self.release_at is not None and now >= self.release_at:
            self.holder.execute("COMMIT")
            self.holder.close()
            self.holder = None
        ahead = (self.clock.now_s - self.from_s) - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)
        self.last = time.monotonic()


def run_with_lock(lock_s: float, until_s: float = 680.0) -> Stall:
    """``loss-of-pulse`` in real time from 580 s; another connection holds the lock from 600 s."""
    config = default_config()
    clock = ScenarioClock(580.0)
    with tempfile.TemporaryDirectory(prefix="log-lock-stall-") as directory:
        db = Path(directory) / DATABASE_NAME
        log = BedsideLog(
            LogSettings.from_config(config, Path(directory)), software="bench",
            config_hash="bench", clocks=clock.log_clocks(),
        )  # fmt: skip
        paced = LockedRun(clock, db, lock_s, 600.0)
        run = run_scenario(
            load_scenario("loss-of-pulse"), ClinicalSettings.from_config(config),
            load_drug_table(), clock=clock, log=log, until_s=until_s, on_item=paced,
        )  # fmt: skip
        log.close("finished", clock.now_s - paced.from_s)
        conn = sqlite3.connect(db)
        logged = conn.execute("SELECT count(*) FROM alarms").fetchone()[0]
        unavailable = conn.execute(
            "SELECT coalesce(max(json_extract(detail, '$.duration_s')), 0) FROM events "
            "WHERE kind = 'log_unavailable'"
        ).fetchone()[0]
        conn.close()
    changes = sum(1 for e in run.timeline if e.alarm is not None)
    return Stall(paced.longest_s, changes, logged, f"{unavailable:.1f} s")


def print_stalls(lock_s: float) -> None:
    print(f"{'run':28} {'longest loop stall':>18} {'alarm changes':>13} {'in the log':>10} "
          f"{'unavailable event':>17}")  # fmt: skip
    for name, seconds in (("no lock", 0.0), (f"lock held {lock_s:g} s", lock_s)):
        m = run_with_lock(seconds)
        print(f"{name:28} {m.longest_s:16.3f} s {m.alarm_changes:13d} {m.logged:10d} "
              f"{m.unavailable:>17}")  # fmt: skip


def megabytes(value: float) -> str:
    return f"{value / 1e6:8.2f} MB"


def print_table(results: dict[str, Measured]) -> None:
    baseline = results[next(iter(VARIANTS))]
    print(f"{'configuration':34} {'written/h':>11} {'device/h':>11} {'writes/h':>9} "
          f"{'grows/h':>11} {'x default':>9}")  # fmt: skip
    for name, m in results.items():
        print(
            f"{name:34} {megabytes(m.per_hour(m.wchar))} {megabytes(m.per_hour(m.write_bytes))} "
            f"{m.per_hour(m.syscw):9.0f} {megabytes(m.per_hour(m.stored_bytes))} "
            f"{m.wchar / m.seconds / (baseline.wchar / baseline.seconds):9.2f}"
        )
    print(f"{'reference: the waveform, 16 bit':34} {megabytes(WAVEFORM_BYTES_PER_S * 3600.0)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0, help="real time per configuration")
    p.add_argument("--quick", action="store_true", help="20 s per configuration (smoke test)")
    p.add_argument(
        "--lock-stall", type=float, metavar="S", help="instead: the loop's longest stall while "
        "another process holds the log's write lock for S seconds"
    )  # fmt: skip
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    seconds = 20.0 if args.quick else 60.0 * args.minutes
    print(command_line())
    print(machine_line())
    if args.lock_stall is not None:
        print_stalls(args.lock_stall)
        return
    print(f"{SCENARIO} at {SAMPLE_RATE_HZ} Hz from {START_S:.0f} s, {seconds:.0f} s in real time")
    with ProcessPoolExecutor(len(VARIANTS), mp_context=get_context("spawn")) as pool:
        futures = {name: pool.submit(run_variant, c, seconds) for name, c in VARIANTS.items()}
        print_table({name: future.result() for name, future in futures.items()})


if __name__ == "__main__":
    main()
