"""The clinical engine: beats, pump reports and device events in, states and alarms out.

It owns the MAP window, the NEE tracker, the refractory detector and the
alarm manager, and decides which alarm conditions hold at each moment.
Time is stream time only, and the engine moves through it as a
discrete-event simulation: it evaluates at every input, at every whole
second (the MAP window slides), and at every deadline its parts announce
(an alarm delay, a held dose running out, an episode's sustain time). So the
timeline depends on the data and never on how they were chunked or how
often the caller looked: a live monitor and ``monitor analyze`` agree.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devices.readings import PumpReport, TransducerStatus
from monitor.clinical.alarm_types import (
    ADVISORY,
    PHYSIOLOGICAL,
    AlarmTransition,
    CarriedAlarm,
    Category,
    Priority,
    Transition,
)
from monitor.clinical.alarms import AlarmManager, AlarmSpec, Condition, Words
from monitor.clinical.map_window import MapEstimate, MapWindow
from monitor.clinical.nee import ChannelState, NeeReading, NeeTracker
from monitor.clinical.refractory import (
    EpisodeChange,
    Observation,
    RefractoryDetector,
    State,
    StateChange,
)
from monitor.clinical.settings import ClinicalSettings
from monitor.clinical.trends import TrendPoint, TrendSampler, replay
from monitor.configuration.drug_table import Drug
from monitor.core.beat_types import DetectorOutput, EventKind
from monitor.edge.input_items import DeviceEvent, DeviceEventKind

EVALUATE_EVERY_S = 1.0
# After a zero procedure the trace takes a moment to come back, and the core
# closes its flat-line stretch only at the next pulse: a flat line this soon
# after zeroing ended is the zeroing's tail, not a disconnection.
ZERO_RECOVERY_S = 10.0
SERIAL_ERROR_WINDOW_S = 60.0
# A transducer restart or an input overflow is a moment, not a state: its
# alarm holds this long after the last one, long enough to be seen, and
# the log keeps each with its counts.
INPUT_INCIDENT_HOLD_S = 60.0
# A carried alarm's wait for its condition, beyond one MAP window (see carry_alarms).
RESUME_MARGIN_S = 10.0


@dataclass(frozen=True)
class TimelineEntry:
    """One row of the timeline: a state change, an episode change or an alarm transition.

    ``kind`` is ``state``, ``episode`` or the alarm transition (``raised``,
    ``cleared``, ...); ``map_mmhg`` and ``nee`` are the values decided on at
    that moment (None: not known).
    """

    t_s: float
    kind: str
    name: str
    priority: str
    map_mmhg: float | None
    nee: float | None
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    alarm: AlarmTransition | None = None


def alarm_specs(settings: ClinicalSettings) -> dict[str, AlarmSpec]:
    """Every alarm the engine can raise, with its configured priority and delay."""
    a = settings.alarms
    delays = {
        "hypotension": a.hypotension_delay_s,
        "map_critically_low": a.map_critical_delay_s,
        "abp_artifact": a.artifact_delay_s,
    }
    specs = {
        name: AlarmSpec(
            name,
            priority,
            Category.PHYSIOLOGICAL if name in PHYSIOLOGICAL else Category.TECHNICAL,
            delays.get(name, 0.0),
        )
        for name, priority in a.priorities.items()
    }
    specs[ADVISORY] = AlarmSpec(ADVISORY, Priority.INFO, Category.PHYSIOLOGICAL)
    return specs


class ClinicalEngine:
    """Feed inputs in stream-time order; each call returns the timeline entries it caused."""

    def __init__(self, settings: ClinicalSettings, fs: float, weight_kg: float | None) -> None:
        self.settings = settings
        self.fs = fs
        d = settings.detector
        self.map_window = MapWindow(fs, d.map_window_s, d.map_min_coverage)
        self.nee = NeeTracker(weight_kg, settings.paused_hold_s)
        self.detector = RefractoryDetector(d)
        self.alarms = AlarmManager(
            alarm_specs(settings), settings.alarms.audio_pause_s, settings.alarms.escalation_s
        )
        self.now_s = 0.0
        self._next_tick = EVALUATE_EVERY_S
        self._core_condition: tuple[EventKind, float] | None = None  # kind, level
        self._zeroing = False  # the front end's status bits, as booleans: read at every
        self._fault = False  # evaluation, changed only by a status event
        self._zeroing_ended_s = -math.inf
        self._no_pulse_since: float | None = None  # the core's no-pulse stretch, not zeroing
        self._lost_ports: set[str] = set()
        self._unanswered: dict[str, str] = {}  # a lost port's device that ignores its requests
        self._silent_pumps: set[str] = set()
        self._pump_ports: dict[str, str] = {}  # pump id -> the port role it reports on
        self._transducer_role = "transducer"
        self._decode_errors: deque[tuple[float, int]] = deque()
        # (stream time, message) of recent incidents, by alarm name
        self._incidents: dict[str, deque[tuple[float, str]]] = {
            "transducer_restart": deque(),
            "input_overflow": deque(),
        }
        self._failed_sinks: dict[str, str] = {}
        self._log_problem: str | None = None
        self._naive_low_since: dict[str, float] = {}
        self._suppressed_reported: set[str] = set()
        self.suppressed: dict[str, int] = {name: 0 for name in PHYSIOLOGICAL}
        self.last_map: MapEstimate | None = None
        self.last_nee: NeeReading | None = None
        self._last_known_nee: NeeReading | None = None  # for "last known" when it goes unknown
        self._trends: tuple[TrendSampler, Callable[[TrendPoint], None]] | None = None

    def record_trends(self, interval_s: float, on_trend: Callable[[TrendPoint], None]) -> None:
        """Hand ``on_trend`` a trend point every ``interval_s`` and at every change that matters."""
        self._trends = (TrendSampler(self.settings.detector, interval_s), on_trend)

    def resume(self, history: Iterable[TrendPoint], data_end_s: float) -> list[TimelineEntry]:
        """Rebuild the detector from a previous run's points, placed before stream time 0.

        ``data_end_s`` (<= 0) is where the previous run's data end; from there
        to now is a gap the detector sees as insufficient signal. Returns the
        episode changes that fell inside the gap. Call before any input.
        """
        if self.now_s != 0.0 or self.detector.state is not None:
            raise RuntimeError("resume() must come before the first input")
        changes = replay(self.detector, history, data_end_s, self.now_s)
        empty = self.map_window.estimate(self.now_s)
        unknown = self.nee.reading(self.now_s)
        return [
            self._entry_for_detector(c, empty, unknown)
            for c in changes
            if isinstance(c, EpisodeChange)
        ]

    def carry_alarms(self, carried: Iterable[CarriedAlarm]) -> list[TimelineEntry]:
        """The alarms standing when the previous run ended, resumed when their conditions hold.

        Each waits one MAP window and a margin: long enough for the MAP, the
        pumps and the transducer to be judged again, short enough that an
        alarm that is really over does not linger where no one can see it.
        """
        window_s = self.settings.detector.map_window_s + RESUME_MARGIN_S
        return self._entries_for(self.alarms.carry(self.now_s, carried, window_s))

    # ------------------------------------------------------------ reload
    def apply_settings(self, settings: ClinicalSettings) -> list[TimelineEntry]:
        """A reload's clinical settings, in place: stream time, beats, alarms and episode go on.

        One rule for every timer: it keeps its start, and the new duration or
        threshold applies from this evaluation on. So a pending alarm whose
        shortened delay has passed is raised now, a pending episode is
        confirmed now if the new sustain time has passed, a held dose runs out
        at its start plus the new hold; a changed MAP window takes the beats
        it already holds (a wider one fills as beats arrive).
        """
        self.settings = settings
        d = settings.detector
        self.map_window.configure(d.map_window_s, d.map_min_coverage)
        self.detector.settings = d
        self.nee.paused_hold_s = settings.paused_hold_s
        a = settings.alarms
        self.alarms.apply_settings(alarm_specs(settings), a.audio_pause_s, a.escalation_s)
        if self._trends is not None:
            self._trends[0].settings = d
        return self._evaluate()

    def pump_ports_changed(
        self, awaited: Iterable[str], removed: Iterable[str], pumps_gone: Iterable[str]
    ) -> list[TimelineEntry]:
        """A reload's pump ports: new or moved ones awaited, removed ones and their pumps forgotten.

        A port that did not change is left alone: it is neither awaited again
        nor counted as lost.
        """
        for role in removed:
            self._lost_ports.discard(role)
            self._unanswered.pop(role, None)
            self.nee.port_heard(role)  # no longer awaited either
        for pump in pumps_gone:
            self._silent_pumps.discard(pump)
            self._pump_ports.pop(pump, None)
            self.nee.forget_pump(pump)
        for role in awaited:
            self.nee.await_port(role)
        return self._evaluate()

    def end_episode(self, reason: str) -> list[TimelineEntry]:
        """Close the open episode now, for a reason outside the signal (a new admission)."""
        est = self.last_map or self.map_window.estimate(self.now_s)
        nee = self.last_nee or self.nee.reading(self.now_s)
        return [
            self._entry_for_detector(c, est, nee)
            for c in self.detector.end_episode(self.now_s, reason)
        ]

    # ------------------------------------------------------------ inputs
    def beats(self, output: DetectorOutput) -> list[TimelineEntry]:
        """Beats and no-pulse events from the core, each at the moment it became known."""
        items = [(int(b["known_at"]), 1, b) for b in output.beats]
        items += [(int(e["known_at"]), 0, e) for e in output.events]
        items.sort(key=lambda item: (item[0], item[1]))
        out: list[TimelineEntry] = []
        for known_at, is_beat, row in items:
            out += self.advance(known_at / self.fs)
            if is_beat:
                self.map_window.add([row])
            else:
                self._core_event(row)
            out += self._evaluate()
        return out

    def pump(
        self, t_s: float, report: PumpReport, drug: Drug | None, conflict: str | None = None
    ) -> list[TimelineEntry]:
        out = self.advance(t_s)
        self.nee.observe(self.now_s, report, drug, conflict)
        return out + self._evaluate()

    def device_event(self, event: DeviceEvent) -> list[TimelineEntry]:
        """What the serial edge reported: link losses, silent pumps, status, decode errors."""
        out = self.advance(event.t_s)
        kind, role = event.kind, event.role
        if kind is DeviceEventKind.COMM_LOST:
            self._lost_ports.add(role)
            if event.detail.get("unanswered"):
                self._unanswered[role] = str(event.detail["unanswered"])
        elif kind is DeviceEventKind.COMM_RESTORED:
            self._lost_ports.discard(role)
            self._unanswered.pop(role, None)
        elif kind is DeviceEventKind.PUMP_SILENT:
            self._pump_ports[event.detail["pump"]] = role
            self._silent_pumps.add(event.detail["pump"])
            self.nee.pump_silent(event.detail["pump"])
        elif kind is DeviceEventKind.PUMP_HEARD:
            self._pump_ports[event.detail["pump"]] = role
            self._silent_pumps.discard(event.detail["pump"])
            self.nee.pump_heard(event.detail["pump"])
        elif kind is DeviceEventKind.TRANSDUCER_STATUS:
            status = TransducerStatus(event.detail["status"])
            zeroing = bool(status & TransducerStatus.ZEROING)
            if self._zeroing and not zeroing:
                self._zeroing_ended_s = self.now_s
            self._zeroing, self._fault = zeroing, bool(status & TransducerStatus.FAULT)
        elif kind is DeviceEventKind.DECODE_ERRORS:
            self._decode_errors.append((self.now_s, sum(event.detail.values())))
        elif kind is DeviceEventKind.TRANSDUCER_RESTART:
            self._incidents["transducer_restart"].append((self.now_s, event.message))
        elif kind is DeviceEventKind.INPUT_OVERFLOW:
            self._incidents["input_overflow"].append((self.now_s, event.message))
        return out + self._evaluate()

    def _unanswered_text(self, roles: Iterable[str]) -> str:
        """Each lost port whose device ignores its requests, with the step that fails, which
        says where to look (cable, baud, the device's mode): '; rack: no answer to ...'."""
        return "".join(
            f"; {role}: {self._unanswered[role]}" for role in roles if role in self._unanswered
        )

    def _lost_pumps(self) -> list[tuple[str, list[str]]]:
        """Each pump port not heard from and its pumps, named one way however it was lost.

        ``pump1 (P1)`` whether the port went silent or only its pump did, so
        an alarm is raised and cleared under the same name.

        A lost port counts every pump known on it; a port still delivering
        counts only its pumps that went quiet.
        """
        if not self._silent_pumps and self._lost_ports <= {self._transducer_role}:
            return []  # the usual case, asked at every evaluation
        lost = []
        ports = (self._lost_ports - {self._transducer_role}) | {
            self._pump_ports[p] for p in self._silent_pumps if p in self._pump_ports
        }
        for role in sorted(ports):
            pumps = sorted(
                p
                for p, r in self._pump_ports.items()
                if r == role and (role in self._lost_ports or p in self._silent_pumps)
            )
            lost.append((f"{role} ({', '.join(pumps)})" if pumps else role, pumps))
        return lost

    def set_transducer_role(self, role: str) -> None:
        self._transducer_role = role

    def set_weight(self, weight_kg: float | None) -> list[TimelineEntry]:
        self.nee.set_weight(weight_kg)
        return self._evaluate()

    def sink_failed(self, sink: str, message: str) -> list[TimelineEntry]:
        self._failed_sinks[sink] = message
        return self._evaluate()

    def sink_recovered(self, sink: str) -> list[TimelineEntry]:
        self._failed_sinks.pop(sink, None)
        return self._evaluate()

    def log_problem(self, message: str | None) -> list[TimelineEntry]:
        """What is wrong with the log now (None: nothing); a technical alarm while it lasts."""
        self._log_problem = message
        return self._evaluate()

    def acknowledge(self, name: str | None = None) -> list[TimelineEntry]:
        return self._entries_for(self.alarms.acknowledge(self.now_s, name))

    def pause_audio(self) -> list[TimelineEntry]:
        return self._entries_for(self.alarms.pause_audio(self.now_s))

    # -------------------------------------------------------------- time
    def advance(self, t_s: float) -> list[TimelineEntry]:
        """Move stream time to ``t_s``, evaluating at every tick and deadline on the way."""
        out: list[TimelineEntry] = []
        while True:
            due = self._next_due()
            if due > t_s:
                break
            self.now_s = due
            if due >= self._next_tick:
                self._next_tick = (math.floor(due / EVALUATE_EVERY_S) + 1) * EVALUATE_EVERY_S
            out += self._evaluate()
        self.now_s = max(self.now_s, t_s)
        return out

    def _next_due(self) -> float:
        """The next tick, or an earlier deadline after now: the first moment to evaluate."""
        now, due = self.now_s, self._next_tick
        for t in (
            self.detector.next_deadline(),
            self.alarms.next_deadline(),
            self.nee.next_change_after(now),
            self._decode_errors[0][0] + SERIAL_ERROR_WINDOW_S if self._decode_errors else None,
            *(q[0][0] + INPUT_INCIDENT_HOLD_S for q in self._incidents.values() if q),
            self._zeroing_ended_s + ZERO_RECOVERY_S,
            None
            if self._no_pulse_since is None
            else self._no_pulse_since + self.settings.alarms.no_pulse_delay_s,
        ):
            if t is not None and now < t < due:
                due = t
        return due

    # --------------------------------------------------------- evaluation
    def _core_event(self, row: np.void) -> None:
        if row["begin"]:
            self._core_condition = (EventKind(int(row["kind"])), float(row["level_mmhg"]))
        else:
            self._core_condition = None

    def _evaluate(self) -> list[TimelineEntry]:
        t = self.now_s
        while self._decode_errors and self._decode_errors[0][0] + SERIAL_ERROR_WINDOW_S <= t:
            self._decode_errors.popleft()
        for incidents in self._incidents.values():
            while incidents and incidents[0][0] + INPUT_INCIDENT_HOLD_S <= t:
                incidents.popleft()
        est = self.map_window.estimate(t)
        nee = self.nee.reading(t)
        self.last_map, self.last_nee = est, nee
        if nee.known:
            self._last_known_nee = nee
        obs = Observation(t, est, nee, self._no_pulse(t))
        out = [self._entry_for_detector(c, est, nee) for c in self.detector.update(obs)]
        if self._trends is not None:
            sampler, on_trend = self._trends
            state = self.detector.state
            assert state is not None  # update() has just decided one
            point = sampler.sample(obs, state.value)
            if point is not None:
                on_trend(point)
        conditions = self._conditions(obs)
        out += self._entries_for(self.alarms.update(t, conditions))
        out += self._count_suppressed(obs, conditions)
        return out

    def _no_pulse(self, t: float) -> bool:
        """The core's no-pulse stretch, held for the alarm delay and not during zeroing.

        The delay lets the trace coming back after a zero procedure or a
        disconnection (a level rising before the first beat is found) pass
        without reading as a pulseless patient.
        """
        if self._core_kind() is not EventKind.NO_PULSE or self._zeroing:
            self._no_pulse_since = None
            return False
        if self._no_pulse_since is None:
            self._no_pulse_since = t
        return t - self._no_pulse_since >= self.settings.alarms.no_pulse_delay_s

    def _core_kind(self) -> EventKind | None:
        return None if self._core_condition is None else self._core_condition[0]

    def _conditions(self, obs: Observation) -> dict[str, Condition]:
        """Which alarm conditions hold now, each with its message and evidence."""
        s, d = self.settings.alarms, self.settings.detector
        t, est, nee, det = obs.t_s, obs.map, obs.nee, self.detector
        evidence: dict[str, Any] = {}  # built for the first condition that holds, or never
        zeroing, fault = self._zeroing, self._fault
        flat = self._core_kind() is EventKind.FLAT_NEAR_ZERO
        comm_lost = self._transducer_role in self._lost_ports
        c: dict[str, Condition] = {}

        def hold(name: str, message: Words, extra: Mapping[str, Any] | None = None) -> None:
            if not evidence:
                evidence.update(det.evidence(obs))
            c[name] = Condition(True, message, {**evidence, **(extra or {})})

        if det.refractory:
            hold("refractory_hypotension", det.explainer(State.REFRACTORY, obs))
        if est.map_mmhg is not None:
            where = f"MAP {est.map_mmhg:.0f} mmHg (median, {d.map_window_s:.0f} s)"
            if est.map_mmhg < s.map_critical_mmhg:
                hold("map_critically_low", f"{where} below {s.map_critical_mmhg:.0f}")
            if det.state is State.HYPOTENSIVE or (
                det.state is State.REFRACTORY and est.map_mmhg < d.map_target_mmhg
            ):
                hold("hypotension", det.explainer(State.HYPOTENSIVE, obs))
        if obs.no_pulse:
            level = self._core_condition[1] if self._core_condition else math.nan
            hold(
                "no_pulse",
                f"No pulse: flat trace at a mean of {round(level)} mmHg; check the patient",
                {"level_mmhg": level},
            )
        if zeroing:
            hold("transducer_zeroing", "Transducer zeroing in progress: pressure not monitored")
        if fault:
            hold("transducer_disconnected", "The transducer front end reports a fault")
        elif flat and not zeroing and t - self._zeroing_ended_s >= ZERO_RECOVERY_S:
            level = self._core_condition[1] if self._core_condition else math.nan
            hold(
                "transducer_disconnected",
                f"Arterial line reads {round(level)} mmHg with no pulse: disconnected, or open to "
                "air without a zero procedure",
                {"level_mmhg": level},
            )
        if comm_lost:
            hold(
                "transducer_comm_lost",
                "No valid frame from the transducer: not monitored"
                + self._unanswered_text([self._transducer_role]),
            )
        specific = zeroing or fault or flat or comm_lost or obs.no_pulse
        if (
            est.map_mmhg is None
            and not specific
            and est.artifact_coverage > 0.0
            and est.artifact_coverage >= est.clean_coverage
        ):
            hold(
                "abp_artifact",
                f"ABP artifact: beats that are not clean cover "
                f"{100 * est.artifact_coverage:.0f}% of the last {d.map_window_s:.0f} s; "
                "MAP not decided on",
            )
        lost = self._lost_pumps()
        if lost:
            hold(
                "pump_comm_lost",
                f"No report from {', '.join(name for name, _ in lost)}: NEE unknown "
                f"(last known {self._last_known_nee_text()})"
                + self._unanswered_text(sorted(self._lost_ports - {self._transducer_role})),
                {"pumps": [pump for _, pumps in lost for pump in pumps]},
            )
        for name, state in (
            ("unknown_drug", ChannelState.UNKNOWN_DRUG),
            ("unknown_unit", ChannelState.UNKNOWN_UNIT),
            ("weight_missing", ChannelState.WEIGHT_MISSING),
            ("concentration_unknown", ChannelState.CONCENTRATION_UNKNOWN),
            ("concentration_mismatch", ChannelState.CONCENTRATION_MISMATCH),
        ):
            channels = [ch for ch in nee.channels if ch.state is state]
            if channels:
                hold(
                    name,
                    "; ".join(
                        f"pump {ch.pump}/{ch.channel} {ch.label}: {ch.detail}" for ch in channels
                    )
                    + ("; NEE unknown" if name != "unknown_drug" else "; not counted in NEE"),
                )
        implausible = [ch for ch in nee.channels if ch.state is ChannelState.IMPLAUSIBLE]
        if implausible:
            hold(
                "implausible_dose",
                "; ".join(
                    f"pump {ch.pump}/{ch.channel} {ch.label}: {ch.detail}; "
                    + ("NEE unknown" if ch.counted else "dose unknown")
                    + ", check the pump and its programming"
                    for ch in implausible
                ),
                {"pumps": sorted({ch.pump for ch in implausible})},
            )
        errors = sum(n for _, n in self._decode_errors)
        if errors > s.serial_error_limit_per_min:
            hold(
                "serial_errors",
                f"{errors} serial decoding errors in the last minute "
                f"(limit {s.serial_error_limit_per_min})",
            )
        for name, what in (
            ("transducer_restart", "transducer front-end restart"),
            ("input_overflow", "input overflow"),
        ):
            incidents = self._incidents[name]
            if incidents:
                count = f"{len(incidents)} in the last {INPUT_INCIDENT_HOLD_S:.0f} s"
                hold(name, f"{what.capitalize()} ({count}): {incidents[-1][1]}")
        if self._failed_sinks:
            hold(
                "alarm_output_failed",
                "; ".join(f"{sink}: {why}" for sink, why in sorted(self._failed_sinks.items())),
            )
        if self._log_problem is not None:
            hold("log_failed", f"Log: {self._log_problem}")
        high_for = det.nee_high_for_s(obs.t_s)
        if high_for >= d.advisory_s:
            running = [ch.label for ch in nee.channels if ch.label == "hydrocortisone"]
            hold(
                ADVISORY,
                f"NEE above {d.nee_threshold:g} for {high_for / 3600:.1f} h: the Surviving Sepsis "
                "Campaign suggests considering hydrocortisone"
                + (" (hydrocortisone is running)" if running else ""),
            )
        return c

    def _last_known_nee_text(self) -> str:
        known = self._last_known_nee
        return "none" if known is None else f"{known.explain()} at {known.t_s:.0f} s"

    def _count_suppressed(
        self, obs: Observation, conditions: Mapping[str, Condition]
    ) -> list[TimelineEntry]:
        """A physiological alarm a monitor without signal quality would have raised, counted."""
        s, d = self.settings.alarms, self.settings.detector
        naive = obs.map.naive_map_mmhg
        if self._core_kind() is EventKind.FLAT_NEAR_ZERO and self._core_condition is not None:
            naive = self._core_condition[1]
        out = []
        for name, limit, delay in (
            ("hypotension", d.map_target_mmhg, s.hypotension_delay_s),
            ("map_critically_low", s.map_critical_mmhg, s.map_critical_delay_s),
        ):
            if naive is None or naive >= limit or name in conditions:
                self._naive_low_since.pop(name, None)
                self._suppressed_reported.discard(name)
                continue
            since = self._naive_low_since.setdefault(name, obs.t_s)
            if obs.t_s - since < delay or name in self._suppressed_reported:
                continue
            self._suppressed_reported.add(name)
            self.suppressed[name] += 1
            spec = self.alarms.spec(name)
            if obs.map.map_mmhg is None:
                quality = self.detector.explain(State.INSUFFICIENT_SIGNAL, obs)
            else:
                quality = f"clean beats say MAP {obs.map.map_mmhg:.0f} mmHg"
            why = (
                f"Not raised: MAP {naive:.0f} mmHg for {obs.t_s - since:.0f} s came from "
                f"artifacts ({quality})"
            )
            tr = AlarmTransition(
                obs.t_s, name, spec.priority, spec.category, Transition.SUPPRESSED, why,
                {"naive_map_mmhg": naive},
            )  # fmt: skip
            out += self._entries_for([tr])
        return out

    # ------------------------------------------------------------ entries
    def _entry_for_detector(
        self, change: StateChange | EpisodeChange, est: MapEstimate, nee: NeeReading
    ) -> TimelineEntry:
        if isinstance(change, StateChange):
            return TimelineEntry(
                change.t_s, "state", change.state.value, "", est.map_mmhg, nee.value,
                change.message, change.evidence,
            )  # fmt: skip
        return TimelineEntry(
            change.t_s, "episode", change.change, "", est.map_mmhg, nee.value, change.message,
            {"episode_start_s": change.start_s},
        )  # fmt: skip

    def _entries_for(self, transitions: list[AlarmTransition]) -> list[TimelineEntry]:
        est, nee = self.last_map, self.last_nee
        return [
            TimelineEntry(
                tr.t_s,
                tr.transition.value,
                tr.name,
                tr.priority.label,
                None if est is None else est.map_mmhg,
                None if nee is None else nee.value,
                tr.message,
                tr.evidence,
                tr,
            )
            for tr in transitions
        ]
