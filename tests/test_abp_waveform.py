"""Specification of the synthetic ABP generator: exact truth, and any range renders alike."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.simulation.abp_waveform import (
    AbpGenerator,
    SyntheticAbp,
    beat_template,
    synthesize_abp,
)


def _beat_means_by_trapezoid(record: SyntheticAbp) -> np.ndarray:
    """Mean of each beat by the trapezoid rule over the samples, cut at the true onset times."""
    t = np.arange(len(record.samples)) / record.fs
    means = []
    for i in range(len(record.beat_map)):
        a, b = record.onset_times_s[i], record.onset_times_s[i + 1]
        tt = np.concatenate(([a], t[record.onsets[i] : record.onsets[i + 1]], [b]))
        xx = np.interp(tt, t, record.samples)
        means.append(np.trapezoid(xx, tt) / (b - a))
    return np.array(means)


def _beat_slices(record: SyntheticAbp) -> list[np.ndarray]:
    return [record.samples[a:b] for a, b in zip(record.onsets[:-1], record.onsets[1:], strict=True)]


def test_template_is_zero_at_both_ends_and_one_at_the_systolic_peak() -> None:
    u = np.linspace(0.0, 1.0, 20001)
    g = beat_template(u)
    assert g[0] == 0.0
    assert abs(g[-1]) < 1e-12
    assert g.max() == pytest.approx(1.0, abs=1e-12)
    assert 0.08 <= u[np.argmax(g)] <= 0.2
    assert np.all(g >= 0.0)


def test_template_has_a_dicrotic_notch_then_a_dicrotic_wave_after_the_peak() -> None:
    u = np.linspace(0.0, 1.0, 20001)
    slope_sign = np.sign(np.diff(beat_template(u)))
    turns = u[1:-1][np.diff(slope_sign) != 0]
    assert len(turns) == 3  # systolic peak, notch, dicrotic wave
    assert turns[0] < turns[1] < turns[2] < 0.6


def test_template_rejects_a_phase_outside_the_beat() -> None:
    with pytest.raises(ValueError, match="phase"):
        beat_template(np.array([0.5, 1.01]))


def test_true_map_is_the_exact_mean_of_the_noise_free_beat() -> None:
    record = synthesize_abp(20.0, 1000.0, noise_mmhg=0.0, hr_variability=0.05, seed=3)
    assert len(record.beat_map) == len(record.onsets) - 1 >= 20
    np.testing.assert_allclose(_beat_means_by_trapezoid(record), record.beat_map, atol=0.001)


@settings(max_examples=15, deadline=None)
@given(fs=st.floats(100.0, 1000.0), seed=st.integers(0, 2**32 - 1))
def test_sample_mean_of_a_perfectly_segmented_beat_misses_the_truth_only_by_the_boundary_bias(
    fs: float, seed: int
) -> None:
    record = synthesize_abp(8.0, fs, noise_mmhg=0.0, hr_variability=0.05, seed=seed)
    sample_means = np.array([beat.mean() for beat in _beat_slices(record)])
    period = np.diff(record.onset_times_s)
    bias = (record.beat_map - record.samples[record.onsets[:-1]]) / (fs * period)
    assert np.all(np.abs(sample_means - record.beat_map) <= bias + 0.01)


def test_consecutive_beats_meet_without_a_step() -> None:
    record = synthesize_abp(20.0, 1000.0, noise_mmhg=0.0, respiratory_swing_mmhg=10.0)
    across = np.abs(record.samples[record.onsets] - record.samples[record.onsets - 1])
    assert across.max() < 0.05


def test_onset_index_is_the_first_sample_at_or_after_the_true_onset_time() -> None:
    record = synthesize_abp(30.0, 125.0, hr_variability=0.05, seed=7)
    np.testing.assert_array_equal(record.onsets, np.ceil(record.onset_times_s * 125.0))
    lag = record.onsets / 125.0 - record.onset_times_s
    assert np.all((lag >= 0.0) & (lag < 1.0 / 125.0))
    assert record.onsets.dtype == np.int64 and record.beat_map.dtype == np.float64
    assert record.onsets[0] >= 0 and record.onsets[-1] < len(record.samples)


def test_onset_is_the_foot_of_the_upstroke() -> None:
    fs = 500.0
    record = synthesize_abp(20.0, fs, noise_mmhg=0.0, pulse_pressure_mmhg=40.0)
    x = record.samples
    for onset in record.onsets[1:-1]:
        window = x[onset - int(0.1 * fs) : onset + int(0.1 * fs)]
        assert abs(int(np.argmin(window)) - int(0.1 * fs)) <= 1
        assert x[onset + int(0.1 * fs)] - x[onset] > 30.0  # most of the upstroke within 0.1 s


def test_beats_come_at_the_requested_heart_rate() -> None:
    record = synthesize_abp(30.0, 250.0, heart_rate_bpm=90.0, hr_variability=0.0)
    np.testing.assert_allclose(np.diff(record.onset_times_s), 60.0 / 90.0, rtol=1e-12)
    jittered = synthesize_abp(120.0, 250.0, heart_rate_bpm=90.0, hr_variability=0.03)
    period = np.diff(jittered.onset_times_s)
    assert np.mean(period) == pytest.approx(60.0 / 90.0, rel=0.01)
    assert 0.02 < np.std(period) / np.mean(period) < 0.04


def test_heart_rate_trajectory_is_followed() -> None:
    record = synthesize_abp(60.0, 125.0, heart_rate_bpm=lambda t: 60.0 + t, hr_variability=0.0)
    rate = 60.0 / np.diff(record.onset_times_s)
    np.testing.assert_allclose(rate, 60.0 + record.onset_times_s[:-1], rtol=1e-12)


def test_map_trajectory_falling_from_80_to_55_over_an_hour_is_followed() -> None:
    def falling(t: float) -> float:
        return 80.0 - 25.0 * t / 3600.0

    record = synthesize_abp(
        3600.0, 100.0, map_mmhg=falling, respiratory_swing_mmhg=0.0, hr_variability=0.0
    )
    middle = 0.5 * (record.onset_times_s[:-1] + record.onset_times_s[1:])
    np.testing.assert_allclose(record.beat_map, [falling(t) for t in middle], atol=0.01)
    assert record.beat_map[0] > 79.9 and record.beat_map[-1] < 55.1


def test_requested_pulse_pressure_is_each_beats_rise_from_its_foot() -> None:
    record = synthesize_abp(
        20.0, 1000.0, pulse_pressure_mmhg=30.0, noise_mmhg=0.0, respiratory_swing_mmhg=0.0
    )
    rise = np.array([beat.max() - beat[0] for beat in _beat_slices(record)])
    np.testing.assert_allclose(rise, 30.0, atol=0.1)


def test_respiration_swings_the_beat_maps_at_the_breathing_rate() -> None:
    record = synthesize_abp(
        60.0, 125.0, respiratory_rate_bpm=12.0, respiratory_swing_mmhg=10.0, hr_variability=0.0
    )
    swing = np.ptp(record.beat_map)
    assert 8.0 < swing <= 10.0  # a beat's mean smooths the breath a little
    middle = 0.5 * (record.onset_times_s[:-1] + record.onset_times_s[1:])
    deviation = record.beat_map - record.beat_map.mean()
    expected = np.sin(2.0 * np.pi * 12.0 / 60.0 * middle)
    assert np.corrcoef(deviation, expected)[0, 1] > 0.99


def test_requested_map_is_met_on_average() -> None:
    record = synthesize_abp(120.0, 125.0, map_mmhg=58.0, pulse_pressure_mmhg=25.0)
    assert record.beat_map.mean() == pytest.approx(58.0, abs=0.3)


def test_noise_has_the_requested_sd_and_never_moves_the_truth() -> None:
    clean = synthesize_abp(30.0, 250.0, noise_mmhg=0.0, seed=5)
    noisy = synthesize_abp(30.0, 250.0, noise_mmhg=2.0, seed=5)
    np.testing.assert_array_equal(clean.onsets, noisy.onsets)
    np.testing.assert_array_equal(clean.beat_map, noisy.beat_map)
    assert np.std(noisy.samples - clean.samples) == pytest.approx(2.0, rel=0.05)


def test_same_seed_gives_the_same_record_and_another_seed_a_different_one() -> None:
    a = synthesize_abp(10.0, 125.0, seed=11)
    b = synthesize_abp(10.0, 125.0, seed=11)
    c = synthesize_abp(10.0, 125.0, seed=12)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.onsets, b.onsets)
    assert not np.array_equal(a.onsets, c.onsets)


@settings(max_examples=20, deadline=None)
@given(
    fs=st.floats(100.0, 1000.0),
    duration_s=st.floats(2.0, 20.0),
    hr=st.floats(40.0, 160.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_rate_from_100_to_1000_hz_gives_a_consistent_record(
    fs: float, duration_s: float, hr: float, seed: int
) -> None:
    record = synthesize_abp(duration_s, fs, heart_rate_bpm=hr, seed=seed)
    assert len(record.samples) == round(duration_s * fs)
    assert np.all(np.isfinite(record.samples))
    assert np.all(np.diff(record.onsets) > 0)
    assert len(record.beat_map) == len(record.onsets) - 1
    expected_beats = duration_s * hr / 60.0
    assert abs(len(record.onsets) - expected_beats) <= 0.1 * expected_beats + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0.0}, "duration_s"),
        ({"fs": 0.0}, "fs"),
        ({"heart_rate_bpm": 0.0}, "heart rate"),
        ({"heart_rate_bpm": lambda t: 400.0}, "heart rate"),
        ({"pulse_pressure_mmhg": -1.0}, "pulse pressure"),
        ({"map_mmhg": float("nan")}, "MAP"),
        ({"noise_mmhg": -0.1}, "noise_mmhg"),
        ({"hr_variability": 0.5}, "hr_variability"),
        ({"respiratory_swing_mmhg": -1.0}, "respiratory_swing_mmhg"),
    ],
)
def test_caller_mistakes_raise_value_error(kwargs: dict, message: str) -> None:
    args = {"duration_s": 5.0, "fs": 125.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        synthesize_abp(args.pop("duration_s"), args.pop("fs"), **args)


def test_synthesize_abp_is_the_whole_render_of_a_generator_with_its_truth() -> None:
    kwargs = {"heart_rate_bpm": lambda t: 70.0 + t, "noise_mmhg": 0.5, "seed": 4}
    record = synthesize_abp(30.0, 250.0, **kwargs)
    generator = AbpGenerator(30.0, 250.0, **kwargs)
    truth = generator.truth()
    assert generator.n_samples == 7500 and generator.fs == record.fs == truth.fs == 250.0
    np.testing.assert_array_equal(record.samples, generator.render(0, generator.n_samples))
    np.testing.assert_array_equal(record.onsets, truth.onsets)
    np.testing.assert_array_equal(record.onset_times_s, truth.onset_times_s)
    np.testing.assert_array_equal(record.beat_map, truth.beat_map)


@settings(max_examples=30, deadline=None)
@given(
    fs=st.floats(100.0, 1000.0),
    duration_s=st.floats(2.0, 60.0),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=8),
)
def test_render_is_chunk_invariant_for_any_split(
    fs: float, duration_s: float, seed: int, cuts: list[float]
) -> None:
    generator = AbpGenerator(
        duration_s, fs, heart_rate_bpm=lambda t: 60.0 + 2.0 * t, hr_variability=0.05, seed=seed
    )
    n = generator.n_samples
    edges = [0, *sorted(round(c * n) for c in cuts), n]
    chunks = [generator.render(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(chunks), generator.render(0, n))


def test_a_late_second_of_a_two_hour_record_renders_without_the_record() -> None:
    generator = AbpGenerator(2 * 3600.0, 250.0, seed=8)
    n = generator.n_samples
    tracemalloc.start()
    try:
        last_second = generator.render(n - 250, n)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 8 / 20  # the record would take n float64s
    assert last_second.shape == (250,) and np.all(np.isfinite(last_second))
    np.testing.assert_array_equal(last_second, generator.render(n - 60 * 250, n)[-250:])
    assert generator.truth().onsets[-1] >= n - 250


def test_noise_never_repeats_across_the_record() -> None:
    clean = AbpGenerator(100.0, 250.0, noise_mmhg=0.0, seed=6).render(0, 25000)
    noise = AbpGenerator(100.0, 250.0, noise_mmhg=1.0, seed=6).render(0, 25000) - clean
    spectrum = np.fft.rfft(noise - noise.mean(), 2 * len(noise))
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[: len(noise) // 2]
    assert np.max(np.abs(autocorrelation[1:] / autocorrelation[0])) < 0.1


@pytest.mark.parametrize(("start", "stop"), [(-1, 10), (10, 5), (0, 1251), (1251, 1251)])
def test_render_of_a_range_outside_the_record_raises_value_error(start: int, stop: int) -> None:
    with pytest.raises(ValueError, match=r"render range .* n_samples = 1250"):
        AbpGenerator(5.0, 250.0).render(start, stop)


def test_render_of_an_empty_range_is_empty() -> None:
    generator = AbpGenerator(5.0, 250.0)
    assert generator.render(1250, 1250).shape == (0,)
    assert generator.render(7, 7).dtype == np.float64
