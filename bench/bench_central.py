"""How many beds one broker and one central station keep up with, and how fast an alarm shows.

A private Mosquitto is started with the test configuration (TLS, a password per
bed, the ACL: tests/broker/start-broker.sh). Simulated beds, one MQTT connection
each with its own credentials, spread over worker processes, publish what a bed
publishes (docs/network.md: numerics, alarm events, the standing alarms, all QoS
1) at ``--acceleration`` times a real bed's rate: a numerics message every 5 s
and an alarm transition about every 50 s per bed, in real time. The real
``CentralStation`` subscribes to the unit in this process. For each number of
beds, over ``--window-s``: messages offered and shown per second, and for alarm
events the latency from the bed's clock at publication (``utc_s``, same machine)
to the station's board having it, median and 99th percentile.

The station keeps up while it shows every message within the window (after a
2 s drain) and its p99 alarm latency stays under 1 s. "Real beds" is the beds
times the acceleration: the unit that load stands for.

A benchmark, not a test: nothing fails. ``--quick`` is a smoke test for CI.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from process_stats import cpu_seconds, nearest_rank
from provenance import command_line, machine_line

from monitor.configuration.config import default_config
from monitor.configuration.network_settings import MqttSettings
from monitor.log.reader import LogRow
from monitor.network import bed_messages
from monitor.network.bed_messages import ActiveAlarms, BedIdentity
from monitor.network.central_station import CentralStation
from monitor.network.mqtt_link import QOS, encode, make_client

ROOT = Path(__file__).resolve().parents[1]
START_BROKER = ROOT / "tests" / "broker" / "start-broker.sh"
NUMERICS_EVERY_S = 5.0  # a real bed's trend interval
ALARM_EVERY_S = 50.0  # a busy bed: about 70 alarm transitions an hour
DRAIN_S = 2.0
KEEP_UP_P99_S = 1.0
WORKERS = 4


@dataclass
class Level:
    beds: int
    offered: int = 0
    shown: int = 0
    alarm_latency_s: np.ndarray | None = None
    station_cpu_pct: float = math.nan  # this process: the central station's threads
    broker_cpu_pct: float = math.nan
    beds_cpu_pct: float = math.nan  # the simulated beds' processes, all together

    def keeps_up(self) -> bool:
        p99 = nearest_rank(self.alarm_latency_s, 99)
        return self.shown >= self.offered and not math.isnan(p99) and p99 < KEEP_UP_P99_S


def trend_row(rowid: int) -> LogRow:
    detail = {
        "map_mmhg": 60.0 + random.random() * 10.0, "systolic_mmhg": 90.0,
        "diastolic_mmhg": 48.0, "pulse_rate_bpm": 100.0, "clean_coverage": 0.9,
        "artifact_coverage": 0.0, "nee": 0.3, "no_pulse": 0,
    }  # fmt: skip
    return LogRow(time.time(), 1, float(rowid), "trend", "hypotensive", "", "", detail, rowid)


def alarm_row(rowid: int, raised: bool) -> LogRow:
    detail = {"transition": "raised" if raised else "cleared", "map_mmhg": 58.0, "nee": 0.3}
    detail["evidence"] = {}
    return LogRow(
        time.time(), 1, float(rowid), "alarm", "hypotension", "medium", "MAP low", detail, rowid
    )


def run_beds(
    unit: str, beds: Sequence[str], port: int, ca: str, acceleration: float, seconds: float, out
) -> None:
    """A worker process: one connection per bed, each publishing on its own schedule."""
    settings = {name: _settings(port, ca, name) for name in beds}
    clients = {}
    for name in beds:
        client = make_client(settings[name], f"bench-{name}")
        client.connect(settings[name].host, settings[name].port, keepalive=30)
        client.loop_start()
        clients[name] = client
    numerics_s = NUMERICS_EVERY_S / acceleration
    alarm_s = ALARM_EVERY_S / acceleration
    started = time.monotonic()
    due = {name: (started + random.random() * numerics_s, started + random.random() * alarm_s)
           for name in beds}  # fmt: skip
    sent = 0
    rowid = 0
    active = {name: ActiveAlarms() for name in beds}
    while (now := time.monotonic()) < started + seconds:
        next_due = min(min(d) for d in due.values())
        if next_due > now:
            time.sleep(min(0.01, next_due - now))
            continue
        for name in beds:
            bed = BedIdentity(unit, name, f"bench-{name}")
            prefix = bed.prefix("monitor")
            numerics_due, alarm_due = due[name]
            messages = []
            if numerics_due <= now:
                rowid += 1
                messages.append(bed_messages.numerics(bed, trend_row(rowid)))
                numerics_due += numerics_s
            if alarm_due <= now:
                rowid += 1
                row = alarm_row(rowid, raised="hypotension" not in active[name].standing)
                active[name].apply(row)
                messages.append(bed_messages.alarm_event(bed, row))
                messages.append(active[name].message(bed, f"{rowid}:active", row.utc))
                alarm_due += alarm_s
            due[name] = (numerics_due, alarm_due)
            for message in messages:
                clients[name].publish(
                    f"{prefix}/{message.topic}", encode(message.payload), qos=QOS,
                    retain=message.retained,
                )  # fmt: skip
                sent += 1
    out.send(sent)
    for client in clients.values():
        client.disconnect()
        client.loop_stop()


def _settings(port: int, ca: str, user: str, password: str | None = None) -> MqttSettings:
    directory = Path(tempfile.gettempdir())
    secret = directory / f"bench-central-{os.getpid()}-{user}.pw"
    secret.write_text(password or f"pw-{user}")
    overrides = {
        "mqtt.broker": f"mqtts://127.0.0.1:{port}",
        "mqtt.username": user,
        "mqtt.password_file": str(secret),
        "mqtt.ca_file": ca,
    }
    settings = MqttSettings.from_config(default_config().with_overrides(overrides, "bench"))
    secret.unlink()
    assert settings is not None
    return settings


def measure(
    beds: int, port: int, ca: str, acceleration: float, seconds: float, width: int, broker: int
) -> Level:
    level = Level(beds)
    latencies: list[float] = []
    lock = threading.Lock()

    def on_alarm(event, now) -> None:
        with lock:
            latencies.append(time.time() - float(event.payload["utc_s"]))

    unit = f"load{beds}"  # a unit per level: no retained messages from the one before
    station = CentralStation(
        _settings(port, ca, "central"), unit=unit, client_id=f"central-{beds}", on_alarm=on_alarm
    )
    station.start()
    while not station.connected:
        time.sleep(0.05)
    accepted_before = station.counts()["accepted"]
    names = [f"bed{n:0{width}d}" for n in range(1, beds + 1)]  # as start-broker.sh names them
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for k in range(min(WORKERS, beds)):
        ours, theirs = context.Pipe()
        group = names[k::WORKERS]
        worker = context.Process(
            target=run_beds, args=(unit, group, port, ca, acceleration, seconds, theirs)
        )
        worker.start()
        pipes.append(ours)
        workers.append(worker)
    started, station_before = time.monotonic(), time.process_time()
    broker_before, children_before = cpu_seconds(broker), _children_cpu_s()
    level.offered = sum(pipe.recv() for pipe in pipes)
    for worker in workers:
        worker.join()
    wall = time.monotonic() - started
    level.station_cpu_pct = 100.0 * (time.process_time() - station_before) / wall
    level.broker_cpu_pct = 100.0 * (cpu_seconds(broker) - broker_before) / wall
    level.beds_cpu_pct = 100.0 * (_children_cpu_s() - children_before) / wall
    deadline = time.monotonic() + DRAIN_S
    while station.counts()["accepted"] - accepted_before < level.offered:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    level.shown = station.counts()["accepted"] - accepted_before
    station.stop()
    level.alarm_latency_s = np.array(latencies)
    return level


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--beds", type=int, nargs="+", default=[10, 40, 100, 200, 400], help="levels to measure"
    )
    p.add_argument(
        "--acceleration", type=float, default=30.0, help="times a real bed's message rate"
    )
    p.add_argument("--window-s", type=float, default=30.0, help="publishing time per level")
    p.add_argument("--quick", action="store_true", help="smoke test: 10 and 40 beds, 5 s")
    args = p.parse_args(argv)
    if args.quick:
        args.beds, args.window_s = [10, 40], 5.0
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        sys.exit("bench_central: mosquitto is not installed (Debian package mosquitto)")
    print(command_line())
    print(f"{machine_line()}; load average {os.getloadavg()[0]:.2f} at start")
    print(
        f"beds publish at {args.acceleration:g}x a real bed (numerics every "
        f"{NUMERICS_EVERY_S:g} s, an alarm transition every {ALARM_EVERY_S:g} s, real time), "
        f"one TLS connection each with its own password, from {WORKERS} processes; one "
        f"Mosquitto (tests/broker/start-broker.sh); the real CentralStation in this process; "
        f"{args.window_s:g} s per level"
    )
    print()
    with tempfile.TemporaryDirectory(prefix="bench-central-") as tmp:
        port = _free_port()
        broker_dir = Path(tmp) / "broker"
        subprocess.run(
            [str(START_BROKER), str(broker_dir), str(port), str(max(args.beds))], check=True
        )
        ca = str(broker_dir / "ca.crt")
        try:
            print("| beds | real beds | offered msg/s | shown msg/s | alarm latency p50 / p99 "
                  "(ms) | CPU % station / broker / beds | keeps up |")  # fmt: skip
            print("|---:|---:|---:|---:|---:|---:|---|")
            for beds in args.beds:
                width = len(str(max(args.beds)))
                broker = int((broker_dir / "mosquitto.pid").read_text())
                level = measure(beds, port, ca, args.acceleration, args.window_s, width, broker)
                print(
                    f"| {beds} | {beds * args.acceleration:.0f} | "
                    f"{level.offered / args.window_s:.0f} | {level.shown / args.window_s:.0f} | "
                    f"{1000 * nearest_rank(level.alarm_latency_s, 50):.1f} / "
                    f"{1000 * nearest_rank(level.alarm_latency_s, 99):.1f} | "
                    f"{level.station_cpu_pct:.0f} / {level.broker_cpu_pct:.0f} / "
                    f"{level.beds_cpu_pct:.0f} | {'yes' if level.keeps_up() else 'NO'} |",
                    flush=True,
                )
        finally:
            pid = int((broker_dir / "mosquitto.pid").read_text())
            os.kill(pid, 15)


def _children_cpu_s() -> float:
    """CPU of this process's ended children (the bed workers, once joined)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
