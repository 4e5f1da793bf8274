"""Specification of the host's side of a BCC session, driven by hand as a reader would drive it.

The ComDevice's answers are built with the framing the published frames
verified (tests/test_bcc_frames.py); the first MEM:GET block is the
published one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.protocols.bcc_frames import ACK, NAK, encode_frame, stuff
from devices.protocols.bcc_session import BccSession, Step

ALIVE = b"\x0100031\x021/1/1>ADMIN:ALIVE\x0300061\x04"
BLOCK_1 = (Path(__file__).parent / "data" / "bcc" / "memget-block-comsystem.bin").read_bytes()
GNACK = encode_frame("ComSystem", "206,50100,GNACK,0")
BLOCK_2 = encode_frame(
    "ComSystem",
    "\x1e".join(
        [
            "215,50113,INRT,0.30",
            "215,50113,INSOL,Arterenol4mg/50",
            "215,50113,INDCON,0",
            "215,50113,INDCONU,32",
            "215,50113,INM3,1",
        ]
    ),
)


def associated(t: float = 0.0) -> BccSession:
    """A session that said ALIVE at ``t``, heard GNACK and has asked MEM:GET."""
    session = BccSession(poll_s=5.0)
    session.open_session(t)
    session.take_outgoing()
    session.feed(GNACK)
    session.on_time(t + 0.05)
    assert session.take_outgoing() == encode_frame("ComSystem", "MEM:GET")
    return session


def test_a_session_opens_with_the_published_alive_under_the_default_bed_id() -> None:
    session = BccSession()
    session.open_session(0.0)
    assert session.take_outgoing() == ALIVE
    assert session.step is Step.ASSOCIATING


def test_the_bed_id_the_rack_answers_with_is_used_from_then_on() -> None:
    session = associated()
    assert session.bed_id == "ComSystem"
    assert session.step is Step.POLLING


def test_each_block_is_acknowledged_a_tenth_of_a_second_after_it_came() -> None:
    session = associated()
    assert session.feed(BLOCK_1) == []  # ends in ETB: more blocks follow
    session.on_time(1.00)
    assert session.take_outgoing() == b""
    session.on_time(1.11)
    assert session.take_outgoing() == ACK


def test_the_last_block_ends_the_cycle_with_the_records_of_every_block() -> None:
    session = associated()
    session.feed(BLOCK_1)
    session.on_time(1.0)
    session.on_time(1.1)
    cycles = session.feed(BLOCK_2)
    assert len(cycles) == 1
    addresses = {r.address for r in cycles[0]}
    assert addresses == {"50100", "50111", "50113"}
    assert session.step is Step.IDLE


def test_the_rack_is_polled_again_every_poll_period() -> None:
    session = associated(t=0.0)
    session.feed(BLOCK_2)
    session.on_time(0.3)
    session.on_time(0.4)
    assert session.take_outgoing() == ACK
    assert session.next_due() == pytest.approx(0.05 + 5.0)
    session.on_time(5.06)
    assert session.take_outgoing() == encode_frame("ComSystem", "MEM:GET")


def test_an_unanswered_request_is_counted_with_its_step_and_the_session_starts_again() -> None:
    session = BccSession(answer_timeout_s=5.0)
    session.open_session(0.0)
    session.take_outgoing()
    session.on_time(4.9)
    assert session.take_outgoing() == b""
    session.on_time(5.0)
    assert session.take_outgoing() == ALIVE
    assert [p.detail for p in session.take_problems()] == ["no answer to ADMIN:ALIVE in 5 s"]


def test_a_poll_that_stops_halfway_is_a_missing_answer_to_mem_get() -> None:
    session = associated(t=0.0)
    session.feed(BLOCK_1)
    session.on_time(1.0)
    session.on_time(6.1)
    assert session.counts["no_answer"] == 1
    assert "no answer to MEM:GET" in session.take_problems()[0].detail


def test_a_damaged_block_is_asked_again_with_nak_and_named_by_its_byte_offset() -> None:
    session = associated()
    damaged = bytearray(BLOCK_1)
    damaged[300] ^= 0x04
    assert session.feed(b"xx" + bytes(damaged)) == []
    assert session.take_outgoing() == NAK
    problems = {p.kind: p.detail for p in session.take_problems()}
    assert problems["garbage_bytes"] == "2 bytes outside any frame"
    assert problems["bad_checksum"].startswith(f"frame at byte {len(GNACK) + 2}: length field")


def test_a_stuffing_rack_is_read_the_same() -> None:
    plain, stuffed = associated(), associated()
    assert plain.feed(BLOCK_2) == stuffed.feed(stuff(BLOCK_2))


def test_bytes_in_any_split_give_the_same_cycle() -> None:
    whole, bytewise = associated(), associated()
    expected = whole.feed(BLOCK_1 + BLOCK_2)
    got = []
    for b in BLOCK_1 + BLOCK_2:
        got += bytewise.feed(bytes((b,)))
    assert got == expected and len(got) == 1
    assert bytewise.counts == whole.counts


def test_a_frame_cut_short_by_the_next_is_counted_and_the_next_read() -> None:
    session = associated()
    cycles = session.feed(BLOCK_1[:400] + BLOCK_2)
    assert session.counts["truncated"] == 1
    assert len(cycles) == 1


def test_polling_faster_than_the_rack_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="at most every 0.5 s"):
        BccSession(poll_s=0.2)


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_whatever_bytes_come_the_session_never_raises_and_counts_them(
    noise: bytes, cut: int
) -> None:
    session = associated()
    for k in range(0, len(noise), cut):
        session.feed(noise[k : k + cut])
        session.on_time(1.0)
    session.take_outgoing()
    assert all(n >= 0 for n in session.counts.values())


@given(st.integers(min_value=0, max_value=len(BLOCK_2) - 1), st.integers(0, 7))
def test_a_bit_flip_costs_only_the_block_it_hits(position: int, bit: int) -> None:
    session = associated()
    damaged = bytearray(BLOCK_2)
    damaged[position] ^= 1 << bit
    session.feed(bytes(damaged))
    assert session.feed(BLOCK_2) != []  # the block sent again after the NAK is read


def test_a_rack_answering_a_poll_this_session_never_sent_is_read_and_then_polled() -> None:
    """A capture replayed on its own timing, or a host restarted mid-answer: the rack's
    blocks are its pumps whoever asked, and the session goes on polling under its bed id."""
    session = BccSession(poll_s=5.0)
    session.open_session(0.0)
    session.take_outgoing()  # ADMIN:ALIVE, whose answer never comes
    assert session.feed(BLOCK_1) == []
    (cycle,) = session.feed(BLOCK_2)
    assert {r.address for r in cycle} == {"50100", "50111", "50113"}
    assert session.bed_id == "ComSystem" and session.step is Step.IDLE
    session.on_time(0.5)
    assert session.take_outgoing().endswith(encode_frame("ComSystem", "MEM:GET"))
    assert session.counts["unasked"] == 0 and session.counts["no_answer"] == 0


def test_a_rack_frame_while_idle_that_carries_no_pump_is_counted_as_unasked() -> None:
    session = associated()
    session.feed(BLOCK_1)
    session.feed(BLOCK_2)  # the cycle ends: the session waits for its next poll
    session.feed(GNACK)
    assert session.counts["unasked"] == 1


def test_an_answer_longer_than_the_poll_period_is_never_cut_off_by_the_next_poll() -> None:
    """24 pumps at 9600 baud take some 27 s to answer: the next poll waits for the last block."""
    session = associated(0.0)  # polled at 0.05, every 5 s
    t = 1.0
    for _ in range(12):  # a block a second, each acknowledged, well past the 5 s period
        assert session.feed(BLOCK_1) == []
        session.on_time(t)
        assert session.next_due() is not None and session.next_due() <= t + 5.0
        session.on_time(t + 0.2)
        assert session.take_outgoing() == ACK
        t += 1.0
    (cycle,) = session.feed(BLOCK_2)
    assert len(cycle) > 12
    session.on_time(t)
    assert session.take_outgoing().endswith(encode_frame("ComSystem", "MEM:GET"))  # at once
    assert session.counts["no_answer"] == 0
