"""Accuracy of the beat core on the recordings in tests/data and on synthetic ABP, as Markdown.

Real records are scored against PhysioNet's wabp onsets with the functions the
tests use (``monitor.analysis.validation``), at the native rate and resampled; synthetic
records against the generator's exact beat MAPs. Figures are reported, never
asserted: the thresholds live in ``tests/test_beat_accuracy_real.py``.

Run as ``python bench/accuracy.py``; ``--quick`` scores the native rate only.
The tables go to stdout and the wall time to stderr, so the output of two runs
on the same core can be diffed against the copy in docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.simulation.abp_waveform import SyntheticAbp, synthesize_abp
from monitor import core
from monitor.analysis.validation import (
    ReferenceRecord,
    load_reference_record,
    match_onsets,
    resample_record,
    run_detector,
    score_beats,
)
from monitor.core.beat_types import EventKind

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
#: Records that are mostly a flat or disconnected line; wabp's onsets there are spurious.
FLAT_LINE_RECORDS = (
    "mimic2_s00001_3975656_0012",
    "mimic3_s25047_3234460_0017",
    "mimic3_s25047_3234460_0018",
)
RESAMPLED_HZ = (250.0, 500.0, 1000.0)
SYNTHETIC_HZ = (100.0, 125.0, 250.0, 500.0, 1000.0)
QUICK_SYNTHETIC_HZ = (125.0,)
SKIP_S = 10.0  # the core learns its threshold for 8 s
WINDOW_S = 0.150  # onset match window


@dataclass(frozen=True)
class SyntheticCase:
    """A generated record whose every beat onset and MAP is known."""

    name: str
    make: Callable[[float], SyntheticAbp]


SYNTHETIC_CASES = (
    SyntheticCase(
        "MAP 80 -> 50 mmHg over 300 s, PP 35, HR 75",
        lambda fs: synthesize_abp(
            300.0, fs, map_mmhg=lambda t: 80.0 - 30.0 * t / 300.0, pulse_pressure_mmhg=35.0
        ),
    ),
    SyntheticCase(
        "shock: MAP 45, PP 12, HR 110, 300 s",
        lambda fs: synthesize_abp(
            300.0, fs, map_mmhg=45.0, pulse_pressure_mmhg=12.0, heart_rate_bpm=110.0
        ),
    ),
)


def record_names() -> list[str]:
    """Every record folder of tests/data, pulsatile first, each group in name order."""
    names = sorted(p.name for p in DATA.iterdir() if (p / "abp.csv.gz").is_file())
    return sorted(names, key=lambda name: name in FLAT_LINE_RECORDS)


def versions(record: ReferenceRecord, quick: bool) -> list[ReferenceRecord]:
    """The record at its native rate, then (unless ``quick``) resampled to each of RESAMPLED_HZ."""
    return [record] + ([] if quick else [resample_record(record, fs) for fs in RESAMPLED_HZ])


def percent(fraction: float) -> str:
    return "n/a" if np.isnan(fraction) else f"{100 * fraction:.2f}"


def error_cell(p95: float, largest: float) -> str:
    return "n/a" if np.isnan(p95) else f"{p95:.2f} / {largest:.2f}"


def event_summary(events: np.ndarray, fs: float) -> str:
    """Each no-pulse kind found: how many stretches began, and the seconds they cover.

    ``finish()`` closes every open stretch, so each begin has its end.
    """
    cells = []
    for kind in EventKind:
        mine = events[events["kind"] == kind]
        begins = mine["index"][mine["begin"]]
        if len(begins):
            covered = (mine["index"][~mine["begin"]].sum() - begins.sum()) / fs
            cells.append(f"{kind.name.lower()} {len(begins)} ({covered:.1f} s)")
    return ", ".join(cells) or "none"


def rate_cell(record: ReferenceRecord, native: float) -> str:
    return f"{record.fs:g}" + (" (native)" if record.fs == native else "")


def print_pulsatile(names: list[str], quick: bool) -> None:
    print("### Real records with pulses: agreement with wabp")
    print()
    print(
        f"Beats are counted from {SKIP_S:g} s on, outside the marked artifact intervals; the "
        "record's last reference onset is not counted. MAP error: matched clean beats against "
        "the mean pressure between the matched reference onset and the next. Artifact beats: "
        "detected onsets inside marked intervals, and how many of them the core calls clean."
    )
    print()
    print(
        "| record | rate (Hz) | beats | reference beats | Se % | +P % | clean % of matched "
        "| MAP error p95 / max (mmHg) | artifact beats / clean | no-pulse events |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in names:
        original = load_reference_record(DATA / name)
        for record in versions(original, quick):
            beats, events = run_detector(core.BeatDetector, record.samples, record.fs)
            s = score_beats(
                beats,
                record.samples,
                record.onsets,
                record.fs,
                artifacts=record.artifacts,
                skip_s=SKIP_S,
                window_s=WINDOW_S,
            )
            artifacts = (
                f"{s.artifact_beats} / {s.clean_in_artifact}" if len(record.artifacts) else "-"
            )
            print(
                f"| {name} | {rate_cell(record, original.fs)} | {s.detected_beats} "
                f"| {s.reference_beats} | {percent(s.sensitivity)} "
                f"| {percent(s.positive_predictivity)} | {percent(s.clean_share)} "
                f"| {error_cell(s.map_error_p95, s.map_error_max)} | {artifacts} "
                f"| {event_summary(events, record.fs)} |"
            )
    print()


def print_flat_line(names: list[str], quick: bool) -> None:
    print("### Flat-line records: no beat may be clean")
    print()
    print(
        f"Beats and wabp onsets from {SKIP_S:g} s on; clean beats over the whole record. "
        "No-pulse events: stretches of each kind the core reported, and the seconds they cover."
    )
    print()
    print("| record | rate (Hz) | beats | wabp onsets (spurious) | clean beats | no-pulse events |")
    print("|---|---|---:|---:|---:|---|")
    for name in names:
        original = load_reference_record(DATA / name)
        for record in versions(original, quick):
            beats, events = run_detector(core.BeatDetector, record.samples, record.fs)
            start = int(round(SKIP_S * record.fs))
            print(
                f"| {name} | {rate_cell(record, original.fs)} "
                f"| {np.sum(beats['onset'] >= start)} "
                f"| {np.sum(record.onsets[:-1] >= start)} | {np.sum(beats['clean'])} "
                f"| {event_summary(events, record.fs)} |"
            )
    print()


def score_synthetic(beats: np.ndarray, truth: SyntheticAbp) -> tuple[str, ...]:
    """Cells of one synthetic row: the generator's onsets and beat MAPs are the reference.

    As for real records, the first ``SKIP_S`` are not scored and the last
    onset starts no complete beat.
    """
    start = int(round(SKIP_S * truth.fs))
    scored = np.flatnonzero(truth.onsets[:-1] >= start)
    detected = beats[beats["onset"] >= start]
    det_i, ref_i = match_onsets(
        detected["onset"], truth.onsets[scored], int(round(WINDOW_S * truth.fs))
    )
    matched = detected[det_i]
    clean = matched["clean"]
    errors = np.abs(matched["map"][clean] - truth.beat_map[scored[ref_i]][clean])
    p95, largest = (np.percentile(errors, 95), errors.max()) if len(errors) else (np.nan, np.nan)
    return (
        str(len(detected)),
        str(len(scored)),
        percent(len(ref_i) / len(scored)),
        percent(len(det_i) / len(detected) if len(detected) else float("nan")),
        percent(float(np.mean(clean)) if len(clean) else float("nan")),
        error_cell(p95, largest),
    )


def print_synthetic(quick: bool) -> None:
    print("### Synthetic records: MAP against the generator's exact beat MAP")
    print()
    print(
        "devices.simulation.abp_waveform.synthesize_abp "
        "(seed 0, 0.3 mmHg noise, 4 mmHg breathing swing); "
        f"scored like the real records, from {SKIP_S:g} s on, against the generator's onsets; "
        "MAP error of matched clean beats against the exact mean of the noise-free beat."
    )
    print()
    print(
        "| case | rate (Hz) | beats | true beats | Se % | +P % | clean % of matched "
        "| MAP error p95 / max (mmHg) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in SYNTHETIC_CASES:
        for fs in QUICK_SYNTHETIC_HZ if quick else SYNTHETIC_HZ:
            truth = case.make(fs)
            beats, _ = run_detector(core.BeatDetector, truth.samples, truth.fs)
            print(f"| {case.name} | {fs:g} | " + " | ".join(score_synthetic(beats, truth)) + " |")
    print()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke test: native rates only (125 Hz synthetic)"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    detector = f"{core.BeatDetector.__module__}.{core.BeatDetector.__qualname__}"
    print(f"- command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`")
    print(
        f"- core: {core.IMPLEMENTATION} ({detector}); Python {platform.python_version()}; "
        f"numpy {np.__version__}"
    )
    print(
        f"- scoring: monitor.analysis.validation.score_beats; first {SKIP_S:g} s not scored; "
        f"onsets match within {1000 * WINDOW_S:g} ms; records resampled by "
        "monitor.analysis.validation.resample_record"
    )
    print()
    names = record_names()
    print_pulsatile([n for n in names if n not in FLAT_LINE_RECORDS], args.quick)
    print_flat_line([n for n in names if n in FLAT_LINE_RECORDS], args.quick)
    print_synthetic(args.quick)
    print(f"accuracy wall time: {time.perf_counter() - wall:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
