"""Scenarios: what a simulated patient, transducer and pumps do, and what a monitor must conclude.

A scenario is the script a simulator plays so the monitor can be tested
without hardware: the patient's heart rate, MAP and pulse pressure as
piecewise-linear trajectories, artifacts on the arterial line and on the
wire, the pumps and their titration schedules, and what a correct monitor
must (and must never) conclude, as machine-readable expectations.

This module is that model, validated and resolved (times in seconds, rates
in mL/h), and what plays it: :func:`trajectory_at` and
:func:`trajectory_values` evaluate a trajectory, :func:`apply_artifact`
applies a waveform artifact. :mod:`devices.simulation.scenario_file` reads
scenarios from TOML files; the format is documented in ``docs/scenarios.md``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from devices.protocols.pump import HEARTBEAT_S
from devices.readings import PumpState
from devices.simulation import artifacts

#: Alarm names a scenario may expect; a contract with the clinical layer.
ALARM_NAMES: tuple[str, ...] = (
    "refractory_hypotension",
    "map_critically_low",
    "no_pulse",
    "hypotension",
    "abp_artifact",
    "transducer_disconnected",
    "transducer_zeroing",
    "transducer_comm_lost",
    "pump_comm_lost",
    "unknown_drug",
    "unknown_unit",
    "weight_missing",
    "implausible_dose",
    "serial_errors",
    "transducer_restart",
    "input_overflow",
)
#: Detector states a scenario may expect; a contract with the clinical layer.
STATE_NAMES: tuple[str, ...] = (
    "normotensive",
    "hypotensive",
    "vasopressor_dependent",
    "refractory",
    "insufficient_signal",
    "no_pulse",
)
#: Artifacts applied to the pressure samples, by the devices.simulation.artifacts function
#: of that name.
WAVEFORM_ARTIFACTS: tuple[str, ...] = (
    "fast_flush",
    "zeroing",
    "damping",
    "disconnection",
    "clipping",
    "line_manipulation",
    "spikes",
)
#: Artifacts of the front end and the wire: frames not sent, noise bytes, a FAULT flag.
WIRE_ARTIFACTS: tuple[str, ...] = ("dropout", "garbage", "transducer_fault")
ARTIFACT_KINDS: tuple[str, ...] = WAVEFORM_ARTIFACTS + WIRE_ARTIFACTS

Trajectory = tuple[tuple[float, float], ...]


class ScenarioError(ValueError):
    """A scenario file that cannot be played; says which file, which key and what is allowed."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, str, str]]:
        return type(self), (self.file, self.key, self.problem)


def trajectory_at(knots: Trajectory, t_s: float) -> float:
    """Value of a piecewise-linear trajectory at ``t_s``, held outside its knots.

    Two knots at the same time make a step; at that instant the later knot holds.
    """
    times = [t for t, _ in knots]
    i = bisect_right(times, t_s)
    if i == 0:
        return knots[0][1]
    if i == len(knots):
        return knots[-1][1]
    (t0, v0), (t1, v1) = knots[i - 1], knots[i]
    return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)


def trajectory_values(knots: Trajectory, t_s: np.ndarray) -> np.ndarray:
    """:func:`trajectory_at` for an array of times."""
    t = np.asarray(t_s, dtype=np.float64)
    times = np.array([k[0] for k in knots])
    values = np.array([k[1] for k in knots])
    if len(knots) == 1:
        return np.full(t.shape, values[0])
    i = np.clip(np.searchsorted(times, t, side="right"), 1, len(knots) - 1)
    t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
    span = np.where(t1 > t0, t1 - t0, 1.0)  # a step's two knots share a time
    inside = v0 + (v1 - v0) * (np.clip(t, t0, t1) - t0) / span
    return np.where(t < times[0], values[0], np.where(t >= times[-1], values[-1], inside))


@dataclass(frozen=True)
class TransducerSpec:
    """The pressure front end: sample rate, frame size, wire protocol and calibration."""

    sample_rate_hz: int
    frame_samples: int
    protocol: str = "binary"
    zero_counts: int = 0
    nano_mmhg_per_count: int = 10_000_000


@dataclass(frozen=True)
class PhysiologySpec:
    """The patient, as synthesize_abp's parameters; trajectories are (t_s, value) knots."""

    heart_rate_bpm: Trajectory
    map_mmhg: Trajectory
    pulse_pressure_mmhg: Trajectory
    respiratory_rate_bpm: float
    respiratory_swing_mmhg: float
    hr_variability: float
    noise_mmhg: float


@dataclass(frozen=True)
class ArtifactSpec:
    """One artifact: ``[start_s, start_s + duration_s)`` of scenario time.

    ``params`` holds the keys stated in the file besides ``kind``/``at``/
    ``duration_s``: for waveform kinds the keyword arguments of the
    devices.simulation.artifacts function of that name (omitted ones take its
    defaults), plus ``count`` for spikes and ``bytes`` for garbage, always
    present. A fast flush's duration is computed from its parameters at the
    scenario's sample rate; garbage lasts 0 s.
    """

    kind: str
    start_s: float
    duration_s: float
    params: Mapping[str, float | int | str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


def apply_artifact(samples: np.ndarray, fs: float, artifact: ArtifactSpec) -> artifacts.Injected:
    """Apply a waveform artifact with the devices.simulation.artifacts function of its kind.

    ``artifact.start_s`` counts from ``samples[0]``. The one place that
    knows how each kind is called: the loader tries artifacts with it, the
    simulator plays them with it.
    """
    function = getattr(artifacts, artifact.kind)
    keywords = {k: v for k, v in artifact.params.items() if k != "count"}
    if artifact.kind == "fast_flush":  # its length follows from its plateau and ringing
        return function(samples, fs, artifact.start_s, **keywords)
    if artifact.kind == "spikes":
        count = int(artifact.params["count"])
        times = artifact.start_s + np.linspace(0.0, artifact.duration_s, count)
        return function(samples, fs, times, **keywords)
    return function(samples, fs, artifact.start_s, artifact.duration_s, **keywords)


@dataclass(frozen=True)
class InfusionStep:
    """A channel's programme from ``t_s`` on; the dose is known when the pump has a dose unit."""

    t_s: float
    state: PumpState
    rate_ml_h: float
    dose: float | None


@dataclass(frozen=True)
class InfusionSpec:
    """One pump channel's drug and its titration schedule."""

    pump_id: str
    channel: int
    drug_code: str
    concentration: float
    concentration_unit: str
    dose_unit: str | None
    steps: tuple[InfusionStep, ...]


@dataclass(frozen=True)
class PumpSpec:
    """One pump: its heartbeat and the ``[start, end)`` periods it sends nothing."""

    pump_id: str
    heartbeat_s: float = HEARTBEAT_S
    silent: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class AlarmExpectation:
    """The alarm must be raised for the first time inside ``within_s`` (inclusive)."""

    name: str
    within_s: tuple[float, float]


@dataclass(frozen=True)
class StateExpectation:
    """The detector must enter this state (a transition into it) inside ``within_s`` (inclusive)."""

    name: str
    within_s: tuple[float, float]


@dataclass(frozen=True)
class Expectations:
    """What a correct monitor concludes from the scenario, and what it must never conclude."""

    alarms: tuple[AlarmExpectation, ...] = ()
    states: tuple[StateExpectation, ...] = ()
    never_alarms: tuple[str, ...] = ()
    never_states: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Scenario:
    """A whole scenario, validated and resolved (times in seconds, rates in mL/h)."""

    name: str
    title: str
    description: str
    duration_s: float
    seed: int
    weight_kg: float | None
    transducer: TransducerSpec
    physiology: PhysiologySpec
    artifacts: tuple[ArtifactSpec, ...]
    pumps: tuple[PumpSpec, ...]
    infusions: tuple[InfusionSpec, ...]
    expect: Expectations
    source: str
