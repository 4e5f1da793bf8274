"""``monitor beats RECORD``: the beats of a recording as CSV on stdout."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from monitor.cli.args import UsageError, positive_number

if TYPE_CHECKING:
    from monitor.analysis.records import Recording
    from monitor.core.beat_detector_py import BeatDetector
    from monitor.core.beat_types import DetectorOutput

log = logging.getLogger(__name__)

BEAT_COLUMNS = ("onset", "end", "time_s", "sbp", "dbp", "map", "pulse_rate", "clean", "flags")


def new_detector(recording: Recording) -> BeatDetector:
    """The beat core for a recording, or a UsageError naming the file and its rate."""
    from monitor import core

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
    from monitor.core import push_in_chunks

    detector = new_detector(recording)
    return push_in_chunks(detector, recording.samples, max(1, int(round(chunk_s * recording.fs))))


def write_beats_csv(recording: Recording, out: TextIO) -> int:
    """Write one CSV row per beat; return how many beats were written."""
    from monitor.core.beat_types import quality_names

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
    from monitor import core
    from monitor.analysis.records import read_recording

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


def add_beats_command(sub: argparse._SubParsersAction) -> None:
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
