"""The running bedside: what it costs, how fast an alarm is logged and shown, and a day's soak.

Three measurements, one table (figure, measured, target, verdict):

1. **Cost of the running monitor.** The real command, ``python -m monitor run --config FILE
   --display off`` (then ``plain``, then ``curses`` inside a private, detached tmux server,
   120x40, when tmux is installed), in its own process, reads a real-time 1000 Hz transducer
   and two pumps over pty pairs played by ``python -m monitor sim --scenario
   bench/soak-24h.toml --speed 1`` in another process. CPU share is the monitor process's
   utime + stime (``/proc/PID/stat``) over a wall-clock window that opens ``STARTUP_S`` after
   the launch; peak memory is its VmHWM. The simulator's own CPU is shown for reference.
2. **Alarm latency.** ``LiveMonitor`` in this process, on pty ports fed in real time by the
   simulator code in a child process, plays a scenario that raises and clears technical
   alarms every few seconds (a zero procedure, a disconnection, a silent pump, noise bytes).
   For every alarm transition, from the moment just before the input item that produced it
   entered ``Bedside.take`` (or the loop's ``Bedside.advance``) to (a) ``BedsideLog.
   record_entries`` returning, the transition committed with FULL sync, and (b) a spy
   output's ``deliver`` running on its own worker thread behind the real ``SinkFanout``.
3. **Soak.** bench/soak-24h.toml (waveform artifacts, noise bytes on the transducer wire, a
   pump off the network for 20 minutes) played as fast as the machine allows through the
   live input path by ``virtual_bench.run_scenario``, in a fresh process, logging into a real
   ``BedsideLog`` with the real fanout and a spy output: resident memory after the first
   simulated hour and at the end, every alarm raised in the timeline found in the log (and
   at the outputs), and the log writer and output threads alive at the end.

A benchmark, not a test: a missed target prints MISSED and nothing fails. Run as ``python
bench/bench_bedside.py`` (about 30 minutes: 5 minutes per display mode, 5 minutes of alarms,
then the soak); ``--quick`` is a smoke test for CI (20 s windows, 30 s of alarms, 2 hours of
soak) whose figures mean little.

``--baseline-rev REV`` (or ``--baseline-tree PATH``, a checkout with its own ``.venv``) also
measures an older tree's ``monitor run``, fed by this tree's simulator, in ``--rounds``
interleaved rounds (baseline then this tree, per display mode), and prints the medians side
by side with the ratio new/base; ``--cost-only`` leaves out the latency and the soak.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest import mock

import numpy as np
from process_stats import cpu_seconds, nearest_rank, status_mib
from provenance import command_line, machine_line

from devices.simulation.scenario import ArtifactSpec, Scenario
from devices.simulation.scenario_file import load_scenario
from devices.simulation.simulator import ScenarioPlayer, play
from devices.simulation.virtual_ports import VirtualPort
from monitor import core
from monitor.alarm_outputs.configured import TerminalSink, build_sinks
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.alarm_outputs.sink import AlarmSink
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.bedside import live as live_module
from monitor.bedside.live import LiveMonitor
from monitor.bedside.view import clock_text
from monitor.clinical.alarm_types import AlarmTransition
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.log.outside import start_admission
from monitor.log.store import DATABASE_NAME
from monitor.log.writer import BedsideLog, LogSettings

SOAK_SCENARIO = Path(__file__).resolve().with_name("soak-24h.toml")
SAMPLE_RATE_HZ = 1000  # the scenario's, and the monitor's configuration
STARTUP_S = 10.0  # from the monitor's launch to the window: imports, ports, first beats
SIM_HOLD_S = 2.0  # the simulator keeps its ports open this long after the end
TMUX_TIMEOUT_S = 20.0  # one tmux command

# The alarm cycle: every CYCLE_S two zero procedures (transducer_zeroing), a pump off the
# wire long enough to be lost (pump_comm_lost), a disconnection well after the zero
# procedure's recovery time (transducer_disconnected); noise bytes every third cycle, so
# serial_errors (60 s window) is raised and cleared too. Tried through run_scenario first:
# about 21 alarm transitions a minute, so 5 minutes give a p99 that is not simply the max.
CYCLE_LEAD_S = 20.0  # beats, MAP and NEE settle first
CYCLE_S = 24.0
NOISE_EVERY = 3  # cycles between noise bursts
NOISE_BYTES = 10_000  # about 40 decoding errors, above the limit of 20 a minute
SPY = "bench-spy"
SLOW_COMMIT_MS = 10.0  # an alarm commit this slow is looked at: did the writer thread hold the log?

TARGET_CPU_PCT = 2.0
TARGET_MEMORY_MIB = 80.0
TARGET_LATENCY_MS = 50.0
TARGET_GROWTH_MIB = 5.0


@functools.cache
def soak_scenario() -> Scenario:
    return load_scenario(SOAK_SCENARIO)


# --- /proc -----------------------------------------------------------------------------------


def threads_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of a process, by thread id."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(task)] = cpu_seconds(pid, int(task))
        except OSError:  # ended since the listing
            pass
    return out


def split_by_thread(
    pid: int, before: dict[int, float], after: dict[int, float], readers: int, wall_s: float
) -> dict[str, float]:
    """Percent of a core by role. Python threads have no OS names, but the readers start last,
    transducer first (``LiveMonitor.run``), after the log writer and the outputs' threads."""
    both = sorted(set(before) & set(after))
    share = {tid: 100.0 * (after[tid] - before[tid]) / wall_s for tid in both}
    tail = [tid for tid in both if tid != pid][-readers:]
    return {
        "main loop": share.get(pid, math.nan),
        "transducer reader": share[tail[0]] if tail else math.nan,
        "pump readers": sum(share[tid] for tid in tail[1:]),
        "other threads": sum(v for tid, v in share.items() if tid != pid and tid not in tail),
    }


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- 1. the cost of a running `monitor run` --------------------------------------------------


@dataclass
class LiveCost:
    """One display mode's window: the monitor's CPU and memory, and what it logged."""

    display: str
    window_s: float = math.nan
    cpu_pct: float = math.nan
    hwm_mib: float = math.nan
    rss_mib: float = math.nan
    sim_cpu_pct: float = math.nan
    terminal_cpu_pct: float | None = None  # the tmux server drawing the curses screen
    by_thread: dict[str, float] = field(default_factory=dict)
    trend_points: int = 0
    stream_s: float = 0.0
    alarms: list[str] = field(default_factory=list)
    note: str = ""


def monitor_command(*args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "monitor", *args]


def write_config(path: Path, links: Path, log_dir: Path) -> Path:
    """The bedside's configuration: the simulator's ports at 1000 Hz, no sound, a fresh log."""
    pumps = ", ".join(json.dumps(str(links / p.pump_id)) for p in soak_scenario().pumps)
    path.write_text(
        "[ports]\n"
        f"transducer = {json.dumps(str(links / 'transducer'))}\n"
        f"pumps = [{pumps}]\n"
        f"sample_rate_hz = {SAMPLE_RATE_HZ:.1f}\n\n"
        '[alarms]\naudio = "off"\n\n'
        f"[log]\ndirectory = {json.dumps(str(log_dir))}\n"
    )
    return path


class RunningMonitor:
    """``monitor run`` in a process of its own (plain, off) or in a detached tmux pane (curses)."""

    def __init__(
        self, display: str, config: Path, workdir: Path, python: str = sys.executable
    ) -> None:
        self.display = display
        self.stderr_path = workdir / "monitor.stderr"
        command = monitor_command(
            "run", "--config", str(config), "--display", display, python=python
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmux: list[str] | None = None
        if display == "curses":
            socket = f"bench-bedside-{os.getpid()}"
            conf = workdir / "tmux.conf"
            conf.write_text('set -g default-terminal "screen"\n')
            self.tmux = ["tmux", "-L", socket, "-f", str(conf)]
            # exec: the pane's process is the monitor itself, so its PID is the pane's.
            shell = f"exec {shlex.join(command)} 2>{shlex.quote(str(self.stderr_path))}"
            self._tmux("new-session", "-d", "-x", "120", "-y", "40", "-c", str(workdir), shell)
            self.pid = int(self._tmux("list-panes", "-F", "#{pane_pid}").split()[0])
            self.terminal_pid: int | None = int(self._tmux("display-message", "-p", "#{pid}"))
        else:
            with open(workdir / "monitor.stdout", "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=err)
            self.pid = self.proc.pid
            self.terminal_pid = None

    def _tmux(self, *args: str) -> str:
        assert self.tmux is not None
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        done = subprocess.run(
            [*self.tmux, *args], capture_output=True, text=True, timeout=TMUX_TIMEOUT_S, env=env
        )
        if done.returncode:
            raise RuntimeError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def running(self) -> bool:
        return self.proc.poll() is None if self.proc is not None else alive(self.pid)

    def why_not_running(self) -> str:
        try:
            tail = self.stderr_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        return f"monitor ({self.display}) ended early: " + (" | ".join(tail) or "no stderr")

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: the monitor closes its ports and its log."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        if self.tmux is not None:
            subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=TMUX_TIMEOUT_S)


def start_simulator(links: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """``monitor sim`` at real time; returns once every device's link exists."""
    devices = ["transducer", *(p.pump_id for p in soak_scenario().pumps)]
    command = monitor_command(
        "sim", "--scenario", str(SOAK_SCENARIO), "--speed", "1", "--link-dir", str(links),
        "--quiet",
    )  # fmt: skip
    with open(workdir / "sim.out", "wb") as out:
        sim = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30.0
    while not all((links / d).exists() for d in devices):
        if sim.poll() is not None or time.monotonic() > deadline:
            sim.kill()
            sim.wait()
            output = (workdir / "sim.out").read_text(errors="replace").strip()
            raise RuntimeError(f"monitor sim made no ports: {output[-300:]}")
        time.sleep(0.05)
    return sim


def logged_summary(log_dir: Path) -> tuple[int, float, list[str]]:
    """Trend points, the last stream time and the alarms raised, read back from the log."""
    conn = sqlite3.connect(f"file:{log_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        points, last = conn.execute("SELECT COUNT(*), MAX(stream_s) FROM trends").fetchone()
        raised = conn.execute(
            "SELECT name FROM alarms WHERE transition = 'raised' ORDER BY stream_s"
        ).fetchall()
    finally:
        conn.close()
    return points, last or 0.0, [name for (name,) in raised]


def measure_live(
    display: str, seconds: float, workdir: Path, python: str = sys.executable, tag: str = ""
) -> LiveCost:
    """A fresh simulator and monitor; CPU over ``seconds`` after start-up, then a clean stop.

    ``python`` runs the monitor (a baseline tree's own interpreter); the simulator is always
    this tree's, so both trees read the same bytes. ``tag`` keeps runs' directories apart.
    """
    result = LiveCost(display)
    run_dir = workdir / f"live-{tag}{display}"
    links, log_dir = run_dir / "ports", run_dir / "log"
    log_dir.mkdir(parents=True)
    config = write_config(run_dir / "monitor.toml", links, log_dir)
    start_admission(log_dir, soak_scenario().weight_kg, by="bench_bedside")
    sim = start_simulator(links, run_dir)
    monitor: RunningMonitor | None = None
    readers = 1 + len(soak_scenario().pumps)
    try:
        try:
            monitor = RunningMonitor(display, config, run_dir, python)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            result.note = f"could not start: {exc}"
            return result
        time.sleep(STARTUP_S)
        if not monitor.running():
            result.note = monitor.why_not_running()
            return result
        pids = [monitor.pid, sim.pid] + ([monitor.terminal_pid] if monitor.terminal_pid else [])
        before = [cpu_seconds(pid) for pid in pids]
        threads_before = threads_cpu(monitor.pid)
        opened = time.monotonic()
        while time.monotonic() - opened < seconds and monitor.running():
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - opened))))
        if not monitor.running():
            result.note = monitor.why_not_running()
            return result
        after = [cpu_seconds(pid) for pid in pids]
        threads_after = threads_cpu(monitor.pid)
        result.window_s = time.monotonic() - opened
        result.hwm_mib = status_mib("VmHWM", monitor.pid)
        result.rss_mib = status_mib("VmRSS", monitor.pid)
        share = [100.0 * (a - b) / result.window_s for a, b in zip(after, before, strict=True)]
        result.cpu_pct, result.sim_cpu_pct = share[0], share[1]
        if len(share) > 2:
            result.terminal_cpu_pct = share[2]
        result.by_thread = split_by_thread(
            monitor.pid, threads_before, threads_after, readers, result.window_s
        )
    finally:
        if monitor is not None:
            monitor.stop()
        sim.terminate()
        sim.wait()
    result.trend_points, result.stream_s, result.alarms = logged_summary(log_dir)
    return result


# --- 2. alarm latency ------------------------------------------------------------------------


class SpySink(AlarmSink):
    """An output that only notes when each transition reached it (on its worker thread)."""

    name = SPY

    def __init__(self) -> None:
        self.delivered: list[tuple[float, AlarmTransition]] = []

    def deliver(self, transition: AlarmTransition) -> None:
        self.delivered.append((time.monotonic(), transition))


@dataclass(frozen=True)
class Logged:
    """One alarm transition on its way: input arrival, record_entries called and returned."""

    transition: AlarmTransition
    arrived: float
    recording: float
    committed: float
    via: str  # "take" (an input item) or "advance" (the loop's clock)


class AlarmTimer:
    """Wraps one bedside's ``take``/``advance`` and its log's ``record_entries`` to time alarms."""

    def __init__(self) -> None:
        self.logged: dict[int, Logged] = {}
        self.unattributed = 0  # alarm entries published outside take/advance (requests)
        self.bulk_commits: list[tuple[float, float]] = []  # the writer thread's, start and end
        self._arrived: tuple[float, str] | None = None

    def entering(self, method: Callable[..., list[TimelineEntry]], via: str) -> Callable:
        def timed(*args: Any) -> list[TimelineEntry]:
            self._arrived = (time.monotonic(), via)
            try:
                return method(*args)
            finally:
                self._arrived = None

        return timed

    def recording(self, method: Callable[[list[TimelineEntry]], bool]) -> Callable:
        def timed(entries: list[TimelineEntry]) -> bool:
            called = time.monotonic()
            ok = method(entries)
            returned = time.monotonic()
            for entry in entries:
                if entry.alarm is None:
                    continue
                if self._arrived is None:
                    self.unattributed += 1
                else:
                    arrived, via = self._arrived
                    self.logged[id(entry.alarm)] = Logged(
                        entry.alarm, arrived, called, returned, via
                    )
            return ok

        return timed

    def bulk(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """For the log writer's batch commits: to tell a slow alarm commit that waited on one.

        What the commit returns (the rows still waiting) is passed on unchanged.
        """

        def timed(*args: Any) -> Any:
            began = time.monotonic()
            try:
                return method(*args)
            finally:
                self.bulk_commits.append((began, time.monotonic()))

        return timed

    def overlapping_bulk(self, logged: Logged) -> bool:
        return any(b < logged.committed and e > logged.recording for b, e in self.bulk_commits)


@dataclass
class Latency:
    """Per alarm transition, in milliseconds from its input's arrival."""

    seconds: float
    to_log: np.ndarray
    to_sinks: np.ndarray
    processing: np.ndarray  # arrival to record_entries called
    commit: np.ndarray  # inside record_entries
    handoff: np.ndarray  # record_entries returned to the spy's deliver
    kinds: Counter[str]
    raised_to_sinks: np.ndarray
    via_advance: int
    slow_commits: int  # above SLOW_COMMIT_MS
    slow_during_bulk: int  # of those, overlapping a commit of the log writer's thread
    not_delivered: int
    unattributed: int
    sim_note: str


def alarm_cycle_scenario(seconds: float) -> Scenario:
    """The soak's patient and pumps at 1000 Hz, with the alarm cycle for ``seconds``."""
    base = soak_scenario()
    cycles = max(1, math.ceil(seconds / CYCLE_S))
    starts = [CYCLE_LEAD_S + k * CYCLE_S for k in range(cycles)]
    artifacts = []
    for k, t in enumerate(starts):
        artifacts += [
            ArtifactSpec("zeroing", t, 2.0),  # raised at the first flagged frame
            ArtifactSpec("disconnection", t + 12.0, 6.0),  # 10 s past the zeroing's recovery
            ArtifactSpec("zeroing", t + 20.0, 1.0),
        ]
        if k % NOISE_EVERY == 0:
            artifacts.append(
                ArtifactSpec("garbage", t + 9.0, 0.0, MappingProxyType({"bytes": NOISE_BYTES}))
            )
    first, second = base.pumps
    # The second pump is off the wire 12 s of every cycle: lost 10 s after its last sentence.
    silent = tuple((t + 5.0, t + 17.0) for t in starts)
    return dataclasses.replace(
        base,
        name="alarm-cycle",
        duration_s=CYCLE_LEAD_S + cycles * CYCLE_S + 5.0,
        artifacts=tuple(artifacts),
        pumps=(dataclasses.replace(first, silent=()), dataclasses.replace(second, silent=silent)),
    )


def play_alarm_cycle(seconds: float, conn: Connection) -> None:
    """The simulator's process: make the ports, say where they are, play at 1x on "go"."""
    player = ScenarioPlayer(alarm_cycle_scenario(seconds))
    ports = {device: VirtualPort(device) for device in player.devices}
    try:
        conn.send({device: port.path for device, port in ports.items()})
        if conn.poll(60.0) and conn.recv() == "go":
            play(player, ports, speed=1.0)
            time.sleep(SIM_HOLD_S)
        conn.send(sum(p.bytes_dropped for p in ports.values()))
    finally:
        for port in ports.values():
            port.close()


def measure_latency(seconds: float, workdir: Path) -> Latency:
    """A LiveMonitor here, the simulator in a child process, ``seconds`` of alarm cycles."""
    scenario = alarm_cycle_scenario(seconds)
    log_dir = workdir / "latency-log"
    context = get_context("spawn")
    ours, theirs = context.Pipe()
    sim = context.Process(target=play_alarm_cycle, args=(seconds, theirs), name="alarm-cycle")
    sim.start()
    if not ours.poll(60.0):
        sim.terminate()
        raise RuntimeError("the alarm-cycle simulator made no ports within 60 s")
    paths: dict[str, str] = ours.recv()
    config = default_config().with_overrides(
        {
            "ports.transducer": paths["transducer"],
            "ports.pumps": [paths[p.pump_id] for p in scenario.pumps],
            "ports.sample_rate_hz": float(SAMPLE_RATE_HZ),
            "alarms.audio": "off",
            "log.directory": str(log_dir),
        },
        "bench_bedside",
    )
    start_admission(log_dir, scenario.weight_kg, by="bench_bedside")
    spy = SpySink()
    timer = AlarmTimer()

    def configured_and_spy(*args: Any) -> list[AlarmSink]:
        return [*build_sinks(*args), spy]

    with open(os.devnull, "w") as devnull:
        # The monitor builds its outputs as configured; the spy joins them in the same fanout.
        with mock.patch.object(live_module, "build_sinks", configured_and_spy):
            bedside_monitor = LiveMonitor(
                config, alarm_stream=devnull, log_dir=log_dir, by="bench_bedside"
            )
        # Instance attributes shadow the methods: the loop, Bedside._publish and the log
        # writer's thread (which looks its batch commit up on every turn) call the wrappers.
        bedside, log = bedside_monitor.bedside, bedside_monitor.log
        assert log is not None
        bedside.take = timer.entering(bedside.take, "take")
        bedside.advance = timer.entering(bedside.advance, "advance")
        log.record_entries = timer.recording(log.record_entries)
        log._write_batch = timer.bulk(log._write_batch)
        watchdog = threading.Timer(scenario.duration_s + 60.0, bedside_monitor.stop_requested.set)
        watchdog.start()
        try:
            bedside_monitor.run(
                None, until_s=scenario.duration_s - 1.0, on_connected=lambda: ours.send("go")
            )
        finally:
            watchdog.cancel()
    dropped = ours.recv() if ours.poll(SIM_HOLD_S + 10.0) else None
    sim.join(10.0)
    if sim.is_alive():
        sim.terminate()
        sim.join()
    ms = 1000.0
    rows = []
    for delivered, transition in spy.delivered:
        logged = timer.logged.get(id(transition))
        if logged is not None:
            rows.append((logged, delivered))
    delivered_ids = {id(t) for _, t in spy.delivered}
    slow = [lg for lg, _ in rows if ms * (lg.committed - lg.recording) > SLOW_COMMIT_MS]

    def column(value: Callable[[Logged, float], float], keep=lambda lg: True) -> np.ndarray:
        return np.array([ms * value(lg, d) for lg, d in rows if keep(lg)])

    return Latency(
        seconds=scenario.duration_s,
        to_log=column(lambda lg, d: lg.committed - lg.arrived),
        to_sinks=column(lambda lg, d: d - lg.arrived),
        processing=column(lambda lg, d: lg.recording - lg.arrived),
        commit=column(lambda lg, d: lg.committed - lg.recording),
        handoff=column(lambda lg, d: d - lg.committed),
        kinds=Counter(lg.transition.transition.value for lg, _ in rows),
        raised_to_sinks=column(
            lambda lg, d: d - lg.arrived, lambda lg: lg.transition.transition.value == "raised"
        ),
        via_advance=sum(lg.via == "advance" for lg, _ in rows),
        slow_commits=len(slow),
        slow_during_bulk=sum(timer.overlapping_bulk(lg) for lg in slow),
        not_delivered=sum(key not in delivered_ids for key in timer.logged),
        unattributed=timer.unattributed,
        sim_note="" if not dropped else f"the simulator dropped {dropped} bytes nobody read",
    )


# --- 3. soak ---------------------------------------------------------------------------------


@dataclass
class Soak:
    """What a day (or the quick two hours) played as fast as possible left behind."""

    simulated_s: float
    wall_s: float
    rss_by_hour_mib: list[float]  # sampled mid-run at the end of each simulated hour
    hwm_mib: float
    crash: tuple[float, str] | None  # scenario time, what the monitor's loop raised
    raised_published: int  # handed to record_entries: the timeline
    raised_logged: int
    raised_delivered: int
    missing_from_log: list[str]
    raised_by_name: dict[str, int]
    threads: dict[str, bool]
    thread_errors: list[str]
    log_problems: dict[str, str]
    output_failures: list[str]
    garbage_bytes: int
    log_mib: float


def crash_text(exc: Exception) -> str:
    """The exception and the innermost line it came from, relative to the repository."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    where = Path(frame.filename)
    where = where.relative_to(where.parents[1]) if len(where.parents) > 1 else where
    return f"{type(exc).__name__}: {exc} ({where}:{frame.lineno} in {frame.name})"


def soak(until_s: float) -> Soak:
    """The scenario to ``until_s``, in a fresh process (so its memory is the soak's own).

    A loop that raises ends the soak there, as it would end ``monitor run``: the table says
    when and where (a crash is a missed target, and what it found is fixed, not restarted).
    """
    scenario = soak_scenario()
    config = default_config()
    settings, drugs = ClinicalSettings.from_config(config), load_drug_table()
    thread_errors: list[str] = []
    threading.excepthook = lambda args: thread_errors.append(
        f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}"
    )
    failures: list[str] = []
    rss_by_hour: list[float] = []
    published: Counter[tuple[str, float]] = Counter()
    clock = ScenarioClock()

    def every_hour(_item: object) -> None:
        if clock.now_s >= 3600.0 * (len(rss_by_hour) + 1):
            rss_by_hour.append(status_mib("VmRSS"))

    with (
        tempfile.TemporaryDirectory(prefix="bench-bedside-soak-") as directory,
        open(os.devnull, "w") as devnull,
    ):
        started = time.perf_counter()
        log = BedsideLog(
            LogSettings.from_config(config, Path(directory)),
            software="bench_bedside",
            config_hash="bench",
            clocks=clock.log_clocks(),
        )
        record = log.record_entries

        def recording(entries: list[TimelineEntry]) -> bool:
            published.update((e.name, e.t_s) for e in entries if e.kind == "raised")
            return record(entries)

        log.record_entries = recording
        spy = SpySink()
        outputs = SinkFanout(
            [TerminalSink(devnull), spy], lambda name, why: failures.append(f"{name}: {why}")
        )
        crash = None
        try:
            run_scenario(
                scenario, settings, drugs, clock=clock, log=log, outputs=outputs,
                until_s=until_s, on_item=every_hour,
            )  # fmt: skip
        except Exception as exc:  # what `monitor run` would die of
            crash = (clock.now_s, crash_text(exc))
        expected = [
            "log-writer",
            "alarm-sink-supervisor",
            "alarm-sink-terminal",
            f"alarm-sink-{SPY}",
        ]
        running = {t.name for t in threading.enumerate() if t.is_alive()}
        threads = {name: name in running for name in expected}
        problems = log.problems()
        outputs.close()
        log.close("finished" if crash is None else "stopped", clock.now_s)
        delivered = Counter(
            (t.name, t.t_s) for _, t in spy.delivered if t.transition.value == "raised"
        )
        wall = time.perf_counter() - started
        log_mib = sum(p.stat().st_size for p in Path(directory).glob(f"{DATABASE_NAME}*")) / 2**20
        conn = sqlite3.connect(Path(directory) / DATABASE_NAME)
        try:
            logged = Counter(
                conn.execute("SELECT name, stream_s FROM alarms WHERE transition = 'raised'")
            )
        finally:
            conn.close()
    return Soak(
        simulated_s=clock.now_s,
        wall_s=wall,
        rss_by_hour_mib=rss_by_hour,
        hwm_mib=status_mib("VmHWM"),
        crash=crash,
        raised_published=sum(published.values()),
        raised_logged=sum(logged.values()),
        raised_delivered=sum(delivered.values()),
        missing_from_log=[f"{name} at {t:.1f} s" for name, t in (published - logged).elements()],
        raised_by_name=dict(Counter(name for name, _ in published.elements())),
        threads=threads,
        thread_errors=thread_errors,
        log_problems=problems,
        output_failures=failures,
        garbage_bytes=sum(
            int(a.params["bytes"])
            for a in scenario.artifacts
            if a.kind == "garbage" and a.start_s < until_s
        ),
        log_mib=log_mib,
    )


# --- 4. against a baseline tree -------------------------------------------------------------

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Baseline:
    """An older checkout with its own venv: its ``monitor run`` is measured beside this one's."""

    tree: Path
    commit: str

    @property
    def python(self) -> str:
        return str(self.tree / ".venv" / "bin" / "python")


def git(*args: str, cwd: Path = REPOSITORY) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def prepare_baseline(rev: str | None, tree: Path | None) -> Baseline:
    """The baseline tree: ``tree`` as it is, or ``rev`` checked out there (a detached worktree
    of this repository, default under the temp directory) with a venv and the package
    installed editable, its compiled core built. A tree made before is used again."""
    if tree is None:
        assert rev is not None
        tree = Path(tempfile.gettempdir()) / f"bench-bedside-base-{rev}"
    if not (tree / ".git").exists():
        if rev is None:
            raise SystemExit(f"--baseline-tree {tree}: not a checkout (give --baseline-rev too)")
        progress(f"baseline: git worktree add --detach {tree} {rev}")
        git("worktree", "add", "--detach", str(tree), rev)
    commit = git("rev-parse", "HEAD", cwd=tree)
    if rev is not None and commit != git("rev-parse", f"{rev}^{{commit}}"):
        raise SystemExit(f"--baseline-tree {tree} is at {commit[:10]}, not {rev}")
    baseline = Baseline(tree, commit)
    if not Path(baseline.python).exists():
        progress(f"baseline: a venv in {tree}/.venv, pip install -e (builds the compiled core)")
        subprocess.run([sys.executable, "-m", "venv", str(tree / ".venv")], check=True)
        subprocess.run([baseline.python, "-m", "pip", "install", "-q", "-e", str(tree)], check=True)
    return baseline


def cpu_s_per_stream_hour(cpu_pct: float) -> float:
    """At 1x the stream runs with the wall clock: a share of a core is CPU s per stream s."""
    return cpu_pct / 100.0 * 3600.0


def comparison_rows(
    rounds: list[dict[str, tuple[LiveCost, LiveCost]]], displays: list[str]
) -> list[tuple[str, str, str, str]]:
    """Per display: the baseline's and this tree's median CPU over the rounds, and new/base."""
    rows = []
    for display in displays:
        base = [r[display][0].cpu_pct for r in rounds if display in r]
        new = [r[display][1].cpu_pct for r in rounds if display in r]
        b, n = float(np.nanmedian(base)), float(np.nanmedian(new))
        rows.append(
            (
                f"display {display}",
                f"{b:.2f}% ({cpu_s_per_stream_hour(b):.0f} s/h)",
                f"{n:.2f}% ({cpu_s_per_stream_hour(n):.0f} s/h)",
                f"{n / b:.2f}" if b > 0 else "-",
            )
        )
    return rows


def print_comparison(
    baseline: Baseline, rounds: list[dict[str, tuple[LiveCost, LiveCost]]], displays: list[str]
) -> None:
    print(
        f"monitor CPU against the baseline {baseline.commit[:10]} ({baseline.tree}), median of "
        f"{len(rounds)} interleaved rounds (base, new per display), % of a core (CPU s per "
        "stream hour):"
    )
    print()
    print(f"| monitor run | baseline {baseline.commit[:7]} | this tree | new/base |")
    print("|---|---|---|---|")
    for row in comparison_rows(rounds, displays):
        print("| " + " | ".join(row) + " |")
    print()
    for k, r in enumerate(rounds, start=1):
        each = "; ".join(
            f"{d} {b.cpu_pct:.2f} / {n.cpu_pct:.2f}"
            + (f" ({b.note or n.note})" if b.note or n.note else "")
            for d, (b, n) in r.items()
        )
        print(f"- round {k}, base / new %: {each}")


# --- report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def table_rows(
    live: list[LiveCost], latency: Latency | None, soaked: Soak | None, soak_hours: float
) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def add(figure: str, measured: str, target: str = "(reference)", ok: bool | None = None):
        rows.append((figure, measured, target, "-" if ok is None else verdict(ok)))

    off = next((c for c in live if c.display == "off" and c.cpu_pct > 0), None)
    for c in live:
        what = f"monitor CPU, display {c.display}" + (" (tmux)" if c.display == "curses" else "")
        measured = f"{c.cpu_pct:.2f}% of a core over {c.window_s:.0f} s"
        if math.isnan(c.cpu_pct):
            add(what, f"not measured: {c.note}", "", False)
        elif c.display == "off":
            add(what, measured, f"< {TARGET_CPU_PCT:g}%", c.cpu_pct < TARGET_CPU_PCT)
        else:
            ratio = f" ({c.cpu_pct / off.cpu_pct:.1f}x display off)" if off is not None else ""
            add(what, measured + ratio)
    for c in live:
        if not math.isnan(c.hwm_mib):
            add(
                f"monitor peak memory (VmHWM), display {c.display}",
                f"{c.hwm_mib:.1f} MiB (VmRSS {c.rss_mib:.1f} at the end)",
                f"< {TARGET_MEMORY_MIB:g} MiB",
                c.hwm_mib < TARGET_MEMORY_MIB,
            )
    sims = [c.sim_cpu_pct for c in live if not math.isnan(c.sim_cpu_pct)]
    if sims:
        add("simulator CPU (feeds it; not the monitor)", f"{np.mean(sims):.2f}% of a core")
    if latency is None or soaked is None:  # --cost-only
        return rows
    n = len(latency.to_log)
    for label, values in (("log commit", latency.to_log), ("outputs (spy sink)", latency.to_sinks)):
        p99 = nearest_rank(values, 99)
        add(
            f"alarm latency to {label}, median / p99 (nearest rank)",
            f"{nearest_rank(values, 50):.1f} / {p99:.1f} ms (max {np.max(values, initial=0):.1f}; "
            f"{n} transitions)",
            f"p99 < {TARGET_LATENCY_MS:g} ms",
            n > 0 and p99 < TARGET_LATENCY_MS,
        )
    # Hour against hour, both sampled mid-run: once the run returns, its transient
    # buffers are gone too, and a reading then is no like-for-like.
    hourly = soaked.rss_by_hour_mib
    first, last = (hourly[0], hourly[-1]) if hourly else (math.nan, math.nan)
    growth = last - first
    add(
        f"soak {soak_hours:g} h: VmRSS after the first / the last simulated hour",
        f"{first:.1f} / {last:.1f} MiB ({growth:+.1f})",
        f"grows {TARGET_GROWTH_MIB:g} MiB at most",
        growth <= TARGET_GROWTH_MIB,  # a fall is no leak
    )
    add(
        "soak: the monitor's loop raised",
        "never" if soaked.crash is None else f"at {clock_text(soaked.crash[0])}: {soaked.crash[1]}",
        "never",
        soaked.crash is None,
    )
    add(
        "soak: alarms raised in the timeline / in the log / at the outputs",
        f"{soaked.raised_published} / {soaked.raised_logged} / {soaked.raised_delivered}",
        "every one in the log",
        not soaked.missing_from_log
        and soaked.raised_published == soaked.raised_logged == soaked.raised_delivered,
    )
    dead = [name for name, up in soaked.threads.items() if not up]
    add(
        "soak: log writer and output threads alive at the end",
        f"{len(soaked.threads) - len(dead)} of {len(soaked.threads)}"
        + (f" (dead: {', '.join(dead)})" if dead else "")
        + f"; {len(soaked.thread_errors)} thread exceptions",
        "all alive, none raised",
        not dead and not soaked.thread_errors,
    )
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    print("| figure | measured | target | verdict |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_notes(live: list[LiveCost], latency: Latency | None, soaked: Soak | None) -> None:
    for c in live:
        extra = (
            f"; tmux server drawing it {c.terminal_cpu_pct:.2f}%"
            if c.terminal_cpu_pct is not None
            else ""
        )
        alarms = ", ".join(f"{k} {v}" for k, v in sorted(Counter(c.alarms).items())) or "none"
        threads = ", ".join(f"{k} {v:.2f}%" for k, v in c.by_thread.items())
        print(
            f"- display {c.display}: {threads}{extra}; logged {c.trend_points} trend points to "
            f"stream time {c.stream_s:.0f} s; alarms raised: {alarms}"
            + (f"; {c.note}" if c.note else "")
        )

    if latency is None or soaked is None:  # --cost-only
        return

    def spread(values: np.ndarray) -> str:
        return f"median {nearest_rank(values, 50):.2f}, p99 {nearest_rank(values, 99):.2f}"

    kinds = ", ".join(f"{k} {v}" for k, v in sorted(latency.kinds.items()))
    print(
        f"- alarm latency: {len(latency.to_log)} transitions ({kinds}) in {latency.seconds:.0f} s "
        f"of real time; {latency.via_advance} came from the loop's clock, not an input item. "
        f"Split, ms: arrival to record_entries {spread(latency.processing)}; the commit "
        f"{spread(latency.commit)}; commit to the spy's deliver {spread(latency.handoff)}. "
        f"Raised only, to the outputs: {spread(latency.raised_to_sinks)}. Commits over "
        f"{SLOW_COMMIT_MS:g} ms: {latency.slow_commits}, {latency.slow_during_bulk} of them "
        "during a commit of the log writer's thread"
        + (f"; {latency.not_delivered} logged but never delivered" if latency.not_delivered else "")
        + (f"; {latency.unattributed} outside take/advance" if latency.unattributed else "")
        + (f"; {latency.sim_note}" if latency.sim_note else "")
    )
    names = ", ".join(f"{k} {v}" for k, v in sorted(soaked.raised_by_name.items()))
    print(
        f"- soak: {soaked.simulated_s / 3600:.1f} h of 1000 Hz stream in {soaked.wall_s:.0f} s "
        f"({soaked.simulated_s / soaked.wall_s:.0f}x real time), "
        + f"{soaked.garbage_bytes:,} noise bytes on the wire; raised: {names}; VmRSS hour by "
        f"hour {' '.join(f'{v:.1f}' for v in soaked.rss_by_hour_mib)} MiB; VmHWM "
        f"{soaked.hwm_mib:.1f} MiB (the simulator shares the process); "
        f"log {soaked.log_mib:.1f} MiB"
        + (
            f"; NOT in the log: {', '.join(soaked.missing_from_log)}"
            if soaked.missing_from_log
            else ""
        )
        + (f"; log problems: {soaked.log_problems}" if soaked.log_problems else "")
        + (f"; output failures: {soaked.output_failures}" if soaked.output_failures else "")
        + (f"; thread exceptions: {soaked.thread_errors}" if soaked.thread_errors else "")
    )


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--live-s", type=float, default=300.0, help="CPU window per display mode (s, default 300)"
    )
    p.add_argument(
        "--latency-s", type=float, default=300.0, help="real time of alarm cycles (default 300)"
    )
    p.add_argument("--soak-h", type=float, default=24.0, help="simulated hours of soak (max 24)")
    p.add_argument("--no-curses", action="store_true", help="leave out the curses (tmux) row")
    p.add_argument("--quick", action="store_true", help="smoke test: 20 s, 30 s and 2 h")
    p.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also measure `monitor run` of this commit, interleaved with this tree's, and print "
        "the ratio (its tree is made with git worktree add and a venv unless --baseline-tree "
        "names one)",
    )
    p.add_argument(
        "--baseline-tree",
        type=Path,
        metavar="PATH",
        help="the baseline's checkout (with .venv, or made there from --baseline-rev)",
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds against a baseline (default 2)"
    )
    p.add_argument(
        "--cost-only", action="store_true", help="only the cost rows: no alarm latency, no soak"
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.quick:
        args.live_s, args.latency_s, args.soak_h = 20.0, 30.0, 2.0
    args.soak_h = min(args.soak_h, 24.0)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    displays = ["off", "plain"]
    if not args.no_curses and shutil.which("tmux"):
        displays.append("curses")
    print(command_line())
    print(
        f"{machine_line()}; beat core {core.IMPLEMENTATION}; "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(
        f"live: `{shlex.join(monitor_command('run', '--config', 'FILE', '--display', 'MODE'))}` "
        f"for MODE in {', '.join(displays)}, each fed by its own `monitor sim --scenario "
        f"bench/soak-24h.toml --speed 1` (1000 Hz in 25-sample frames, pumps P1 and P2, over "
        f"ptys); CPU = utime+stime of the monitor's process over a {args.live_s:g} s window "
        f"opened {STARTUP_S:g} s after its launch; curses in a detached 120x40 tmux pane"
    )
    if not args.cost_only:
        print(
            "alarm latency: LiveMonitor in this process on ptys, simulator in a child process at "
            f"1x, a {CYCLE_S:g} s cycle of zeroing, disconnection, a silent pump and noise bytes; "
            "from the moment the input item enters Bedside.take to record_entries returning "
            "(FULL sync, log on this machine's disk) and to a spy output's deliver behind the "
            "real SinkFanout"
        )
        print(
            f"soak: bench/soak-24h.toml to {args.soak_h:g} h through virtual_bench.run_scenario in "
            "a fresh process, real BedsideLog (temp dir) and SinkFanout (terminal to /dev/null "
            "+ spy)"
        )
    print()
    baseline = None
    if args.baseline_rev or args.baseline_tree:
        baseline = prepare_baseline(args.baseline_rev, args.baseline_tree)
    latency: Latency | None = None
    soaked: Soak | None = None
    with tempfile.TemporaryDirectory(prefix="bench-bedside-") as tmp:
        workdir = Path(tmp)
        live = []
        rounds: list[dict[str, tuple[LiveCost, LiveCost]]] = []
        for k in range(args.rounds if baseline is not None else 1):
            pairs = {}
            for display in displays:
                base = None
                if baseline is not None:
                    progress(f"round {k + 1}, baseline {display}: {STARTUP_S + args.live_s:.0f} s")
                    base = measure_live(display, args.live_s, workdir, baseline.python, f"base{k}-")
                progress(f"monitor run --display {display}: {STARTUP_S + args.live_s:.0f} s")
                new = measure_live(display, args.live_s, workdir, tag=f"{k}-")
                if base is not None:
                    pairs[display] = (base, new)
                live.append(new)
            rounds.append(pairs)
        if baseline is not None:  # the table shows this tree's median round per display
            live = [
                sorted((r[d][1] for r in rounds), key=lambda c: c.cpu_pct)[(len(rounds) - 1) // 2]
                for d in displays
            ]
        if not args.cost_only:
            progress(f"alarm latency: {CYCLE_LEAD_S + args.latency_s:.0f} s in real time")
            latency = measure_latency(args.latency_s, workdir)
    if not args.cost_only:
        progress(f"soak: {args.soak_h:g} h of scenario as fast as possible")
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            soaked = pool.submit(soak, 3600.0 * args.soak_h).result()
    print_table(table_rows(live, latency, soaked, args.soak_h))
    print()
    print_notes(live, latency, soaked)
    if baseline is not None:
        print()
        print_comparison(baseline, rounds, displays)
    print(f"benchmark wall time: {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
