"""Per-beat quality and no-pulse events on signals with known truth.

Artifacts are injected with ``devices.simulation.artifacts`` into synthetic pressure
from ``devices.simulation.abp_waveform``; each test names the behaviour a clinician or
the alarm layer relies on.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.simulation import artifacts
from devices.simulation.abp_waveform import synthesize_abp
from monitor.analysis.validation import match_onsets, run_detector
from monitor.core.beat_types import EventKind, Quality, quality_names

FS = 250.0
BASE = synthesize_abp(60.0, FS, map_mmhg=75.0, pulse_pressure_mmhg=40.0, seed=1).samples


def beats_overlapping(beats, start_s, end_s, fs=FS):
    return beats[(beats["end"] > start_s * fs) & (beats["onset"] < end_s * fs)]


def beats_within(beats, start_s, end_s, fs=FS):
    return beats[(beats["onset"] >= start_s * fs) & (beats["end"] <= end_s * fs)]


def opened(events, kind):
    return events[(events["kind"] == kind) & events["begin"]]


@pytest.mark.parametrize("fs", [100.0, 125.0, 250.0, 500.0, 1000.0])
def test_map_is_the_area_of_the_beat_within_half_a_millimetre(fs, detector_class):
    truth = synthesize_abp(
        300.0, fs, map_mmhg=lambda t: 80.0 - 30.0 * t / 300.0, pulse_pressure_mmhg=35.0, seed=2
    )
    beats, _ = run_detector(detector_class, truth.samples, fs)
    det, ref = match_onsets(beats["onset"], truth.onsets, int(0.15 * fs))
    complete = ref < len(truth.beat_map)
    det, ref = det[complete], ref[complete]
    clean = beats["clean"][det]
    error = np.abs(beats["map"][det][clean] - truth.beat_map[ref][clean])
    assert len(ref) >= 0.97 * len(truth.beat_map)
    assert np.mean(clean) > 0.98
    assert np.percentile(error, 95) <= 0.5
    assert np.max(error) <= 1.0


def test_hypotension_with_a_small_pulse_pressure_stays_clean(detector_class):
    shock = synthesize_abp(
        120.0, 125.0, map_mmhg=45.0, pulse_pressure_mmhg=12.0, heart_rate_bpm=110
    )
    beats, events = run_detector(detector_class, shock.samples, 125.0)
    assert np.mean(beats["clean"]) > 0.95
    assert abs(np.median(beats["map"][beats["clean"]]) - 45.0) < 1.0
    assert len(events) == 0


def test_fast_flush_beats_are_flagged_and_no_event_claims_a_pulse_loss(detector_class):
    signal, start, end = artifacts.fast_flush(BASE, FS, 20.0)
    beats, events = run_detector(detector_class, signal, FS)
    hit = beats_overlapping(beats, start / FS + 0.1, end / FS - 0.1)
    assert len(hit) > 0 and not np.any(hit["clean"])
    assert np.any(hit["quality"] & Quality.FLUSH)
    assert len(opened(events, EventKind.NO_PULSE)) == 0


@pytest.mark.parametrize("inject", [artifacts.zeroing, artifacts.disconnection])
def test_a_line_open_to_air_is_a_flat_line_near_zero_not_a_patient(inject, detector_class):
    signal, start, end = inject(BASE, FS, 20.0, 15.0)
    beats, events = run_detector(detector_class, signal, FS)
    assert not np.any(beats_overlapping(beats, start / FS, end / FS)["clean"])
    flat = opened(events, EventKind.FLAT_NEAR_ZERO)
    assert len(flat) == 1 and start - FS <= flat["index"][0] <= start
    assert abs(flat["level_mmhg"][0]) < 10.0
    assert len(opened(events, EventKind.NO_PULSE)) == 0
    closed = events[(events["kind"] == EventKind.FLAT_NEAR_ZERO) & ~events["begin"]]
    assert len(closed) == 1 and end - 0.05 * FS <= closed["index"][0] <= end + 2 * FS


def test_a_non_pulsatile_trace_at_a_physiological_mean_is_reported_as_no_pulse(detector_class):
    signal = BASE.copy()
    arrest = slice(int(20 * FS), int(40 * FS))
    rng = np.random.default_rng(7)
    signal[arrest] = 28.0 + rng.normal(0.0, 0.4, arrest.stop - arrest.start)
    beats, events = run_detector(detector_class, signal, FS)
    no_pulse = opened(events, EventKind.NO_PULSE)
    assert len(no_pulse) == 1
    assert 19.0 * FS <= no_pulse["index"][0] <= 20.5 * FS
    assert 25.0 <= no_pulse["level_mmhg"][0] <= 31.0
    assert len(opened(events, EventKind.FLAT_NEAR_ZERO)) == 0
    assert not np.any(beats_overlapping(beats, 20.5, 40.0)["clean"])


def test_damping_collapses_the_pulse_and_is_flagged_while_map_holds(detector_class):
    signal, start, end = artifacts.damping(BASE, FS, 20.0, 10.0, factor=0.25)
    beats, _ = run_detector(detector_class, signal, FS)
    hit = beats_within(beats, start / FS + 0.5, end / FS)
    assert len(hit) >= 5 and np.all(hit["quality"] & Quality.DAMPED)
    assert abs(np.median(hit["map"]) - 75.0) < 3.0


def test_clipping_at_an_adc_rail_is_flagged(detector_class):
    signal, start, end = artifacts.clipping(BASE, FS, 20.0, 5.0, rail_mmhg=90.0)
    beats, _ = run_detector(detector_class, signal, FS)
    hit = beats_within(beats, start / FS, end / FS)
    assert len(hit) >= 4 and np.all(hit["quality"] & Quality.CLIPPED)


def test_missing_samples_are_a_gap_event_and_flag_their_beat(detector_class):
    signal, start, end = artifacts.dropout(BASE, FS, 20.0, 0.3)
    beats, events = run_detector(detector_class, signal, FS)
    gaps = events[events["kind"] == EventKind.GAP]
    assert gaps["begin"].tolist() == [True, False]
    assert gaps["index"].tolist() == [start, end]
    hit = beats_overlapping(beats, start / FS, end / FS)
    assert np.all(hit["quality"] & Quality.GAP) and not np.any(hit["clean"])
    assert np.all(np.isfinite(beats["map"]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_never_crash_or_poison_later_beats(bad, detector_class):
    signal = BASE.copy()
    signal[int(20 * FS) : int(20 * FS) + 5] = bad
    beats, _ = run_detector(detector_class, signal, FS)
    later = beats[beats["onset"] > 23 * FS]
    assert len(later) > 40 and np.mean(later["clean"]) > 0.95


def test_absurd_spikes_are_flagged_and_the_detector_keeps_its_threshold(detector_class):
    signal, _, _ = artifacts.spikes(BASE, FS, [20.0, 30.0, 40.0], height_mmhg=10_000.0)
    beats, _ = run_detector(detector_class, signal, FS)
    for at in (20.0, 30.0, 40.0):
        hit = beats_overlapping(beats, at, at + 0.001)
        assert len(hit) == 1 and hit["quality"][0] & (Quality.CLIPPED | Quality.IMPLAUSIBLE)
    clean_map = beats["map"][beats["clean"]]
    assert len(clean_map) > 50 and np.all(np.abs(clean_map - 75.0) < 8.0)


def test_negative_pressures_from_a_flush_are_signal_not_errors(detector_class):
    signal = BASE.copy()
    signal[int(20 * FS) : int(21 * FS)] = -80.0
    beats, events = run_detector(detector_class, signal, FS)
    hit = beats_overlapping(beats, 20.0, 21.0)
    assert len(hit) >= 1 and not np.any(hit["clean"])


def test_line_manipulation_noise_is_never_clean(detector_class):
    signal, start, end = artifacts.line_manipulation(BASE, FS, 20.0, 8.0, seed=3)
    beats, events = run_detector(detector_class, signal, FS)
    hit = beats_overlapping(beats, start / FS + 0.3, end / FS - 0.3)
    assert len(hit) > 0 and not np.any(hit["clean"])
    assert len(opened(events, EventKind.NO_PULSE)) == 0


def test_quality_names_read_like_the_flags():
    assert quality_names(0) == ""
    assert quality_names(Quality.FLUSH | Quality.CLIPPED) == "flush|clipped"
