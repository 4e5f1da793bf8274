"""Throughput of the streaming beat core, printed as a Markdown table for the docs.

Times, on one hour of real ABP at 125 Hz and at 1000 Hz: the compiled core fed
1-second chunks, 32-sample chunks (one serial read) and one sample at a time, the
pure-Python reference, and BioSPPy's offline onset detection (Zong 2003) when the
``bench`` extra is installed. Timings are reported against the targets, never
asserted: a shared machine is no place to fail a build on speed.

Run as ``python bench/bench_core.py``; ``--quick`` is a smoke test for CI.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from provenance import command_line, machine_line

try:
    from monitor._beat_detector import BeatDetector
except ImportError as exc:
    raise SystemExit(
        f"compiled core not importable ({exc}): build it with "
        "`pip install -e . --no-build-isolation`"
    ) from None
from monitor.core.beat_detector_py import BeatDetector as ReferenceBeatDetector

RECORD = "cliffordlab_TestICUdata"
RECORD_PATH = Path(__file__).resolve().parent.parent / "tests" / "data" / RECORD / "abp.csv.gz"
RECORD_FS = 125.0
RATES_HZ = (125.0, 1000.0)
SERIAL_READ = 32  # samples per read from the serial port

# Issue targets in million samples/s (float64 input, median of 5 runs).
TARGET_MSPS = {(125.0, "1s"): 25.0, (1000.0, "1s"): 50.0, (1000.0, "32"): 20.0}
TARGET_VS_BIOSPPY = 20.0  # compiled core in 1 s chunks vs BioSPPy, at 125 Hz


@dataclass
class Case:
    """One row of the table: a piece of work and the signal it covers."""

    fs: float
    key: str  # "1s", "32", "1", "ref" or "biosppy"
    what: str
    seconds: float  # of signal timed
    work: Callable[[], object]
    times: list[float] = field(default_factory=list)
    result: object = None

    def rate(self, how: Callable[[list[float]], float] = statistics.median) -> float:
        """Input samples per second."""
        return self.seconds * self.fs / how(self.times)


def load_signals(duration_s: float) -> dict[float, np.ndarray]:
    """The real record tiled to ``duration_s``, as recorded and linearly resampled to 1000 Hz.

    A real recording rather than a synthetic one, so the detector meets real
    beat shapes, noise and threshold updates; each tiling seam is one odd beat.
    """
    record = np.loadtxt(RECORD_PATH, delimiter=",", skiprows=1)[:, 1]
    signals = {}
    for fs in RATES_HZ:
        n_one = round(len(record) * fs / RECORD_FS)
        one = np.interp(np.arange(n_one) / fs, np.arange(len(record)) / RECORD_FS, record)
        signals[fs] = np.resize(one, round(duration_s * fs))
    return signals


def chunked(signal: np.ndarray, size: int) -> list[np.ndarray]:
    """Fresh arrays, as a reader hands over each read, sliced before the clock starts."""
    return [signal[i : i + size].copy() for i in range(0, len(signal), size)]


def streamer(detector_cls: type, fs: float, chunks: list[np.ndarray]) -> Callable[[], None]:
    """A new detector fed ``chunks``: the timed loop is the consumer's own loop."""

    def stream() -> None:
        d = detector_cls(fs)
        for c in chunks:
            d.push(c)
        d.finish()

    return stream


def core_cases(fs: float, signal: np.ndarray, args: argparse.Namespace) -> list[Case]:
    """The compiled core fed as a caller would, and the reference on a slice (it is slow)."""
    one_second = chunked(signal, int(fs))
    one_sample = chunked(signal[: int(args.one_sample_seconds * fs)], 1)
    reference = one_second[: int(args.reference_seconds)]
    return [
        Case(
            fs, "1s", "compiled, 1 s chunks", args.seconds, streamer(BeatDetector, fs, one_second)
        ),
        Case(
            fs,
            "32",
            f"compiled, {SERIAL_READ}-sample chunks",
            args.seconds,
            streamer(BeatDetector, fs, chunked(signal, SERIAL_READ)),
        ),
        Case(
            fs,
            "1",
            "compiled, 1 sample per push",
            args.one_sample_seconds,
            streamer(BeatDetector, fs, one_sample),
        ),
        Case(
            fs,
            "ref",
            "pure-Python reference, 1 s chunks",
            args.reference_seconds,
            streamer(ReferenceBeatDetector, fs, reference),
        ),
    ]


def biosppy_cases(fs: float, signal: np.ndarray, seconds: float) -> tuple[list[Case], str]:
    """BioSPPy given the whole signal in one call, or why it cannot run."""
    try:
        from biosppy.signals import abp
    except ImportError as exc:
        return [], str(exc)
    name = f"BioSPPy {metadata.version('biosppy')}"
    return [
        Case(
            fs,
            "biosppy",
            f"{name} find_onsets_zong2003, one call on the raw signal (onsets only)",
            seconds,
            lambda: abp.find_onsets_zong2003(signal=signal, sampling_rate=fs),
        ),
        Case(
            fs,
            "biosppy",
            f"{name} abp.abp, one call (1-8 Hz Butterworth, onsets, heart rate)",
            seconds,
            lambda: abp.abp(signal=signal, sampling_rate=fs, show=False),
        ),
    ], ""


def run_round_robin(cases: list[Case], runs: int) -> None:
    """Run 1 of every case, then run 2, ...: the rows share the machine's slow and fast spells.

    A shared machine drifts over seconds; timing one row's runs back to back
    would put that drift into the ratios between rows.
    """
    for _ in range(runs):
        for case in cases:
            gc.collect()
            start = time.perf_counter()
            case.result = case.work()
            case.times.append(time.perf_counter() - start)


def count_beats(fs: float, signal: np.ndarray) -> int:
    """Beats the compiled core reports, to show it did the work BioSPPy is compared with."""
    d = BeatDetector(fs)
    n = sum(len(d.push(c).beats) for c in chunked(signal, int(fs)))
    return n + len(d.finish().beats)


def state_growth(fs: float, signal: np.ndarray) -> tuple[int, int]:
    """Detector memory after one minute, and its growth from there to the end of ``signal``.

    The state must be bounded: a monitor runs for days.
    """
    minute = int(60 * fs)
    head = chunked(signal[:minute], int(fs))
    tail = chunked(signal[minute:], int(fs))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        d = BeatDetector(fs)
        for c in head:
            d.push(c)
        gc.collect()
        after_minute = tracemalloc.get_traced_memory()[0]
        for c in tail:
            d.push(c)
        gc.collect()
        after_all = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after_minute - base, after_all - after_minute


def target_cell(case: Case, core_1s: float) -> str:
    """The issue's target for this row and whether it was met here (informational)."""
    if case.key == "biosppy":
        ratio = core_1s / case.rate()
        met = "PASS" if ratio >= TARGET_VS_BIOSPPY else "below"
        return f"core 1 s >= {TARGET_VS_BIOSPPY:g}x this: {met} ({ratio:.1f}x)"
    goal = TARGET_MSPS.get((case.fs, case.key))
    if goal is None:
        return ""
    return f">= {goal:g} M/s: {'PASS' if case.rate() / 1e6 >= goal else 'below'}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs per row; the median is shown")
    p.add_argument("--seconds", type=float, default=3600.0, help="signal length for the fast rows")
    p.add_argument(
        "--one-sample-seconds",
        type=float,
        default=300.0,
        help="signal length for the compiled core fed one sample at a time",
    )
    p.add_argument(
        "--reference-seconds",
        type=float,
        default=120.0,
        help="signal length for the pure-Python reference",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 1 run on 5 minutes")
    args = p.parse_args(argv)
    if args.quick:
        args.runs = 1
        args.seconds = 300.0
    args.one_sample_seconds = min(args.one_sample_seconds, args.seconds)
    args.reference_seconds = min(args.reference_seconds, args.seconds)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    print(command_line())
    print(machine_line())
    print(
        f"signal: {RECORD} (300 s of real ICU ABP at 125 Hz) tiled to {args.seconds:g} s; "
        "1000 Hz is the same record resampled by linear interpolation (np.interp), then tiled"
    )
    print(
        f"float64 input; median of {args.runs} run(s), rows timed in turn; a new detector "
        "per run; chunks sliced before timing; samples/s counts input samples"
    )
    print()

    signals = load_signals(args.seconds)
    cases = core_cases(125.0, signals[125.0], args)
    bio, missing = biosppy_cases(125.0, signals[125.0], args.seconds)
    cases += bio + core_cases(1000.0, signals[1000.0], args)
    run_round_robin(cases, args.runs)

    core_1s = next(c.rate() for c in cases if c.fs == 125.0 and c.key == "1s")
    reference = {c.fs: c.rate() for c in cases if c.key == "ref"}
    print(
        "| signal | what | signal s timed | M samples/s | runs min-max | x pure-Python | target |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for c in cases:
        spread = f"{c.rate(max) / 1e6:.2f}-{c.rate(min) / 1e6:.2f}"
        print(
            f"| {c.fs:g} Hz | {c.what} | {c.seconds:g} | {c.rate() / 1e6:.2f} | {spread} "
            f"| {c.rate() / reference[c.fs]:.1f} | {target_cell(c, core_1s)} |"
        )
        if missing and c.fs == 125.0 and c.key == "ref":
            print(
                f"| 125 Hz | BioSPPy not installed: pip install '.[bench]' ({missing}) | | | | | |"
            )
    print()

    beats = count_beats(125.0, signals[125.0])
    found = [f"compiled core {beats} beats"] + [
        f"{c.what.split(',')[0]}: {len(c.result['onsets'])} onsets" for c in bio
    ]
    print(f"found in {args.seconds:g} s at 125 Hz: " + "; ".join(found))
    growth = []
    for fs, signal in signals.items():
        state, grown = state_growth(fs, signal)
        growth.append(
            f"{fs:g} Hz {state / 1024:.1f} KiB after 1 min, "
            f"{grown / 1024:+.1f} KiB from there to the end"
        )
    print(f"detector memory (tracemalloc current), {args.seconds:g} s fed: " + "; ".join(growth))
    print(f"benchmark wall time: {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
