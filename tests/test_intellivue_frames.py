"""Specification of IntelliVue Data Export framing over RS-232, from bytes others published.

The frame a real monitor sent (tests/data/README.md: a patient-demographics
poll result captured by a peer) is the reference for the flags, the
transparency and the FCS; the FLOAT examples are the Programming Guide's,
as peers' tests quote them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.intellivue_frames import (
    GOOD_FCS,
    FrameError,
    FrameReader,
    encode_frame,
    escape,
    fcs16,
    fcs_run,
    parse_body,
)
from devices.protocols.intellivue_values import (
    NOT_A_MEASUREMENT,
    MeasurementState,
    decode_float,
    encode_float,
)

CAPTURED = Path(__file__).parent / "data" / "intellivue" / "demographics-poll-result-unescaped.bin"
CAPTURED = CAPTURED.read_bytes()  # BOF ... EOF, as the peer logged it after unescaping


def test_the_frame_check_is_ppps_16_bit_fcs() -> None:
    assert fcs16(b"123456789") == 0x906E  # CRC-16/X-25's check value


def test_a_frame_a_monitor_sent_checks_and_carries_its_length() -> None:
    plain = CAPTURED[1:-1]
    assert CAPTURED[0] == 0xC0 and CAPTURED[-1] == 0xC1
    assert fcs_run(plain) == GOOD_FCS
    frame = parse_body(escape(plain))
    assert (frame.protocol_id, frame.message_type, len(frame.user_data)) == (0x11, 0x01, 292)
    assert frame.user_data[:4] == bytes.fromhex("e1000002")  # SPpdu: a data export message


def test_encoding_that_frames_user_data_gives_the_monitors_fcs_and_escapes() -> None:
    user_data = CAPTURED[5:-3]
    wire = encode_frame(user_data)
    assert wire[-3:] == bytes.fromhex("8265c1")  # the FCS the monitor sent, LSB first
    assert wire.count(b"\x7d\xe0") == 2 and len(wire) == len(CAPTURED) + 2  # its two 0xC0
    assert b"\xc0" not in wire[1:-1] and b"\xc1" not in wire[1:-1]


@pytest.mark.parametrize(
    ("damage", "kind"),
    [
        (lambda body: body[:-1] + bytes([body[-1] ^ 0x01]), "bad_checksum"),
        (lambda body: body[:40], "bad_checksum"),
        (lambda body: body[:3], "truncated"),
        (lambda body: body + b"\x7d", "truncated"),
    ],
    ids=["bit flip", "cut short", "shorter than a header", "dangling escape"],
)
def test_a_damaged_frame_is_refused_by_kind(damage, kind: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse_body(damage(encode_frame(CAPTURED[5:-3])[1:-1]))
    assert refused.value.kind == kind


@given(st.binary(max_size=600))
def test_any_user_data_survives_framing(user_data: bytes) -> None:
    wire = encode_frame(user_data)
    assert wire[0] == 0xC0 and wire[-1] == 0xC1 and b"\xc1" not in wire[1:-1]
    assert parse_body(wire[1:-1]).user_data == user_data


@pytest.mark.parametrize(
    ("word", "value"),
    [("fd007d00", 32.0), ("ff000140", 32.0), ("01000140", 3200.0), ("02000020", 3200.0)],
)
def test_the_programming_guides_float_examples(word: str, value: float) -> None:
    assert decode_float(bytes.fromhex(word)) == pytest.approx(value)


@pytest.mark.parametrize("word", ["007fffff", "00800000", "007ffffe", "00800002", "fe7fffff"])
def test_a_special_float_is_missing_never_a_number(word: str) -> None:
    assert math.isnan(decode_float(bytes.fromhex(word)))


def test_the_captured_frames_missing_age_is_a_nan_float() -> None:
    age = CAPTURED.index(bytes.fromhex("09d80006")) + 4  # NOM_ATTR_PT_AGE: FLOAT and unit
    assert math.isnan(decode_float(CAPTURED[age : age + 4]))


@given(st.integers(-999_999, 999_999))
def test_a_float_encoded_reads_back(hundredths: int) -> None:
    assert decode_float(encode_float(hundredths / 100)) == pytest.approx(hundredths / 100)


def test_states_that_are_no_measurement_of_the_patient() -> None:
    assert MeasurementState.CALIBRATION_ONGOING in NOT_A_MEASUREMENT
    assert MeasurementState.DEMO_DATA in NOT_A_MEASUREMENT
    assert MeasurementState.MSMT_STATE_IN_ALARM not in NOT_A_MEASUREMENT
    assert MeasurementState(0x8002) & NOT_A_MEASUREMENT  # invalid and in alarm


WIRE = encode_frame(CAPTURED[5:-3])


@given(st.lists(st.integers(1, 64), max_size=40))
def test_however_reads_cut_the_stream_every_frame_comes_out_whole(cuts: list[int]) -> None:
    stream, frames = WIRE * 3, []
    reader = FrameReader()
    at = 0
    for cut in [*cuts, len(stream)]:
        got, damage = reader.feed(stream[at : at + cut])
        assert damage == []
        frames += got
        at += cut
    assert [f.user_data for f in frames] == [CAPTURED[5:-3]] * 3


def test_damage_costs_only_the_frame_it_hits_and_names_where_it_began() -> None:
    flipped = bytearray(WIRE)
    flipped[100] ^= 0x04
    aborted = WIRE[:50] + b"\x7d\xc1"
    stream = b"noise" + WIRE + bytes(flipped) + WIRE[:80] + aborted + WIRE
    frames, damage = FrameReader().feed(stream)
    assert len(frames) == 2
    start = 5 + len(WIRE)
    assert [(d.kind, d.offset) for d in damage] == [
        ("garbage_bytes", 0),
        ("bad_checksum", start),
        ("truncated", start + len(WIRE)),  # cut short by the next BOF
        ("aborted", start + len(WIRE) + 80),
    ]


@given(st.binary(max_size=400), st.binary(max_size=400))
def test_garbage_around_a_frame_never_raises_and_the_frame_survives(before, after) -> None:
    reader = FrameReader()
    frames, _ = reader.feed(before.replace(b"\xc0", b"") + WIRE + after)
    assert [f.user_data for f in frames][:1] == [CAPTURED[5:-3]]
