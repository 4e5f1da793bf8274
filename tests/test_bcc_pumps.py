"""Specification of the B. Braun Space adapter: a rack's answer read as the monitor's pump reports.

Two blocks are a peer's published bytes (tests/data/README.md); the
others are built with the framing those blocks verified.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.protocols.bcc_frames import encode_frame
from devices.protocols.bcc_pumps import NO_DRUG_NAME, BccPumpAdapter, pump_name
from devices.protocols.registry import UnknownProtocol, make_adapter
from devices.readings import PumpHeartbeat, PumpReport, PumpState

DATA = Path(__file__).parent / "data" / "bcc"
SWITCHED_OFF_PUMP = (DATA / "memget-block-comsystem.bin").read_bytes()  # rack + 1-1, ETB
ARTERENOL_PUMP = (DATA / "memget-block-arterenol.bin").read_bytes()  # 1-3 running, ETB
GNACK = encode_frame("ComSystem", "206,50100,GNACK,0")


def block(address: str, fields: dict[str, str], *, last: bool = True) -> bytes:
    records = [f"300,{address},{name},{value}" for name, value in fields.items()]
    return encode_frame("ComSystem", "\x1e".join(records), more_follow=not last)


def polled(t: float = 0.0, prefix: str = "") -> BccPumpAdapter:
    """An adapter that associated and has just asked MEM:GET."""
    adapter = BccPumpAdapter(pump_id_prefix=prefix)
    adapter.open_session(t)
    adapter.feed(GNACK)
    adapter.on_time(t + 0.05)
    adapter.take_outgoing()
    return adapter


def answer(adapter: BccPumpAdapter, *blocks: bytes) -> list:
    """The rack's blocks, each acknowledged as the reader would; what the adapter made."""
    out, t = [], 1.0
    for wire in blocks:
        out += adapter.feed(wire)
        adapter.on_time(t)
        adapter.on_time(t + 0.2)  # the ACK falls due 0.1 s after the block
        t += 0.5
    return out


RUNNING = {"INSOL": "Noradrenalin 0.1 mg/ml", "INRT": "4.5", "INDCON": "0.1", "INDCONU": "31"}


def test_the_published_answer_reads_as_a_switched_off_pump_and_a_running_one() -> None:
    sentences = answer(polled(), SWITCHED_OFF_PUMP, ARTERENOL_PUMP, block("50100", {"FMNOR": "1"}))
    assert sentences == [
        PumpHeartbeat("1-1", 0),
        PumpReport(
            pump_id="1-3",
            channel=1,
            sequence=0,
            drug_code="Arterenol4mg/50",
            concentration=None,  # programmed in mL/h: the pump sends 0, which is no concentration
            concentration_unit="ug/mL",
            rate_ml_h=0.30,
            state=PumpState.RUNNING,
        ),
    ]


def test_a_pump_with_a_concentration_reports_it_in_the_unit_its_code_names() -> None:
    (report,) = answer(polled(), block("50112", RUNNING))
    assert (report.pump_id, report.concentration, report.concentration_unit) == (
        "1-2",
        0.1,
        "mg/mL",
    )
    assert report.rate_ml_h == 4.5


def test_a_unit_code_the_dose_arithmetic_cannot_use_is_named_not_guessed() -> None:
    (report,) = answer(polled(), block("50112", {**RUNNING, "INDCONU": "34"}))  # mmol/ml
    assert report.concentration_unit == "BCC unit 34"


def test_each_poll_counts_on_a_pumps_sequence() -> None:
    adapter = polled()
    first = answer(adapter, block("50112", RUNNING))
    adapter.on_time(10.0)  # the next poll
    second = answer(adapter, block("50112", RUNNING))
    assert [s.sequence for s in first + second] == [0, 1]


@pytest.mark.parametrize(
    "fields, state",
    [
        ({"INM3": "1"}, PumpState.RUNNING),
        ({"INM3": "0"}, PumpState.PAUSED),
        ({"INM3": "1", "INM2": "1"}, PumpState.BOLUS),
        ({"INM3": "1", "INA3": "1"}, PumpState.OCCLUDED),
        ({"INM3": "0", "INA2": "1"}, PumpState.END_OF_INFUSION),
        ({"INM3": "0", "INA7": "1"}, PumpState.END_OF_INFUSION),
        ({"INM3": "0", "INA15": "1"}, PumpState.ALARM),  # air
        ({"INM3": "1", "INA11": "1"}, PumpState.RUNNING),  # a battery pre-alarm: still pumping
        ({"INM3": "1", "DSSTATUS": "00050"}, PumpState.PAUSED),  # switched off
        ({"RUNSTATE": "2", "INM3": "0"}, PumpState.RUNNING),  # BCC 3.3x's own bits come first
        ({"RUNSTATE": "1"}, PumpState.PAUSED),
        ({"RUNSTATE": "6", "INA3": "1"}, PumpState.OCCLUDED),
        ({"RUNSTATE": "4"}, PumpState.ALARM),
    ],
)
def test_the_pump_state_comes_from_its_run_and_alarm_fields(
    fields: dict[str, str], state: PumpState
) -> None:
    (report,) = answer(polled(), block("50112", {**RUNNING, **fields}))
    assert report.state is state


def test_a_pump_running_without_a_drug_name_is_reported_so_that_it_is_shown() -> None:
    (report,) = answer(polled(), block("50112", {"INSOL": "_NV", "INRT": "12", "INM3": "1"}))
    assert report.drug_code == NO_DRUG_NAME


def test_a_pump_whose_rate_cannot_be_read_is_left_out_and_the_reason_kept() -> None:
    adapter = polled()
    assert answer(adapter, block("50112", {**RUNNING, "INRT": "_NV"})) == []
    adapter.on_time(10.0)  # the next poll
    assert answer(adapter, block("50112", {**RUNNING, "INRT": "2500"})) == []
    problems = adapter.take_problems()
    assert [p.kind for p in problems] == ["bad_value", "bad_value"]
    assert "pump 1-2" in problems[0].detail and "left out" in problems[0].detail


def test_a_record_for_an_address_no_slot_has_is_counted() -> None:
    adapter = polled()
    assert answer(adapter, block("50172", RUNNING)) == []
    assert adapter.counts["bad_address"] == len(RUNNING)


@pytest.mark.parametrize(
    "address, name",
    [("50111", "1-1"), ("5011A", "1-A"), ("5013O", "3-O"), ("501110", "1-A"), ("501324", "3-O")],
)
def test_pumps_are_named_by_pillar_and_slot_in_both_address_forms(address: str, name: str) -> None:
    assert pump_name(address) == name


@pytest.mark.parametrize("address", ["50100", "50141", "5011P", "501125", "60111", "5011"])
def test_an_address_outside_the_rack_names_no_pump(address: str) -> None:
    assert pump_name(address) is None


def test_the_adapter_speaks_its_session_and_shares_its_counts() -> None:
    adapter = BccPumpAdapter()
    adapter.open_session(0.0)
    assert adapter.take_outgoing().endswith(b"ADMIN:ALIVE\x0300061\x04")
    adapter.on_time(6.0)  # no answer in 5 s
    assert adapter.counts["no_answer"] == 1
    assert "ADMIN:ALIVE" in adapter.take_problems()[0].detail


def test_the_registry_makes_it_for_pump_ports_only() -> None:
    assert isinstance(make_adapter("bcc", "pumps", 250.0), BccPumpAdapter)
    with pytest.raises(UnknownProtocol, match="bcc"):
        make_adapter("bcc", "transducer", 250.0)


def test_a_rack_beside_another_names_its_pumps_with_its_port_name() -> None:
    sentences = answer(polled(prefix="left:"), ARTERENOL_PUMP, block("50100", {"FMNOR": "1"}))
    assert [s.pump_id for s in sentences] == ["left:1-3"]
