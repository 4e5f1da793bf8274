"""Specification of the drug table's plausibility bounds: an impossible report is unknown, loudly.

A sentence can pass every field limit of the wire and still describe a dose
no patient is given (issue 16: 1,200 mL/h at 10^6 ug/mL read as NEE
250,000 ug/kg/min). Each drug in ``config/drugs.toml`` states the largest
plausible dose and concentration, with a source; a report above either
makes that channel's dose unknown (never dropped, never zero) and raises the
medium technical alarm ``implausible_dose`` naming the pump, the channel,
the drug and what was implausible, until the pump reports a plausible value.
``monitor analyze`` of the issue's case is in ``test_analyze.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.infusion import CONCENTRATION_UNITS, DOSE_UNITS
from devices.readings import PumpReport, PumpState
from monitor.clinical.alarm_types import Category, Priority
from monitor.clinical.engine import ClinicalEngine, TimelineEntry, alarm_specs
from monitor.clinical.map_window import MapEstimate
from monitor.clinical.nee import ChannelState, NeeTracker
from monitor.clinical.refractory import (
    EpisodeChange,
    Observation,
    RefractoryDetector,
    StateChange,
)
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import DrugTableError, load_drug_table

SETTINGS = ClinicalSettings.from_config(default_config())
TABLE = load_drug_table()
WEIGHT_KG = 80.0
FS = 125.0
NOREPINEPHRINE = TABLE.lookup("NORAD")
assert NOREPINEPHRINE is not None


def norad(rate_ml_h: float, concentration: float = 80.0, unit: str = "ug/mL", **kw) -> PumpReport:
    """Norepinephrine on pump P1 channel 1; 80 ug/mL at 6 mL/h is 0.1 ug/kg/min for 80 kg."""
    fields = dict(pump_id="P1", channel=1, sequence=0, drug_code="NORAD", state=PumpState.RUNNING)
    fields |= kw
    return PumpReport(
        fields["pump_id"], fields["channel"], fields["sequence"], fields["drug_code"],
        concentration, unit, rate_ml_h, fields["state"],
    )  # fmt: skip


#: The issue's report: the fastest rate a pump sends at the largest concentration the wire takes.
ISSUE_REPORT = norad(1200.0, 1.0e6)
#: 1 ug/kg/min of norepinephrine for 80 kg: a high dose that patients are given.
ONE_UG_KG_MIN = norad(60.0)


def tracker(weight_kg: float | None = WEIGHT_KG) -> NeeTracker:
    return NeeTracker(weight_kg, SETTINGS.paused_hold_s)


def feed(nee: NeeTracker, t_s: float, report: PumpReport) -> None:
    nee.observe(t_s, report, TABLE.lookup(report.drug_code))


# --------------------------------------------------------------------------- the table
def test_every_drug_in_the_table_has_a_plausible_maximum_dose_and_concentration() -> None:
    for drug in TABLE.by_code.values():
        assert drug.max_dose is not None and drug.max_dose > 0, drug.name
        assert drug.max_concentration is not None and drug.max_concentration > 0, drug.name
        conc_kind = CONCENTRATION_UNITS[drug.max_concentration_unit][0]
        assert conc_kind == DOSE_UNITS[drug.dose_unit][0], drug.name


@pytest.mark.parametrize(
    "name, dose_at_least",
    [
        # Far above what is given, so a real high dose is never made unknown: the bound
        # catches unit slips and corruption, it is not a clinical ceiling.
        ("norepinephrine", 5.0),  # > 1 ug/kg/min is described (Auchet 2017, Martin 2015)
        ("epinephrine", 5.0),
        ("vasopressin", 0.1),  # U/min: the label's post-cardiotomy maximum
        ("angiotensin ii", 80.0),  # ng/kg/min: the label's maximum in the first 3 h
        ("dopamine", 50.0),
        ("phenylephrine", 10.0),
    ],
)
def test_the_bounds_sit_above_the_highest_doses_given(name: str, dose_at_least: float) -> None:
    drug = TABLE.lookup(name)
    assert drug is not None and drug.max_dose is not None
    assert drug.max_dose >= dose_at_least


def _table(tmp_path: Path, **entry: object) -> Path:
    fields = {
        "name": '"norepinephrine"',
        "dose_unit": '"ug/kg/min"',
        "nee_factor": "1.0",
        "source": '"reference agent"',
        "codes": '["NORAD"]',
        "max_dose": "10.0",
        "max_concentration": "2.0",
        "max_concentration_unit": '"mg/mL"',
    } | {k: str(v) for k, v in entry.items()}
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v != "None")
    path = tmp_path / "drugs.toml"
    path.write_text(f'version = "t"\n\n[[drug]]\n{body}\n', encoding="utf-8")
    return path


def test_a_table_with_its_bounds_loads() -> None:
    assert NOREPINEPHRINE.max_dose == 10.0


@pytest.mark.parametrize(
    "entry, named",
    [
        ({"max_dose": None}, "max_dose"),
        ({"max_dose": "0"}, "max_dose"),
        ({"max_dose": "-1"}, "max_dose"),
        ({"max_dose": "nan"}, "max_dose"),
        ({"max_dose": "inf"}, "max_dose"),
        ({"max_dose": '"10"'}, "max_dose"),
        ({"max_concentration": None}, "max_concentration"),
        ({"max_concentration": "0"}, "max_concentration"),
        ({"max_concentration_unit": None}, "max_concentration_unit"),
        ({"max_concentration_unit": '"mcg/mL"'}, "max_concentration_unit"),
        ({"max_concentration_unit": '"U/mL"'}, "max_concentration_unit"),
    ],
    ids=[
        "no-max-dose", "zero-dose", "negative-dose", "nan-dose", "inf-dose", "text-dose",
        "no-max-concentration", "zero-concentration", "no-unit", "unknown-unit", "wrong-kind",
    ],
)  # fmt: skip
def test_a_missing_or_impossible_bound_is_refused_naming_the_file_the_entry_and_the_key(
    tmp_path: Path, entry: dict[str, object], named: str
) -> None:
    path = _table(tmp_path, **entry)
    with pytest.raises(DrugTableError) as raised:
        load_drug_table(path)
    message = str(raised.value)
    assert str(path) in message and "drug[0]" in message and "norepinephrine" in message
    assert named in message


# ----------------------------------------------------------------------- NEE, per channel
def test_the_issues_report_makes_nee_unknown_not_250000() -> None:
    nee = tracker()
    feed(nee, 0.0, ISSUE_REPORT)
    reading = nee.reading(1.0)
    assert reading.value is None
    [ch] = reading.channels
    assert ch.state is ChannelState.IMPLAUSIBLE
    assert ch.dose is None and ch.nee is None and ch.counted
    assert "250000" in ch.detail and "ug/kg/min" in ch.detail
    assert "1e+06 ug/mL" in ch.detail or "1000000 ug/mL" in ch.detail
    [why] = reading.unknown_because
    assert why.startswith("P1/1 norepinephrine:") and "implausible" in why


def test_an_implausible_channel_is_never_dropped_from_nee() -> None:
    """Two channels: dropping the implausible one would read NEE 0.1, too low."""
    nee = tracker()
    feed(nee, 0.0, norad(6.0))
    feed(nee, 0.0, norad(1200.0, 1.0e6, channel=2))
    reading = nee.reading(1.0)
    assert reading.value is None
    assert reading.vasopressor_running
    assert len(reading.channels) == 2


def test_a_plausible_high_dose_still_counts() -> None:
    nee = tracker()
    feed(nee, 0.0, ONE_UG_KG_MIN)
    reading = nee.reading(1.0)
    assert reading.value == pytest.approx(1.0)
    assert reading.channels[0].state is ChannelState.RUNNING


def test_a_dose_at_the_bound_counts_and_just_above_it_does_not() -> None:
    at_bound = NOREPINEPHRINE.max_dose * WEIGHT_KG * 60.0 / 80.0  # mL/h at 80 ug/mL
    nee = tracker()
    feed(nee, 0.0, norad(at_bound))
    assert nee.reading(1.0).value == pytest.approx(NOREPINEPHRINE.max_dose)
    feed(nee, 2.0, norad(at_bound * 1.001))
    assert nee.reading(3.0).value is None


def test_a_concentration_above_the_bound_is_implausible_even_at_a_plausible_dose() -> None:
    """5 mg/mL at 0.1 mL/h is only 0.1 ug/kg/min, but no vial holds 5 mg/mL norepinephrine:
    a unit slip (mg for ug), and the rate may be as wrong."""
    nee = tracker()
    feed(nee, 0.0, norad(0.1, 5.0, "mg/mL"))
    [ch] = nee.reading(1.0).channels
    assert ch.state is ChannelState.IMPLAUSIBLE
    assert "concentration 5 mg/mL" in ch.detail and "2 mg/mL" in ch.detail


def test_the_concentration_bound_is_on_the_base_so_the_salt_of_the_vial_counts() -> None:
    """The 2 mg/mL bitartrate concentrate is 1 mg/mL base: plausible."""
    nee = tracker()
    feed(nee, 0.0, norad(0.5, 2.0, "mg/mL", drug_code="NORBIT"))
    assert nee.reading(1.0).channels[0].state is ChannelState.RUNNING


def test_an_implausible_concentration_is_found_without_a_weight() -> None:
    nee = tracker(weight_kg=None)
    feed(nee, 0.0, ISSUE_REPORT)
    assert nee.reading(1.0).channels[0].state is ChannelState.IMPLAUSIBLE


def test_a_plausible_report_after_an_implausible_one_counts_again() -> None:
    nee = tracker()
    feed(nee, 0.0, ISSUE_REPORT)
    assert nee.reading(1.0).value is None
    feed(nee, 2.0, norad(6.0))
    assert nee.reading(3.0).value == pytest.approx(0.1)


def test_a_held_dose_from_an_implausible_report_stays_unknown_not_zero_or_held() -> None:
    nee = tracker()
    feed(nee, 0.0, ISSUE_REPORT)
    feed(nee, 10.0, norad(1200.0, 1.0e6, state=PumpState.PAUSED))
    assert nee.reading(20.0).channels[0].state is ChannelState.IMPLAUSIBLE
    assert nee.reading(20.0 + SETTINGS.paused_hold_s).value is None


def test_a_paused_report_with_an_impossible_concentration_is_not_trusted_for_the_held_dose() -> (
    None
):
    nee = tracker()
    feed(nee, 0.0, norad(6.0))
    feed(nee, 10.0, norad(6.0, 1.0e6, state=PumpState.PAUSED))
    assert nee.reading(20.0).channels[0].state is ChannelState.IMPLAUSIBLE


def test_a_bolus_is_checked_for_its_concentration_but_not_for_its_bolus_rate() -> None:
    """A bolus runs for seconds at the pump's bolus rate: 1,200 mL/h of 64 ug/mL is
    16 ug/kg/min per minute for 80 kg, a rate nobody prescribes and a bolus everybody gives."""
    nee = tracker()
    feed(nee, 0.0, norad(1200.0, 64.0, state=PumpState.BOLUS))
    assert nee.reading(1.0).channels[0].state is ChannelState.RUNNING
    feed(nee, 2.0, norad(1200.0, 1.0e6, state=PumpState.BOLUS))
    assert nee.reading(3.0).channels[0].state is ChannelState.IMPLAUSIBLE


def test_a_wrong_weight_that_makes_a_dose_implausible_is_found_when_the_weight_is_set() -> None:
    nee = tracker()
    feed(nee, 0.0, ONE_UG_KG_MIN)  # 1 ug/kg/min for 80 kg
    nee.set_weight(4.0)  # 80 kg typed as 4: the same rate reads 20 ug/kg/min
    assert nee.reading(1.0).channels[0].state is ChannelState.IMPLAUSIBLE
    nee.set_weight(80.0)
    assert nee.reading(2.0).value == pytest.approx(1.0)


def test_an_agent_outside_the_equivalence_table_is_checked_too_but_nee_stays_known() -> None:
    nee = tracker()
    feed(nee, 0.0, norad(6.0))
    feed(nee, 0.0, norad(600.0, 100.0, "mg/mL", drug_code="HYDROC", channel=2))  # 1 g/min
    reading = nee.reading(1.0)
    assert reading.value == pytest.approx(0.1)
    assert [c.state for c in reading.channels] == [ChannelState.RUNNING, ChannelState.IMPLAUSIBLE]


# ---------------------------------------------------- the detector: as for a silent pump
def _estimate(t_s: float, map_mmhg: float) -> MapEstimate:
    return MapEstimate(
        t_s, map_mmhg, map_mmhg + 35.0, map_mmhg - 15.0, 95.0, 1.0, 0.0, 95, 95, map_mmhg
    )


def _walk(make_unknown) -> list[tuple[float, str]]:
    """MAP 58 mmHg for 2 h on 0.3 ug/kg/min; from 50 min to 70 min the dose is unknown."""
    nee, detector = tracker(), RefractoryDetector(SETTINGS.detector)
    feed(nee, 0.0, norad(18.0))  # 0.3 ug/kg/min
    changes: list[StateChange | EpisodeChange] = []
    for t in range(0, 7200, 10):
        if t == 3000:
            make_unknown(nee, float(t))
        if t == 4200:
            nee.pump_heard("P1")
            feed(nee, float(t), norad(18.0))
        changes += detector.update(Observation(t, _estimate(t, 58.0), nee.reading(t), False))
    return [(c.t_s, c.state.value if isinstance(c, StateChange) else c.change) for c in changes]


def test_the_detector_treats_an_implausible_dose_exactly_as_a_silent_pump() -> None:
    silent = _walk(lambda nee, t: nee.pump_silent("P1"))
    implausible = _walk(lambda nee, t: feed(nee, t, ISSUE_REPORT))
    assert implausible == silent
    assert ("refractory" in {name for _, name in silent}) and len(silent) > 2


# ------------------------------------------------------------------ the alarm, in the engine
def test_the_alarm_table_gives_implausible_dose_medium_and_technical() -> None:
    spec = alarm_specs(SETTINGS)["implausible_dose"]
    assert (spec.priority, spec.category) == (Priority.MEDIUM, Category.TECHNICAL)


def raised(entries: list[TimelineEntry], name: str) -> list[TimelineEntry]:
    return [e for e in entries if e.kind == "raised" and e.name == name]


def test_an_implausible_report_raises_a_medium_technical_alarm_naming_pump_channel_and_drug():
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    engine.nee.await_ports([])
    entries = engine.pump(1.0, ISSUE_REPORT, NOREPINEPHRINE)
    [alarm] = raised(entries, "implausible_dose")
    assert alarm.priority == "medium" and alarm.alarm is not None
    assert alarm.alarm.category is Category.TECHNICAL
    assert "pump P1/1 norepinephrine" in alarm.message
    assert "dose 250000 ug/kg/min" in alarm.message and "NEE unknown" in alarm.message
    assert alarm.nee is None
    assert alarm.evidence["pumps"] == ["P1"]


def test_a_plausible_report_ends_the_alarm_and_nee_counts_the_channel_again():
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    entries = engine.pump(1.0, ISSUE_REPORT, NOREPINEPHRINE)
    entries += engine.pump(3.0, ONE_UG_KG_MIN, NOREPINEPHRINE)
    entries += engine.advance(5.0)
    ended = [e for e in entries if e.name == "implausible_dose" and e.kind == "cleared"]
    assert ended and ended[0].t_s == pytest.approx(3.0)
    assert engine.last_nee is not None and engine.last_nee.value == pytest.approx(1.0)
