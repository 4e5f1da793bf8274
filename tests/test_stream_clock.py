"""Specification of the stream clock: clinical time is samples, bridged by the monotonic clock."""

from __future__ import annotations

import pytest

from monitor.edge.stream_clock import StreamClock

FS = 250.0


def test_stream_time_is_samples_over_the_rate() -> None:
    clock = StreamClock(FS, start_mono=100.0)
    assert clock.admit(250, 0, mono=101.0) == 0
    assert clock.now(101.0) == 1.0


def test_serial_jitter_within_the_grace_neither_fills_nor_runs_ahead() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(25, 0, mono=0.1)
    assert clock.now(0.4) == pytest.approx(0.1)  # 0.3 s late: still within the grace
    assert clock.admit(25, 0, mono=0.45) == 0
    assert clock.samples == 50


def test_during_a_silence_time_runs_on_the_monotonic_clock() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    assert clock.is_silent(5.0)
    assert clock.now(5.0) == pytest.approx(5.0)


def test_a_sequence_gap_becomes_that_many_missing_samples() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(25, 0, mono=0.1)
    assert clock.admit(25, 75, mono=0.2) == 75
    assert clock.samples == 125


def test_a_silence_without_sequence_is_filled_so_time_does_not_shrink() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    fill = clock.admit(25, 0, mono=11.0)  # ASCII front end back after 10 s
    assert fill == 10 * 250 - 25
    assert clock.now(11.0) == pytest.approx(11.0)


def test_a_time_handed_out_during_a_silence_stays_before_the_samples_that_follow() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    stamped = clock.now(4.0)  # a pump report arrives while the transducer is silent
    clock.admit(25, 0, mono=4.0)
    first_new_sample_s = (clock.samples - 25) / FS
    assert first_new_sample_s >= stamped


def test_stream_time_never_runs_backwards() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    late = clock.now(3.0)
    clock.admit(25, 0, mono=3.0)
    assert clock.now(3.01) >= late


def test_a_sequence_gap_longer_than_the_silence_wins() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    assert clock.admit(25, 2500, mono=2.0) == 2500  # replayed faster than real time


@pytest.mark.parametrize("fs", [0.0, -1.0, float("nan")])
def test_a_clock_needs_a_positive_rate(fs: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamClock(fs, start_mono=0.0)


def test_samples_waiting_to_be_counted_are_no_silence_however_late_the_loop_looks() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    assert clock.now(3.0, samples_waiting=True) == pytest.approx(1.0)
    assert clock.admit(25, 0, mono=1.1) == 0  # the backlog follows on, nothing padded
    assert clock.samples == 275


def test_a_span_the_monitor_itself_was_away_is_not_counted_as_silence() -> None:
    clock = StreamClock(FS, start_mono=0.0)
    clock.admit(250, 0, mono=1.0)
    clock.exclude(2.0, mono=3.1)  # the host stalled from 1.1 to 3.1
    assert not clock.is_silent(3.1)
    assert clock.now(3.1) == pytest.approx(1.0)
    assert clock.admit(25, 0, mono=3.2) == 0
    assert clock.now(5.0) == pytest.approx(1.1 + 5.0 - 3.2)  # a real silence after it counts
