"""The ``monitor`` command line: one subcommand per job.

Only this module prints; a user's mistake ends in one line on stderr that
names what was wrong, and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from devices.scenario import ScenarioError
from monitor import core
from monitor.beat_types import DetectorOutput, quality_names
from monitor.cli_analyze import add_analyze_command
from monitor.cli_args import LogfmtFormatter, UsageError, positive_number
from monitor.cli_central import add_central_command
from monitor.cli_config import add_config_commands
from monitor.cli_log import add_log_commands
from monitor.cli_patient import add_patient_commands
from monitor.cli_run import add_run_commands
from monitor.cli_serial import add_serial_commands
from monitor.config import ConfigError
from monitor.core import push_in_chunks
from monitor.drug_table import DrugTableError
from monitor.records import RecordError, Recording, read_recording

log = logging.getLogger(__name__)

BEAT_COLUMNS = ("onset", "end", "time_s", "sbp", "dbp", "map", "pulse_rate", "clean", "flags")


def new_detector(recording: Recording):
    """The beat core for a recording, or a UsageError naming the file and its rate."""
    try:
        detector = core.BeatDetector(recording.fs)
    except ValueError as exc:
        raise UsageError(
            f"{recording.source}: {exc}; if its time column is not in seconds, pass --fs"
        ) from None
    if core.IMPLEMENTATION != "compiled":
        log.warning("beat core: pure-Python reference (%s is set)", core.PURE_PYTHON_SWITCH)
    return detector


def stream_beats(recording: Recording, chunk_s: float = 1.0) -> Iterator[DetectorOutput]:
    """Feed a recording to the beat core as a live stream would.

    The detector is built here, before anything is yielded, so a rate it
    cannot run at is refused before any output is written.
    """
    detector = new_detector(recording)
    return push_in_chunks(detector, recording.samples, max(1, int(round(chunk_s * recording.fs))))


def write_beats_csv(recording: Recording, out: TextIO) -> int:
    """Write one CSV row per beat; return how many beats were written."""
    outputs = stream_beats(recording)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BEAT_COLUMNS)
    count = 0
    for output in outputs:
        for beat in output.beats:
            writer.writerow(
                (
                    int(beat["onset"]),
                    int(beat["end"]),
                    f"{beat['onset'] / recording.fs:.3f}",
                    f"{beat['sbp']:.1f}",
                    f"{beat['dbp']:.1f}",
                    f"{beat['map']:.2f}",
                    f"{beat['pulse_rate']:.1f}",
                    int(beat["clean"]),
                    quality_names(int(beat["quality"])),
                )
            )
            count += 1
    return count


def cmd_beats(args: argparse.Namespace) -> int:
    recording = read_recording(args.record, fs=args.fs, channel=args.channel)
    count = write_beats_csv(recording, sys.stdout)
    log.info(
        "%s: %d beats at %.3f Hz (%s core)",
        recording.source,
        count,
        recording.fs,
        core.IMPLEMENTATION,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Bedside monitor for refractory hypotension "
        "(decision-support research software, not a medical device).",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    beats = sub.add_parser(
        "beats",
        help="write the beats of a recording as CSV",
        description="Detect the beats of an arterial pressure recording and write one CSV row "
        "per beat to stdout: onset, end (sample indices), time_s, sbp, dbp, map, pulse_rate, "
        "clean (0/1), flags (quality flags joined by '|').",
    )
    beats.add_argument(
        "record",
        help="a CSV (time in s, pressure in mmHg; .csv.gz too) or a WFDB record "
        "(X.hea or X; needs the wfdb extra)",
    )
    beats.add_argument(
        "--fs",
        type=positive_number,
        help="sampling rate of a CSV in Hz (default: from its time column)",
    )
    beats.add_argument("--channel", help="WFDB signal to read (default: the one named ABP or ART)")
    beats.set_defaults(run=cmd_beats)

    add_run_commands(sub)
    add_serial_commands(sub)
    add_config_commands(sub)
    add_analyze_command(sub)
    add_log_commands(sub)
    add_patient_commands(sub)
    add_central_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    log.info("beat core: %s", core.IMPLEMENTATION)
    try:
        return args.run(args)
    except (
        RecordError,
        UsageError,
        ScenarioError,
        DrugTableError,
        ConfigError,
        core.CoreUnavailableError,
    ) as exc:
        print(f"monitor {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
        return 0
