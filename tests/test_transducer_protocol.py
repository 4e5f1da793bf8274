"""Specification of the transducer's wire formats: HDLC-framed binary and plain ASCII.

A decoder is fed whatever a serial read returned. It never raises, loses only
the frames that damage touched, resynchronises at the next flag (or line end)
and counts every loss by its cause.
"""

from __future__ import annotations

import math
import struct
import tracemalloc
from collections.abc import Sequence

import numpy as np
import pytest
from crc_reference import crc16_ccitt_false
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocols.decoding import MAX_PENDING_PROBLEMS
from devices.protocols.transducer import (
    MAX_SAMPLES_PER_FRAME,
    AsciiTransducerDecoder,
    BinaryTransducerDecoder,
    Calibration,
    encode_ascii,
    encode_frame,
)
from devices.readings import TransducerFrame, TransducerStatus

RATE = 1000
FLAG = b"\x7e"
FIXED_POINT_NANO = 10_000_000  # 0.01 mmHg per count


def payload(
    counts: Sequence[int],
    *,
    version: int = 1,
    status: int = 0,
    rate: int = RATE,
    sequence: int = 0,
    zero: int = 0,
    nano: int = FIXED_POINT_NANO,
) -> bytes:
    """A frame's payload laid out by hand from the table in the module docstring."""
    header = struct.pack("<BBHIhI", version, status, rate, sequence, zero, nano)
    return header + np.asarray(counts, dtype="<i2").tobytes()


def wire(body: bytes) -> bytes:
    """``body`` with its CRC appended (big-endian), escaped and between flags."""
    body += struct.pack(">H", crc16_ccitt_false(body))
    return FLAG + body.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e") + FLAG


def fixed_point_frame(counts: Sequence[int], sequence: int, status: int = 0) -> bytes:
    """What a front end reporting mmHg in hundredths sends for these counts."""
    return encode_frame(
        np.asarray(counts) / 100.0, sequence=sequence, sample_rate=RATE, status=status
    )


def describe(frame: TransducerFrame) -> tuple:
    """Everything a frame carries, samples as hundredths of mmHg, for exact comparison."""
    hundredths = np.rint(frame.samples * 100.0).astype(int).tolist()
    return frame.sequence, frame.sample_rate, int(frame.status), frame.missing_before, hundredths


def feed_in_pieces(decoder, data: bytes, cuts: Sequence[int] = ()) -> list[TransducerFrame]:
    """Feed ``data`` split at ``cuts``, as successive serial reads would return it."""
    bounds = [0, *sorted(cuts), len(data)]
    return [f for a, b in zip(bounds, bounds[1:], strict=False) for f in decoder.feed(data[a:b])]


def decode(data: bytes) -> tuple[list[TransducerFrame], BinaryTransducerDecoder]:
    decoder = BinaryTransducerDecoder()
    return decoder.feed(data), decoder


def decode_one(data: bytes) -> TransducerFrame:
    frames, decoder = decode(data)
    assert len(frames) == 1, decoder.take_problems()
    return frames[0]


# --- binary: the frame on the wire ---------------------------------------------------------


def test_the_checksum_is_crc16_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value


def test_a_frame_on_the_wire_is_exactly_the_documented_layout() -> None:
    sent = encode_frame(
        np.array([93.41, -2.5]), sequence=7, sample_rate=RATE, status=TransducerStatus.FAULT
    )
    assert sent == wire(payload([9341, -250], status=2, sequence=7))


def test_fixed_point_mmhg_round_trips_exactly_to_the_hundredth() -> None:
    mmhg = np.array([93.4, 120.0, -12.37, 0.0, 0.004, 327.67, -327.68])
    frame = decode_one(encode_frame(mmhg, sequence=12, sample_rate=RATE))
    np.testing.assert_allclose(
        frame.samples, [93.4, 120.0, -12.37, 0.0, 0.0, 327.67, -327.68], rtol=0, atol=1e-9
    )
    assert (frame.sequence, frame.sample_rate, frame.missing_before) == (12, RATE, 0)
    assert frame.status == TransducerStatus(0)


def test_adc_counts_are_calibrated_with_the_zero_and_scale_the_frame_carries() -> None:
    frame = decode_one(wire(payload([-1200, 0, 1000], zero=-1200, nano=76_293_945)))
    np.testing.assert_allclose(
        frame.samples, [0.0, 1200 * 0.076293945, 2200 * 0.076293945], rtol=1e-12
    )


def test_an_adc_calibration_round_trips_within_half_a_count() -> None:
    calibration = Calibration(zero_counts=-1200, nano_mmhg_per_count=76_293_945)
    mmhg = np.array([0.0, 93.4, 250.0, -30.0, 2000.0])
    frame = decode_one(encode_frame(mmhg, sequence=0, sample_rate=RATE, calibration=calibration))
    assert np.max(np.abs(frame.samples - mmhg)) <= calibration.mmhg_per_count / 2
    assert frame.status == TransducerStatus(0)


@pytest.mark.parametrize("zero", [1000, -1000])
def test_counts_at_the_rails_are_not_wrapped_around_by_the_zero_offset(zero: int) -> None:
    frame = decode_one(wire(payload([-32768, 32767], zero=zero, nano=62_500_000)))
    np.testing.assert_allclose(frame.samples, [(-32768 - zero) / 16, (32767 - zero) / 16])


def test_status_flags_travel_with_their_frame() -> None:
    status = TransducerStatus.ZEROING | TransducerStatus.FAULT
    frame = decode_one(encode_frame([0.0, 0.1], sequence=0, sample_rate=RATE, status=status))
    assert frame.status == status


def test_samples_beyond_int16_set_overrange_and_are_clipped_to_the_rails() -> None:
    sent = encode_frame(
        [100.0, 400.0, -400.0], sequence=0, sample_rate=RATE, status=TransducerStatus.ZEROING
    )
    frame = decode_one(sent)
    assert frame.status == TransducerStatus.ZEROING | TransducerStatus.OVERRANGE
    np.testing.assert_allclose(frame.samples, [100.0, 327.67, -327.68], rtol=0, atol=1e-9)


def test_flag_and_escape_bytes_inside_samples_are_escaped_and_come_back() -> None:
    # int16 little-endian: 0x7E7E -> 7E 7E, -130 -> 7E FF, -131 -> 7D FF, 0x5E7D -> 7D 5E ...
    counts = [0x7E7E, 0x7D7D, 0x7D7E, 0x7E7D, 0x007E, 0x7D00, -130, -131, 0x5E7D, 0x5D7D]
    sent = fixed_point_frame(counts, sequence=0)
    assert FLAG not in sent[1:-1]
    assert len(sent) >= 2 + len(payload(counts)) + 2 + 13  # 13 escaped bytes in the samples
    assert describe(decode_one(sent))[4] == counts


def test_a_byte_at_a_time_gives_the_same_frames_as_one_read() -> None:
    blocks = [[0x7E7E, 0x7D, -131, i] for i in range(20)]
    stream = b"".join(fixed_point_frame(c, 4 * i, status=i % 8) for i, c in enumerate(blocks))
    whole, _ = decode(stream)
    decoder = BinaryTransducerDecoder()
    by_byte = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert [describe(f) for f in by_byte] == [describe(f) for f in whole]
    assert [describe(f)[4] for f in whole] == blocks


def test_bytes_before_the_first_flag_are_counted_as_garbage() -> None:
    frames, decoder = decode(b"\x01\x02\x03" + fixed_point_frame([1, 2], 0))
    assert len(frames) == 1
    assert decoder.counts["garbage_bytes"] == 3


# --- binary: sequence accounting -----------------------------------------------------------


def test_a_sequence_gap_reports_exactly_the_samples_lost() -> None:
    stream = b"".join(fixed_point_frame([0] * 25, seq) for seq in (0, 25, 100, 125))
    frames, decoder = decode(stream)
    assert [f.missing_before for f in frames] == [0, 0, 50, 0]
    assert decoder.counts["sequence_gap"] == 1
    assert decoder.counts["missing_samples"] == 50
    assert [p.kind for p in decoder.take_problems()] == ["sequence_gap"]


def test_the_sequence_wraps_at_two_to_the_32_without_a_gap() -> None:
    start = 2**32 - 10
    stream = fixed_point_frame([0] * 25, start) + fixed_point_frame([0] * 25, 15)
    frames, decoder = decode(stream)
    assert [f.missing_before for f in frames] == [0, 0]
    assert decoder.counts["sequence_gap"] == 0


def test_a_backwards_sequence_is_a_front_end_restart_not_a_gap() -> None:
    stream = fixed_point_frame([0] * 25, 1000) + fixed_point_frame([0] * 25, 0)
    frames, decoder = decode(stream)
    assert [f.missing_before for f in frames] == [0, 0]
    assert decoder.counts["sequence_restart"] == 1
    assert decoder.counts["sequence_gap"] == decoder.counts["missing_samples"] == 0


def test_a_change_of_sample_rate_is_counted_and_the_frame_kept() -> None:
    stream = wire(payload([0] * 25, rate=1000)) + wire(payload([0] * 25, rate=500, sequence=25))
    frames, decoder = decode(stream)
    assert [(f.sample_rate, f.missing_before) for f in frames] == [(1000, 0), (500, 0)]
    assert decoder.counts["rate_change"] == 1


# --- binary: damage ------------------------------------------------------------------------


GOOD = fixed_point_frame([9340, 9350], 0)


def _after_damage(damaged: bytes) -> BinaryTransducerDecoder:
    """Decode ``damaged`` between two good frames; both must survive it."""
    frames, decoder = decode(GOOD + damaged + fixed_point_frame([9360], 2))
    assert [describe(f)[4] for f in frames] == [[9340, 9350], [9360]]
    return decoder


def test_a_flipped_bit_costs_only_the_frame_it_hit() -> None:
    damaged = bytearray(fixed_point_frame([1, 2, 3], 2))
    damaged[20] ^= 0x10
    decoder = _after_damage(bytes(damaged))
    assert decoder.counts["bad_checksum"] == 1
    assert decoder.counts["frames"] == 2


def test_an_unsupported_version_is_counted_and_skipped() -> None:
    decoder = _after_damage(wire(payload([1, 2], version=2, sequence=2)))
    assert decoder.counts["unsupported_version"] == 1
    assert any("version 2" in p.detail for p in decoder.take_problems())


def test_a_frame_too_short_for_a_header_and_a_sample_is_truncated() -> None:
    decoder = _after_damage(FLAG + bytes(range(1, 11)) + FLAG)
    assert decoder.counts["truncated"] == 1


@pytest.mark.parametrize(
    "body",
    [payload([1, 2]) + b"\x00", payload([1], rate=0), payload([1], nano=0)],
    ids=["odd-sample-bytes", "zero-rate", "zero-scale"],
)
def test_a_frame_no_front_end_could_mean_is_malformed(body: bytes) -> None:
    decoder = _after_damage(wire(body))
    assert decoder.counts["malformed"] == 1


def test_unknown_status_bits_are_counted_and_dropped_but_the_frame_kept() -> None:
    frame, decoder = decode(wire(payload([5], status=0x80 | int(TransducerStatus.ZEROING))))
    assert frame[0].status == TransducerStatus.ZEROING
    assert decoder.counts["unknown_status_bits"] == 1


def test_a_run_between_flags_longer_than_any_frame_is_oversized() -> None:
    decoder = _after_damage(FLAG + bytes(2000) + FLAG)
    assert decoder.counts["oversized"] == 1


def _retained_after_feeding(decoder: BinaryTransducerDecoder, read: bytes, reads: int) -> int:
    """Bytes the decoder still holds (tracemalloc) after ``reads`` serial reads of ``read``."""
    tracemalloc.start()
    try:
        for _ in range(reads):
            decoder.feed(read)
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("synced", [False, True], ids=["from-start", "after-a-frame"])
@pytest.mark.parametrize("noise", ["zeros", "random"])
def test_megabytes_without_a_flag_are_dropped_not_buffered(noise: str, synced: bool) -> None:
    rng = np.random.default_rng(1)
    read = bytes(4096) if noise == "zeros" else rng.integers(0, 0x7E, 4096, np.uint8).tobytes()
    decoder = BinaryTransducerDecoder()
    if synced:
        assert len(decoder.feed(GOOD)) == 1
    assert _retained_after_feeding(decoder, read, reads=1024) < 64 * 1024  # 4 MiB fed
    assert decoder.counts["garbage_bytes"] > 4 * 2**20 - 16 * 1024
    assert decoder.counts["oversized"] == int(synced)
    assert [describe(f)[4] for f in decoder.feed(GOOD)] == [[9340, 9350]]


# --- binary: what encode_frame refuses -------------------------------------------------------


@pytest.mark.parametrize(
    "samples, sequence, rate",
    [
        ([], 0, RATE),
        ([0.0] * (MAX_SAMPLES_PER_FRAME + 1), 0, RATE),
        ([1.0, math.nan], 0, RATE),
        ([1.0, math.inf], 0, RATE),
        ([1.0], 0, 0),
        ([1.0], 0, 65536),
        ([1.0], -1, RATE),
        ([1.0], 2**32, RATE),
    ],
    ids=["empty", "too-many", "nan", "inf", "rate-0", "rate-65536", "sequence-1", "sequence-2^32"],
)
def test_encode_frame_refuses_what_no_front_end_could_send(
    samples: list[float], sequence: int, rate: int
) -> None:
    with pytest.raises(ValueError):
        encode_frame(np.array(samples), sequence=sequence, sample_rate=rate)


def test_encode_frame_accepts_the_largest_frame() -> None:
    frame = decode_one(fixed_point_frame([0x7E7E] * MAX_SAMPLES_PER_FRAME, 0))
    assert frame.samples.size == MAX_SAMPLES_PER_FRAME


# --- binary: properties --------------------------------------------------------------------

# Sample values whose little-endian bytes include the flag and escape bytes.
AWKWARD = [0x7E7E, 0x7D7D, 0x7D7E, 0x7E7D, 0x7E, 0x7D, -130, -131, 0x5E7D, 0x5D7D]
BLOCK = st.tuples(
    st.lists(
        st.one_of(st.integers(-32768, 32767), st.sampled_from(AWKWARD)), min_size=1, max_size=30
    ),
    st.integers(0, 7),
)
BLOCKS = st.lists(BLOCK, min_size=1, max_size=8)


def encode_stream(blocks: list[tuple[list[int], int]]) -> list[bytes]:
    """One frame per block, sequences counting samples from 0."""
    frames, sequence = [], 0
    for counts, status in blocks:
        frames.append(fixed_point_frame(counts, sequence, status))
        sequence += len(counts)
    return frames


def expected(blocks: list[tuple[list[int], int]], lost: set[int] = frozenset()) -> list[tuple]:
    """``describe`` of the frames that must come out when the frames in ``lost`` do not."""
    out, sequence, missing, seen = [], 0, 0, False
    for i, (counts, status) in enumerate(blocks):
        if i in lost:
            missing += len(counts)
        else:
            out.append((sequence, RATE, status, missing if seen else 0, counts))
            missing, seen = 0, True
        sequence += len(counts)
    return out


def cuts_in(size: int) -> st.SearchStrategy[list[int]]:
    """Where serial reads end: every n bytes, as a busy port returns them, or anywhere."""
    return st.one_of(
        st.integers(1, 64).map(lambda n: list(range(n, size, n))),
        st.lists(st.integers(0, size), max_size=12),
    )


@settings(max_examples=150, deadline=None)
@given(
    blocks=BLOCKS, garbage=st.lists(st.binary(max_size=80), min_size=9, max_size=9), data=st.data()
)
def test_garbage_between_frames_costs_no_frame(blocks, garbage, data) -> None:
    stream = b"".join(g + f for g, f in zip(garbage, encode_stream(blocks), strict=False))
    stream += garbage[-1]
    decoder = BinaryTransducerDecoder()
    frames = feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream))))
    assert [describe(f) for f in frames] == expected(blocks)


@settings(max_examples=150, deadline=None)
@given(blocks=BLOCKS, data=st.data())
def test_a_frame_cut_short_costs_only_itself(blocks, data) -> None:
    frames = encode_stream(blocks)
    victim = data.draw(st.integers(0, len(frames) - 1))
    frames[victim] = frames[victim][: data.draw(st.integers(1, len(frames[victim]) - 2))]
    stream = b"".join(frames)
    decoder = BinaryTransducerDecoder()
    decoded = feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream))))
    assert [describe(f) for f in decoded] == expected(blocks, lost={victim})


@settings(max_examples=150, deadline=None)
@given(blocks=BLOCKS, data=st.data())
def test_flipped_bits_cost_only_the_frames_they_hit(blocks, data) -> None:
    # Up to 3 flips in one frame: CRC-16/CCITT catches all of them (Hamming distance 4)
    # unless a flip creates or destroys a flag or escape byte, which re-frames the bytes
    # and leaves a 1 in 65536 chance of a passing checksum.
    frames = encode_stream(blocks)
    damaged = data.draw(st.sets(st.integers(0, len(frames) - 1), min_size=1))
    for i in damaged:
        frame = bytearray(frames[i])
        for bit in data.draw(st.sets(st.integers(0, 8 * len(frame) - 1), min_size=1, max_size=3)):
            frame[bit // 8] ^= 1 << (bit % 8)
        frames[i] = bytes(frame)
    stream = b"".join(frames)
    decoder = BinaryTransducerDecoder()
    decoded = feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream))))
    assert [describe(f) for f in decoded] == expected(blocks, lost=damaged)


WIRE_BYTES = st.lists(
    st.one_of(st.integers(0, 255), st.sampled_from([0x7E, 0x7D, 0x5E, 0x5D, 0x01])),
    max_size=2000,
).map(bytes)


@settings(max_examples=200, deadline=None)
@given(stream=WIRE_BYTES, data=st.data())
def test_arbitrary_bytes_in_arbitrary_reads_never_raise(stream: bytes, data) -> None:
    decoder = BinaryTransducerDecoder()
    frames = feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream))))
    assert decoder.counts["frames"] == len(frames)
    assert all(1 <= f.samples.size <= MAX_SAMPLES_PER_FRAME for f in frames)
    problems = decoder.take_problems()  # bounded: 64 described, then one summary per kind
    assert len(problems) <= MAX_PENDING_PROBLEMS + len({p.kind for p in problems})


# --- ASCII -----------------------------------------------------------------------------------


def ascii_samples(data: bytes, cuts: Sequence[int] = (), rate: int = 100) -> tuple[list, object]:
    decoder = AsciiTransducerDecoder(rate)
    frames = feed_in_pieces(decoder, data, cuts)
    assert all(f.sample_rate == rate and f.sequence is None for f in frames)
    return [v for f in frames for v in f.samples.tolist()], decoder


def test_one_reading_per_line_decodes_to_mmhg() -> None:
    samples, decoder = ascii_samples(b"93.4\r\n120\n-12.5\r\n")
    assert samples == [93.4, 120.0, -12.5]
    assert decoder.counts["readings"] == 3


def test_ascii_round_trips_to_a_tenth_of_a_mmhg() -> None:
    mmhg = np.array([93.44, 120.0, -12.26, 0.0, 399.9])
    samples, _ = ascii_samples(encode_ascii(mmhg))
    np.testing.assert_allclose(samples, [93.4, 120.0, -12.3, 0.0, 399.9])


def test_a_garbled_line_is_a_missing_sample_so_time_is_kept() -> None:
    samples, decoder = ascii_samples(b"93.4\r\n9#.4\r\n95.0\r\n")
    np.testing.assert_array_equal(samples, [93.4, math.nan, 95.0])
    assert decoder.counts["bad_line"] == 1
    assert "9#.4" in decoder.take_problems()[0].detail


def test_a_reading_outside_minus_50_to_400_mmhg_is_a_missing_sample() -> None:
    samples, decoder = ascii_samples(b"-50.1\r\n400.1\r\n-50\r\n400\r\nnan\r\ninf\r\n")
    np.testing.assert_array_equal(samples, [math.nan, math.nan, -50.0, 400.0, math.nan, math.nan])
    assert decoder.counts["bad_line"] == 4


def test_a_run_longer_than_32_bytes_without_a_line_end_is_dropped() -> None:
    decoder = AsciiTransducerDecoder(100)
    assert decoder.feed(b"7" * 40) == []
    assert decoder.counts["garbage_bytes"] == 40
    [frame] = decoder.feed(b"\r\n93.4\r\n")
    assert frame.samples.tolist() == [93.4]


def test_the_end_of_an_over_long_run_is_not_taken_for_a_reading() -> None:
    decoder = AsciiTransducerDecoder(100)
    decoder.feed(b"7" * 40)
    [frame] = decoder.feed(b"0.5\r\n93.4\r\n")
    assert frame.samples.tolist() == [93.4]
    assert decoder.counts["garbage_bytes"] == 44  # the same as when the line came in one read


ASCII_LINE = st.one_of(
    st.sampled_from([b"93.4", b"-12", b" 120.5 ", b"400.1", b"9#.4", b"", b"\r"]),
    st.lists(st.sampled_from(list(b"0123456789.-+ e\rx\x00\xff")), max_size=60).map(bytes),
)
# Every line ended: a run still waiting for its line end is neither counted nor decoded yet.
ASCII_TEXT = st.lists(ASCII_LINE, max_size=12).map(lambda lines: b"".join(x + b"\n" for x in lines))


@settings(max_examples=200, deadline=None)
@given(text=ASCII_TEXT, data=st.data())
def test_ascii_decoding_does_not_depend_on_how_reads_split_the_stream(text: bytes, data) -> None:
    whole, whole_decoder = ascii_samples(text)
    split, split_decoder = ascii_samples(text, data.draw(cuts_in(len(text))))
    np.testing.assert_array_equal(split, whole)
    for kind in ("readings", "bad_line", "garbage_bytes"):
        assert split_decoder.counts[kind] == whole_decoder.counts[kind], kind


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=1000), data=st.data())
def test_arbitrary_bytes_never_raise_in_ascii_mode(stream: bytes, data) -> None:
    samples, decoder = ascii_samples(stream, data.draw(cuts_in(len(stream))))
    assert len(samples) == decoder.counts["readings"]
    assert all(math.isnan(v) or -50.0 <= v <= 400.0 for v in samples)


def test_an_ascii_decoder_needs_a_possible_sample_rate() -> None:
    with pytest.raises(ValueError):
        AsciiTransducerDecoder(0)
