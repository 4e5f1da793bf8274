"""The vasopressor table (``config/drugs.toml``): which drug a pump code means, and its NEE factor.

The table is data that biomedical staff review, so loading it is strict:
an unknown key, a duplicate code or a unit the infusion arithmetic does
not know is an error naming the file and the entry, never a guess. Each
drug also states the largest plausible dose and concentration: a pump
report beyond them is believed by nobody (docs/clinical-logic.md).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from devices.infusion import CONCENTRATION_UNITS, DOSE_UNITS

DEFAULT_TABLE = "drugs.toml"
_DRUG_KEYS = {"name", "dose_unit", "nee_factor", "source", "codes", "salt", "second_line"}
_PLAUSIBLE_KEYS = {"max_dose", "max_concentration", "max_concentration_unit"}
_SALT_KEYS = {"form", "codes", "base_fraction", "source"}
#: The largest factor in the equivalence table is vasopressin's 2.5 (per U/min, Goradia
#: 2021); one four times that is a slip of units or a typing error, not a drug.
MAX_NEE_FACTOR = 10.0


class DrugTableError(ValueError):
    """A drug table that cannot be trusted; the message names the file and the entry."""


@dataclass(frozen=True)
class Drug:
    """What a pump code means: the drug, its dose unit, and how its concentration is stated.

    ``nee_factor`` is None for agents outside the equivalence table (shown,
    never summed); ``base_fraction`` is 1 unless the code's concentration is
    stated as a salt. ``max_dose`` (in ``dose_unit``) and
    ``max_concentration`` (of the base, in ``max_concentration_unit``) are
    the plausibility bounds: far above what is given, below what a unit slip
    or a corrupted field produces.
    """

    name: str
    dose_unit: str
    nee_factor: float | None
    source: str
    code: str
    base_fraction: float = 1.0
    salt_form: str | None = None
    second_line: bool = False  # added when a first-line catecholamine is not enough
    max_dose: float | None = None
    max_concentration: float | None = None
    max_concentration_unit: str | None = None


@dataclass(frozen=True)
class DrugTable:
    version: str
    source: str
    by_code: dict[str, Drug]
    by_name: dict[str, Drug]

    def lookup(self, code: str) -> Drug | None:
        """The drug a pump code or an international name means (any case), or None.

        A name means the drug with its concentration stated as the base.
        """
        return self.by_code.get(code.upper()) or self.by_name.get(code.lower())


def load_drug_table(path: str | Path | None = None) -> DrugTable:
    """Load and check a drug table; the packaged one when ``path`` is None."""
    if path is None:
        resource = resources.files("monitor.defaults") / DEFAULT_TABLE
        where, text = f"packaged {DEFAULT_TABLE}", resource.read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DrugTableError(f"{where}: cannot read the drug table: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DrugTableError(f"{where}: not valid TOML: {exc}") from None
    return _build(where, data)


def _build(where: str, data: dict) -> DrugTable:
    unknown = set(data) - {"version", "drug"}
    if unknown:
        raise DrugTableError(f"{where}: unknown top-level keys {sorted(unknown)}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise DrugTableError(f"{where}: 'version' must be a non-empty string")
    entries = data.get("drug", [])
    if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
        raise DrugTableError(f"{where}: every drug must be a [[drug]] table")
    by_code: dict[str, Drug] = {}
    for i, entry in enumerate(entries):
        for drug in _entry_drugs(f"{where}: drug[{i}]", entry):
            if drug.code in by_code:
                raise DrugTableError(
                    f"{where}: drug[{i}] code {drug.code!r} is already used by "
                    f"{by_code[drug.code].name}"
                )
            by_code[drug.code] = drug
    if not by_code:
        raise DrugTableError(f"{where}: no drugs")
    by_name = {d.name: d for d in by_code.values() if d.salt_form is None}
    return DrugTable(version, where, by_code, by_name)


def _entry_drugs(where: str, entry: dict) -> list[Drug]:
    unknown = set(entry) - _DRUG_KEYS - _PLAUSIBLE_KEYS
    if unknown:
        raise DrugTableError(f"{where}: unknown keys {sorted(unknown)}")
    name, unit, source = entry.get("name"), entry.get("dose_unit"), entry.get("source")
    if not (isinstance(name, str) and name == name.lower() and name):
        raise DrugTableError(f"{where}: 'name' must be the lowercase international name")
    if unit not in DOSE_UNITS:
        raise DrugTableError(
            f"{where} ({name}): dose_unit {unit!r} is not one of {list(DOSE_UNITS)}"
        )
    if not (isinstance(source, str) and source):
        raise DrugTableError(f"{where} ({name}): every entry needs a 'source'")
    factor = entry.get("nee_factor")
    if factor is not None and (
        isinstance(factor, bool)
        or not (isinstance(factor, int | float) and 0 < factor <= MAX_NEE_FACTOR)
    ):
        raise DrugTableError(
            f"{where} ({name}): nee_factor must be a number above 0 and at most "
            f"{MAX_NEE_FACTOR:g} (got {factor!r})"
        )
    second_line = entry.get("second_line", False)
    if not isinstance(second_line, bool):
        raise DrugTableError(f"{where} ({name}): second_line must be true or false")
    bounds = _plausible(f"{where} ({name})", entry, unit)
    drugs = [
        Drug(
            name,
            unit,
            None if factor is None else float(factor),
            source,
            code,
            second_line=second_line,
            **bounds,
        )
        for code in _codes(where, entry)
    ]
    salts = entry.get("salt", [])
    if not (isinstance(salts, list) and all(isinstance(salt, dict) for salt in salts)):
        raise DrugTableError(f"{where} ({name}): every salt must be a [[drug.salt]] table")
    for j, salt in enumerate(salts):
        here = f"{where}.salt[{j}] ({name})"
        unknown = set(salt) - _SALT_KEYS
        if unknown:
            raise DrugTableError(f"{here}: unknown keys {sorted(unknown)}")
        fraction = salt.get("base_fraction")
        if not (isinstance(fraction, float) and 0.0 < fraction <= 1.0):
            raise DrugTableError(f"{here}: base_fraction must be a number in (0, 1]")
        if not salt.get("source") or not salt.get("form"):
            raise DrugTableError(f"{here}: a salt needs 'form' and 'source'")
        drugs += [
            Drug(
                name,
                unit,
                None if factor is None else float(factor),
                salt["source"],
                code,
                fraction,
                salt["form"],
                second_line,
                **bounds,
            )
            for code in _codes(here, salt)
        ]
    return drugs


def _plausible(where: str, entry: dict, dose_unit: str) -> dict:
    """The plausibility bounds every drug must state: a table without them believes anything."""
    values = {}
    for key, what in (
        ("max_dose", f"the largest plausible dose in {dose_unit}"),
        ("max_concentration", "the largest plausible concentration of the base"),
    ):
        value = entry.get(key)
        if isinstance(value, bool) or not (
            isinstance(value, int | float) and math.isfinite(value) and value > 0
        ):
            raise DrugTableError(
                f"{where}: {key} must be a positive number, {what} (got {value!r}); "
                "a report above it makes the dose unknown"
            )
        values[key] = float(value)
    unit = entry.get("max_concentration_unit")
    if unit not in CONCENTRATION_UNITS:
        raise DrugTableError(
            f"{where}: max_concentration_unit {unit!r} is not one of {list(CONCENTRATION_UNITS)}"
        )
    if CONCENTRATION_UNITS[unit][0] != DOSE_UNITS[dose_unit][0]:
        raise DrugTableError(
            f"{where}: max_concentration_unit {unit} cannot hold a drug dosed in {dose_unit}"
        )
    return values | {"max_concentration_unit": unit}


def _codes(where: str, entry: dict) -> list[str]:
    codes = entry.get("codes")
    if not (isinstance(codes, list) and codes and all(isinstance(c, str) and c for c in codes)):
        raise DrugTableError(f"{where}: 'codes' must be a non-empty list of pump codes")
    return [code.upper() for code in codes]
