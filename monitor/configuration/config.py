"""The monitor's settings: packaged defaults, override files, and safe bounds for every value.

The defaults (``config/monitor.toml``) and the bounds (``config/bounds.toml``)
are data that biomedical staff review; only they set unit defaults, and
operators adjust within bounds (IEC 60601-1-8 on alarm presets). An override
file may set any subset of keys; each key takes its value from the first
file that sets it: ``--config FILE``, ``$MONITOR_CONFIG``,
``/etc/monitor/monitor.toml``, ``~/.config/monitor/monitor.toml``, then the
packaged defaults.

Loading is strict, like the drug table's: an unknown key, a wrong type or a
value out of bounds in any file refuses the whole configuration with every
problem listed at once. A setting that was given but is wrong never falls
back to its default, because a silently ignored alarm limit is worse than a
monitor that does not start.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple, cast

#: What a setting holds once checked: a number, text, a tuple of text, a table of
#: names, or a tuple of small tables (a TOML array of tables, ``[[ports.device]]``).
Fields = Mapping[str, str | float | int]
TableEntry = str | Fields
Value = float | int | str | tuple[str, ...] | Mapping[str, TableEntry] | tuple[Fields, ...]

PACKAGED = "packaged defaults"
DEFAULTS_FILE = "monitor.toml"
BOUNDS_FILE = "bounds.toml"
CONFIG_NAME = "monitor.toml"
ENV_VAR = "MONITOR_CONFIG"
#: The system-wide override directory. Read at call time, so tests can point it elsewhere.
ETC_DIR = Path("/etc/monitor")
TYPES = ("float", "int", "text", "choice", "text_list", "table", "table_list")
_BOUND_FIELDS = {"type", "min", "max", "unit", "choices", "free", "bedside"}


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with one setting, or with a whole file when ``key`` is empty."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.file}: {self.message}"
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(ValueError):
    """A configuration refused as a whole; ``problems`` lists every reason, across all files."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            text = f"configuration refused, {len(self.problems)} problems:\n" + "\n".join(
                str(problem) for problem in self.problems
            )
        super().__init__(text)


@dataclass(frozen=True)
class Bound:
    """What one setting may hold: its type, and its limits, its choices, or free text."""

    key: str
    type: str
    min: float | None = None
    max: float | None = None
    unit: str = ""
    choices: tuple[str | int, ...] | None = None
    bedside: bool = False  # may be adjusted at the bedside (within these bounds)

    def __str__(self) -> str:
        if self.choices is not None and len(self.choices) == 1:
            return f"only {self.choices[0]}"
        if self.choices is not None:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        if self.min is not None and self.max is not None:
            limits = f"{_number(self.min)}-{_number(self.max)}"
            return f"{limits} {self.unit}" if self.unit else limits
        if self.type == "table":
            return "a table of names"
        if self.type == "table_list":
            return "a list of tables"
        return "a list of text" if self.type == "text_list" else "any text"

    def parse(self, value: object) -> Value:
        """The value as the monitor uses it, or ValueError saying what is wrong with it.

        A float setting takes an integer (TOML's ``65`` for ``65.0``); an int
        setting refuses ``3.5``; a boolean is never a number.
        """
        if self.type in ("float", "int"):
            return self._parse_number(value)
        if self.type == "table":
            return _parse_table(value)
        if self.type == "table_list":
            return _parse_table_list(value)
        if self.type == "text_list":
            if not isinstance(value, list | tuple):
                raise ValueError(f"must be a list of text, got {_shown(value)}")
            for i, item in enumerate(value):
                if not (isinstance(item, str) and item):
                    raise ValueError(f"entry {i + 1} must be non-empty text, got {_shown(item)}")
            return tuple(value)
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {_shown(value)}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{json.dumps(value)} is not a choice")
        return value

    def _parse_number(self, value: object) -> float | int:
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"must be a whole number, got {_shown(value)}")
            number: float | int = value
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"must be a number, got {_shown(value)}")
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number, got {value}")
            number = float(value)
        if self.choices is not None and number not in self.choices:
            raise ValueError(f"{_number(number)} is not a choice")
        if self.min is not None and self.max is not None and not self.min <= number <= self.max:
            raise ValueError(f"{_number(number)} is out of bounds")
        return number


@dataclass(frozen=True)
class Setting:
    """One effective setting, where its value came from, and what it may hold."""

    key: str
    value: Value
    source: str
    allowed: Bound


@dataclass(frozen=True)
class ConfigFile:
    """One override file as read alone: the settings it gives, and what is wrong with it."""

    file: str
    values: Mapping[str, Value]
    problems: tuple[ConfigProblem, ...]


@dataclass(frozen=True)
class _Schema:
    bounds: Mapping[str, Bound]  # in the order of the defaults file
    defaults: Mapping[str, Value]
    sections: frozenset[str]  # every dotted prefix of a key: "alarms", "alarms.priority"


class Config(Mapping[str, Value]):
    """The effective settings, immutable: ``cfg["detector.map_target_mmhg"]`` -> 65.0.

    Every value has been checked against its bounds, and each remembers the
    file it came from, so a reading on the screen can always be traced back
    to the setting behind it.
    """

    __slots__ = ("_schema", "_values", "_sources", "_files")
    _schema: _Schema
    _values: Mapping[str, Value]
    _sources: Mapping[str, str]
    _files: tuple[str, ...]

    def __init__(
        self,
        schema: _Schema,
        values: Mapping[str, Value],
        sources: Mapping[str, str],
        files: Sequence[str],
    ) -> None:
        object.__setattr__(self, "_schema", schema)
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))
        object.__setattr__(self, "_sources", MappingProxyType(dict(sources)))
        object.__setattr__(self, "_files", tuple(files))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Config is immutable; with_overrides() returns a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Config is immutable")

    def __getitem__(self, key: str) -> Value:
        self._known(key)
        return self._values[key]

    def _known(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(f"no setting {key!r}{_suggestion(key, self._schema)}")

    # Typed reads: the bounds file fixes each setting's type, so code that asks
    # for the wrong one is a programming error, found by the first test to run it.
    def number(self, key: str) -> float:
        """A ``float`` or ``int`` setting, as a float."""
        value = self._typed(key, ("float", "int"))
        assert isinstance(value, int | float)
        return float(value)

    def integer(self, key: str) -> int:
        """An ``int`` setting."""
        value = self._typed(key, ("int",))
        assert isinstance(value, int)
        return value

    def text(self, key: str) -> str:
        """A ``text`` or ``choice`` setting."""
        value = self._typed(key, ("text", "choice"))
        assert isinstance(value, str)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A ``text_list`` setting."""
        value = self._typed(key, ("text_list",))
        assert isinstance(value, tuple)
        return cast(tuple[str, ...], value)

    def table(self, key: str) -> Mapping[str, TableEntry]:
        """A ``table`` setting: names, each with text or a small table of text and numbers."""
        value = self._typed(key, ("table",))
        assert isinstance(value, Mapping)
        return value

    def tables(self, key: str) -> tuple[Fields, ...]:
        """A ``table_list`` setting: small tables of text and numbers, in the file's order."""
        value = self._typed(key, ("table_list",))
        assert isinstance(value, tuple)
        return cast(tuple[Fields, ...], value)  # the bounds fix the items' type

    def _typed(self, key: str, types: tuple[str, ...]) -> Value:
        self._known(key)
        kind = self._schema.bounds[key].type
        if kind not in types:
            raise TypeError(f"setting {key!r} is a {kind}, not a {' or '.join(types)}")
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config(files={self._files!r})"

    @property
    def files(self) -> tuple[str, ...]:
        """The files read, highest precedence first; the packaged defaults come last."""
        return self._files

    def source(self, key: str) -> str:
        """Where a setting's value came from: a file path, or "packaged defaults"."""
        self._known(key)
        return self._sources[key]

    def allowed(self, key: str) -> Bound:
        """What a setting may hold; a bedside adjustment stays within it."""
        self._known(key)
        return self._schema.bounds[key]

    def section(self, name: str) -> dict[str, Value]:
        """The settings directly in one section, without its prefix: section("alarms.priority")."""
        if name not in self._schema.sections:
            raise KeyError(f"no section {name!r}{_suggestion(name, self._schema, section=True)}")
        prefix = name + "."
        return {
            key[len(prefix) :]: value
            for key, value in self._values.items()
            if key.startswith(prefix) and "." not in key[len(prefix) :]
        }

    def settings(self) -> Iterator[Setting]:
        """Every setting in the order of the defaults file, with its source and bounds."""
        for key, value in self._values.items():
            yield Setting(key, value, self._sources[key], self._schema.bounds[key])

    def with_overrides(self, overrides: Mapping[str, object], source: str) -> Config:
        """A new Config with some settings changed, checked like a file; ConfigError if not valid.

        ``overrides`` uses dotted keys ({"detector.map_target_mmhg": 60}) or
        nested tables as a TOML file would; ``source`` names who changed them.
        """
        values, problems = _checked_settings(source, overrides, self._schema)
        if problems:
            raise ConfigError(problems)
        sources = {**self._sources, **dict.fromkeys(values, source)}
        return Config(self._schema, {**self._values, **values}, sources, self._files)


class _Candidate(NamedTuple):
    """A file that may hold settings; ``origin`` says how it was named ("" for the usual places)."""

    path: Path
    origin: str
    required: bool  # named by the user: a missing file is an error

    @property
    def label(self) -> str:
        return f"{self.path} ({self.origin})" if self.origin else str(self.path)


def load_config(
    explicit: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    etc_dir: Path | None = None,
    user_dir: Path | None = None,
) -> Config:
    """The effective configuration: each key from the first file that sets it.

    Order: ``explicit`` (--config), ``$MONITOR_CONFIG``, ``etc_dir/monitor.toml``
    (default ``ETC_DIR``, /etc/monitor), ``user_dir/monitor.toml`` (default
    ``$XDG_CONFIG_HOME/monitor`` or ``~/.config/monitor``), packaged defaults.
    A file the user named must exist; the other two are optional. Every
    problem in every file is collected into one ConfigError.
    """
    env = os.environ if env is None else env
    schema = _packaged_schema()
    layers: list[tuple[str, dict[str, Value]]] = []
    problems: list[ConfigProblem] = []
    for candidate in _candidates(explicit, env, etc_dir, user_dir):
        try:
            raw = candidate.path.read_bytes()
        except FileNotFoundError:
            if candidate.required:
                problems.append(
                    ConfigProblem(str(candidate.path), "", f"no such file ({candidate.origin})")
                )
            continue
        except OSError as exc:
            problems.append(_unreadable(candidate.path, exc))
            continue
        values, found = _read_override(str(candidate.path), raw, schema)
        problems += found
        layers.append((candidate.label, values))
    if problems:
        raise ConfigError(problems)
    return _merged(schema, layers)


def default_config() -> Config:
    """The packaged defaults alone, with no search: for tests and analyses of recordings."""
    return _merged(_packaged_schema(), [])


def read_config_file(path: str | Path) -> ConfigFile:
    """One override file checked alone; ConfigError only if it cannot be read at all."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([_unreadable(path, exc)]) from None
    values, problems = _read_override(str(path), raw, _packaged_schema())
    return ConfigFile(str(path), MappingProxyType(values), tuple(problems))


def check_config_file(path: str | Path) -> list[ConfigProblem]:
    """Everything wrong with one file as an override of the packaged defaults (empty: valid).

    What ``monitor config check`` reports; a file that cannot be read at all
    raises ConfigError instead, since there is nothing to check.
    """
    return list(read_config_file(path).problems)


def _candidates(
    explicit: str | Path | None,
    env: Mapping[str, str],
    etc_dir: Path | None,
    user_dir: Path | None,
) -> list[_Candidate]:
    candidates = []
    if explicit is not None:
        candidates.append(_Candidate(Path(explicit), "--config", True))
    if env.get(ENV_VAR):
        candidates.append(_Candidate(Path(env[ENV_VAR]), f"via ${ENV_VAR}", True))
    candidates.append(
        _Candidate((ETC_DIR if etc_dir is None else etc_dir) / CONFIG_NAME, "", False)
    )
    user_dir = _user_dir(env) if user_dir is None else user_dir
    candidates.append(_Candidate(user_dir / CONFIG_NAME, "", False))
    seen: set[Path] = set()
    unique = []
    for candidate in candidates:  # a file named twice counts once, at its highest precedence
        resolved = candidate.path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(candidate)
    return unique


def _user_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/monitor``, or ``~/.config/monitor`` (XDG Base Directory spec)."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "monitor"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".config" / "monitor"


def _unreadable(path: str | Path, exc: OSError) -> ConfigProblem:
    return ConfigProblem(str(path), "", f"cannot read: {exc.strerror or exc}")


def _merged(schema: _Schema, layers: Sequence[tuple[str, Mapping[str, Value]]]) -> Config:
    """Defaults overlaid by each layer, lowest precedence first; ``layers`` is highest first."""
    values = dict(schema.defaults)
    sources = dict.fromkeys(values, PACKAGED)
    for label, layer in reversed(layers):
        values.update(layer)
        sources.update(dict.fromkeys(layer, label))
    return Config(schema, values, sources, [label for label, _ in layers] + [PACKAGED])


def _read_override(
    where: str, raw: bytes, schema: _Schema
) -> tuple[dict[str, Value], list[ConfigProblem]]:
    data, problem = _parse_toml(where, raw)
    if problem is not None:
        return {}, [problem]
    return _checked_settings(where, data, schema)


def _parse_toml(where: str, raw: bytes) -> tuple[dict, ConfigProblem | None]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line}"
        return {}, ConfigProblem(where, "", message)
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return {}, ConfigProblem(where, "", f"not valid TOML: {exc}")


def _checked_settings(
    where: str, data: Mapping[str, object], schema: _Schema
) -> tuple[dict[str, Value], list[ConfigProblem]]:
    """The settings a file (or mapping) gives, each checked against its bounds."""
    values: dict[str, Value] = {}
    problems: list[ConfigProblem] = []

    def walk(table: Mapping[str, object], prefix: str) -> None:
        for name, value in table.items():
            key = prefix + name
            bound = schema.bounds.get(key)
            if bound is not None:
                try:
                    values[key] = bound.parse(value)
                except ValueError as exc:
                    problems.append(ConfigProblem(where, key, f"{exc} (allowed {bound})"))
            elif key in schema.sections and isinstance(value, Mapping):
                walk(value, key + ".")
            elif key in schema.sections:
                problems.append(ConfigProblem(where, key, f"is a section: write [{key}]"))
            else:
                is_section = isinstance(value, Mapping)
                what = "unknown section" if is_section else "unknown setting"
                hint = _suggestion(key, schema, section=is_section)
                problems.append(ConfigProblem(where, key, what + hint))

    walk(data, "")
    return values, problems


def _suggestion(key: str, schema: _Schema, *, section: bool = False) -> str:
    """ " (did you mean ...?)" for a misspelt or misplaced key, or ""."""
    if section:
        close = difflib.get_close_matches(key, sorted(schema.sections), n=1)
    else:
        leaf = key.rsplit(".", 1)[-1]
        close = [known for known in schema.bounds if known.rsplit(".", 1)[-1] == leaf]
        close = close or difflib.get_close_matches(key, list(schema.bounds), n=1)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


@lru_cache(maxsize=1)
def _packaged_schema() -> _Schema:
    package = resources.files("monitor.defaults")
    return _build_schema(
        f"packaged {DEFAULTS_FILE}",
        (package / DEFAULTS_FILE).read_bytes(),
        f"packaged {BOUNDS_FILE}",
        (package / BOUNDS_FILE).read_bytes(),
    )


def _build_schema(
    defaults_where: str, defaults: bytes, bounds_where: str, bounds: bytes
) -> _Schema:
    """Bounds and defaults checked together: one bound per setting, every default within it."""
    bounds_data, problem = _parse_toml(bounds_where, bounds)
    defaults_data, problem2 = _parse_toml(defaults_where, defaults)
    problems = [p for p in (problem, problem2) if p is not None]
    if problems:
        raise ConfigError(problems)
    parsed: dict[str, Bound] = {}
    broken: set[str] = set()
    for key, entry in bounds_data.items():
        try:
            parsed[key] = _bound(key, entry)
        except ValueError as exc:
            problems.append(ConfigProblem(bounds_where, key, str(exc)))
            broken.add(key)
    tables = frozenset(key for key, bound in parsed.items() if bound.type == "table")
    given = dict(_leaves(defaults_data, "", tables))
    ordered: dict[str, Bound] = {}
    values: dict[str, Value] = {}
    for key, value in given.items():
        if key in broken:
            continue
        if key not in parsed:
            problems.append(ConfigProblem(defaults_where, key, f"has no entry in {BOUNDS_FILE}"))
            continue
        ordered[key] = bound = parsed[key]
        try:
            values[key] = bound.parse(value)
        except ValueError as exc:
            problems.append(ConfigProblem(defaults_where, key, f"{exc} (allowed {bound})"))
    for key in parsed.keys() - given.keys():
        problems.append(ConfigProblem(bounds_where, key, f"names no setting in {DEFAULTS_FILE}"))
    if problems:
        raise ConfigError(problems)
    return _Schema(MappingProxyType(ordered), MappingProxyType(values), frozenset(_prefixes(given)))


def _bound(key: str, entry: object) -> Bound:
    """One entry of the bounds file; ValueError says what is wrong with it."""
    if not isinstance(entry, dict):
        raise ValueError('must be a table such as { type = "float", min = 0, max = 1 }')
    unknown = entry.keys() - _BOUND_FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; allowed {sorted(_BOUND_FIELDS)}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}, got {_shown(kind)}")
    present = entry.keys() - {"type"}
    if kind in ("text", "text_list", "table", "table_list"):
        if entry.get("free") is not True or present != {"free"}:
            raise ValueError(f"a {kind} setting takes only free = true")
        return Bound(key, kind)
    if kind == "choice" or (kind == "int" and "choices" in entry):
        choices = entry.get("choices")
        item = str if kind == "choice" else int
        if present != {"choices"} or not (
            isinstance(choices, list)
            and choices
            and all(isinstance(c, item) and not isinstance(c, bool) for c in choices)
            and len(set(choices)) == len(choices)
        ):
            raise ValueError(f"a {kind} setting with choices takes only a list of distinct {kind}s")
        return Bound(key, kind, choices=tuple(choices))
    low, high, unit = entry.get("min"), entry.get("max"), entry.get("unit", "")
    bedside = entry.get("bedside", False)
    number = int if kind == "int" else int | float
    if not (
        present <= {"min", "max", "unit", "bedside"}
        and isinstance(bedside, bool)
        and isinstance(low, number)
        and isinstance(high, number)
        and not isinstance(low, bool)
        and not isinstance(high, bool)
        and math.isfinite(low)
        and math.isfinite(high)
        and low <= high
        and isinstance(unit, str)
    ):
        raise ValueError(
            f"a {kind} setting takes min <= max ({kind}s), an optional unit and bedside = true"
        )
    return Bound(key, kind, low, high, unit, bedside=bedside)


def _leaves(
    table: Mapping[str, object], prefix: str, whole: frozenset[str] = frozenset()
) -> Iterator[tuple[str, object]]:
    """Every setting of a nested table by dotted key; a key in ``whole`` is one setting."""
    for name, value in table.items():
        if isinstance(value, Mapping) and prefix + name not in whole:
            yield from _leaves(value, f"{prefix}{name}.", whole)
        else:
            yield prefix + name, value


def _prefixes(keys: Iterable[str]) -> Iterator[str]:
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            yield ".".join(parts[:i])


def _parse_table_list(value: object) -> tuple[Fields, ...]:
    """A list of small tables (``[[ports.device]]``); what their fields mean is for the
    setting's user to check."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of tables ([[...]]), got {_shown(value)}")
    entries = []
    for i, entry in enumerate(value, start=1):
        if not isinstance(entry, Mapping):
            raise ValueError(f"entry {i} must be a table, got {_shown(entry)}")
        entries.append(_fields(entry, f"entry {i}"))
    return tuple(entries)


def _fields(entry: Mapping[str, object], where: str) -> Fields:
    fields: dict[str, str | float | int] = {}
    for field, item in entry.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"{where}.{field} must be text or a number, got {_shown(item)}")
        fields[field] = item
    return MappingProxyType(fields)


def _parse_table(value: object) -> Mapping[str, TableEntry]:
    """A table of names, each naming text or a table of text and numbers (what it means is
    for the setting's user to check: the bounds file only knows the shape)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table, got {_shown(value)}")
    entries: dict[str, TableEntry] = {}
    for name, entry in value.items():
        if not name.strip():
            raise ValueError("a name must not be empty")
        if isinstance(entry, str):
            entries[name] = entry
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"{json.dumps(name)} must be text or a table, got {_shown(entry)}")
        entries[name] = _fields(entry, json.dumps(name))
    return MappingProxyType(entries)


def toml_literal(value: object) -> str:
    """A value spelt as in a TOML file (a table as an inline table), to paste into one."""
    if isinstance(value, Mapping):
        pairs = (f"{json.dumps(k)} = {toml_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _number(x: float | int) -> str:
    """65.0 -> "65", 0.25 -> "0.25": limits and values as a person writes them."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _shown(value: object) -> str:
    """A wrong value as the problem message names it: kind and TOML spelling."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"text {json.dumps(value)}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    if value is None:
        return "nothing"
    return f"a date/time ({value})" if hasattr(value, "isoformat") else type(value).__name__
