"""The synthesised bursts, checked by analysing the sound itself, not by reading constants."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from monitor.alarm_outputs.sounds import (
    burst,
    burst_duration_s,
    fundamental_hz,
    pattern,
    pulse_onsets,
    repeat_interval_s,
    write_wav,
)
from monitor.clinical.alarm_types import Priority

FS = 16000
ALARM_PRIORITIES = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


def priority_id(priority: Priority) -> str:
    """Test ids read "high", not "3"."""
    return priority.label


def detect_pulses(samples: np.ndarray, fs: int) -> list[tuple[float, float]]:
    """(start, end) in seconds of each pulse, from a 5 ms moving average of |x|."""
    x = np.abs(samples.astype(np.float64))
    n = round(0.005 * fs)
    envelope = np.convolve(x, np.ones(n) / n, mode="same")
    loud = envelope > 0.3 * envelope.max()
    edges = np.diff(loud.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(s / fs, e / fs) for s, e in zip(starts, ends, strict=True)]


def gaps(pulses: list[tuple[float, float]]) -> list[float]:
    return [b[0] - a[1] for a, b in zip(pulses, pulses[1:], strict=False)]


@pytest.mark.parametrize(
    ("priority", "count"),
    [(Priority.HIGH, 10), (Priority.MEDIUM, 3), (Priority.LOW, 2)],
    ids=["high", "medium", "low"],
)
def test_burst_has_the_priority_s_number_of_pulses(priority, count):
    pulses = detect_pulses(burst(priority, FS), FS)
    assert len(pulses) == count
    assert len(pulse_onsets(priority)) == count


@pytest.mark.parametrize("priority", ALARM_PRIORITIES, ids=priority_id)
def test_detected_pulses_start_where_pulse_onsets_says(priority):
    pulses = detect_pulses(burst(priority, FS), FS)
    # The 30 % threshold is crossed a few ms into the 20 ms rise.
    for (start, _end), onset in zip(pulses, pulse_onsets(priority), strict=True):
        assert onset <= start < onset + 0.020


def test_high_priority_rhythm_is_3_2_pause_3_2():
    pulses = detect_pulses(burst(Priority.HIGH, FS), FS)
    g = gaps(pulses)
    short = min(g)
    # Group pulses: a gap clearly longer than the in-group spacing starts a new group.
    groups, size = [], 1
    for gap in g:
        if gap > 1.5 * short:
            groups.append(size)
            size = 1
        else:
            size += 1
    groups.append(size)
    assert groups == [3, 2, 3, 2]
    # The pause in the middle (5th-6th pulse) is longer than the 3rd-4th and 8th-9th pauses.
    assert g[4] > g[2] and g[4] > g[7]
    assert g[2] == pytest.approx(g[7], abs=0.005)
    for i in (0, 1, 3, 5, 6, 8):
        assert g[i] == pytest.approx(short, abs=0.005)


@pytest.mark.parametrize("priority", (Priority.MEDIUM, Priority.LOW), ids=priority_id)
def test_medium_and_low_pulses_are_evenly_spaced(priority):
    g = gaps(detect_pulses(burst(priority, FS), FS))
    assert max(g) - min(g) < 0.005


@pytest.mark.parametrize("priority", ALARM_PRIORITIES, ids=priority_id)
def test_pulse_durations_are_in_the_standard_s_typical_range(priority):
    low, high = (0.075, 0.200) if priority is Priority.HIGH else (0.125, 0.250)
    for start, end in detect_pulses(burst(priority, FS), FS):
        assert low <= end - start <= high


@pytest.mark.parametrize("priority", ALARM_PRIORITIES, ids=priority_id)
def test_at_least_four_harmonics_within_15_db_of_the_fundamental(priority):
    x = burst(priority, FS).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1.0 / FS)

    def level_db(f: float) -> float:
        band = (freqs > f - 15.0) & (freqs < f + 15.0)
        return 20.0 * np.log10(spectrum[band].max())

    f0 = fundamental_hz(priority)
    assert 150.0 <= f0 <= 1000.0
    # The fundamental is the strongest component in 150-1000 Hz.
    in_range = (freqs >= 150.0) & (freqs <= 1000.0)
    assert freqs[in_range][np.argmax(spectrum[in_range])] == pytest.approx(f0, abs=5.0)
    fundamental = level_db(f0)
    harmonics = [k * f0 for k in range(2, 20) if 300.0 <= k * f0 <= 4000.0]
    within = [f for f in harmonics if abs(level_db(f) - fundamental) <= 15.0]
    assert len(within) >= 4
    # They are peaks, not broadband sound: halfway between harmonics is far quieter.
    for f in within:
        assert level_db(f - f0 / 2) < level_db(f) - 30.0


@pytest.mark.parametrize("priority", ALARM_PRIORITIES, ids=priority_id)
def test_pulses_rise_and_fall_from_silence_without_clicks(priority):
    x = burst(priority, FS).astype(np.float64)
    peak = np.abs(x).max()
    assert abs(x[0]) < 0.01 * peak and abs(x[-1]) < 0.01 * peak
    two_ms = round(0.002 * FS)
    pulse_s = pattern(priority).pulse_s
    for onset in pulse_onsets(priority):
        # Within the 20 ms ramps, the first and last 2 ms of each pulse stay near silence.
        i, j = round(onset * FS), round((onset + pulse_s) * FS)
        assert np.abs(x[i : i + two_ms]).max() < 0.1 * peak
        assert np.abs(x[j - two_ms : j]).max() < 0.1 * peak
        # ... and the pulse reaches full level only after its ramp.
        assert np.abs(x[i : i + round(0.010 * FS)]).max() < 0.7 * peak
        assert np.abs(x[i + round(0.020 * FS) : j - round(0.020 * FS)]).max() > 0.9 * peak


@pytest.mark.parametrize("priority", ALARM_PRIORITIES, ids=priority_id)
def test_burst_length_matches_its_duration(priority):
    assert burst(priority, FS).size == round(burst_duration_s(priority) * FS)


def test_repeat_intervals_are_within_the_typical_ranges():
    assert 2.5 <= repeat_interval_s(Priority.HIGH) <= 15.0
    assert 2.5 <= repeat_interval_s(Priority.MEDIUM) <= 30.0
    assert repeat_interval_s(Priority.LOW) > 15.0
    assert (
        repeat_interval_s(Priority.HIGH)
        < repeat_interval_s(Priority.MEDIUM)
        < repeat_interval_s(Priority.LOW)
    )


def test_information_signals_have_no_burst():
    with pytest.raises(ValueError):
        burst(Priority.INFO)
    with pytest.raises(ValueError):
        pulse_onsets(Priority.INFO)


def test_a_sample_rate_too_low_for_the_harmonics_is_refused():
    with pytest.raises(ValueError, match="sample rate"):
        burst(Priority.HIGH, sample_rate=4000)


@pytest.mark.parametrize("fs", [16000, 44100])
def test_wav_round_trip(tmp_path, fs):
    samples = burst(Priority.MEDIUM, fs)
    path = tmp_path / "medium.wav"
    write_wav(path, samples, fs)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == fs
        back = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(back, samples)


def test_write_wav_refuses_anything_but_mono_int16(tmp_path):
    with pytest.raises(ValueError):
        write_wav(tmp_path / "x.wav", np.zeros(10), FS)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "x.wav", np.zeros((10, 2), dtype=np.int16), FS)
