"""Specification of artifact injection: each has its signature and stays in its interval."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.simulation import artifacts
from devices.simulation.abp_waveform import synthesize_abp

FS = 250.0
RECORD = synthesize_abp(30.0, FS, pulse_pressure_mmhg=45.0, seed=1).samples
RECORD.flags.writeable = False  # an artifact that wrote into its input would raise

Inject = Callable[[np.ndarray, float, float, float], artifacts.Injected]

INTERVAL_ARTIFACTS: dict[str, Inject] = {
    "zeroing": lambda x, fs, t, d: artifacts.zeroing(x, fs, t, d),
    "disconnection": lambda x, fs, t, d: artifacts.disconnection(x, fs, t, d),
    "damping": lambda x, fs, t, d: artifacts.damping(x, fs, t, d),
    "clipping": lambda x, fs, t, d: artifacts.clipping(x, fs, t, d, rail_mmhg=90.0),
    "dropout": artifacts.dropout,
    "line_manipulation": lambda x, fs, t, d: artifacts.line_manipulation(x, fs, t, d, seed=4),
}


def _pulse_pressure(x: np.ndarray) -> float:
    """Median over 1 s windows of max - min: the pulse pressure of whatever beats are there."""
    n = int(FS)
    return float(np.median([np.ptp(x[i : i + n]) for i in range(0, len(x) - n + 1, n)]))


def _assert_only_interval_changed(result: artifacts.Injected, original: np.ndarray) -> None:
    assert result.samples is not original and result.samples.dtype == np.float64
    assert 0 <= result.start < result.end <= len(original)
    np.testing.assert_array_equal(result.samples[: result.start], original[: result.start])
    np.testing.assert_array_equal(result.samples[result.end :], original[result.end :])


@pytest.mark.parametrize("name", sorted(INTERVAL_ARTIFACTS))
def test_artifact_changes_only_its_interval_and_not_its_input(name: str) -> None:
    result = INTERVAL_ARTIFACTS[name](RECORD, FS, 10.0, 4.0)
    _assert_only_interval_changed(result, RECORD)
    assert (result.start, result.end) == (2500, 3500)
    assert not np.array_equal(result.samples[2500:3500], RECORD[2500:3500], equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(INTERVAL_ARTIFACTS)),
    start_s=st.floats(0.0, 20.0),
    duration_s=st.floats(0.01, 9.9),
)
def test_any_interval_inside_the_record_is_the_one_reported(
    name: str, start_s: float, duration_s: float
) -> None:
    result = INTERVAL_ARTIFACTS[name](RECORD, FS, start_s, duration_s)
    _assert_only_interval_changed(result, RECORD)
    assert result.start == round(start_s * FS)
    assert result.end - result.start == max(1, round(duration_s * FS))


def test_fast_flush_jumps_to_the_bag_pressure_holds_it_then_rings_back_onto_the_signal() -> None:
    fs = 1000.0
    x = synthesize_abp(20.0, fs, noise_mmhg=0.0, seed=2).samples
    result = artifacts.fast_flush(x, fs, 5.0, plateau_mmhg=300.0, plateau_s=2.0, ringing_s=1.0)
    _assert_only_interval_changed(result, x)
    y, start = result.samples, result.start
    assert start == 5000 and result.end - start == 40 + 2000 + 1000
    rise, release = start + 40, start + 40 + 2000
    assert np.all(np.diff(y[start:rise]) > 0.0)  # steep: 40 ms
    np.testing.assert_array_equal(y[rise:release], 300.0)
    ringing = y[release : result.end] - x[release : result.end]
    assert ringing.min() < -50.0  # undershoots the signal
    crossings = np.flatnonzero(np.diff(np.sign(ringing[:150])) != 0)
    frequency = fs / (2.0 * np.mean(np.diff(crossings)))
    assert 15.0 <= frequency <= 25.0
    assert np.max(np.abs(ringing[-100:])) < 0.01 * (300.0 - x[release])


def test_zeroing_is_flat_at_atmospheric_pressure_with_no_pulse() -> None:
    result = artifacts.zeroing(RECORD, FS, 10.0, 5.0, noise_mmhg=0.2)
    seg = result.samples[result.start : result.end]
    assert abs(seg.mean()) < 0.05
    assert seg.std() == pytest.approx(0.2, rel=0.1)
    assert _pulse_pressure(seg) < 2.0


def test_disconnection_drops_within_100_ms_to_near_zero_and_loses_the_pulse() -> None:
    result = artifacts.disconnection(RECORD, FS, 10.0, 5.0)
    seg = result.samples[result.start : result.end]
    settled = seg[int(0.1 * FS) :]
    assert np.all(np.abs(settled) < 5.0)
    assert _pulse_pressure(settled) < 5.0


def test_damping_keeps_the_mean_shrinks_and_rounds_the_pulse() -> None:
    result = artifacts.damping(RECORD, FS, 5.0, 20.0, factor=0.3)
    before = RECORD[result.start : result.end]
    after = result.samples[result.start : result.end]
    assert after.mean() == pytest.approx(before.mean(), abs=1.0)
    ratio = _pulse_pressure(after) / _pulse_pressure(before)
    assert 0.2 < ratio < 0.4
    fade = int(0.2 * FS)  # the change fades in and out there, over the original upstrokes
    steepest = np.max(np.diff(after[fade:-fade])) / _pulse_pressure(after)
    assert steepest < 0.5 * np.max(np.diff(before)) / _pulse_pressure(before)


def test_damping_by_a_factor_of_one_leaves_the_pulse_pressure_close() -> None:
    result = artifacts.damping(RECORD, FS, 5.0, 20.0, factor=1.0)
    seg = slice(result.start, result.end)
    assert _pulse_pressure(result.samples[seg]) == pytest.approx(
        _pulse_pressure(RECORD[seg]), rel=0.25
    )


def test_clipping_pins_values_past_the_rail_and_leaves_the_rest() -> None:
    upper = artifacts.clipping(RECORD, FS, 10.0, 5.0, rail_mmhg=90.0)
    seg = slice(upper.start, upper.end)
    assert upper.samples[seg].max() == 90.0
    below = RECORD[seg] <= 90.0
    np.testing.assert_array_equal(upper.samples[seg][below], RECORD[seg][below])
    assert np.count_nonzero(upper.samples[seg] == 90.0) > 0.05 * (upper.end - upper.start)

    lower = artifacts.clipping(RECORD, FS, 10.0, 5.0, rail_mmhg=65.0)
    assert lower.samples[seg].min() == 65.0
    above = RECORD[seg] >= 65.0
    np.testing.assert_array_equal(lower.samples[seg][above], RECORD[seg][above])


def test_dropout_makes_the_interval_missing() -> None:
    result = artifacts.dropout(RECORD, FS, 10.0, 0.5)
    assert np.all(np.isnan(result.samples[result.start : result.end]))
    assert not np.any(np.isnan(np.delete(result.samples, np.arange(result.start, result.end))))


def test_line_manipulation_throws_erratic_impulses_reproducibly() -> None:
    a = artifacts.line_manipulation(RECORD, FS, 10.0, 5.0, seed=1)
    b = artifacts.line_manipulation(RECORD, FS, 10.0, 5.0, seed=1)
    c = artifacts.line_manipulation(RECORD, FS, 10.0, 5.0, seed=2)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    added = a.samples[a.start : a.end] - RECORD[a.start : a.end]
    assert np.max(np.abs(added)) > 30.0
    assert np.max(np.abs(np.diff(a.samples[a.start : a.end]))) > 20.0  # impulses, not waves


def test_spikes_replace_single_samples_with_an_absurd_value() -> None:
    result = artifacts.spikes(RECORD, FS, [12.0, 11.0, 20.0])
    assert (result.start, result.end) == (2750, 5001)
    changed = np.flatnonzero(result.samples != RECORD)
    np.testing.assert_array_equal(changed, [2750, 3000, 5000])
    np.testing.assert_array_equal(result.samples[changed], 10000.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: artifacts.dropout(RECORD, FS, 29.0, 2.0), "past the end"),
        (lambda: artifacts.dropout(RECORD, FS, -1.0, 2.0), "start_s"),
        (lambda: artifacts.dropout(RECORD, FS, 1.0, 0.0), "duration_s"),
        (lambda: artifacts.dropout(RECORD, FS, 1.0, 0.001), "shorter than one sample"),
        (lambda: artifacts.dropout(RECORD, 0.0, 1.0, 1.0), "fs"),
        (lambda: artifacts.dropout(RECORD.reshape(2, -1), FS, 1.0, 1.0), "1-D"),
        (lambda: artifacts.damping(RECORD, FS, 1.0, 1.0, factor=0.0), "factor"),
        (lambda: artifacts.damping(RECORD, FS, 1.0, 1.0, factor=1.5), "factor"),
        (lambda: artifacts.zeroing(RECORD, FS, 1.0, 1.0, noise_mmhg=-1.0), "noise_mmhg"),
        (lambda: artifacts.clipping(RECORD, FS, 1.0, 1.0, rail_mmhg=np.inf), "rail_mmhg"),
        (lambda: artifacts.fast_flush(RECORD, FS, 28.0), "past the end"),
        (lambda: artifacts.fast_flush(RECORD, FS, 1.0, ringing_hz=200.0), "ringing_hz"),
        (lambda: artifacts.fast_flush(RECORD, FS, 1.0, ringing_s=0.01), "ringing_s"),
        (lambda: artifacts.fast_flush(RECORD, FS, 1.0, damping_ratio=1.0), "damping_ratio"),
        (lambda: artifacts.fast_flush(RECORD, FS, 1.0, plateau_s=0.0), "plateau_s"),
        (lambda: artifacts.spikes(RECORD, FS, []), "at least one"),
        (lambda: artifacts.spikes(RECORD, FS, [31.0]), "inside the record"),
    ],
)
def test_caller_mistakes_raise_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_damping_refuses_missing_samples() -> None:
    gappy = artifacts.dropout(RECORD, FS, 10.0, 1.0).samples
    with pytest.raises(ValueError, match="finite"):
        artifacts.damping(gappy, FS, 9.0, 3.0)
