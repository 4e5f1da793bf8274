"""Scoring detected beats against reference onsets (e.g. PhysioNet's wabp).

Pure functions shared by the accuracy script and the tests, so the figures
in the docs and the thresholds the tests enforce come from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    ref_next = {int(r): int(n) for r, n in zip(reference[:-1], reference[1:])}
    for beat, r in zip(matched, ref[ref_i]):
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
        clean_in_artifact=int(np.sum(in_artifact & beats["clean"])),
    )
