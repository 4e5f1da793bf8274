"""Specification of ``[drug_names]``: drug-library names, and a concentration in doubt.

A B. Braun pump names its syringe as the drug library does; the unit's
configuration says which drug that is and, where the library fixes it, its
concentration. The pump's concentration is what counts: one that disagrees
is a technical alarm and that dose unknown; a pump that states none is read
at the configured one; with neither, the dose is unknown, never zero.
"""

from __future__ import annotations

import pytest

from devices.readings import PumpReport, PumpState
from monitor.clinical.engine import ClinicalEngine, TimelineEntry
from monitor.clinical.nee import ChannelState
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import ConfigError, default_config
from monitor.configuration.drug_names import (
    NamedDrug,
    configured_drug_names,
    parse_drug_names,
    resolve,
)
from monitor.configuration.drug_table import load_drug_table

TABLE = load_drug_table()
NOREPINEPHRINE = TABLE.by_name["norepinephrine"]
SETTINGS = ClinicalSettings.from_config(default_config())
WEIGHT_KG = 80.0
NAMES = {
    "Noradrenalin 0.1 mg/ml": NamedDrug(NOREPINEPHRINE, 0.1, "mg/mL"),
    "Arterenol4mg/50": NamedDrug(NOREPINEPHRINE, 80.0, "ug/mL"),
    "Noradrenalin": NamedDrug(NOREPINEPHRINE),
}


def pump(name: str, concentration: float | None, unit: str = "ug/mL", rate: float = 6.0):
    return PumpReport("1-3", 1, 0, name, concentration, unit, rate, PumpState.RUNNING)


def test_a_library_name_means_the_drug_it_is_mapped_to() -> None:
    resolved = resolve(pump("Noradrenalin", 80.0), TABLE, NAMES)
    assert resolved.drug is NOREPINEPHRINE and resolved.conflict is None


def test_the_same_concentration_in_another_unit_agrees() -> None:
    resolved = resolve(pump("Noradrenalin 0.1 mg/ml", 100.0, "ug/mL"), TABLE, NAMES)
    assert resolved.conflict is None and resolved.report.concentration == 100.0


def test_a_reported_concentration_that_disagrees_is_a_conflict_naming_both() -> None:
    resolved = resolve(pump("Noradrenalin 0.1 mg/ml", 0.2, "mg/mL"), TABLE, NAMES)
    assert resolved.drug is NOREPINEPHRINE
    assert resolved.conflict == (
        "the pump reports 0.2 mg/mL, [drug_names] states 0.1 mg/mL for 'Noradrenalin 0.1 mg/ml'"
    )


def test_a_pump_that_states_no_concentration_is_read_at_the_configured_one() -> None:
    resolved = resolve(pump("Arterenol4mg/50", None), TABLE, NAMES)
    assert (resolved.report.concentration, resolved.report.concentration_unit) == (80.0, "ug/mL")
    assert resolved.conflict is None


def test_a_name_the_map_does_not_know_falls_back_to_the_drug_tables_codes() -> None:
    by_code = resolve(pump("NORAD", 80.0), TABLE, NAMES).drug
    assert by_code is not None and by_code.name == "norepinephrine"
    assert resolve(pump("Beloc25mg/50", 500.0), TABLE, NAMES).drug is None


def test_the_configuration_reads_text_and_table_entries() -> None:
    config = default_config().with_overrides(
        {
            "drug_names": {
                "Noradrenalin": "Norepinephrine",
                "Arterenol4mg/50": {"drug": "norepinephrine", "concentration": 80, "unit": "ug/mL"},
            }
        },
        "unit file",
    )
    assert configured_drug_names(config, TABLE) == {
        "Noradrenalin": NamedDrug(NOREPINEPHRINE),
        "Arterenol4mg/50": NamedDrug(NOREPINEPHRINE, 80.0, "ug/mL"),
    }


def test_a_wrong_entry_is_refused_naming_its_file_and_key() -> None:
    config = default_config().with_overrides({"drug_names": {"Levo": "levophed"}}, "unit file")
    with pytest.raises(ConfigError, match=r'unit file: drug_names."Levo": drug \'levophed\''):
        configured_drug_names(config, TABLE)


@pytest.mark.parametrize("value", [["norepinephrine"], {"A": 1}, {"A": {"drug": True}}])
def test_a_value_that_is_no_table_of_names_is_refused_by_its_bounds(value: object) -> None:
    with pytest.raises(ConfigError, match="drug_names"):
        default_config().with_overrides({"drug_names": value}, "unit file")


def test_parse_keeps_the_valid_entries_beside_the_problems() -> None:
    names, problems = parse_drug_names({"Good": "norepinephrine", "Bad": "x"}, TABLE)
    assert list(names) == ["Good"] and [key for key, _ in problems] == ['drug_names."Bad"']


# ------------------------------------------------------------------ in the engine
def raised(entries: list[TimelineEntry], name: str) -> list[TimelineEntry]:
    return [e for e in entries if e.kind == "raised" and e.name == name]


def test_a_conflict_makes_nee_unknown_and_raises_concentration_mismatch() -> None:
    engine = ClinicalEngine(SETTINGS, 125.0, WEIGHT_KG)
    engine.nee.await_ports([])
    report = pump("Noradrenalin 0.1 mg/ml", 0.2, "mg/mL")
    resolved = resolve(report, TABLE, NAMES)
    entries = engine.pump(1.0, resolved.report, resolved.drug, resolved.conflict)
    [alarm] = raised(entries, "concentration_mismatch")
    assert alarm.priority == "medium" and "pump 1-3/1" in alarm.message
    assert "[drug_names] states 0.1 mg/mL" in alarm.message and "NEE unknown" in alarm.message
    assert engine.last_nee is not None and engine.last_nee.value is None
    [channel] = engine.last_nee.channels
    assert channel.state is ChannelState.CONCENTRATION_MISMATCH


def test_the_alarm_ends_when_the_pump_reports_the_configured_concentration() -> None:
    engine = ClinicalEngine(SETTINGS, 125.0, WEIGHT_KG)
    engine.nee.await_ports([])
    wrong = resolve(pump("Noradrenalin 0.1 mg/ml", 0.2, "mg/mL"), TABLE, NAMES)
    right = resolve(pump("Noradrenalin 0.1 mg/ml", 0.1, "mg/mL", rate=4.8), TABLE, NAMES)
    entries = engine.pump(1.0, wrong.report, wrong.drug, wrong.conflict)
    entries += engine.pump(3.0, right.report, right.drug, right.conflict)
    cleared = [e for e in entries if e.name == "concentration_mismatch" and e.kind == "cleared"]
    assert cleared and cleared[0].t_s == pytest.approx(3.0)
    assert engine.last_nee is not None and engine.last_nee.value == pytest.approx(0.1)


def test_a_pump_that_states_no_concentration_with_nothing_configured_makes_nee_unknown() -> None:
    engine = ClinicalEngine(SETTINGS, 125.0, WEIGHT_KG)
    engine.nee.await_ports([])
    entries = engine.pump(1.0, pump("NORAD", None), NOREPINEPHRINE)
    [alarm] = raised(entries, "concentration_unknown")
    assert "the pump states no concentration" in alarm.message
    assert engine.last_nee is not None and engine.last_nee.value is None


def test_a_stopped_pump_without_a_concentration_adds_nothing_and_raises_nothing() -> None:
    engine = ClinicalEngine(SETTINGS, 125.0, WEIGHT_KG)
    engine.nee.await_ports([])
    paused = PumpReport("1-3", 1, 0, "NORAD", None, "ug/mL", 0.0, PumpState.PAUSED)
    entries = engine.pump(1.0, paused, NOREPINEPHRINE)
    assert not raised(entries, "concentration_unknown")
    assert engine.last_nee is not None and engine.last_nee.value == 0.0
