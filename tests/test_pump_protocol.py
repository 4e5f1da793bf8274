"""Specification of the pumps' NMEA-style sentences: framing, checksum, fields, sequence."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Sequence
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.infusion import CONCENTRATION_UNITS, DOSE_UNITS
from devices.protocols.pump import MAX_SENTENCE, PumpLineDecoder, encode_heartbeat, encode_report
from devices.readings import PumpHeartbeat, PumpReport, PumpSentence, PumpState

NORAD = PumpReport(
    pump_id="ICU3-B",
    channel=2,
    sequence=41,
    drug_code="NORAD",
    concentration=64.0,
    concentration_unit="ug/mL",
    rate_ml_h=5.0,
    state=PumpState.RUNNING,
)
# The fields of NORAD's sentence after the type, in order, as text.
FIELDS = ["ICU3-B", "2", "41", "NORAD", "64", "ug/mL", "5", "", "", "running"]


def sentence(body: str) -> bytes:
    """``$body*HH\\r\\n`` with HH computed here, so any content can be sent correctly framed."""
    checksum = reduce(lambda acc, ch: acc ^ ord(ch), body, 0)
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def report_sentence(**changes: str) -> bytes:
    names = [
        "pump",
        "channel",
        "seq",
        "drug",
        "conc",
        "conc_unit",
        "rate",
        "dose",
        "dose_unit",
        "state",
    ]
    fields = dict(zip(names, FIELDS, strict=True)) | changes
    return sentence("PMSTA," + ",".join(fields[n] for n in names))


def feed_in_pieces(decoder: PumpLineDecoder, data: bytes, cuts: Sequence[int] = ()) -> list:
    """Feed ``data`` split at ``cuts``, as successive serial reads would return it."""
    bounds = [0, *sorted(cuts), len(data)]
    return [s for a, b in zip(bounds, bounds[1:], strict=False) for s in decoder.feed(data[a:b])]


def decode(data: bytes) -> tuple[list[PumpSentence], PumpLineDecoder]:
    decoder = PumpLineDecoder()
    return decoder.feed(data), decoder


# --- round trips -----------------------------------------------------------------------------


def test_a_report_is_the_documented_sentence_on_the_wire() -> None:
    assert encode_report(NORAD) == sentence("PMSTA,ICU3-B,2,41,NORAD,64,ug/mL,5,,,running")


@pytest.mark.parametrize(
    "report",
    [
        NORAD,
        dataclasses.replace(NORAD, dose=0.0667, dose_unit="ug/kg/min"),
        PumpReport("P1", 16, 65535, "VASO", 0.2, "U/mL", 12.0, PumpState.BOLUS, 0.04, "U/min"),
        PumpReport("p_2", 1, 0, "DOBU", 5.0, "mg/mL", 0.0, PumpState.OCCLUDED),
        dataclasses.replace(NORAD, rate_ml_h=1200.0, state=PumpState.END_OF_INFUSION),
    ],
    ids=["no-dose", "with-dose", "units", "stopped", "max-rate"],
)
def test_a_report_round_trips(report: PumpReport) -> None:
    assert decode(encode_report(report))[0] == [report]


def test_a_heartbeat_round_trips() -> None:
    heartbeat = PumpHeartbeat("ICU3-B", 42)
    assert encode_heartbeat(heartbeat) == sentence("PMHBT,ICU3-B,42")
    assert decode(encode_heartbeat(heartbeat))[0] == [heartbeat]


# --- framing and checksum --------------------------------------------------------------------


def test_a_sentence_whose_checksum_does_not_match_is_rejected_and_counted() -> None:
    good = encode_report(NORAD)
    tampered = good.replace(b",5,", b",6,")  # 5 mL/h became 6 in transit
    sentences, decoder = decode(tampered + good)
    assert sentences == [NORAD]
    assert decoder.counts["bad_checksum"] == 1


def test_a_lowercase_hex_checksum_is_accepted() -> None:
    heartbeat = PumpHeartbeat("ICU3-B", 28)
    assert encode_heartbeat(heartbeat) == b"$PMHBT,ICU3-B,28*4A\r\n"
    assert decode(b"$PMHBT,ICU3-B,28*4a\r\n")[0] == [heartbeat]


def test_garbage_before_the_dollar_is_skipped_on_the_same_line() -> None:
    sentences, decoder = decode(b"\x00\xff*$P,noise" + encode_report(NORAD))
    assert sentences == [NORAD]
    assert decoder.counts["garbage_bytes"] == 11


@pytest.mark.parametrize("read_size", [1, 7, 64, 4096])
def test_a_sentence_after_a_long_run_of_noise_survives_any_read_size(read_size: int) -> None:
    stream = b"\x00" * 150 + encode_report(NORAD)  # one line, longer than MAX_SENTENCE
    decoder = PumpLineDecoder()
    sentences = feed_in_pieces(decoder, stream, range(read_size, len(stream), read_size))
    assert sentences == [NORAD]
    assert decoder.counts["garbage_bytes"] == 150


def test_a_line_without_a_dollar_is_garbage() -> None:
    sentences, decoder = decode(b"hello\r\n" + encode_report(NORAD))
    assert sentences == [NORAD]
    assert decoder.counts["garbage_bytes"] == 5


def test_a_sentence_cut_before_its_checksum_is_truncated() -> None:
    sentences, decoder = decode(b"$PMSTA,ICU3-B,2,41,NOR\r\n" + encode_report(NORAD))
    assert sentences == [NORAD]
    assert decoder.counts["truncated"] == 1


def test_an_unknown_sentence_type_is_counted() -> None:
    sentences, decoder = decode(sentence("PMXYZ,ICU3-B,41"))
    assert sentences == []
    assert decoder.counts["unknown_sentence"] == 1
    assert "PMXYZ" in decoder.take_problems()[0].detail


# --- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"rate": "-5"}, "rate"),
        ({"rate": "1200.1"}, "rate"),
        ({"rate": "nan"}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"conc": "0"}, "concentration"),
        ({"conc": "-64"}, "concentration"),
        ({"conc_unit": "ug per mL"}, "concentration unit"),
        ({"state": "stopped"}, "state"),
        ({"dose": "0.05"}, "dose"),
        ({"dose_unit": "ug/kg/min"}, "dose"),
        ({"dose": "-0.05", "dose_unit": "ug/kg/min"}, "dose"),
        ({"channel": "0"}, "channel"),
        ({"channel": "17"}, "channel"),
        ({"channel": "two"}, "channel"),
        ({"seq": "65536"}, "sequence"),
        ({"drug": ""}, "drug code"),
    ],
    ids=[
        "negative-rate",
        "rate-above-1200",
        "nan-rate",
        "text-rate",
        "zero-concentration",
        "negative-concentration",
        "bad-concentration-unit",
        "unknown-state",
        "dose-without-unit",
        "unit-without-dose",
        "negative-dose",
        "channel-0",
        "channel-17",
        "channel-text",
        "sequence-65536",
        "no-drug-code",
    ],
)
def test_an_impossible_field_is_rejected_naming_the_field_and_the_pump(
    changes: dict[str, str], field: str
) -> None:
    sentences, decoder = decode(report_sentence(**changes))
    assert sentences == []
    assert decoder.counts["invalid_field"] == 1
    [problem] = decoder.take_problems()
    assert problem.kind == "invalid_field"
    assert field in problem.detail and "'ICU3-B'" in problem.detail


@pytest.mark.parametrize("pump", ["ICU 3", "ICU3-B-LEFT-BAY-12", "ICU3;B"])
def test_a_bad_pump_id_is_rejected_naming_it(pump: str) -> None:
    for sent in (report_sentence(pump=pump), sentence(f"PMHBT,{pump},1")):
        sentences, decoder = decode(sent)
        assert sentences == []
        [problem] = decoder.take_problems()
        assert problem.kind == "invalid_field"
        assert "pump id" in problem.detail and pump[:16] in problem.detail


def test_a_sentence_with_a_field_missing_is_invalid() -> None:
    sentences, decoder = decode(sentence("PMSTA," + ",".join(FIELDS[:-1])))
    assert sentences == []
    assert decoder.counts["invalid_field"] == 1


# --- sequence --------------------------------------------------------------------------------


def _stream(*sent: tuple[str, int]) -> bytes:
    """Heartbeats from (pump, sequence) pairs, in order."""
    return b"".join(encode_heartbeat(PumpHeartbeat(pump, seq)) for pump, seq in sent)


def test_sequence_gaps_are_counted_per_pump_independently() -> None:
    stream = _stream(("A", 0), ("B", 10), ("A", 1), ("B", 11), ("A", 4), ("B", 12), ("B", 20))
    sentences, decoder = decode(stream)
    assert len(sentences) == 7
    assert decoder.counts["lost_sentences"] == 2 + 7
    assert decoder.counts["sequence_gap"] == 2
    details = [p.detail for p in decoder.take_problems()]
    assert details == ["pump A: 2 sentences lost before 4", "pump B: 7 sentences lost before 20"]


def test_reports_and_heartbeats_share_one_counter() -> None:
    stream = (
        encode_report(dataclasses.replace(NORAD, sequence=7))
        + encode_heartbeat(PumpHeartbeat(NORAD.pump_id, 8))
        + encode_report(dataclasses.replace(NORAD, sequence=9, channel=3))
    )
    sentences, decoder = decode(stream)
    assert len(sentences) == 3
    assert decoder.counts["lost_sentences"] == 0


def test_the_counter_wrapping_at_65536_is_not_a_gap() -> None:
    sentences, decoder = decode(_stream(("A", 65534), ("A", 65535), ("A", 0), ("A", 1)))
    assert len(sentences) == 4
    assert decoder.counts["lost_sentences"] == decoder.counts["sequence_gap"] == 0


def test_a_gap_across_the_wrap_counts_the_sentences_lost() -> None:
    _, decoder = decode(_stream(("A", 65534), ("A", 2)))
    assert decoder.counts["lost_sentences"] == 3


def test_a_counter_that_goes_back_is_a_restarted_pump_not_lost_sentences() -> None:
    _, decoder = decode(_stream(("A", 500), ("A", 0), ("A", 1)))
    assert decoder.counts["lost_sentences"] == 0


# --- bounded memory --------------------------------------------------------------------------


def test_an_over_long_line_without_a_line_end_is_dropped_not_buffered() -> None:
    decoder = PumpLineDecoder()
    tracemalloc.start()
    try:
        for _ in range(1024):
            decoder.feed(b"$PMSTA," + b"9" * 4089)  # 4 MiB that never ends a line
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert retained < 64 * 1024
    assert decoder.counts["garbage_bytes"] > 4 * 2**20 - 2 * MAX_SENTENCE
    assert decoder.feed(b"\r\n" + encode_report(NORAD)) == [NORAD]


# --- properties ------------------------------------------------------------------------------


def _with_sequences(drafts: list[PumpSentence]) -> list[PumpSentence]:
    """The drafts with each pump's sequence counting up from an arbitrary start."""
    next_seq: dict[str, int] = {}
    out = []
    for draft in drafts:
        seq = next_seq.get(draft.pump_id, 65530)
        out.append(dataclasses.replace(draft, sequence=seq))
        next_seq[draft.pump_id] = (seq + 1) % 65536
    return out


def _encode(s: PumpSentence) -> bytes:
    return encode_report(s) if isinstance(s, PumpReport) else encode_heartbeat(s)


PUMP_IDS = st.sampled_from(["A", "ICU3-B", "pump_16_chars_xx"])
DOSES = st.one_of(
    st.just((None, None)),
    st.tuples(st.integers(0, 100_000).map(lambda d: d / 1000), st.sampled_from(list(DOSE_UNITS))),
)
REPORTS = st.builds(
    lambda pump, channel, drug, conc, conc_unit, rate, state, dose: PumpReport(
        pump, channel, 0, drug, conc, conc_unit, rate, state, *dose
    ),
    PUMP_IDS,
    st.integers(1, 16),
    st.sampled_from(["NORAD", "VASO", "DOBU", "ADR"]),
    st.sampled_from([64.0, 0.2, 16.0, 1000.0, 0.08, 1e6]),
    st.sampled_from(list(CONCENTRATION_UNITS)),
    st.integers(0, 12_000).map(lambda r: r / 10),
    st.sampled_from(PumpState),
    DOSES,
)
SENTENCES = st.lists(
    st.one_of(REPORTS, st.builds(PumpHeartbeat, PUMP_IDS, st.just(0))), min_size=1, max_size=8
).map(_with_sequences)


def cuts_in(size: int) -> st.SearchStrategy[list[int]]:
    """Where serial reads end: every n bytes, as a busy port returns them, or anywhere."""
    return st.one_of(
        st.integers(1, 64).map(lambda n: list(range(n, size, n))),
        st.lists(st.integers(0, size), max_size=12),
    )


# Noise without a line end, so that it shares the next sentence's line.
NOISE = (
    st.integers(0, 300)
    .flatmap(lambda n: st.lists(st.sampled_from(list(b"x$*,9 \r\xff")), min_size=n, max_size=n))
    .map(bytes)
)


@settings(max_examples=150, deadline=None)
@given(
    sent=SENTENCES,
    garbage=st.lists(st.one_of(st.binary(max_size=300), NOISE), min_size=9, max_size=9),
    data=st.data(),
)
def test_garbage_between_sentences_loses_no_sentence(sent, garbage, data) -> None:
    stream = b"".join(g + _encode(s) for g, s in zip(garbage, sent, strict=False))
    stream += garbage[-1]
    decoder = PumpLineDecoder()
    assert feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream)))) == sent
    assert decoder.counts["lost_sentences"] == 0


PUMP_BYTES = st.lists(
    st.one_of(st.integers(0, 255), st.sampled_from(list(b"$*,\r\n0A9PMSTAHBT"))), max_size=1500
).map(bytes)


@settings(max_examples=200, deadline=None)
@given(stream=PUMP_BYTES, data=st.data())
def test_arbitrary_bytes_in_arbitrary_reads_never_raise(stream: bytes, data) -> None:
    decoder = PumpLineDecoder()
    sentences = feed_in_pieces(decoder, stream, data.draw(cuts_in(len(stream))))
    assert decoder.counts["frames"] == len(sentences)
    assert all(isinstance(s, PumpReport | PumpHeartbeat) for s in sentences)
