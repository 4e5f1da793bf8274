"""Specification of the beat stream: the core's beats, plus what the transducer itself reported."""

from __future__ import annotations

import numpy as np
import pytest

from devices.readings import SampleBlock, TransducerStatus
from devices.simulation.abp_waveform import synthesize_abp
from monitor import core
from monitor.core.beat_stream import BeatStream
from monitor.core.beat_types import Quality

FS = 250


@pytest.fixture(scope="module")
def trace() -> np.ndarray:
    return synthesize_abp(60.0, FS, map_mmhg=80.0, seed=3).samples


def run(trace: np.ndarray, flagged: dict[tuple[int, int], TransducerStatus]) -> np.ndarray:
    """Feed the trace in 0.1 s blocks, with the given [start, end) stretches flagged."""
    stream = BeatStream(FS)
    beats = []
    for start in range(0, len(trace), 25):
        status = TransducerStatus(0)
        for (a, b), flag in flagged.items():
            if a <= start < b:
                status = flag
        block = SampleBlock(start, trace[start : start + 25], status)
        beats.append(stream.push(block).beats)
    beats.append(stream.finish().beats)
    return np.concatenate(beats)


def test_without_status_flags_the_beats_are_exactly_the_cores(trace: np.ndarray) -> None:
    direct = core.BeatDetector(FS)
    expected = np.concatenate([direct.push(trace).beats, direct.finish().beats])
    assert np.array_equal(run(trace, {}), expected)


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (TransducerStatus.ZEROING, Quality.ZEROING),
        (TransducerStatus.FAULT, Quality.TRANSDUCER_FAULT),
        (TransducerStatus.OVERRANGE, Quality.CLIPPED),
    ],
)
def test_beats_touching_flagged_samples_carry_the_flag_and_are_never_clean(
    trace: np.ndarray, status: TransducerStatus, quality: Quality
) -> None:
    stretch = (30 * FS, 32 * FS)
    plain, flagged = run(trace, {}), run(trace, {stretch: status})
    touched = (plain["onset"] < stretch[1]) & (plain["end"] > stretch[0])
    assert touched.sum() >= 2
    assert np.all(flagged["quality"][touched] & quality)
    assert not flagged["clean"][touched].any()
    assert np.array_equal(flagged[~touched], plain[~touched])


def test_blocks_must_follow_each_other(trace: np.ndarray) -> None:
    stream = BeatStream(FS)
    stream.push(SampleBlock(0, trace[:25], TransducerStatus(0)))
    with pytest.raises(ValueError, match="starts at 50, the stream is at 25"):
        stream.push(SampleBlock(50, trace[50:75], TransducerStatus(0)))
