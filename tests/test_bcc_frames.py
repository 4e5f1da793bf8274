"""Specification of B. Braun BCC framing, checked against frames published by others.

The ADMIN:ALIVE request is printed in B. Braun's Technical Interface
Specification BCC and expected by mindleaving/patient-monitor-datalogger's
tests; the MEM:GET block is that project's test frame (tests/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.protocols.bcc_frames import (
    BccRecord,
    FrameError,
    checksum,
    encode_frame,
    parse_frame,
    parse_records,
    request,
    stuff,
    unstuff,
)

DATA = Path(__file__).parent / "data" / "bcc"
ALIVE = b"\x0100031\x021/1/1>ADMIN:ALIVE\x0300061\x04"  # published, byte for byte


def memget_block() -> bytes:
    return (DATA / "memget-block-comsystem.bin").read_bytes()


def test_the_first_request_is_the_published_admin_alive_frame() -> None:
    assert request("1", "ADMIN:ALIVE") == ALIVE


def test_the_check_is_the_byte_sum_modulo_256_from_soh_to_etx() -> None:
    assert sum(ALIVE[:-6]) == 1341
    assert checksum(ALIVE[:-6]) == 61


def test_a_published_frame_reads_back_with_its_bed_id_and_text() -> None:
    frame = parse_frame(ALIVE)
    assert (frame.bed_id, frame.information, frame.more_follow) == ("1", "ADMIN:ALIVE", False)


def test_a_stuffed_frame_carries_no_d_and_keeps_the_plain_frames_length_and_check() -> None:
    wire = stuff(ALIVE)
    assert wire == b"\x0100031\x021/1/1>AEXMIN:ALIVEE\x0300061\x04"
    assert b"D" not in wire and b"d" not in wire
    assert parse_frame(wire) == parse_frame(ALIVE)


def test_unstuffing_reads_left_to_right_so_eex_is_ex() -> None:
    assert unstuff(b"EEX") == b"EX"  # the specification's own example
    assert unstuff(b"AEXMIN") == b"ADMIN"
    assert unstuff(b"ADMIN") is None  # a stuffing device never sends D
    assert unstuff(b"AEQ") is None  # E followed by what stuffing never makes


def test_a_published_memget_block_passes_its_checks_and_says_more_blocks_follow() -> None:
    frame = parse_frame(memget_block())
    assert frame.bed_id == "ComSystem"
    assert frame.more_follow


def test_the_records_of_a_memget_block_are_the_rack_then_each_pump() -> None:
    records = parse_records(parse_frame(memget_block()).information)
    assert records[0] == BccRecord(214, "50100", "FMNOR", "1")  # one pillar
    by_code = {r.parameter: r.value for r in records if r.address == "50111"}
    assert by_code["GNNEW"] == "688F030006"  # a Perfusor Space, pillar 1 slot 1
    assert by_code["INRT"] == "0"
    assert by_code["INSOL"] is None  # _NV: no drug, not a drug named "_NV"
    assert by_code["DSSTATUS"] == "00050"  # switched off
    assert {r.address for r in records} == {"50100", "50111"}


def test_a_version_answer_is_a_record_without_a_value() -> None:
    assert parse_records("207,50100,V3.30") == [BccRecord(207, "50100", "V3.30", None)]


@pytest.mark.parametrize("offset", [1, 7, 20, 500, 1144])
def test_a_flipped_bit_anywhere_in_a_block_refuses_it(offset: int) -> None:
    damaged = bytearray(memget_block())
    damaged[offset] ^= 0x01
    with pytest.raises(FrameError) as refused:
        parse_frame(bytes(damaged))
    assert refused.value.kind in ("bad_checksum", "malformed")


def test_a_truncated_frame_is_refused_with_its_length_and_sum() -> None:
    with pytest.raises(FrameError, match=r"length field 31 for 30 bytes"):
        parse_frame(ALIVE[:20] + ALIVE[21:])


def test_a_frame_without_the_bed_suffix_is_malformed() -> None:
    wire = encode_frame("1", "x").replace(b"/1/1>", b"/1/2>")
    fixed = wire[:-6] + b"%05d" % checksum(wire[:-6]) + b"\x04"
    with pytest.raises(FrameError, match="bed id"):
        parse_frame(fixed)


def test_a_record_without_its_fields_is_named_by_position() -> None:
    with pytest.raises(FrameError, match="record 2 'garbage'"):
        parse_records("1,50100,FMNOR,1\x1egarbage")
