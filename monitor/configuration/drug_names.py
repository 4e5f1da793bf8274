"""The hospital's drug-library names, ``[drug_names]``: what a pump's drug name means.

A B. Braun pump sends the name its drug library gives the syringe
("Noradrenalin 0.1 mg/ml", "Arterenol4mg/50"), not a code of ours. The
unit's configuration maps each such name to a drug of the drug table and,
where the library entry fixes it, to its concentration. The pump's own
concentration is what counts: one that disagrees with the stated one is a
conflict (that channel's dose is unknown until someone checks the syringe
or the library); a pump that states none (programmed in mL/h) is read at
the stated one, which the library entry is; a name this map does not know
falls back to the drug table's codes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from devices.infusion import CONCENTRATION_UNITS, DOSE_UNITS
from devices.readings import PumpReport
from monitor.configuration.config import Config, ConfigError, ConfigProblem
from monitor.configuration.drug_table import Drug, DrugTable

#: Pumps show three significant digits: closer than this is the same concentration.
SAME_CONCENTRATION = 0.01
FIELDS = {"drug", "concentration", "unit"}


@dataclass(frozen=True)
class NamedDrug:
    """A drug of the table, and the concentration the library entry fixes (or None)."""

    drug: Drug
    concentration: float | None = None
    unit: str | None = None

    def stated(self) -> str:
        return f"{self.concentration:g} {self.unit}"


@dataclass(frozen=True)
class Resolved:
    """A report's drug (None: not counted) and, if its dose cannot be trusted, why."""

    report: PumpReport
    drug: Drug | None
    conflict: str | None = None


def parse_drug_names(
    entries: Mapping[str, object], table: DrugTable
) -> tuple[dict[str, NamedDrug], list[tuple[str, str]]]:
    """The names that are valid, and (key, what is wrong) for each that is not."""
    names: dict[str, NamedDrug] = {}
    problems: list[tuple[str, str]] = []
    known = ", ".join(sorted(table.by_name))
    for name, entry in entries.items():
        key = f'drug_names."{name}"'
        if isinstance(entry, Mapping):
            fields = dict(entry)
        else:
            fields = {"drug": entry}
        unknown = fields.keys() - FIELDS
        if unknown:
            problems.append((key, f"unknown fields {sorted(unknown)}; allowed {sorted(FIELDS)}"))
            continue
        drug = table.by_name.get(str(fields.get("drug", "")).lower())
        if drug is None:
            problems.append(
                (key, f"drug {fields.get('drug')!r} is not in the drug table ({known})")
            )
            continue
        concentration, unit = fields.get("concentration"), fields.get("unit")
        if concentration is None and unit is None:
            names[name] = NamedDrug(drug)
            continue
        if not (
            isinstance(concentration, int | float)
            and math.isfinite(concentration)
            and concentration > 0
        ):
            problems.append((key, f"concentration must be a number above 0, got {concentration!r}"))
            continue
        if unit not in CONCENTRATION_UNITS:
            accepted = ", ".join(CONCENTRATION_UNITS)
            problems.append((key, f"unit must be one of {accepted}, got {unit!r}"))
            continue
        assert isinstance(unit, str)
        if CONCENTRATION_UNITS[unit][0] != DOSE_UNITS[drug.dose_unit][0]:
            problems.append((key, f"{drug.name} is dosed in {drug.dose_unit}, not from {unit}"))
            continue
        names[name] = NamedDrug(drug, float(concentration), unit)
    return names, problems


def drug_name_problems(config: Config, table: DrugTable) -> list[ConfigProblem]:
    """What is wrong with ``[drug_names]``, each entry named with the file that set it."""
    return _located(config, parse_drug_names(config.table("drug_names"), table)[1])


def configured_drug_names(config: Config, table: DrugTable) -> dict[str, NamedDrug]:
    """``[drug_names]`` as the monitor reads it; ConfigError names each entry that is wrong."""
    names, problems = parse_drug_names(config.table("drug_names"), table)
    if problems:
        raise ConfigError(_located(config, problems))
    return names


def _located(config: Config, problems: list[tuple[str, str]]) -> list[ConfigProblem]:
    where = config.source("drug_names")
    return [ConfigProblem(where, key, message) for key, message in problems]


def resolve(report: PumpReport, table: DrugTable, names: Mapping[str, NamedDrug]) -> Resolved:
    """What ``report``'s drug name means, with the concentration it is to be read at."""
    named = names.get(report.drug_code)
    if named is None:
        return Resolved(report, table.lookup(report.drug_code))
    if named.concentration is None or named.unit is None:
        return Resolved(report, named.drug)
    if report.concentration is None:
        stated = replace(report, concentration=named.concentration, concentration_unit=named.unit)
        return Resolved(stated, named.drug)
    reported = CONCENTRATION_UNITS.get(report.concentration_unit)
    if reported is None:
        return Resolved(report, named.drug)  # the dose arithmetic names the unit it cannot use
    expected = named.concentration * CONCENTRATION_UNITS[named.unit][1]
    actual = report.concentration * reported[1]
    if reported[0] != CONCENTRATION_UNITS[named.unit][0] or not math.isclose(
        actual, expected, rel_tol=SAME_CONCENTRATION
    ):
        return Resolved(
            report,
            named.drug,
            f"the pump reports {report.concentration:g} {report.concentration_unit}, "
            f"[drug_names] states {named.stated()} for {report.drug_code!r}",
        )
    return Resolved(report, named.drug)
