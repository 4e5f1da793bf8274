"""Specification of the simulated pump: what it sends, when, and the same however chunked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.infusion import rate_from_dose
from devices.protocols.pump import SEQUENCE_MODULUS, PumpLineDecoder
from devices.readings import PumpHeartbeat, PumpReport, PumpState
from devices.simulation.pump_emulator import PumpEmulator
from devices.simulation.scenario import InfusionSpec, InfusionStep, PumpSpec
from devices.simulation.scenario_file import load_scenario

WEIGHT_KG = 80.0
NE_RATE = rate_from_dose(0.1, "ug/kg/min", 64.0, "ug/mL", WEIGHT_KG)  # 7.5 mL/h

NOREPINEPHRINE = InfusionSpec(
    pump_id="P1",
    channel=1,
    drug_code="NORAD",
    concentration=64.0,
    concentration_unit="ug/mL",
    dose_unit="ug/kg/min",
    steps=(
        InfusionStep(10.3, PumpState.RUNNING, NE_RATE, 0.1),
        InfusionStep(31.0, PumpState.PAUSED, NE_RATE, 0.1),
        InfusionStep(40.0, PumpState.RUNNING, 2 * NE_RATE, 0.2),
    ),
)
SALINE = InfusionSpec(
    pump_id="P1",
    channel=3,
    drug_code="NACL",
    concentration=9000.0,
    concentration_unit="ug/mL",
    dose_unit=None,
    steps=(InfusionStep(0.0, PumpState.RUNNING, 20.0, None),),
)
PUMP = PumpSpec("P1", heartbeat_s=2.0, silent=((50.0, 61.0),))


def decode(sentences: list[tuple[float, bytes]]) -> tuple[PumpLineDecoder, list]:
    decoder = PumpLineDecoder()
    decoded = decoder.feed(b"".join(data for _, data in sentences))
    return decoder, decoded


def timed(sentences: list[tuple[float, bytes]]) -> list[tuple[float, object]]:
    """Each sentence decoded on its own, with its time."""
    decoder = PumpLineDecoder()
    return [(t, *decoder.feed(data)) for t, data in sentences]


def emulator() -> PumpEmulator:
    return PumpEmulator(PUMP, [SALINE, NOREPINEPHRINE])


def test_channel_first_reports_at_its_first_step():
    decoded = timed(emulator().sentences_between(0.0, 20.0))
    ne = [(t, s) for t, s in decoded if isinstance(s, PumpReport) and s.channel == 1]
    assert ne[0][0] == 10.3
    assert [t for t, _ in ne] == [10.3, 12.0, 14.0, 16.0, 18.0]
    # Saline's first step is at 0, on the grid: one report, not two.
    assert [type(s).__name__ for t, s in decoded if t == 0.0] == ["PumpReport", "PumpHeartbeat"]


def test_heartbeat_cadence_is_the_grid_of_heartbeat_s():
    pump = PumpSpec("P7", heartbeat_s=1.5)
    sentences = PumpEmulator(pump, []).sentences_between(0.0, 30.0)
    assert [t for t, _ in sentences] == [k * 1.5 for k in range(20)]
    assert all(isinstance(s, PumpHeartbeat) for _, s in timed(sentences))


def test_every_grid_time_reports_all_started_channels_then_the_heartbeat():
    decoded = timed(emulator().sentences_between(20.0, 20.5))
    assert [(type(s).__name__, getattr(s, "channel", None)) for _, s in decoded] == [
        ("PumpReport", 1),
        ("PumpReport", 3),
        ("PumpHeartbeat", None),
    ]


def test_silent_period_sends_nothing_and_the_sequence_continues_without_a_gap():
    sentences = emulator().sentences_between(0.0, 80.0)
    assert not [t for t, _ in sentences if 50.0 <= t < 61.0]
    assert max(t for t, _ in sentences if t < 50.0) == 48.0
    assert min(t for t, _ in sentences if t >= 61.0) == 62.0
    decoder, decoded = decode(sentences)
    assert decoder.counts["sequence_gap"] == 0
    assert [s.sequence for s in decoded] == list(range(len(decoded)))


def test_step_taken_while_silent_is_first_reported_after_the_silence():
    pump = PumpSpec("P1", silent=((30.0, 45.0),))
    decoded = timed(PumpEmulator(pump, [NOREPINEPHRINE]).sentences_between(0.0, 50.0))
    reports = [(t, s) for t, s in decoded if isinstance(s, PumpReport)]
    after = [(t, s) for t, s in reports if t >= 30.0]
    assert after[0][0] == 46.0 and after[0][1].dose == 0.2  # the 31 s and 40 s steps, unseen


def test_paused_channel_reports_the_held_rate_and_dose():
    decoded = timed(emulator().sentences_between(31.0, 40.0))
    paused = [s for _, s in decoded if isinstance(s, PumpReport) and s.channel == 1]
    assert paused and all(s.state is PumpState.PAUSED for s in paused)
    assert all(s.rate_ml_h == pytest.approx(NE_RATE) and s.dose == 0.1 for s in paused)
    assert decoded[0][0] == 31.0  # the change is sent at once


def test_report_without_dose_unit_carries_no_dose():
    saline = [s for _, s in timed(emulator().sentences_between(0.0, 1.0))][0]
    assert saline.channel == 3 and saline.dose is None and saline.dose_unit is None
    assert saline.rate_ml_h == 20.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 200.0, allow_nan=False), max_size=12))
def test_any_split_of_an_interval_sends_the_same_sentences(cuts):
    whole = emulator().sentences_between(0.0, 200.0)
    bounds = [0.0, *sorted(cuts), 200.0]
    pieces = emulator()
    chunked = [
        s for a, b in zip(bounds, bounds[1:], strict=False) for s in pieces.sentences_between(a, b)
    ]
    assert chunked == whole


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-10.0, 150.0), st.floats(0.0, 60.0)), max_size=8))
def test_out_of_order_queries_are_deterministic(queries):
    reference = emulator().sentences_between(-10.0, 210.0)
    shared = emulator()
    for start, length in queries:
        expected = [s for s in reference if start <= s[0] < start + length]
        assert shared.sentences_between(start, start + length) == expected


def test_a_forward_player_forgets_what_it_has_sent():
    reference = emulator().sentences_between(0.0, 200.0)
    forward = emulator()
    played = []
    for start in range(0, 200, 10):
        played += forward.sentences_between(float(start), start + 10.0)
        forward.forget_before(start + 10.0)
        assert len(forward._times) == len(forward._wire) <= 3  # the window ahead, never the past
    assert played == reference
    with pytest.raises(ValueError, match="forgotten"):
        forward.sentences_between(150.0, 210.0)


def test_sequence_wraps_at_65536_without_a_gap():
    channels = [
        InfusionSpec(
            "P9",
            c,
            "NORAD",
            64.0,
            "ug/mL",
            None,
            (InfusionStep(0.0, PumpState.RUNNING, 1.0, None),),
        )
        for c in range(1, 17)
    ]
    pump = PumpEmulator(PumpSpec("P9", heartbeat_s=0.5), channels)
    sentences = pump.sentences_between(0.0, 2000.0)  # 17 per 0.5 s: 68000 sentences
    assert len(sentences) > SEQUENCE_MODULUS
    decoder, decoded = decode(sentences)
    assert decoder.counts["sequence_gap"] == 0 and decoder.counts["frames"] == len(sentences)
    assert decoded[SEQUENCE_MODULUS].sequence == 0


@pytest.mark.parametrize("name", ["septic-refractory", "pump-silent", "responsive-norepinephrine"])
def test_packaged_pumps_decode_cleanly_and_match_their_schedule(name):
    scenario = load_scenario(name)
    for pump in scenario.pumps:
        infusions = [i for i in scenario.infusions if i.pump_id == pump.pump_id]
        sentences = PumpEmulator(pump, infusions).sentences_between(0.0, scenario.duration_s)
        decoder, decoded = decode(sentences)
        assert decoder.counts["frames"] == len(sentences) == len(decoded)
        assert set(decoder.counts) == {"frames"}, decoder.take_problems()
        by_channel = {i.channel: i for i in infusions}
        for (t, _), sentence in zip(sentences, decoded, strict=True):
            if not isinstance(sentence, PumpReport):
                continue
            infusion = by_channel[sentence.channel]
            step = [s for s in infusion.steps if s.t_s <= t][-1]
            assert sentence.state is step.state
            assert sentence.drug_code == infusion.drug_code
            assert sentence.dose_unit == infusion.dose_unit
            assert sentence.dose == pytest.approx(step.dose, rel=1e-5)
            expected_rate = rate_from_dose(
                sentence.dose,
                sentence.dose_unit,
                sentence.concentration,
                sentence.concentration_unit,
                scenario.weight_kg,
            )
            assert sentence.rate_ml_h == pytest.approx(expected_rate, rel=1e-5)


def test_dose_programmed_step_decodes_to_the_scheduled_dose():
    scenario = load_scenario("septic-refractory")
    pump = PumpEmulator(scenario.pumps[0], scenario.infusions)
    decoded = timed(pump.sentences_between(5400.0, 5400.5))  # NE 0.30 from 01:30:00
    (report,) = [s for _, s in decoded if isinstance(s, PumpReport) and s.channel == 1]
    assert report.dose == 0.3 and report.dose_unit == "ug/kg/min"
    assert report.rate_ml_h == pytest.approx(rate_from_dose(0.3, "ug/kg/min", 64, "ug/mL", 80))


def test_pump_silent_scenario_is_silent_for_twenty_minutes():
    scenario = load_scenario("pump-silent")
    sentences = PumpEmulator(scenario.pumps[0], scenario.infusions).sentences_between(0, 3600)
    times = [t for t, _ in sentences]
    assert not [t for t in times if 1200.0 <= t < 2400.0]
    assert max(t for t in times if t < 1200.0) == 1198.0


def test_infusions_must_belong_to_the_pump_and_use_distinct_channels():
    with pytest.raises(ValueError, match="P2"):
        PumpEmulator(PumpSpec("P2"), [NOREPINEPHRINE])
    with pytest.raises(ValueError, match="channel 1"):
        PumpEmulator(PUMP, [NOREPINEPHRINE, NOREPINEPHRINE])


def test_empty_or_reversed_interval_sends_nothing():
    pump = emulator()
    assert pump.sentences_between(10.0, 10.0) == []
    assert pump.sentences_between(10.0, 5.0) == []
    with pytest.raises(ValueError):
        pump.sentences_between(0.0, float("inf"))


def test_the_emulator_speaks_v2_by_default():
    sent = emulator().sentences_between(0.0, 4.0)
    assert sent and all(data.startswith((b"$PMST2,", b"$PMHB2,")) for _, data in sent)
    decoder, decoded = decode(sent)
    assert len(decoded) == len(sent) and decoder.counts["frames"] == len(sent)


def test_an_emulator_asked_for_v1_sends_what_a_v1_port_reads_and_a_v2_port_refuses():
    sent = PumpEmulator(PUMP, [SALINE, NOREPINEPHRINE], protocol="v1").sentences_between(0.0, 4.0)
    assert all(data.startswith((b"$PMSTA,", b"$PMHBT,")) for _, data in sent)
    wire = b"".join(data for _, data in sent)
    assert PumpLineDecoder("v1").feed(wire) == decode(emulator().sentences_between(0.0, 4.0))[1]
    v2 = PumpLineDecoder("v2")
    assert v2.feed(wire) == []
    assert v2.counts["wrong_version"] == len(sent)


def test_an_emulator_refuses_an_unknown_protocol_version():
    with pytest.raises(ValueError, match="'v9'"):
        PumpEmulator(PUMP, [SALINE], protocol="v9")  # type: ignore[arg-type]
