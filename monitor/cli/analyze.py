"""``monitor analyze``: the detector and alarms over a recorded case, as fast as possible."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from monitor.cli.args import UsageError, positive_number


def cmd_analyze(args: argparse.Namespace) -> int:
    from monitor.analysis.analyze import PumpFileError, analyze, read_pump_rows, write_timeline
    from monitor.analysis.records import open_recording
    from monitor.clinical.settings import ClinicalSettings
    from monitor.configuration.config import load_config
    from monitor.configuration.drug_names import configured_drug_names
    from monitor.configuration.drug_table import load_drug_table

    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise UsageError(f"cannot write the timeline to {args.out}: no such directory")
    config = load_config(args.config)
    drugs = load_drug_table(config.text("drugs.table") or None)
    recording = open_recording(args.abp, fs=args.fs, channel=args.channel)
    try:
        rows = read_pump_rows(args.pumps) if args.pumps else []
    except PumpFileError as exc:
        raise UsageError(str(exc)) from None
    settings = ClinicalSettings.from_config(config)
    try:
        timeline, pipeline = analyze(
            recording.chunks(),
            recording.fs,
            rows,
            settings=settings,
            drugs=drugs,
            drug_names=configured_drug_names(config, drugs),
            weight_kg=args.weight,
            total=recording.n_samples,
        )
    except ValueError as exc:  # a rate the beat core cannot run at
        raise UsageError(f"{recording.source}: {exc}") from None
    finally:
        recording.close()
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                count = write_timeline(timeline, out)
        except OSError as exc:
            raise UsageError(f"cannot write the timeline to {args.out}: {exc.strerror}") from None
    else:
        count = write_timeline(timeline, sys.stdout)
    duration_s = recording.n_samples / recording.fs
    raised = Counter(e.name for e in timeline if e.kind == "raised")
    suppressed = Counter(e.name for e in timeline if e.kind == "suppressed")
    beats, clean = pipeline.beats_seen, pipeline.clean_beats
    print(
        f"analyzed {recording.source}: {duration_s / 60:.1f} min at {recording.fs:g} Hz, "
        f"{beats} beats ({100 * clean / max(1, beats):.1f}% clean), {len(rows)} pump rows, "
        f"weight {'not given' if args.weight is None else f'{args.weight:g} kg'}; "
        f"configuration: {', '.join(config.files)}",
        file=sys.stderr,
    )
    late = sum(1 for row in rows if row.t_s * recording.fs > recording.n_samples)
    if late:
        print(
            f"warning: {late} pump rows are after the recording's end ({duration_s:.1f} s) and "
            "were not applied; pump times count from the recording's first sample",
            file=sys.stderr,
        )
    print(f"alarms raised: {_counts(raised)}", file=sys.stderr)
    print(f"physiological alarms suppressed as artifact: {_counts(suppressed)}", file=sys.stderr)
    print(f"timeline: {count} rows -> {args.out or 'stdout'}", file=sys.stderr)
    return 0


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "none"


def add_analyze_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "analyze",
        help="run the detector and alarms over a recorded case and write the timeline as CSV",
        description="Run the refractory-state detector and the alarm logic over a recorded "
        "arterial pressure and a file of pump reports, in simulated time, and write the "
        "timeline (time_s, kind, name, priority, map_mmhg, nee_ug_kg_min, message) as CSV. "
        "File formats: docs/analyze.md.",
    )
    parser.add_argument(
        "--abp", required=True, help="arterial pressure: CSV (time s, mmHg) or WFDB"
    )
    parser.add_argument(
        "--pumps",
        help="pump reports CSV: time_s,pump,channel,drug,concentration,concentration_unit,"
        "rate_ml_h,state (time from the recording's first sample); none: no vasopressor",
    )
    parser.add_argument(
        "--weight",
        type=positive_number,
        help="patient weight in kg (without it, NEE of per-kg drugs is unknown)",
    )
    parser.add_argument("--config", type=Path, help="configuration file (default: search order)")
    parser.add_argument("--out", help="write the timeline here instead of stdout")
    parser.add_argument("--fs", type=positive_number, help="sampling rate of a CSV in Hz")
    parser.add_argument("--channel", help="WFDB signal to read (default: ABP or ART)")
    parser.set_defaults(run=cmd_analyze)
