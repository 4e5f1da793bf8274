"""Specification of infusion arithmetic: rate (mL/h) <-> dose, in every unit the monitor knows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.infusion import (
    CONCENTRATION_UNITS,
    DOSE_UNITS,
    UnitError,
    dose_from_rate,
    rate_from_dose,
)

# 6 mL/h of 10 <amount>/mL is 1 <amount>/min; the patient weighs 50 kg.
RATE, CONCENTRATION, WEIGHT = 6.0, 10.0, 50.0
ONE_PER_MINUTE = [
    ("ng/mL", "ng/kg/min", 0.02),
    ("ng/mL", "ug/kg/min", 2e-5),
    ("ng/mL", "ug/min", 1e-3),
    ("ng/mL", "mg/h", 6e-5),
    ("ng/mL", "mg/kg/h", 1.2e-6),
    ("ug/mL", "ng/kg/min", 20.0),
    ("ug/mL", "ug/kg/min", 0.02),
    ("ug/mL", "ug/min", 1.0),
    ("ug/mL", "mg/h", 0.06),
    ("ug/mL", "mg/kg/h", 0.0012),
    ("mg/mL", "ng/kg/min", 20_000.0),
    ("mg/mL", "ug/kg/min", 20.0),
    ("mg/mL", "ug/min", 1000.0),
    ("mg/mL", "mg/h", 60.0),
    ("mg/mL", "mg/kg/h", 1.2),
    ("U/mL", "U/min", 1.0),
]
MASS_DOSES = [u for u, (kind, _, _) in DOSE_UNITS.items() if kind == "mass"]
MASS_CONCENTRATIONS = [u for u, (kind, _) in CONCENTRATION_UNITS.items() if kind == "mass"]
COMPATIBLE = [(c, d) for c, d, _ in ONE_PER_MINUTE]


def test_the_table_covers_every_known_unit() -> None:
    assert {c for c, _ in COMPATIBLE} == set(CONCENTRATION_UNITS)
    assert {d for _, d in COMPATIBLE} == set(DOSE_UNITS)
    assert len(COMPATIBLE) == len(MASS_CONCENTRATIONS) * len(MASS_DOSES) + 1


@pytest.mark.parametrize("concentration_unit, dose_unit, dose", ONE_PER_MINUTE)
def test_dose_from_rate_in_every_unit(concentration_unit: str, dose_unit: str, dose: float) -> None:
    got = dose_from_rate(RATE, CONCENTRATION, concentration_unit, dose_unit, WEIGHT)
    assert got == pytest.approx(dose, rel=1e-12)


@pytest.mark.parametrize("concentration_unit, dose_unit, dose", ONE_PER_MINUTE)
def test_rate_from_dose_in_every_unit(concentration_unit: str, dose_unit: str, dose: float) -> None:
    got = rate_from_dose(dose, dose_unit, CONCENTRATION, concentration_unit, WEIGHT)
    assert got == pytest.approx(RATE, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    units=st.sampled_from(COMPATIBLE),
    rate=st.floats(0.01, 1200.0),
    concentration=st.floats(1e-3, 1e6),
    weight=st.floats(0.5, 300.0),
)
def test_rate_from_dose_undoes_dose_from_rate(units, rate, concentration, weight) -> None:
    concentration_unit, dose_unit = units
    dose = dose_from_rate(rate, concentration, concentration_unit, dose_unit, weight)
    back = rate_from_dose(dose, dose_unit, concentration, concentration_unit, weight)
    assert back == pytest.approx(rate, rel=1e-12)


def test_norepinephrine_16_mg_in_250_ml_at_5_ml_h_for_80_kg() -> None:
    concentration = 16_000.0 / 250.0  # 64 ug/mL
    dose = dose_from_rate(5.0, concentration, "ug/mL", "ug/kg/min", 80.0)
    assert dose == pytest.approx(0.0667, abs=5e-5)
    assert dose == pytest.approx(5.0 * 64.0 / 60.0 / 80.0, rel=1e-12)
    assert rate_from_dose(0.1, "ug/kg/min", concentration, "ug/mL", 80.0) == pytest.approx(7.5)


def test_vasopressin_20_units_in_100_ml_at_12_ml_h() -> None:
    assert dose_from_rate(12.0, 20.0 / 100.0, "U/mL", "U/min") == pytest.approx(0.04, rel=1e-12)
    assert rate_from_dose(0.03, "U/min", 0.2, "U/mL") == pytest.approx(9.0, rel=1e-12)


def test_dobutamine_250_mg_in_50_ml_at_4_8_ml_h_for_80_kg() -> None:
    dose = dose_from_rate(4.8, 250.0 / 50.0, "mg/mL", "ug/kg/min", 80.0)
    assert dose == pytest.approx(5.0, rel=1e-12)


def test_propofol_10_mg_per_ml_at_20_ml_h_for_80_kg() -> None:
    assert dose_from_rate(20.0, 10.0, "mg/mL", "mg/kg/h", 80.0) == pytest.approx(2.5, rel=1e-12)
    assert dose_from_rate(20.0, 10.0, "mg/mL", "mg/h") == pytest.approx(200.0, rel=1e-12)


def test_a_dose_that_is_not_per_kilogram_ignores_the_weight() -> None:
    assert dose_from_rate(12.0, 0.2, "U/mL", "U/min", 80.0) == dose_from_rate(
        12.0, 0.2, "U/mL", "U/min"
    )


@pytest.mark.parametrize("unit", ["mcg/mL", "ug/ml", "ug", "mL", ""])
def test_an_unknown_concentration_unit_is_a_unit_error_that_names_it(unit: str) -> None:
    with pytest.raises(UnitError, match=f"concentration unit '{unit}'"):
        dose_from_rate(5.0, 64.0, unit, "ug/kg/min", 80.0)
    with pytest.raises(UnitError, match=f"concentration unit '{unit}'"):
        rate_from_dose(0.1, "ug/kg/min", 64.0, unit, 80.0)


@pytest.mark.parametrize("unit", ["mcg/kg/min", "ug/kg/h", "units/min", "ug/kg/MIN"])
def test_an_unknown_dose_unit_is_a_unit_error_that_names_it(unit: str) -> None:
    with pytest.raises(UnitError, match=f"dose unit '{unit}'"):
        dose_from_rate(5.0, 64.0, "ug/mL", unit, 80.0)
    with pytest.raises(UnitError, match=f"dose unit '{unit}'"):
        rate_from_dose(0.1, unit, 64.0, "ug/mL", 80.0)


@pytest.mark.parametrize(
    "concentration_unit, dose_unit",
    [("U/mL", d) for d in MASS_DOSES] + [(c, "U/min") for c in MASS_CONCENTRATIONS],
)
def test_units_and_mass_do_not_mix(concentration_unit: str, dose_unit: str) -> None:
    with pytest.raises(UnitError, match="cannot come from"):
        dose_from_rate(12.0, 0.2, concentration_unit, dose_unit, 80.0)
    with pytest.raises(UnitError, match="cannot come from"):
        rate_from_dose(0.04, dose_unit, 0.2, concentration_unit, 80.0)


@pytest.mark.parametrize("weight", [None, 0.0, -80.0, math.nan, math.inf])
@pytest.mark.parametrize("dose_unit", [d for d, (_, _, per_kg) in DOSE_UNITS.items() if per_kg])
def test_a_per_kilogram_dose_needs_a_real_weight(dose_unit: str, weight: float | None) -> None:
    for call in (
        lambda: dose_from_rate(5.0, 64.0, "ug/mL", dose_unit, weight),
        lambda: rate_from_dose(0.1, dose_unit, 64.0, "ug/mL", weight),
    ):
        with pytest.raises(ValueError, match="weight") as raised:
            call()
        assert not isinstance(raised.value, UnitError)


@pytest.mark.parametrize("concentration", [0.0, -64.0, math.nan])
def test_no_rate_delivers_a_dose_from_a_concentration_that_is_not_positive(
    concentration: float,
) -> None:
    with pytest.raises(ValueError, match="concentration"):
        rate_from_dose(0.1, "ug/kg/min", concentration, "ug/mL", 80.0)
