"""Restarts under standing alarms: does every alarm stay one alarm, however often the monitor dies?

The fault injection of issue 17, on the real commands: ``python -m monitor sim`` plays a
patient who is refractory from the start (MAP 55 mmHg on norepinephrine 0.40 ug/kg/min;
the refractory alarm is confirmed after the 30 min sustain time) at ``--speed`` scenario
seconds per second into pty pairs, and ``python -m monitor run --display off`` reads them,
logging into one log directory. Once the hypotension and refractory alarms stand in the
log, the monitor is stopped and started again ``--restarts`` times, at a random moment
(seeded), alternately by SIGKILL (a power cut) and SIGTERM (a service restart). Then the
log is read back: per alarm, the rows ``raised``, ``resumed`` and ``cleared`` and the
distinct alarm ids. Before the fix each boot raised each standing alarm again.

A benchmark, not a test: a missed target prints MISSED and nothing fails. ``python
bench/restart_alarms.py`` (40 restarts, about 8 minutes); ``--quick`` (4 restarts, about
2 minutes) runs in CI.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from monitor.log.store import DATABASE_NAME

STANDING = ("hypotension", "refractory_hypotension")
SCENARIO = """
[scenario]
name = "refractory-from-the-start"
title = "Refractory from the start, for restarts under standing alarms"
description = "MAP 55 mmHg on norepinephrine 0.40 ug/kg/min from the first minute."
duration = "08:00:00"
seed = 17
weight_kg = 80

[transducer]
sample_rate_hz = 125
frame_samples = 25
protocol = "binary"

[physiology]
heart_rate_bpm = 110
map_mmhg = 55
pulse_pressure_mmhg = 38
respiratory_rate_bpm = 16
respiratory_swing_mmhg = 4
hr_variability = 0.02
noise_mmhg = 0.4

[[pump]]
id = "P1"
heartbeat_s = 2

[[infusion]]
pump = "P1"
channel = 1
drug = "NORAD"
concentration = 64
concentration_unit = "ug/mL"
dose_unit = "ug/kg/min"
steps = [{ at = "00:00:00", dose = 0.40 }]
"""


def monitor_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


def start_simulator(scenario: Path, links: Path, speed: float, workdir: Path) -> subprocess.Popen:
    command = monitor_command(
        "sim", "--scenario", str(scenario), "--speed", f"{speed:g}", "--link-dir", str(links),
        "--quiet",
    )  # fmt: skip
    out = open(workdir / "sim.out", "wb")  # noqa: SIM115 - the simulator's, for its lifetime
    sim = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30.0
    while not ((links / "transducer").exists() and (links / "P1").exists()):
        if sim.poll() is not None or time.monotonic() > deadline:
            sim.kill()
            raise SystemExit(f"monitor sim made no ports: {(workdir / 'sim.out').read_text()}")
        time.sleep(0.05)
    return sim


def write_config(path: Path, links: Path, log_dir: Path) -> Path:
    path.write_text(
        "[ports]\n"
        f"transducer = {json.dumps(str(links / 'transducer'))}\n"
        f"pumps = [{json.dumps(str(links / 'P1'))}]\n"
        "sample_rate_hz = 125.0\n\n"
        '[alarms]\naudio = "off"\n\n'
        f"[log]\ndirectory = {json.dumps(str(log_dir))}\n"
    )
    return path


def start_monitor(config: Path, workdir: Path, boot: int) -> subprocess.Popen:
    err = open(workdir / f"monitor-{boot}.stderr", "wb")  # noqa: SIM115 - for its lifetime
    command = monitor_command("run", "--config", str(config), "--display", "off")
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=err)


def query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def raised_names(db: Path) -> set[str]:
    return {name for (name,) in query(db, "SELECT name FROM alarms WHERE transition = 'raised'")}


def stop(proc: subprocess.Popen, how: signal.Signals) -> None:
    proc.send_signal(how)
    try:
        proc.wait(15.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(restarts: int, speed: float, seed: int, workdir: Path) -> list[tuple[str, ...]]:
    scenario = workdir / "scenario.toml"
    scenario.write_text(SCENARIO)
    links, log_dir = workdir / "ports", workdir / "log"
    log_dir.mkdir()
    db = log_dir / DATABASE_NAME
    config = write_config(workdir / "bedside.toml", links, log_dir)
    admitted = subprocess.run(
        monitor_command("patient", "new", "--weight", "80", "--by", "bench", "--config",
                        str(config)),
        capture_output=True, text=True, cwd=workdir,
    )  # fmt: skip
    if admitted.returncode:
        raise SystemExit(f"monitor patient new failed: {admitted.stderr.strip()}")
    sim = start_simulator(scenario, links, speed, workdir)
    rng = random.Random(seed)
    try:
        monitor = start_monitor(config, workdir, 1)
        deadline = time.monotonic() + 2400.0 / speed + 60.0  # 30 min sustain and a margin
        while not set(STANDING) <= raised_names(db):
            if monitor.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "monitor-1.stderr").read_text(errors="replace")[-400:]
                raise SystemExit(f"the alarms were never raised: {tail}")
            time.sleep(0.5)
        print(f"  alarms standing; {restarts} restarts follow", file=sys.stderr)
        for n in range(restarts):
            time.sleep(rng.uniform(2.0, 12.0))
            stop(monitor, signal.SIGKILL if n % 2 == 0 else signal.SIGTERM)
            monitor = start_monitor(config, workdir, n + 2)
        time.sleep(15.0)  # the last boot finds its alarms again
        stop(monitor, signal.SIGTERM)
    finally:
        sim.kill()
        sim.wait()
    boots = query(db, "SELECT COUNT(*) FROM boots")[0][0]
    rows = query(db, "SELECT name, transition, alarm_id FROM alarms")
    table = [("boots", str(boots), "", "", "")]
    for name in STANDING:
        counts = Counter(t for n, t, _ in rows if n == name)
        ids = {i for n, _, i in rows if n == name}
        table.append(
            (name, str(counts["raised"]), str(counts["resumed"]), str(counts["cleared"]),
             str(len(ids)))
        )  # fmt: skip
    return table


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--restarts", type=int, default=40)
    p.add_argument("--speed", type=float, default=60.0, help="scenario seconds per second")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--quick", action="store_true", help="4 restarts, for CI")
    args = p.parse_args(argv)
    restarts = 4 if args.quick else args.restarts
    with tempfile.TemporaryDirectory(prefix="restart-alarms-") as tmp:
        table = run(restarts, args.speed, args.seed, Path(tmp))
    print(f"{'alarm':<24} {'raised':>7} {'resumed':>8} {'cleared':>8} {'ids':>4}  target")
    boots = table[0][1]
    print(f"{'boots':<24} {boots:>7}")
    ok = True
    for name, raised, resumed, cleared, ids in table[1:]:
        met = raised == "1" and ids == "1" and int(resumed) >= restarts // 2
        ok &= met
        verdict = "met" if met else "MISSED"
        print(
            f"{name:<24} {raised:>7} {resumed:>8} {cleared:>8} {ids:>4}  1 raise, 1 id: {verdict}"
        )
    print("every standing alarm stayed one alarm" if ok else "MISSED: an alarm was raised again")


if __name__ == "__main__":
    main()
