"""The beat core against PhysioNet's wabp on real ICU recordings.

Thresholds are the issue's acceptance criteria; the table with the measured
figures is printed by ``bench/accuracy.py`` and kept in docs/accuracy.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.analysis.validation import in_intervals, resample_record, run_detector, score_beats
from monitor.core.beat_types import EventKind

from conftest import FLAT_LINE_RECORDS, PULSATILE_RECORDS, reference_record


def score(detector_class, record):
    beats, _ = run_detector(detector_class, record.samples, record.fs)
    return beats, score_beats(
        beats, record.samples, record.onsets, record.fs, artifacts=record.artifacts
    )


@pytest.mark.parametrize(
    "fs", [None, 250.0, 500.0, 1000.0], ids=["native", "250Hz", "500Hz", "1000Hz"]
)
@pytest.mark.parametrize("name", PULSATILE_RECORDS)
def test_onsets_agree_with_wabp_at_every_rate(name, fs, detector_class):
    record = reference_record(name)
    if fs is not None:
        record = resample_record(record, fs)
    _, result = score(detector_class, record)
    assert result.sensitivity >= 0.99, result
    assert result.positive_predictivity >= 0.99, result


@pytest.mark.parametrize("name", PULSATILE_RECORDS)
def test_map_of_clean_beats_matches_the_area_between_reference_onsets(name, detector_class):
    _, result = score(detector_class, reference_record(name))
    assert result.map_error_p95 <= 1.0, result


@pytest.mark.parametrize("name", PULSATILE_RECORDS)
def test_no_beat_inside_a_marked_artifact_is_clean(name, detector_class):
    record = reference_record(name)
    beats, _ = run_detector(detector_class, record.samples, record.fs)
    inside = in_intervals(beats["onset"], record.artifacts) | in_intervals(
        beats["end"] - 1, record.artifacts
    )
    assert not np.any(beats["clean"] & inside)


@pytest.mark.parametrize("name", ["cliffordlab_TestICUdata", "mimicdb_03700181"])
def test_low_pressure_and_small_pulse_pressure_are_patients_not_artifacts(name, detector_class):
    beats, result = score(detector_class, reference_record(name))
    assert result.clean_share >= 0.95, result
    clean = beats[beats["clean"]]
    if name == "cliffordlab_TestICUdata":
        assert np.median(clean["map"]) < 65.0  # hypotensive, and trusted
    else:
        assert np.median(clean["pulse_pressure"]) < 20.0


@pytest.mark.parametrize("name", FLAT_LINE_RECORDS)
def test_flat_line_records_have_no_clean_beat(name, detector_class):
    record = reference_record(name)
    beats, events = run_detector(detector_class, record.samples, record.fs)
    assert not np.any(beats["clean"])
    assert EventKind.FLAT_NEAR_ZERO in events["kind"][events["begin"]]


def test_every_marked_artifact_has_a_reason():
    for name in PULSATILE_RECORDS:
        record = reference_record(name)
        assert len(record.artifact_reasons) == len(record.artifacts)
        assert all(len(reason) > 20 for reason in record.artifact_reasons)
        assert np.all(record.artifacts[:, 1] > record.artifacts[:, 0])
