"""Infusion arithmetic, as a syringe pump's drug library does it: rate <-> dose.

dose = rate (mL/h) x concentration (per mL) / 60 (min/h), divided by the
patient's weight where the dose unit is per kilogram. Only the units the
monitor accepts are known here; anything else is a UnitError that names it,
because guessing a unit is how tenfold and thousandfold errors happen.
"""

from __future__ import annotations

import math

# Amount per mL, in a base amount of the same kind: mass in micrograms, units in U.
CONCENTRATION_UNITS: dict[str, tuple[str, float]] = {
    "ng/mL": ("mass", 1e-3),
    "ug/mL": ("mass", 1.0),
    "mg/mL": ("mass", 1e3),
    "U/mL": ("units", 1.0),
}
# Dose units: (amount kind, base amount per minute for one unit of dose, per kilogram?)
DOSE_UNITS: dict[str, tuple[str, float, bool]] = {
    "ng/kg/min": ("mass", 1e-3, True),
    "ug/kg/min": ("mass", 1.0, True),
    "ug/min": ("mass", 1.0, False),
    "mg/h": ("mass", 1e3 / 60.0, False),
    "mg/kg/h": ("mass", 1e3 / 60.0, True),
    "U/min": ("units", 1.0, False),
}


class UnitError(ValueError):
    """A unit that is not known, or a dose unit that does not fit the concentration's."""


def _units(concentration_unit: str, dose_unit: str) -> tuple[float, float, bool]:
    try:
        conc_kind, conc_scale = CONCENTRATION_UNITS[concentration_unit]
    except KeyError:
        known = ", ".join(CONCENTRATION_UNITS)
        raise UnitError(
            f"concentration unit {concentration_unit!r} is not one of {known}"
        ) from None
    try:
        dose_kind, dose_scale, per_kg = DOSE_UNITS[dose_unit]
    except KeyError:
        known = ", ".join(DOSE_UNITS)
        raise UnitError(f"dose unit {dose_unit!r} is not one of {known}") from None
    if conc_kind != dose_kind:
        raise UnitError(
            f"a dose in {dose_unit} cannot come from a concentration in {concentration_unit}"
        )
    return conc_scale, dose_scale, per_kg


def _weight(per_kg: bool, weight_kg: float | None, dose_unit: str) -> float:
    if not per_kg:
        return 1.0
    if weight_kg is None or not (math.isfinite(weight_kg) and weight_kg > 0.0):
        raise ValueError(f"a dose in {dose_unit} needs the patient's weight, got {weight_kg!r}")
    return weight_kg


def dose_from_rate(
    rate_ml_h: float,
    concentration: float,
    concentration_unit: str,
    dose_unit: str,
    weight_kg: float | None = None,
) -> float:
    """Dose in ``dose_unit`` delivered by ``rate_ml_h`` of the given concentration."""
    conc_scale, dose_scale, per_kg = _units(concentration_unit, dose_unit)
    weight = _weight(per_kg, weight_kg, dose_unit)
    return rate_ml_h * concentration * conc_scale / 60.0 / weight / dose_scale


def rate_from_dose(
    dose: float,
    dose_unit: str,
    concentration: float,
    concentration_unit: str,
    weight_kg: float | None = None,
) -> float:
    """Rate in mL/h that delivers ``dose`` (the inverse of :func:`dose_from_rate`)."""
    conc_scale, dose_scale, per_kg = _units(concentration_unit, dose_unit)
    weight = _weight(per_kg, weight_kg, dose_unit)
    if not concentration > 0.0:
        raise ValueError(f"concentration must be above zero, got {concentration!r}")
    return dose * dose_scale * weight * 60.0 / (concentration * conc_scale)
