"""CPU share of reading one real-time 1000 Hz transducer over a pty, as a Markdown table.

The real command plays the stream: ``monitor sim --replay`` of a synthetic ABP
CSV at speed 1, in its own process, so the simulator's CPU is not counted
(it is shown apart). This process runs what a bedside runs:
``DeviceInput`` with one transducer port (its pyserial reader thread and the
decoder) and a loop calling ``poll(0.05)``, which either only consumes the
items or also pushes every ``SampleBlock`` into ``BeatStream``. CPU is
``time.process_time()`` over a wall-clock window (every thread of this
process), split into the reader thread and the rest. An idle row (a port
open, nothing sent) shows what polling costs by itself. Each run checks that
every sample sent arrived, in order, with its value; shortfalls are reported,
never asserted: a shared machine is no place to fail a build on speed.

Run as ``python bench/bench_serial_cpu.py``; ``--quick`` is a smoke test for CI.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import serial
from provenance import command_line, machine_line

from devices.protocols.decoding import Decoder
from devices.protocols.transducer import AsciiTransducerDecoder, BinaryTransducerDecoder
from devices.readings import SampleBlock
from devices.simulation.abp_waveform import synthesize_abp
from devices.simulation.virtual_ports import VirtualPort
from monitor import core
from monitor.configuration.drug_table import load_drug_table
from monitor.core.beat_stream import BeatStream
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import DeviceEvent
from monitor.edge.serial_link import PortSettings

FS = 1000  # Hz, the transducer's sample rate
FRAME_SAMPLES = round(FS / 25)  # 40 ms per frame, as replay_front_end sends
POLL_S = 0.05  # the timeout of each DeviceInput.poll
WARMUP_S = 1.0  # after the first samples arrive, before the window opens
LEAD_S = 4.0  # stream sent beyond the window: start-up, warm-up and slack
DRAIN_S = 5.0  # after the window, to wait for the rest of the stream
# The wire carries 0.01 mmHg (binary) or 0.1 mmHg (ASCII); the CSV holds 0.01 mmHg.
TOLERANCE_MMHG = {"binary": 0.005 + 1e-6, "ascii": 0.05 + 1e-6}


class _CountReads:
    """Counts the serial reads a decoder is fed (one ``feed`` per read) and their bytes."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads = 0
        self.read_bytes = 0
        self.one_byte_reads = 0

    def feed(self, data: bytes) -> list:
        self.reads += 1
        self.read_bytes += len(data)
        self.one_byte_reads += len(data) == 1
        return super().feed(data)


class CountingBinary(_CountReads, BinaryTransducerDecoder):
    pass


class CountingAscii(_CountReads, AsciiTransducerDecoder):
    pass


@dataclass
class Config:
    """One row: a protocol (or none, for the idle row) and what the loop does with samples."""

    what: str
    protocol: str | None  # None: a port open with nothing sent
    beats: bool


@dataclass
class Result:
    """What one configuration measured over its window, and what the whole run received."""

    config: Config
    wall_s: float = 0.0
    cpu_s: float = 0.0
    reader_cpu_s: float | None = None
    window_samples: int = 0
    window_reads: int = 0
    window_bytes: int = 0
    window_one_byte_reads: int = 0
    polls: int = 0
    empty_polls: int = 0
    sent: int = 0
    received: int = 0
    missing: int = 0
    worst_error_mmhg: float = 0.0
    beats: int = 0
    decoder_losses: dict[str, int] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    sim_cpu_s: float | None = None
    sim_s: float = 0.0
    sim_summary: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s

    def complete(self) -> bool:
        if self.config.protocol is None:
            return True
        tolerance = TOLERANCE_MMHG[self.config.protocol]
        return (
            self.received == self.sent
            and not self.missing
            and self.worst_error_mmhg <= tolerance
            and not self.decoder_losses
        )


# --- the stream, played by the real command in its own process ---------------------------------


def write_csv(path: Path, seconds: float) -> np.ndarray:
    """Synthetic ABP at 1000 Hz as ``monitor sim --replay`` reads it; returns the values written."""
    signal = np.round(synthesize_abp(seconds, float(FS), seed=3).samples, 2)
    table = np.column_stack((np.arange(len(signal)) / FS, signal))
    np.savetxt(path, table, fmt=("%.3f", "%.2f"), delimiter=",", header="time_s,abp", comments="")
    return signal


def monitor_command() -> list[str]:
    """The console script installed beside this interpreter, else ``python -m monitor``."""
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def sim_command(csv: Path, protocol: str) -> list[str]:
    return [
        *monitor_command(),
        "sim",
        "--replay",
        str(csv),
        "--fs",
        str(FS),
        "--speed",
        "1",
        "--protocol",
        protocol,
        "--hold-s",
        "2",
        "--quiet",
    ]


def start_sim(csv: Path, protocol: str) -> tuple[subprocess.Popen[str], str]:
    """Start the simulator; returns it and the transducer's pty path, once it is printed."""
    proc = subprocess.Popen(
        sim_command(csv, protocol), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        words = line.split()
        if len(words) == 2 and words[0] == "transducer":
            return proc, words[1]
    proc.wait()
    raise SystemExit(f"monitor sim printed no transducer port: {proc.stderr.read().strip()}")


# --- the measuring loop --------------------------------------------------------------------------


def thread_cpu(name: str) -> float | None:
    """CPU seconds of this process's thread ``name`` so far (Linux), else None."""
    getclock = getattr(time, "pthread_getcpuclockid", None)
    for thread in threading.enumerate():
        if thread.name == name and thread.ident is not None and getclock is not None:
            try:
                return time.clock_gettime(getclock(thread.ident))
            except OSError:
                return None
    return None


def measure(config: Config, seconds: float, workdir: Path) -> Result:
    """Play ``seconds`` + ``LEAD_S`` of stream; time a ``seconds`` window after warm-up."""
    result = Result(config)
    signal = np.empty(0)
    proc = None
    idle_port = None
    decoder: Decoder
    if config.protocol is None:
        idle_port = VirtualPort("idle")
        path, decoder = idle_port.path, CountingBinary()
    else:
        csv = workdir / f"abp_{config.protocol}.csv"
        signal = write_csv(csv, seconds + LEAD_S)
        result.sent = len(signal)
        children = os.times()
        sim_start = time.monotonic()
        proc, path = start_sim(csv, config.protocol)
        decoder = CountingBinary() if config.protocol == "binary" else CountingAscii(FS)
    # Built once the simulator is up: the stream clock starts here, and a
    # late first frame would be filled with missing samples.
    device_input = DeviceInput(
        (PortSettings("transducer", path), decoder),
        [],
        sample_rate=FS,
        drug_table=load_drug_table(),
    )
    stream = BeatStream(FS) if config.beats else None
    blocks: list[np.ndarray] = []
    window_open = window_closed = False
    timing: dict[str, float | None] = {}

    def consume(items: list) -> int:
        """The loop body under test; returns the samples that arrived."""
        n = 0
        for item in items:
            if isinstance(item, SampleBlock):
                if stream is not None:
                    result.beats += len(stream.push(item).beats)
                if item.missing:
                    result.missing += len(item.samples)
                else:
                    blocks.append(item.samples)
                    n += len(item.samples)
            elif isinstance(item, DeviceEvent):
                result.events[item.kind.value] += 1
        return n

    device_input.start()
    try:
        started = time.monotonic()
        first_sample = None if config.protocol else started
        while True:
            now = time.monotonic()
            if first_sample is None and now - started > 10.0:
                result.notes.append("no samples within 10 s of starting the reader")
                break
            if not window_open and first_sample is not None and now - first_sample >= WARMUP_S:
                window_open = True
                timing = {
                    "wall": time.perf_counter(),
                    "cpu": time.process_time(),
                    "reader": thread_cpu("reader-transducer"),
                }
                reads0, bytes0 = decoder.reads, decoder.read_bytes
                ones0 = decoder.one_byte_reads
            if window_open and time.perf_counter() - timing["wall"] >= seconds:
                result.wall_s = time.perf_counter() - timing["wall"]
                result.cpu_s = time.process_time() - timing["cpu"]
                reader = thread_cpu("reader-transducer")
                if reader is not None and timing["reader"] is not None:
                    result.reader_cpu_s = reader - timing["reader"]
                result.window_reads = decoder.reads - reads0
                result.window_bytes = decoder.read_bytes - bytes0
                result.window_one_byte_reads = decoder.one_byte_reads - ones0
                window_closed = True
                break
            items = device_input.poll(POLL_S)
            n = consume(items)
            if window_open:
                result.polls += 1
                result.empty_polls += not items
                result.window_samples += n
            if n and first_sample is None:
                first_sample = time.monotonic()
        # Untimed: wait for the rest of the stream, to check that all of it arrived.
        deadline = time.monotonic() + LEAD_S + DRAIN_S
        while proc is not None and sum(map(len, blocks)) < result.sent:
            if time.monotonic() > deadline:
                break
            consume(device_input.poll(POLL_S))
    finally:
        device_input.stop()
        if idle_port is not None:
            idle_port.close()
    if proc is not None:
        try:
            out, err = proc.communicate(timeout=10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            result.notes.append("simulator did not end; killed")
        result.sim_s = time.monotonic() - sim_start
        done = os.times()
        result.sim_cpu_s = (done.children_user + done.children_system) - (
            children.children_user + children.children_system
        )
        result.sim_summary = " ".join(out.split())
        if proc.returncode:
            result.notes.append(f"simulator exit {proc.returncode}: {err.strip()[-200:]}")
    if not window_closed:
        result.notes.append("window never closed")
        result.wall_s = result.wall_s or float("nan")
    if stream is not None:
        result.beats += len(stream.finish().beats)
    got = np.concatenate(blocks) if blocks else np.empty(0)
    result.received = len(got)
    if config.protocol is not None:
        n = min(len(got), len(signal))
        result.worst_error_mmhg = float(np.max(np.abs(got[:n] - signal[:n]), initial=0.0))
        result.decoder_losses = {
            k: v for k, v in decoder.counts.items() if k not in ("frames", "readings") and v
        }
    return result


# --- report ------------------------------------------------------------------------------------


def check_cell(r: Result) -> str:
    if r.config.protocol is None:
        return "n/a"
    if r.complete():
        return f"all {r.sent:,} in order (max error {r.worst_error_mmhg:.3f} mmHg)"
    problems = []
    if r.received != r.sent:
        problems.append(f"{r.received:,} of {r.sent:,} received")
    if r.missing:
        problems.append(f"{r.missing:,} filled as missing")
    if r.worst_error_mmhg > TOLERANCE_MMHG[r.config.protocol]:
        problems.append(f"values differ by up to {r.worst_error_mmhg:.3f} mmHg")
    if r.decoder_losses:
        problems.append(f"decoder {r.decoder_losses}")
    return "INCOMPLETE: " + "; ".join(problems)


def print_table(results: list[Result]) -> None:
    print(
        "| configuration | CPU % of a core | reader thread % | rest % | samples in window "
        "| samples/s | reads/s | bytes/read | 1-byte reads | empty polls | all samples arrived |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        wall = r.wall_s
        if r.reader_cpu_s is None:
            reader = rest = "n/a"
        else:
            reader = f"{100 * r.reader_cpu_s / wall:.2f}"
            rest = f"{100 * (r.cpu_s - r.reader_cpu_s) / wall:.2f}"
        per_read = f"{r.window_bytes / r.window_reads:.1f}" if r.window_reads else "n/a"
        print(
            f"| {r.config.what} | {r.cpu_pct:.2f} | {reader} | {rest} | {r.window_samples:,} "
            f"| {r.window_samples / wall:,.1f} | {r.window_reads / wall:,.1f} | {per_read} "
            f"| {r.window_one_byte_reads}/{r.window_reads} | {r.empty_polls}/{r.polls} "
            f"| {check_cell(r)} |"
        )


def print_details(results: list[Result]) -> None:
    for r in results:
        parts = []
        if r.config.beats:
            parts.append(f"{r.beats} beats")
            if not r.beats:
                parts.append(
                    "none: the core reports beats only after its learning period (first beat "
                    "about 9.5 s into this stream), so the window timed learning only"
                )
        if r.events:
            parts.append("events " + ", ".join(f"{k} {v}" for k, v in sorted(r.events.items())))
        if r.sim_cpu_s is not None:
            parts.append(
                f"simulator (not counted) {100 * r.sim_cpu_s / r.sim_s:.1f}% of a core over "
                f"its {r.sim_s:.1f} s, start-up included; it said: {r.sim_summary!r}"
            )
        parts += r.notes
        print(f"- {r.config.what}: " + "; ".join(parts))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--seconds", type=float, default=30.0, help="wall-clock window per configuration"
    )
    p.add_argument("--no-ascii", action="store_true", help="leave out the ASCII protocol rows")
    p.add_argument("--quick", action="store_true", help="smoke test: a 3 s window each")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    print(command_line())
    print(
        f"{machine_line()}; pyserial {serial.__version__}; beat core {core.IMPLEMENTATION}; "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(
        f"stream: synthetic ABP at {FS} Hz, {FRAME_SAMPLES} samples per frame, played in real time "
        f"by `{shlex.join(sim_command(Path('abp.csv'), '{binary,ascii}'))}` in its own process "
        "(its CPU not counted) into a pty"
    )
    print(
        f"measured: this process (all threads, time.process_time) over a {args.seconds:g} s "
        f"wall window opened {WARMUP_S:g} s after the first samples; DeviceInput reader thread "
        f"plus a loop of poll({POLL_S:g}); CPU % is of one core; reads counted at the decoder"
    )
    print()

    configs = [
        Config("idle: port open, nothing sent", None, False),
        Config("binary: consume items", "binary", False),
        Config("binary: + BeatStream", "binary", True),
    ]
    if not args.no_ascii:
        configs += [
            Config("ASCII: consume items", "ascii", False),
            Config("ASCII: + BeatStream", "ascii", True),
        ]
    with tempfile.TemporaryDirectory(prefix="bench_serial_cpu_") as tmp:
        results = [measure(c, args.seconds, Path(tmp)) for c in configs]

    print_table(results)
    print()
    print_details(results)
    incomplete = [r.config.what for r in results if not r.complete()]
    if incomplete:
        print(f"NOTE: samples lost or late in: {', '.join(incomplete)} (reported, not asserted)")
    print(f"benchmark wall time: {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
