"""Scoring detected beats against reference onsets (e.g. PhysioNet's wabp).

Pure functions shared by the accuracy script and the tests, so the figures
in the docs and the thresholds the tests enforce come from the same code.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.core import push_in_chunks


@dataclass(frozen=True)
class ReferenceRecord:
    """A recording with reference onsets and hand-marked artifact intervals."""

    name: str
    samples: np.ndarray  # mmHg, NaN where missing
    fs: float
    onsets: np.ndarray  # reference beat onsets, sample indices
    artifacts: np.ndarray  # (n, 2) sample intervals [start, end)
    artifact_reasons: tuple[str, ...]


def load_reference_record(folder: str | Path) -> ReferenceRecord:
    """Read a record folder: ``abp.csv.gz``, ``meta.json``, ``wabp_onsets.txt``, ``artifacts.csv``.

    The layout is the one of ``tests/data`` (see its README); ``artifacts.csv``
    is optional and holds ``start_s,end_s,reason`` rows marked by hand.
    """
    folder = Path(folder)
    fs = float(json.loads((folder / "meta.json").read_text())["fs"])
    table = np.loadtxt(folder / "abp.csv.gz", delimiter=",", skiprows=1)
    onsets = np.loadtxt(folder / "wabp_onsets.txt", dtype=np.int64, ndmin=1)
    intervals: list[tuple[int, int]] = []
    reasons: list[str] = []
    marked = folder / "artifacts.csv"
    if marked.exists():
        with marked.open(newline="") as f:
            for row in csv.DictReader(f):
                start = int(round(float(row["start_s"]) * fs))
                end = int(round(float(row["end_s"]) * fs))
                intervals.append((start, end))
                reasons.append(row["reason"])
    return ReferenceRecord(
        name=folder.name,
        samples=np.ascontiguousarray(table[:, 1]),
        fs=fs,
        onsets=onsets,
        artifacts=np.array(intervals, dtype=np.int64).reshape(-1, 2),
        artifact_reasons=tuple(reasons),
    )


def resample_record(record: ReferenceRecord, fs: float) -> ReferenceRecord:
    """The same record at another rate: linear interpolation, indices scaled.

    A new sample next to a missing one is missing too, so gaps stay gaps.
    """
    ratio = fs / record.fs
    n = int(np.floor((len(record.samples) - 1) * ratio)) + 1
    position = np.arange(n) / ratio
    known = np.isfinite(record.samples)
    index = np.arange(len(record.samples))
    samples = np.interp(position, index[known], record.samples[known])
    below = np.floor(position).astype(np.int64)
    above = np.minimum(np.ceil(position).astype(np.int64), len(record.samples) - 1)
    samples[~known[below] | ~known[above]] = np.nan

    def scale(i: np.ndarray) -> np.ndarray:
        return np.round(i * ratio).astype(np.int64)

    return ReferenceRecord(
        name=record.name,
        samples=samples,
        fs=fs,
        onsets=scale(record.onsets),
        artifacts=scale(record.artifacts),
        artifact_reasons=record.artifact_reasons,
    )


def run_detector(detector_class: type, samples: np.ndarray, fs: float, chunk_s: float = 1.0):
    """Run a beat detector over a whole recording in chunks; return (beats, events)."""
    outputs = list(push_in_chunks(detector_class(fs), samples, max(1, int(round(chunk_s * fs)))))
    return (
        np.concatenate([out.beats for out in outputs]),
        np.concatenate([out.events for out in outputs]),
    )


def match_onsets(
    detected: np.ndarray, reference: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each reference onset with at most one detected onset within ``window`` samples.

    Returns two index arrays (into ``detected`` and ``reference``) of the
    matched pairs. Pairs are taken nearest first, so one detection cannot
    serve two references.
    """
    detected = np.asarray(detected, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    if len(detected) == 0 or len(reference) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    pos = np.searchsorted(detected, reference)
    candidates = []
    for ref_i, p in enumerate(pos):
        for det_i in (p - 1, p):
            if 0 <= det_i < len(detected):
                gap = abs(int(detected[det_i]) - int(reference[ref_i]))
                if gap <= window:
                    candidates.append((gap, det_i, ref_i))
    candidates.sort()
    used_det: set[int] = set()
    used_ref: set[int] = set()
    pairs = []
    for _, det_i, ref_i in candidates:
        if det_i not in used_det and ref_i not in used_ref:
            used_det.add(det_i)
            used_ref.add(ref_i)
            pairs.append((det_i, ref_i))
    pairs.sort()
    det_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    ref_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    return det_idx, ref_idx


def in_intervals(index: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """True where a sample index falls inside any ``[start, end)`` interval."""
    index = np.asarray(index, dtype=np.int64)
    inside = np.zeros(index.shape, dtype=bool)
    for start, end in np.asarray(intervals, dtype=np.int64).reshape(-1, 2):
        inside |= (index >= start) & (index < end)
    return inside


def map_by_area(samples: np.ndarray, onset: int, end: int) -> float:
    """MAP of one beat as the area under the pressure over its duration."""
    return float(np.mean(samples[onset:end]))


@dataclass(frozen=True)
class Score:
    """Agreement of detected beats with a reference on one record."""

    reference_beats: int
    detected_beats: int
    sensitivity: float
    positive_predictivity: float
    clean_share: float  # of matched beats
    map_error_p95: float  # matched clean beats vs area from the reference onsets
    map_error_max: float
    artifact_beats: int  # detected beats inside marked artifact intervals
    clean_in_artifact: int  # of those, wrongly clean


def score_beats(
    beats: np.ndarray,
    samples: np.ndarray,
    reference: np.ndarray,
    fs: float,
    *,
    artifacts: np.ndarray | None = None,
    skip_s: float = 10.0,
    window_s: float = 0.150,
) -> Score:
    """Score beats on one record after ``skip_s``, outside marked artifact intervals.

    The record's last reference onset starts no complete beat (nothing ends
    it), so it is not counted.
    """
    intervals = np.zeros((0, 2), dtype=np.int64) if artifacts is None else artifacts
    start = int(round(skip_s * fs))
    onsets = beats["onset"]
    in_artifact = in_intervals(onsets, intervals)
    ref_ok = (reference >= start) & ~in_intervals(reference, intervals)
    ref_ok[-1:] = False
    det_ok = (onsets >= start) & ~in_artifact
    ref = reference[ref_ok]
    det_beats = beats[det_ok]
    det_i, ref_i = match_onsets(det_beats["onset"], ref, int(round(window_s * fs)))
    matched = det_beats[det_i]
    sensitivity = len(ref_i) / len(ref) if len(ref) else float("nan")
    ppv = len(det_i) / len(det_beats) if len(det_beats) else float("nan")
    clean_share = float(np.mean(matched["clean"])) if len(matched) else float("nan")

    errors = []
    ref_next = {int(r): int(n) for r, n in zip(reference[:-1], reference[1:], strict=True)}
    for beat, r in zip(matched, ref[ref_i], strict=True):
        end = ref_next.get(int(r))
        if not beat["clean"] or end is None:
            continue
        truth = map_by_area(samples, int(r), end)
        if np.isfinite(truth):
            errors.append(abs(float(beat["map"]) - truth))
    err = np.array(errors)
    return Score(
        reference_beats=len(ref),
        detected_beats=len(det_beats),
        sensitivity=sensitivity,
        positive_predictivity=ppv,
        clean_share=clean_share,
        map_error_p95=float(np.percentile(err, 95)) if len(err) else float("nan"),
        map_error_max=float(np.max(err)) if len(err) else float("nan"),
        artifact_beats=int(np.sum(in_artifact & (onsets >= start))),
        clean_in_artifact=int(np.sum(in_artifact & (onsets >= start) & beats["clean"])),
    )
