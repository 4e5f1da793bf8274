"""Specification of the norepinephrine-equivalent dose (NEE): what counts, what is held, what not.

NEE (ug/kg/min) is the sum over pump channels of dose x the drug's factor
(Goradia 2021, clinical-facts.md section 1); the rules for paused, silent,
weightless and unknown channels are those of issue 4.
"""

from __future__ import annotations

import pytest

from devices.infusion import DOSE_UNITS
from devices.readings import PumpReport, PumpState
from monitor.clinical.nee import NEE_UNIT, ChannelDose, ChannelState, NeeReading, NeeTracker
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table

SETTINGS = ClinicalSettings.from_config(default_config())
HOLD_S = SETTINGS.paused_hold_s
TABLE = load_drug_table()
WEIGHT_KG = 80.0
STOPPED_STATES = [PumpState.PAUSED, PumpState.OCCLUDED, PumpState.ALARM, PumpState.END_OF_INFUSION]

#: For each dose unit, a pump setting that delivers a round dose to an 80 kg patient, plausible
#: for every drug dosed in it (config/drugs.toml's bounds):
#: (concentration, concentration unit, rate mL/h, dose in that unit).
ROUND_DOSE = {
    "ug/kg/min": (80.0, "ug/mL", 6.0, 0.1),  # 480 ug/h = 8 ug/min, / 80 kg
    "ng/kg/min": (8.0, "ug/mL", 6.0, 10.0),  # 48 ug/h = 800 ng/min, / 80 kg
    "ug/min": (10.0, "ug/mL", 6.0, 1.0),  # 60 ug/h
    "U/min": (0.4, "U/mL", 6.0, 0.04),  # 2.4 U/h
    "mg/h": (0.1, "mg/mL", 10.0, 1.0),  # terlipressin's usual range is below 0.5 mg/h
    "mg/kg/h": (8.0, "mg/mL", 10.0, 1.0),  # 80 mg/h, / 80 kg
}


def report(
    code: str,
    concentration: float,
    unit: str,
    rate_ml_h: float,
    state: PumpState = PumpState.RUNNING,
    pump: str = "P1",
    channel: int = 1,
) -> PumpReport:
    return PumpReport(pump, channel, 0, code, concentration, unit, rate_ml_h, state)


def tracker(weight_kg: float | None = WEIGHT_KG) -> NeeTracker:
    return NeeTracker(weight_kg, SETTINGS.paused_hold_s)


def feed(nee: NeeTracker, t_s: float, r: PumpReport) -> None:
    nee.observe(t_s, r, TABLE.lookup(r.drug_code))


def channel(reading: NeeReading, pump: str = "P1", number: int = 1) -> ChannelDose:
    (found,) = [c for c in reading.channels if (c.pump, c.channel) == (pump, number)]
    return found


# Norepinephrine 0.1 ug/kg/min on pump P1 channel 1, the workhorse of these tests.
def norepinephrine(state: PumpState = PumpState.RUNNING, rate_ml_h: float = 6.0) -> PumpReport:
    return report("NORAD", 80.0, "ug/mL", rate_ml_h, state)


# ------------------------------------------------------------ the clinically fixed numbers
def test_a_paused_channel_is_held_for_five_minutes_by_default() -> None:
    assert SETTINGS.paused_hold_s == 5 * 60.0


def test_the_table_holds_agents_that_are_shown_but_never_summed() -> None:
    unconverted = {d.name for d in TABLE.by_code.values() if d.nee_factor is None}
    assert {"terlipressin", "methylene blue", "hydrocortisone"} <= unconverted


def test_every_dose_unit_the_arithmetic_knows_has_a_round_dose_row() -> None:
    assert set(ROUND_DOSE) == set(DOSE_UNITS)


# ------------------------------------------------------ every drug, every unit, every code
@pytest.mark.parametrize("code", sorted(TABLE.by_code))
def test_every_drug_code_gives_its_dose_and_dose_times_factor(code: str) -> None:
    drug = TABLE.by_code[code]
    concentration, unit, rate, round_dose = ROUND_DOSE[drug.dose_unit]
    nee = tracker()
    nee.observe(0.0, report(code, concentration, unit, rate), drug)
    reading = nee.reading(0.0)
    ch = channel(reading)
    # A salt code's concentration is stated as the salt: only its base counts.
    assert ch.dose == pytest.approx(round_dose * drug.base_fraction, rel=1e-12)
    assert ch.dose_unit == drug.dose_unit
    assert ch.drug == drug.name
    assert ch.state is ChannelState.RUNNING
    if drug.nee_factor is None:
        assert (ch.counted, ch.nee) == (False, None)
        assert reading.value == 0.0
    else:
        assert ch.counted
        assert ch.nee == pytest.approx(ch.dose * drug.nee_factor, rel=1e-12)
        assert reading.value == pytest.approx(ch.nee, rel=1e-12)


@pytest.mark.parametrize(
    "name, concentration, unit, rate_ml_h, dose, expected_nee",
    [
        # clinical-facts.md section 1, worked examples (80 kg where per kg)
        ("vasopressin", 0.4, "U/mL", 4.5, 0.03, 0.075),  # 20 U / 50 mL
        ("vasopressin", 0.4, "U/mL", 6.0, 0.04, 0.10),
        ("angiotensin ii", 10_000.0, "ng/mL", 9.6, 20.0, 0.2),  # 10 ug/mL
        ("dopamine", 1.6, "mg/mL", 30.0, 10.0, 0.1),  # 400 mg / 250 mL
        ("phenylephrine", 100.0, "ug/mL", 48.0, 1.0, 0.1),
        # the reference agent, in each mass unit
        ("norepinephrine", 80_000.0, "ng/mL", 6.0, 0.1, 0.1),
        ("norepinephrine", 80.0, "ug/mL", 6.0, 0.1, 0.1),
        ("norepinephrine", 0.08, "mg/mL", 6.0, 0.1, 0.1),
        ("epinephrine", 80.0, "ug/mL", 6.0, 0.1, 0.1),
        ("metaraminol", 0.8, "mg/mL", 6.0, 1.0, 0.125),
    ],
)
def test_worked_examples_of_the_goradia_formula(
    name: str, concentration: float, unit: str, rate_ml_h: float, dose: float, expected_nee: float
) -> None:
    nee = tracker()
    nee.observe(0.0, report(name, concentration, unit, rate_ml_h), TABLE.lookup(name))
    reading = nee.reading(0.0)
    assert channel(reading).dose == pytest.approx(dose, rel=1e-12)
    assert reading.value == pytest.approx(expected_nee, rel=1e-12)


def test_a_salt_code_counts_the_base_share_of_its_mass() -> None:
    nee = tracker()
    feed(nee, 0.0, report("NORBIT", 80.0, "ug/mL", 6.0))  # 80 ug/mL of bitartrate monohydrate
    assert TABLE.lookup("NORBIT").base_fraction == 0.5016
    assert nee.reading(0.0).value == pytest.approx(0.1 * 0.5016, rel=1e-12)


@pytest.mark.parametrize("name", sorted(TABLE.by_name))
def test_a_drug_is_found_by_its_lowercase_international_name_as_by_its_code(name: str) -> None:
    by_name = TABLE.lookup(name)
    by_code = [d for d in TABLE.by_code.values() if d.name == name and d.salt_form is None]
    assert by_name is not None and by_code
    for drug in by_code:
        assert (by_name.name, by_name.dose_unit, by_name.nee_factor, by_name.base_fraction) == (
            drug.name,
            drug.dose_unit,
            drug.nee_factor,
            drug.base_fraction,
        )
        assert TABLE.lookup(drug.code.lower()) == drug


def test_a_channel_labelled_with_a_name_reads_like_one_labelled_with_a_code() -> None:
    by_code, by_name = tracker(), tracker()
    feed(by_code, 0.0, report("NORAD", 80.0, "ug/mL", 6.0))
    feed(by_name, 0.0, report("norepinephrine", 80.0, "ug/mL", 6.0))
    assert by_name.reading(0.0).value == by_code.reading(0.0).value == pytest.approx(0.1)


# ----------------------------------------------------------------- sum and explanation
def three_agents() -> NeeTracker:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())  # 0.1 ug/kg/min -> 0.1
    feed(nee, 0.0, report("VASO", 0.4, "U/mL", 6.0, channel=2))  # 0.04 U/min -> 0.1
    feed(nee, 0.0, report("ANGII", 8.0, "ug/mL", 6.0, pump="P2"))  # 10 ng/kg/min -> 0.1
    return nee


def test_nee_is_the_sum_over_channels_and_pumps() -> None:
    reading = three_agents().reading(0.0)
    assert reading.known
    assert reading.value == pytest.approx(0.3, rel=1e-12)
    assert reading.unknown_because == ()


def test_the_explanation_names_each_drug_with_its_dose_and_unit() -> None:
    text = three_agents().reading(0.0).explain()
    assert text == (
        f"0.30 {NEE_UNIT} (norepinephrine 0.1 + vasopressin 0.04 U/min"
        " + angiotensin ii 10 ng/kg/min)"
    )


def test_second_line_running_names_vasopressin_and_angiotensin_ii_not_norepinephrine() -> None:
    assert three_agents().reading(0.0).second_line_running == ("vasopressin", "angiotensin ii")


def test_an_agent_outside_the_table_is_shown_and_never_summed() -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 0.0, report("HYDROC", 1.0, "mg/mL", 10.0, channel=2))  # 10 mg/h
    reading = nee.reading(0.0)
    hydrocortisone = channel(reading, number=2)
    assert (hydrocortisone.counted, hydrocortisone.nee) == (False, None)
    assert hydrocortisone.dose == pytest.approx(10.0)
    assert reading.value == pytest.approx(0.1, rel=1e-12)
    assert "not summed: hydrocortisone 10 mg/h" in reading.explain()


def test_an_agent_outside_the_table_alone_is_not_a_vasopressor_running() -> None:
    nee = tracker()
    feed(nee, 0.0, report("TERLI", 1.0, "mg/mL", 10.0))
    reading = nee.reading(0.0)
    assert reading.value == 0.0
    assert not reading.vasopressor_running


# ------------------------------------------------------------ paused, occluded, emptied
@pytest.mark.parametrize("stop", STOPPED_STATES, ids=lambda s: s.value)
def test_a_stopped_channel_holds_its_last_dose_until_exactly_the_hold_time(
    stop: PumpState,
) -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 100.0, norepinephrine(stop, rate_ml_h=0.0))
    for t in (100.0, 100.0 + HOLD_S - 0.5):
        held = nee.reading(t)
        assert channel(held).state is ChannelState.HELD
        assert channel(held).dose == pytest.approx(0.1)
        assert held.value == pytest.approx(0.1)
        assert held.vasopressor_running
        assert "(held)" in held.explain()
    stopped = nee.reading(100.0 + HOLD_S)
    assert channel(stopped).state is ChannelState.STOPPED
    assert channel(stopped).dose == 0.0
    assert stopped.value == 0.0
    assert not stopped.vasopressor_running


@pytest.mark.parametrize("stop", STOPPED_STATES, ids=lambda s: s.value)
def test_the_hold_counts_from_the_stop_not_from_later_reports_of_it(stop: PumpState) -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 100.0, norepinephrine(stop))
    feed(nee, 102.0, norepinephrine(stop))  # the pump repeats its status every 2 s
    assert channel(nee.reading(100.0 + HOLD_S)).state is ChannelState.STOPPED


def test_a_running_report_during_the_hold_resumes_and_a_later_stop_starts_a_new_hold() -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 100.0, norepinephrine(PumpState.PAUSED))
    feed(nee, 200.0, norepinephrine(rate_ml_h=12.0))  # new syringe, dose doubled
    resumed = nee.reading(100.0 + HOLD_S)
    assert channel(resumed).state is ChannelState.RUNNING
    assert resumed.value == pytest.approx(0.2)
    feed(nee, 1000.0, norepinephrine(PumpState.OCCLUDED))
    assert nee.next_change_after(1000.0) == 1000.0 + HOLD_S
    assert nee.reading(1000.0 + HOLD_S - 0.5).value == pytest.approx(0.2)
    assert nee.reading(1000.0 + HOLD_S).value == 0.0


def test_next_change_after_announces_when_a_held_dose_runs_out() -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    assert nee.next_change_after(0.0) is None
    feed(nee, 100.0, norepinephrine(PumpState.PAUSED))
    assert nee.next_change_after(100.0) == 100.0 + HOLD_S
    assert nee.next_change_after(100.0 + HOLD_S - 0.5) == 100.0 + HOLD_S
    assert nee.next_change_after(100.0 + HOLD_S) is None


@pytest.mark.parametrize("stop", STOPPED_STATES, ids=lambda s: s.value)
def test_a_channel_first_heard_stopped_counts_zero(stop: PumpState) -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine(stop))
    reading = nee.reading(0.0)
    assert channel(reading).state is ChannelState.STOPPED
    assert channel(reading).dose == 0.0
    assert reading.value == 0.0
    assert not reading.vasopressor_running


@pytest.mark.parametrize("state", [PumpState.RUNNING, *STOPPED_STATES], ids=lambda s: s.value)
def test_a_new_drug_on_a_channel_holds_nothing_of_the_old_one(state: PumpState) -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 100.0, report("DOPA", 1.6, "mg/mL", 0.0, state))
    reading = nee.reading(100.0)
    ch = channel(reading)
    assert (ch.code, ch.drug) == ("DOPA", "dopamine")
    assert ch.dose == 0.0
    assert ch.state is not ChannelState.HELD
    assert reading.value == 0.0


# ---------------------------------------------------------------------- a silent pump
def test_a_silent_pump_makes_nee_unknown_naming_the_pump_never_zero() -> None:
    nee = three_agents()
    nee.pump_silent("P2")
    reading = nee.reading(50.0)
    assert channel(reading, "P2").state is ChannelState.SILENT
    assert channel(reading, "P2").dose is None
    assert channel(reading, "P1").state is ChannelState.RUNNING  # the other pump is heard
    assert reading.value is None
    assert not reading.known
    assert len(reading.unknown_because) == 1
    assert "P2" in reading.unknown_because[0]
    assert "unknown" in reading.explain()
    assert reading.vasopressor_running  # a lost pump may still be delivering


def test_a_pump_heard_again_restores_nee() -> None:
    nee = three_agents()
    nee.pump_silent("P2")
    nee.pump_heard("P2")
    reading = nee.reading(50.0)
    assert channel(reading, "P2").state is ChannelState.RUNNING
    assert reading.value == pytest.approx(0.3)


# ------------------------------------------------------------------- weight and units
def test_a_per_kg_drug_without_a_weight_makes_nee_unknown() -> None:
    nee = tracker(weight_kg=None)
    feed(nee, 0.0, norepinephrine())
    feed(nee, 0.0, report("VASO", 0.4, "U/mL", 6.0, channel=2))
    reading = nee.reading(0.0)
    assert channel(reading).state is ChannelState.WEIGHT_MISSING
    assert channel(reading).dose is None
    assert channel(reading, number=2).nee == pytest.approx(0.1)
    assert reading.value is None
    assert "weight" in reading.unknown_because[0]


def test_vasopressin_alone_needs_no_weight() -> None:
    nee = tracker(weight_kg=None)
    feed(nee, 0.0, report("VASO", 0.4, "U/mL", 6.0))
    assert nee.reading(0.0).value == pytest.approx(0.1)


def test_setting_the_weight_recomputes_every_dose() -> None:
    nee = tracker(weight_kg=None)
    feed(nee, 0.0, norepinephrine())
    nee.set_weight(WEIGHT_KG)
    assert nee.reading(0.0).value == pytest.approx(0.1)
    nee.set_weight(2 * WEIGHT_KG)
    assert nee.reading(0.0).value == pytest.approx(0.05)


@pytest.mark.parametrize(
    "code, unit",
    [
        ("NORAD", "mcg/mL"),  # a spelling, not a unit the arithmetic knows
        ("VASO", "U/h"),  # a rate, not a concentration
        ("NORAD", "U/mL"),  # units for a drug dosed by mass
        ("VASO", "ug/mL"),  # mass for a drug dosed in units
    ],
)
def test_a_concentration_unit_that_cannot_be_converted_makes_nee_unknown_naming_it(
    code: str, unit: str
) -> None:
    nee = tracker()
    feed(nee, 0.0, report(code, 1.0, unit, 6.0))
    reading = nee.reading(0.0)
    ch = channel(reading)
    assert ch.state is ChannelState.UNKNOWN_UNIT
    assert (ch.dose, ch.nee) == (None, None)
    assert unit in ch.detail
    assert reading.value is None
    assert unit in reading.unknown_because[0]


def test_an_unknown_drug_code_is_not_counted_and_the_others_stay_known() -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    assert TABLE.lookup("XYZZY") is None
    feed(nee, 0.0, report("XYZZY", 1.0, "mg/mL", 5.0, channel=2))
    reading = nee.reading(0.0)
    unknown = channel(reading, number=2)
    assert unknown.state is ChannelState.UNKNOWN_DRUG
    assert (unknown.counted, unknown.nee, unknown.drug) == (False, None, None)
    assert "XYZZY" in unknown.detail
    assert reading.value == pytest.approx(0.1)
    assert reading.unknown_because == ()


def test_until_every_configured_pump_port_has_reported_nee_is_unknown_not_zero() -> None:
    nee = tracker()
    nee.await_ports(["pump1", "pump2"])
    assert nee.reading(0.0).value is None
    assert nee.reading(0.0).unknown_because == ("pump1: no report yet", "pump2: no report yet")

    nee.port_heard("pump1")
    feed(nee, 1.0, norepinephrine())
    assert nee.reading(1.0).unknown_because == ("pump2: no report yet",)
    nee.port_heard("pump2")  # its channels may all be idle: then 0 is a known 0
    assert nee.reading(2.0).value == pytest.approx(channel(nee.reading(2.0)).nee)


# ------------------------------------------------- a reading between inputs is the same
def test_readings_taken_every_second_agree_with_a_tracker_asked_only_once() -> None:
    """Monitoring reads NEE at every beat and second; whatever it reuses between inputs,
    each reading is the one a tracker fed the same inputs and asked only then gives."""
    vasopressin = report("VASO", 0.4, "U/mL", 6.0, pump="P2")
    inputs = {
        0: lambda n: feed(n, 0.0, norepinephrine()),
        5: lambda n: feed(n, 5.0, vasopressin),
        60: lambda n: feed(n, 60.0, norepinephrine(PumpState.PAUSED)),
        61: lambda n: n.await_port("pump3"),
        90: lambda n: n.port_heard("pump3"),
        120: lambda n: n.set_weight(100.0),
        200: lambda n: n.pump_silent("P2"),
        230: lambda n: n.pump_heard("P2"),
        400: lambda n: n.forget_pump("P2"),  # the hold of P1 (paused at 60 s) ran out at 360 s
        500: lambda n: feed(n, 500.0, norepinephrine(rate_ml_h=12.0)),
    }
    watched = tracker()
    for t in range(600):
        if t in inputs:
            inputs[t](watched)
        once = tracker()
        for step in sorted(s for s in inputs if s <= t):
            inputs[step](once)
        assert watched.reading(float(t)) == once.reading(float(t)), f"at {t} s"
        assert watched.reading(float(t)).explain() == once.reading(float(t)).explain()


def test_a_changed_hold_time_is_read_at_once() -> None:
    nee = tracker()
    feed(nee, 0.0, norepinephrine())
    feed(nee, 10.0, norepinephrine(PumpState.PAUSED))
    assert channel(nee.reading(20.0)).state is ChannelState.HELD
    nee.paused_hold_s = 5.0
    assert channel(nee.reading(20.0)).state is ChannelState.STOPPED
