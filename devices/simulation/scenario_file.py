"""Scenario files: a scenario read from TOML and validated into a :class:`Scenario`.

:func:`load_scenario` takes a packaged scenario by name (the files in
``devices/simulation/scenarios/``, package data found through
``importlib.resources``) or any ``.toml`` file by path; :func:`list_scenarios`
names the packaged ones. The format, every key, unit, default and range is
documented in ``docs/scenarios.md``; the model a file is read into is
:mod:`devices.simulation.scenario`.

Loading is strict on purpose: an unknown key is an error (a misspelt
``duraton`` must not silently fall back to a default), and every error
names the file, the key path (``infusion[2].steps[1].dose``, tables of an
array counted from 1 as they appear in the file) and what is allowed.
"""

from __future__ import annotations

import datetime
import inspect
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np

from devices.infusion import UnitError, dose_from_rate, rate_from_dose
from devices.protocols.pump import HEARTBEAT_S, MAX_CONCENTRATION, MAX_RATE_ML_H
from devices.protocols.transducer import MAX_SAMPLES_PER_FRAME
from devices.readings import PumpState
from devices.simulation import artifacts
from devices.simulation.abp_waveform import synthesize_abp
from devices.simulation.scenario import (
    ALARM_NAMES,
    ARTIFACT_KINDS,
    STATE_NAMES,
    WAVEFORM_ARTIFACTS,
    AlarmExpectation,
    ArtifactSpec,
    Expectations,
    InfusionSpec,
    InfusionStep,
    PhysiologySpec,
    PumpSpec,
    Scenario,
    ScenarioError,
    StateExpectation,
    Trajectory,
    TransducerSpec,
    apply_artifact,
)

DEFAULT_SPIKE_COUNT = 5
DEFAULT_GARBAGE_BYTES = 200
MAX_DURATION_S = 7 * 24 * 3600.0
# Physiological bounds of the trajectories (synthesize_abp draws beats up to 300 bpm).
HEART_RATE_BOUNDS = (20.0, 250.0)
MAP_BOUNDS = (0.0, 200.0)
PULSE_PRESSURE_BOUNDS = (0.0, 150.0)
WEIGHT_BOUNDS_KG = (0.3, 500.0)
# A transducer covers -50..300 mmHg (IEC 60601-2-34); its calibration must too.
TRANSDUCER_RANGE_MMHG = (-50.0, 300.0)
DOSE_CHECK_TOLERANCE = 0.01  # a step stating both dose and rate: they must agree to 1%

_SCENARIO_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_WIRE_NAME = re.compile(r"[A-Za-z0-9_-]{1,16}")  # pump ids and drug codes, as sentences carry them
_WIRE_UNIT = re.compile(r"[A-Za-z/]{1,12}")
_DIGITS = re.compile(r"\d+")
_SECONDS = re.compile(r"\d+(\.\d+)?")
_TRIAL_RECORD_S = 5.0  # artifact parameters are checked on a flat record this long
_MISSING: Any = object()  # a required key
_ABSENT: Any = object()  # an optional key left to the artifact function's default
# Keys some artifacts take besides their function's keywords: name, range, default.
_EXTRA_ARTIFACT_KEYS: dict[str, tuple[str, int, int, int]] = {
    "spikes": ("count", 1, 10_000, DEFAULT_SPIKE_COUNT),
    "garbage": ("bytes", 1, 1_000_000, DEFAULT_GARBAGE_BYTES),
}


def _scenario_folder() -> Any:
    return resources.files("devices.simulation") / "scenarios"


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``devices/simulation/scenarios/``, sorted."""
    folder = _scenario_folder()
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A packaged scenario by name (``"septic-refractory"``) or a ``.toml`` file by path."""
    text = os.fspath(name_or_path)
    is_path = (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(".toml")
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    )
    if is_path:
        path = Path(text)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScenarioError(text, "", f"cannot read the file: {exc.strerror}") from None
        return _parse(raw, file=text, source=text, packaged_name=None)
    names = list_scenarios()
    if text not in names:
        raise ScenarioError(
            f"builtin:{text}",
            "",
            f"no packaged scenario is called {text!r}; packaged: {', '.join(names) or 'none'} "
            "(or give the path of a .toml file)",
        )
    entry = _scenario_folder() / f"{text}.toml"
    return _parse(entry.read_bytes(), file=str(entry), source=f"builtin:{text}", packaged_name=text)


def _parse(raw: bytes, *, file: str, source: str, packaged_name: str | None) -> Scenario:
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(file, "", f"is not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, "", f"is not valid TOML: {exc}") from None
    return _Reader(file).scenario(document, source, packaged_name)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"


class _Table:
    """One TOML table: rejects unknown keys up front, reads the known ones by name."""

    def __init__(self, reader: _Reader, data: Any, path: str, allowed: Sequence[str]) -> None:
        if not isinstance(data, Mapping):
            reader.fail(path, f"must be a table, got {_kind(data)}")
        unknown = [key for key in data if key not in allowed]
        if unknown:
            reader.fail(
                self._join(path, unknown[0]),
                f"unknown key; allowed here: {', '.join(allowed)}",
            )
        self.reader, self.data, self.path = reader, data, path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def key(self, name: str) -> str:
        return self._join(self.path, name)

    def get(self, name: str, parse: Callable[[Any, str], Any], default: Any = _MISSING) -> Any:
        if name not in self.data:
            if default is _MISSING:
                self.reader.fail(self.key(name), "required key is missing")
            return default
        return parse(self.data[name], self.key(name))


class _Reader:
    """Parses one file's document; every error names the file and the key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.duration_s = math.inf

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ScenarioError(self.file, key, problem)

    # -- values -------------------------------------------------------------

    def number(
        self, value: Any, key: str, low: float, high: float, *, above: bool = False
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number, got {_kind(value)}")
        number = float(value)
        if not (
            math.isfinite(number) and (number > low if above else number >= low) and number <= high
        ):
            bound = f"above {low:g}" if above else f"from {low:g}"
            self.fail(key, f"{value!r} is out of range: allowed {bound} to {high:g}")
        return number

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {_kind(value)}")
        if not (low <= value <= high):
            self.fail(key, f"{value} is out of range: allowed {low} to {high}")
        return value

    def string(
        self, value: Any, key: str, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_kind(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value!r} is not {what}")
        return value

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            self.fail(key, f"{_kind(value)} is not one of: {', '.join(allowed)}")
        return value

    def seconds(self, value: Any, key: str) -> float:
        """A time: seconds, "HH:MM:SS" or "MM:SS" (seconds may have decimals) or a TOML time."""
        if isinstance(value, datetime.time):
            if value.tzinfo is not None:
                self.fail(key, "a time of day with a time zone is not a scenario time")
            return (
                value.hour * 3600.0 + value.minute * 60.0 + value.second + value.microsecond / 1e6
            )
        if isinstance(value, str):
            parts = value.split(":")
            if (
                len(parts) in (2, 3)
                and all(_DIGITS.fullmatch(p) for p in parts[:-1])
                and _SECONDS.fullmatch(parts[-1])
                and all(int(p) < 60 for p in parts[1:-1])
                and float(parts[-1]) < 60.0
            ):
                seconds = 0.0
                for part in parts:
                    seconds = seconds * 60.0 + float(part)
                return seconds
            self.fail(
                key,
                f'{value!r} is not a time: write "HH:MM:SS", "MM:SS" or a number '
                "of seconds (minutes and seconds below 60)",
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f'must be a time ("HH:MM:SS", "MM:SS" or seconds), got {_kind(value)}')
        if not (math.isfinite(value) and value >= 0.0):
            self.fail(key, f"{value!r} is not a time: seconds must be 0 or more")
        return float(value)

    def instant(self, value: Any, key: str) -> float:
        """A time inside the scenario, [0, duration]."""
        t = self.seconds(value, key)
        if t > self.duration_s:
            self.fail(key, f"{t:g} s is after the end of the scenario ({self.duration_s:g} s)")
        return t

    def window(self, value: Any, key: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(key, f"must be a pair [start, end] of times, got {_kind(value)}")
        start, end = self.instant(value[0], f"{key}[1]"), self.instant(value[1], f"{key}[2]")
        if end < start:
            self.fail(key, f"ends ({end:g} s) before it starts ({start:g} s)")
        return start, end

    def trajectory(self, value: Any, key: str, bounds: tuple[float, float]) -> Trajectory:
        """A constant, or [time, value] knots sorted by time (two at one time make a step)."""
        low, high = bounds
        if not isinstance(value, list):
            return ((0.0, self.number(value, key, low, high)),)
        if not value:
            self.fail(key, "needs at least one [time, value] knot")
        knots: list[tuple[float, float]] = []
        for i, knot in enumerate(value, 1):
            at = f"{key}[{i}]"
            if not isinstance(knot, list) or len(knot) != 2:
                self.fail(at, f"must be a knot [time, value], got {_kind(knot)}")
            t = self.instant(knot[0], f"{at}[1]")
            v = self.number(knot[1], f"{at}[2]", low, high)
            if knots and t < knots[-1][0]:
                self.fail(
                    at,
                    f"knots must be sorted by time: {t:g} s is before the previous knot "
                    f"({knots[-1][0]:g} s)",
                )
            if len(knots) >= 2 and t == knots[-1][0] == knots[-2][0]:
                self.fail(
                    at, f"three knots at {t:g} s; two at one time make a step, three mean nothing"
                )
            knots.append((t, v))
        return tuple(knots)

    def tables(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.fail(
                key,
                f"must be an array of tables ([[{key}]] or a list of {{...}}), got {_kind(value)}",
            )
        return value

    def names(self, value: Any, key: str, vocabulary: Sequence[str]) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(key, f"must be a list of names, got {_kind(value)}")
        return tuple(self.choice(v, f"{key}[{i}]", vocabulary) for i, v in enumerate(value, 1))

    # -- sections -------------------------------------------------------------

    def scenario(
        self, document: Mapping[str, Any], source: str, packaged_name: str | None
    ) -> Scenario:
        top = _Table(
            self,
            document,
            "",
            ("scenario", "transducer", "physiology", "artifact", "pump", "infusion", "expect"),
        )
        head = _Table(
            self,
            top.get("scenario", lambda v, k: v),
            "scenario",
            ("name", "title", "description", "duration", "seed", "weight_kg"),
        )
        name = head.get(
            "name",
            lambda v, k: self.string(
                v, k, _SCENARIO_NAME, "a name of lowercase letters, digits and '-'"
            ),
        )
        if packaged_name is not None and name != packaged_name:
            self.fail("scenario.name", f"{name!r} must equal the file's name, {packaged_name!r}")
        title = head.get("title", self.string)
        description = head.get("description", self.string, "")
        self.duration_s = head.get("duration", self.seconds)
        if not 0.0 < self.duration_s <= MAX_DURATION_S:
            self.fail("scenario.duration", f"must be above 0 and at most {MAX_DURATION_S:g} s")
        seed = head.get("seed", lambda v, k: self.integer(v, k, 0, 2**63 - 1), 0)
        weight = head.get("weight_kg", lambda v, k: self.number(v, k, *WEIGHT_BOUNDS_KG), None)

        transducer = self.transducer(top.get("transducer", lambda v, k: v))
        physiology = self.physiology(top.get("physiology", lambda v, k: v))
        pumps = tuple(
            self.pump(t, f"pump[{i}]") for i, t in enumerate(top.get("pump", self.tables, []), 1)
        )
        ids = [p.pump_id for p in pumps]
        for i, pump_id in enumerate(ids, 1):
            if pump_id in ids[: i - 1]:
                self.fail(f"pump[{i}].id", f"pump {pump_id!r} is declared twice")
        infusions: list[InfusionSpec] = []
        for i, t in enumerate(top.get("infusion", self.tables, []), 1):
            infusion = self.infusion(t, f"infusion[{i}]", ids, weight)
            for j, other in enumerate(infusions, 1):
                if (other.pump_id, other.channel) == (infusion.pump_id, infusion.channel):
                    self.fail(
                        f"infusion[{i}].channel",
                        f"pump {infusion.pump_id} channel "
                        f"{infusion.channel} already carries infusion[{j}]",
                    )
            infusions.append(infusion)
        found = tuple(
            self.artifact(t, f"artifact[{i}]", transducer)
            for i, t in enumerate(top.get("artifact", self.tables, []), 1)
        )
        expect = self.expectations(top.get("expect", lambda v, k: v, {}))
        return Scenario(
            name=name,
            title=title,
            description=description,
            duration_s=self.duration_s,
            seed=seed,
            weight_kg=weight,
            transducer=transducer,
            physiology=physiology,
            artifacts=found,
            pumps=pumps,
            infusions=tuple(infusions),
            expect=expect,
            source=source,
        )

    def transducer(self, data: Any) -> TransducerSpec:
        t = _Table(
            self,
            data,
            "transducer",
            ("sample_rate_hz", "frame_samples", "protocol", "zero_counts", "nano_mmhg_per_count"),
        )
        fs = t.get("sample_rate_hz", lambda v, k: self.integer(v, k, 100, 1000))
        frame = t.get(
            "frame_samples",
            lambda v, k: self.integer(v, k, 1, MAX_SAMPLES_PER_FRAME),
            max(1, round(fs / 40)),
        )
        protocol = t.get("protocol", lambda v, k: self.choice(v, k, ("binary", "ascii")), "binary")
        if protocol == "ascii":
            for key in ("zero_counts", "nano_mmhg_per_count"):
                if key in t.data:
                    self.fail(
                        t.key(key), "the ascii protocol sends mmHg; calibration is binary only"
                    )
        zero = t.get("zero_counts", lambda v, k: self.integer(v, k, -32768, 32767), 0)
        scale = t.get(
            "nano_mmhg_per_count", lambda v, k: self.integer(v, k, 1, 2**32 - 1), 10_000_000
        )
        low, high = (-32768 - zero) * scale / 1e9, (32767 - zero) * scale / 1e9
        if low > TRANSDUCER_RANGE_MMHG[0] or high < TRANSDUCER_RANGE_MMHG[1]:
            self.fail(
                "transducer",
                f"the calibration covers {low:.1f}..{high:.1f} mmHg; a "
                f"transducer needs {TRANSDUCER_RANGE_MMHG[0]:g}..{TRANSDUCER_RANGE_MMHG[1]:g}",
            )
        return TransducerSpec(fs, frame, protocol, zero, scale)

    def physiology(self, data: Any) -> PhysiologySpec:
        t = _Table(
            self,
            data,
            "physiology",
            (
                "heart_rate_bpm",
                "map_mmhg",
                "pulse_pressure_mmhg",
                "respiratory_rate_bpm",
                "respiratory_swing_mmhg",
                "hr_variability",
                "noise_mmhg",
            ),
        )
        default = {k: p.default for k, p in inspect.signature(synthesize_abp).parameters.items()}

        def bounded(low: float, high: float) -> Callable[[Any, str], float]:
            return lambda v, k: self.number(v, k, low, high)

        return PhysiologySpec(
            heart_rate_bpm=t.get(
                "heart_rate_bpm", lambda v, k: self.trajectory(v, k, HEART_RATE_BOUNDS)
            ),
            map_mmhg=t.get("map_mmhg", lambda v, k: self.trajectory(v, k, MAP_BOUNDS)),
            pulse_pressure_mmhg=t.get(
                "pulse_pressure_mmhg", lambda v, k: self.trajectory(v, k, PULSE_PRESSURE_BOUNDS)
            ),
            respiratory_rate_bpm=t.get(
                "respiratory_rate_bpm", bounded(0.0, 60.0), float(default["respiratory_rate_bpm"])
            ),
            respiratory_swing_mmhg=t.get(
                "respiratory_swing_mmhg",
                bounded(0.0, 40.0),
                float(default["respiratory_swing_mmhg"]),
            ),
            hr_variability=t.get(
                "hr_variability", bounded(0.0, 0.2), float(default["hr_variability"])
            ),
            noise_mmhg=t.get("noise_mmhg", bounded(0.0, 20.0), float(default["noise_mmhg"])),
        )

    def artifact(self, data: Any, key: str, transducer: TransducerSpec) -> ArtifactSpec:
        if not isinstance(data, Mapping) or "kind" not in data:
            self.fail(f"{key}.kind", "required key is missing")
        kind = self.choice(data["kind"], f"{key}.kind", ARTIFACT_KINDS)
        keywords = _artifact_keywords(kind)
        timed = kind not in ("fast_flush", "garbage")
        allowed = ("kind", "at", *(("duration_s",) if timed else ()), *keywords)
        t = _Table(self, data, key, allowed)
        start = t.get("at", self.instant)
        duration = 0.0
        if timed:
            duration = t.get("duration_s", self.seconds)
            if duration <= 0.0:
                self.fail(t.key("duration_s"), "must be above 0 s")
        params: dict[str, float | int | str] = {}

        def integer_in(low: int, high: int) -> Callable[[Any, str], int]:
            return lambda v, k: self.integer(v, k, low, high)

        for name, (kind_of, default) in keywords.items():
            if kind in _EXTRA_ARTIFACT_KEYS and _EXTRA_ARTIFACT_KEYS[kind][0] == name:
                low, high = _EXTRA_ARTIFACT_KEYS[kind][1:3]
                value = t.get(name, integer_in(low, high), default)
            elif kind_of is int:
                value = t.get(name, lambda v, k: self.integer(v, k, 0, 2**63 - 1), default)
            else:
                value = t.get(name, lambda v, k: self.number(v, k, -math.inf, math.inf), default)
            if value is not _ABSENT:
                params[name] = value
        if kind == "transducer_fault" and transducer.protocol == "ascii":
            self.fail(f"{key}.kind", "the ascii protocol has no status flags; use the binary one")
        if kind in WAVEFORM_ARTIFACTS:
            duration = self._try_artifact(kind, key, transducer.sample_rate_hz, duration, params)
        if start + duration > self.duration_s:
            self.fail(
                f"{key}.at",
                f"the artifact runs to {start + duration:g} s, past the end "
                f"of the scenario ({self.duration_s:g} s)",
            )
        return ArtifactSpec(kind, start, duration, MappingProxyType(params))

    def _try_artifact(
        self, kind: str, key: str, fs: int, duration: float, params: Mapping[str, Any]
    ) -> float:
        """Apply the artifact to a flat record so a bad parameter fails now, with its key path.

        Returns the artifact's duration, exact at ``fs`` for a fast flush.
        """
        trial = min(duration, _TRIAL_RECORD_S)
        flat = np.full(math.ceil((max(trial, 10.0) + 1.0) * fs), 80.0)
        try:
            injected = apply_artifact(flat, fs, ArtifactSpec(kind, 0.0, trial, params))
            if kind == "fast_flush":
                return (injected.end - injected.start) / fs
        except ValueError as exc:
            named = [name for name in params if str(exc).startswith(name)]
            self.fail(f"{key}.{named[0]}" if named else key, f"{kind}: {exc}")
        return duration

    def pump(self, data: Any, key: str) -> PumpSpec:
        t = _Table(self, data, key, ("id", "heartbeat_s", "silent"))
        pump_id = t.get(
            "id",
            lambda v, k: self.string(
                v, k, _WIRE_NAME, "1-16 letters, digits, '-' or '_' (what a pump sentence carries)"
            ),
        )
        heartbeat = t.get("heartbeat_s", lambda v, k: self.number(v, k, 0.5, 5.0), HEARTBEAT_S)
        periods: list[tuple[float, float]] = []
        raw = t.get(
            "silent",
            lambda v, k: (
                v
                if isinstance(v, list)
                else self.fail(k, f"must be a list of [start, end] pairs, got {_kind(v)}")
            ),
            [],
        )
        for i, item in enumerate(raw, 1):
            start, end = self.window(item, f"{key}.silent[{i}]")
            if end == start:
                self.fail(f"{key}.silent[{i}]", "is empty: the end must come after the start")
            if periods and start < periods[-1][1]:
                self.fail(f"{key}.silent[{i}]", "periods must be sorted and must not overlap")
            periods.append((start, end))
        return PumpSpec(pump_id, heartbeat, tuple(periods))

    def infusion(
        self, data: Any, key: str, pump_ids: Sequence[str], weight: float | None
    ) -> InfusionSpec:
        t = _Table(
            self,
            data,
            key,
            (
                "pump",
                "channel",
                "drug",
                "concentration",
                "concentration_unit",
                "dose_unit",
                "steps",
            ),
        )
        pump_id = t.get("pump", self.string)
        if pump_id not in pump_ids:
            self.fail(
                t.key("pump"),
                f"no [[pump]] has id {pump_id!r}; declared: {', '.join(pump_ids) or 'none'}",
            )
        channel = t.get("channel", lambda v, k: self.integer(v, k, 1, 16))
        drug = t.get(
            "drug",
            lambda v, k: self.string(
                v, k, _WIRE_NAME, "a pump drug code: 1-16 letters, digits, '-' or '_'"
            ),
        )
        concentration = t.get(
            "concentration", lambda v, k: self.number(v, k, 0.0, MAX_CONCENTRATION, above=True)
        )

        def unit(v: Any, k: str) -> str:
            return self.string(v, k, _WIRE_UNIT, "a unit of 1-12 letters and '/' such as ug/mL")

        conc_unit = t.get("concentration_unit", unit)
        dose_unit = t.get("dose_unit", unit, None)
        steps = self.steps(
            t.get("steps", self.tables),
            t.key("steps"),
            _Programme(self, key, concentration, conc_unit, dose_unit, weight),
        )
        return InfusionSpec(pump_id, channel, drug, concentration, conc_unit, dose_unit, steps)

    def steps(self, raw: list[Any], key: str, programme: _Programme) -> tuple[InfusionStep, ...]:
        if not raw:
            self.fail(key, "needs at least one step")
        steps: list[InfusionStep] = []
        for j, data in enumerate(raw, 1):
            at = f"{key}[{j}]"
            t = _Table(self, data, at, ("at", "state", "dose", "rate_ml_h"))
            t_s = t.get("at", self.instant)
            if steps and t_s <= steps[-1].t_s:
                self.fail(
                    t.key("at"),
                    f"steps must be sorted by time: {t_s:g} s is not after "
                    f"the previous step's {steps[-1].t_s:g} s",
                )
            state = t.get(
                "state",
                lambda v, k: PumpState(self.choice(v, k, [s.value for s in PumpState])),
                None,
            )
            dose = t.get("dose", lambda v, k: self.number(v, k, 0.0, MAX_CONCENTRATION), None)
            rate = t.get("rate_ml_h", lambda v, k: self.number(v, k, 0.0, MAX_RATE_ML_H), None)
            if dose is None and rate is None:
                if not steps:
                    self.fail(
                        at,
                        "the first step must give dose or rate_ml_h: a pump channel "
                        "always has a programmed rate",
                    )
                if state is None:
                    self.fail(at, "a step must give state, dose or rate_ml_h")
                steps.append(InfusionStep(t_s, state, steps[-1].rate_ml_h, steps[-1].dose))
                continue
            rate, dose = programme.resolve(at, rate, dose)
            steps.append(InfusionStep(t_s, state or PumpState.RUNNING, rate, dose))
        return tuple(steps)

    def expectations(self, data: Any) -> Expectations:
        t = _Table(
            self, data, "expect", ("alarm", "state", "never_alarms", "never_states", "notes")
        )

        def windows(name: str, vocabulary: Sequence[str]) -> list[tuple[str, tuple[float, float]]]:
            found = []
            for i, item in enumerate(t.get(name, self.tables, []), 1):
                at = f"expect.{name}[{i}]"
                entry = _Table(self, item, at, ("name", "within"))
                found.append(
                    (
                        entry.get("name", lambda v, k: self.choice(v, k, vocabulary)),
                        entry.get("within", self.window),
                    )
                )
            return found

        alarms = windows("alarm", ALARM_NAMES)
        states = windows("state", STATE_NAMES)
        never_alarms = t.get("never_alarms", lambda v, k: self.names(v, k, ALARM_NAMES), ())
        never_states = t.get("never_states", lambda v, k: self.names(v, k, STATE_NAMES), ())
        for what, expected, never in (
            ("alarm", alarms, never_alarms),
            ("state", states, never_states),
        ):
            for i, (name, _) in enumerate(expected, 1):
                if name in never:
                    self.fail(
                        f"expect.{what}[{i}].name",
                        f"{name!r} is both expected and in never_{what}s",
                    )
        return Expectations(
            alarms=tuple(AlarmExpectation(n, w) for n, w in alarms),
            states=tuple(StateExpectation(n, w) for n, w in states),
            never_alarms=never_alarms,
            never_states=never_states,
            notes=t.get("notes", self.string, ""),
        )


class _Programme:
    """Turns a step's dose or rate into both, as the pump's drug library does."""

    def __init__(
        self,
        reader: _Reader,
        key: str,
        concentration: float,
        conc_unit: str,
        dose_unit: str | None,
        weight: float | None,
    ) -> None:
        self.reader, self.key = reader, key
        self.concentration, self.conc_unit = concentration, conc_unit
        self.dose_unit, self.weight = dose_unit, weight

    def resolve(
        self, step: str, rate: float | None, dose: float | None
    ) -> tuple[float, float | None]:
        """(rate_ml_h, dose) of a step that gave a rate, a dose or both."""
        if self.dose_unit is None:
            if dose is not None:
                self.reader.fail(
                    f"{step}.dose",
                    f"a dose needs the infusion's dose_unit "
                    f"({self.key}.dose_unit); or give rate_ml_h",
                )
            assert rate is not None
            return rate, None
        try:
            if dose is None:
                assert rate is not None
                return rate, dose_from_rate(
                    rate, self.concentration, self.conc_unit, self.dose_unit, self.weight
                )
            needed = rate_from_dose(
                dose, self.dose_unit, self.concentration, self.conc_unit, self.weight
            )
        except UnitError as exc:
            if dose is not None and rate is not None:
                return rate, dose  # units devices.infusion does not know: sent as stated
            given = "dose" if dose is not None else "rate_ml_h"
            self.reader.fail(
                f"{step}.{given}",
                f"{exc}; a dose and rate that cannot be converted must both be given",
            )
        except ValueError:  # a per-kilogram unit and no weight
            if dose is not None and rate is not None:
                return rate, dose  # the pump was given a weight the monitor was not
            where = f"{step}.dose" if dose is not None else f"{self.key}.dose_unit"
            self.reader.fail(
                where,
                f"a dose in {self.dose_unit} needs [scenario] weight_kg: "
                "set it, give both dose and rate_ml_h, or drop dose_unit and "
                "give rate_ml_h",
            )
        if rate is None:
            if needed > MAX_RATE_ML_H:
                self.reader.fail(
                    f"{step}.dose",
                    f"needs {needed:.1f} mL/h, faster than any pump "
                    f"({MAX_RATE_ML_H:g} mL/h): check the concentration",
                )
            return needed, dose
        if abs(rate - needed) > DOSE_CHECK_TOLERANCE * max(needed, 0.01):
            self.reader.fail(
                f"{step}.rate_ml_h",
                f"{rate:g} mL/h does not deliver dose {dose:g} "
                f"{self.dose_unit} (that needs {needed:.4g} mL/h); give one of them",
            )
        return rate, dose


def _artifact_keywords(kind: str) -> dict[str, tuple[type, Any]]:
    """Keys an artifact of ``kind`` takes besides kind/at/duration_s: name -> (type, default).

    For waveform kinds, the keyword parameters of the devices.simulation.artifacts
    function of that name (default ``_MISSING`` when the function has none,
    ``_ABSENT`` when its own default applies); spikes add ``count`` and
    garbage ``bytes``.
    """
    found: dict[str, tuple[type, Any]] = {}
    if kind in WAVEFORM_ARTIFACTS:
        for name, p in inspect.signature(getattr(artifacts, kind)).parameters.items():
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            default = _ABSENT if p.default is not inspect.Parameter.empty else _MISSING
            annotation = (
                p.annotation
                if isinstance(p.annotation, str)
                else getattr(p.annotation, "__name__", "")
            )
            found[name] = (int if annotation == "int" else float, default)
    if kind in _EXTRA_ARTIFACT_KEYS:
        name, _, _, default = _EXTRA_ARTIFACT_KEYS[kind]
        found[name] = (int, default)
    return found
