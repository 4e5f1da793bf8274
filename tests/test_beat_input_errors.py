"""Caller mistakes raise ValueError with a message that says what was wrong."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("fs", [99.9, 1000.1, 0, -125, float("nan"), "fast"])
def test_a_sampling_rate_outside_100_to_1000_hz_is_refused(fs, detector_class):
    with pytest.raises(ValueError, match="sampling rate"):
        detector_class(fs)


@pytest.mark.parametrize(
    "chunk, message",
    [
        ([1.0, 2.0], "numpy array"),
        (np.zeros((4, 2)), "1-D"),
        (np.array(["80"]), "dtype"),
        (np.zeros(3, dtype=complex), "dtype"),
        (np.zeros(3, dtype=bool), "dtype"),
    ],
)
def test_a_chunk_of_the_wrong_kind_is_refused(chunk, message, detector_class):
    detector = detector_class(125.0)
    with pytest.raises(ValueError, match=message):
        detector.push(chunk)
    assert detector.samples_seen == 0


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint16, np.float32, np.float64])
def test_integer_and_float_chunks_give_the_same_beats(dtype, detector_class):
    signal = np.round(80 + 30 * np.sin(np.linspace(0, 2 * np.pi * 30, 125 * 30)) ** 8)
    want = detector_class(125.0).push(signal.astype(np.float64))
    got = detector_class(125.0).push(signal.astype(dtype))
    assert got.beats.tobytes() == want.beats.tobytes()


def test_non_contiguous_chunks_are_read_correctly(detector_class):
    signal = np.round(80 + 30 * np.sin(np.linspace(0, 2 * np.pi * 30, 125 * 30)) ** 8)
    strided = np.repeat(signal, 2)[::2]
    assert not strided.flags.c_contiguous
    want = detector_class(125.0).push(signal)
    got = detector_class(125.0).push(strided)
    assert got.beats.tobytes() == want.beats.tobytes()


def test_empty_chunks_are_fine(detector_class):
    out = detector_class(125.0).push(np.zeros(0))
    assert len(out.beats) == 0 and len(out.events) == 0
