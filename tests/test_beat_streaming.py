"""Streaming properties of the beat core: chunking, latency, bounded state."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.simulation import artifacts
from devices.simulation.abp_waveform import synthesize_abp
from monitor.analysis.validation import run_detector

from conftest import BOTH_CORES, reference_record

FS = 250.0


def _eventful_signal() -> np.ndarray:
    """40 s with beats, a flush, a dropout and a flat line: every code path streams."""
    signal = synthesize_abp(40.0, FS, map_mmhg=58.0, pulse_pressure_mmhg=25.0, seed=11).samples
    signal = artifacts.fast_flush(signal, FS, 12.0, plateau_s=1.5).samples
    signal = artifacts.dropout(signal, FS, 20.0, 0.3).samples
    return artifacts.zeroing(signal, FS, 27.0, 7.0).samples


EVENTFUL = _eventful_signal()
REAL = reference_record("mimic2_s00001_3975656_0013")


def run_in_chunks(detector_class, samples, fs, sizes):
    detector = detector_class(fs)
    beats, events = [], []
    start = 0
    for size in sizes:
        out = detector.push(samples[start : start + size])
        beats.append(out.beats)
        events.append(out.events)
        start += size
    out = detector.push(samples[start:])
    beats.append(out.beats)
    events.append(out.events)
    out = detector.finish()
    return np.concatenate(beats + [out.beats]), np.concatenate(events + [out.events])


@BOTH_CORES
@settings(deadline=None, max_examples=25)
@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=30))
def test_output_is_the_same_whatever_the_chunk_sizes(detector_class, sizes):
    whole = run_in_chunks(detector_class, EVENTFUL, FS, [])
    chunked = run_in_chunks(detector_class, EVENTFUL, FS, sizes)
    assert whole[0].tobytes() == chunked[0].tobytes()
    assert whole[1].tobytes() == chunked[1].tobytes()
    assert len(whole[0]) > 20 and len(whole[1]) >= 4


@BOTH_CORES
@settings(deadline=None, max_examples=10)
@given(sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_real_record_in_random_chunks_matches_pushing_it_whole(detector_class, sizes):
    whole = run_in_chunks(detector_class, REAL.samples, REAL.fs, [])
    chunked = run_in_chunks(detector_class, REAL.samples, REAL.fs, sizes)
    assert whole[0].tobytes() == chunked[0].tobytes()
    assert whole[1].tobytes() == chunked[1].tobytes()


def test_one_sample_at_a_time_matches_pushing_it_whole(detector_class):
    whole = run_in_chunks(detector_class, EVENTFUL, FS, [])
    single = run_in_chunks(detector_class, EVENTFUL, FS, [1] * len(EVENTFUL))
    assert whole[0].tobytes() == single[0].tobytes()
    assert whole[1].tobytes() == single[1].tobytes()


def test_every_beat_is_out_by_half_a_second_after_its_end(detector_class):
    record = reference_record("cliffordlab_TestICUdata")
    detector = detector_class(record.fs)
    margin = math.ceil(0.5 * record.fs)
    emitted = 0
    for n in range(1, int(60 * record.fs) + 1):
        beats = detector.push(record.samples[n - 1 : n]).beats
        for beat in beats:
            assert n <= beat["end"] + margin, f"beat ending at {beat['end']} came out at {n}"
            assert beat["known_at"] == n, "known_at is the sample count the beat came out at"
            emitted += 1
    assert emitted > 50


def test_events_carry_the_sample_count_they_came_out_at(detector_class):
    detector = detector_class(FS)
    seen = 0
    for n in range(1, len(EVENTFUL) + 1):
        for event in detector.push(EVENTFUL[n - 1 : n]).events:
            assert event["known_at"] == n and event["index"] <= n
            seen += 1
    assert seen >= 4


def test_pushing_exactly_to_end_plus_half_a_second_releases_the_beat(detector_class):
    record = reference_record("cliffordlab_TestICUdata")
    beats, _ = run_detector(detector_class, record.samples, record.fs)
    target = beats[20]
    detector = detector_class(record.fs)
    upto = int(target["end"] + math.ceil(0.5 * record.fs))
    out = detector.push(record.samples[:upto]).beats
    assert out[-1].tobytes() == target.tobytes()


def test_state_does_not_grow_with_the_stream(detector_class):
    fs = 125.0
    minute = synthesize_abp(60.0, fs, noise_mmhg=0.5, seed=5).samples
    detector = detector_class(fs)
    tracemalloc.start()
    try:
        for _ in range(2):
            detector.push(minute)
        settled = tracemalloc.get_traced_memory()[0]
        for _ in range(30):
            detector.push(minute)
        grown = tracemalloc.get_traced_memory()[0] - settled
    finally:
        tracemalloc.stop()
    assert grown < 16_384, f"state grew by {grown} bytes over 30 minutes"


def test_no_beat_during_the_learning_period_then_beats_from_its_end(detector_class):
    record = reference_record("cliffordlab_TestICUdata")
    beats, _ = run_detector(detector_class, record.samples, record.fs)
    learning_end = detector_class(record.fs).settings.learning_s * record.fs
    assert beats["end"].min() >= learning_end
    assert beats["onset"].min() < learning_end + 2 * record.fs


def test_push_after_finish_is_refused(detector_class):
    detector = detector_class(125.0)
    detector.finish()
    with pytest.raises(RuntimeError, match="finish"):
        detector.push(np.zeros(10))


def test_samples_seen_counts_every_sample_pushed(detector_class):
    detector = detector_class(125.0)
    detector.push(np.zeros(100))
    detector.push(np.full(23, np.nan))
    detector.push(np.zeros(0))
    assert detector.samples_seen == 123
