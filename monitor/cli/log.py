"""``monitor log tail``, ``monitor log export`` and ``monitor report``: the log, read back.

The log directory is ``--log-dir``, else ``log.directory`` from the
configuration, else the user's data directory (docs/log.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TextIO

from monitor.cli.args import UsageError
from monitor.configuration.config import load_config
from monitor.log.reader import (
    DEFAULT_KINDS,
    EXPORT_COLUMNS,
    KINDS,
    LogReader,
    LogReadError,
    LogRow,
    iso_utc,
    parse_time,
)
from monitor.log.store import default_log_directory


def log_directory(args: argparse.Namespace) -> Path:
    if args.log_dir is not None:
        return args.log_dir
    configured = str(load_config(args.config)["log.directory"])
    return Path(configured).expanduser() if configured else default_log_directory()


def open_reader(args: argparse.Namespace) -> LogReader:
    try:
        return LogReader(log_directory(args))
    except LogReadError as exc:
        raise UsageError(str(exc)) from None


def time_range(args: argparse.Namespace) -> tuple[float | None, float | None]:
    try:
        since = None if args.since is None else parse_time(args.since)
        until = None if args.until is None else parse_time(args.until)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return since, until


def format_row(row: LogRow) -> str:
    where = "" if row.stream_s is None else f" {row.stream_s:9.1f}s"
    priority = f" {row.priority.upper()}" if row.priority else ""
    what = row.detail.get("transition") or row.detail.get("kind")
    text = " ".join(str(row.message).split())
    head = f"{row.name}{priority}" + (f" {what}" if what else "")
    return f"{iso_utc(row.utc)}{where}  {row.kind:<5} {head}: {text}".rstrip()


def cmd_tail(args: argparse.Namespace) -> int:
    reader = open_reader(args)
    kinds = args.kind or list(DEFAULT_KINDS)
    try:
        rows = reader.rows(kinds)
        for row in rows[-args.lines :] if args.lines else []:
            print(format_row(row), flush=True)
        if args.follow:
            seen: dict[str, int] = {}
            for row in rows:
                seen[row.kind] = max(seen.get(row.kind, 0), row.rowid)
            for row in reader.follow(kinds, seen):
                print(format_row(row), flush=True)
    except LogReadError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()
    return 0


def write_export(rows: list[LogRow], out: TextIO, fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row.as_dict(), allow_nan=False, separators=(",", ":")) + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        d = row.as_dict()
        d["detail"] = json.dumps(d["detail"], separators=(",", ":"))
        writer.writerow(["" if d[c] is None else d[c] for c in EXPORT_COLUMNS])


def cmd_export(args: argparse.Namespace) -> int:
    since, until = time_range(args)
    reader = open_reader(args)
    try:
        rows = reader.rows(args.kind or list(KINDS), since, until)
    except LogReadError as exc:
        raise UsageError(str(exc)) from None
    finally:
        reader.close()
    if args.out is None:
        write_export(rows, sys.stdout, args.format)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            write_export(rows, out, args.format)
        print(f"{len(rows)} rows written to {args.out}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from monitor.log.report import ReportUnavailable, write_report

    since, until = time_range(args)
    cfg = load_config(args.config)
    reader = open_reader(args)
    try:
        summary = write_report(
            reader, args.out, since, until,
            cfg.number("detector.map_target_mmhg"), cfg.number("detector.nee_threshold_ug_kg_min"),
        )  # fmt: skip
    except (ReportUnavailable, LogReadError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        reader.close()
    print(summary)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-dir", type=Path, help="the log directory (default: configuration)")
    parser.add_argument("--config", type=Path, help="configuration file (default: search order)")


def _range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="from this time: ISO 8601 (UTC by default) or an age (2h)")
    parser.add_argument("--until", help="up to this time, same forms")


def add_log_commands(sub: argparse._SubParsersAction) -> None:
    log_parser = sub.add_parser("log", help="read the bedside log: tail, export")
    log_sub = log_parser.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    kinds = sorted(KINDS)

    tail = log_sub.add_parser("tail", help="the latest alarms, states and events; --follow")
    _common(tail)
    tail.add_argument("-n", "--lines", type=int, default=20, help="rows to show first (20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep showing new rows")
    tail.add_argument(
        "--kind", action="append", choices=kinds, help="only these kinds (repeatable)"
    )
    tail.set_defaults(run=cmd_tail)

    export = log_sub.add_parser("export", help="rows as CSV or JSON Lines, by time and kind")
    _common(export)
    _range(export)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument(
        "--kind", action="append", choices=kinds, help="only these kinds (default: all)"
    )
    export.add_argument("--out", help="write here instead of stdout")
    export.set_defaults(run=cmd_export)

    report = sub.add_parser(
        "report",
        help="a trend picture (PNG): MAP, NEE, detector states, alarms",
        description="Plot MAP with its target, NEE with its threshold, the detector's states "
        "and the alarms for a period of the log. Needs matplotlib: pip install '.[report]'.",
    )
    _common(report)
    _range(report)
    report.add_argument("--out", required=True, help="the PNG file to write")
    report.set_defaults(run=cmd_report)
