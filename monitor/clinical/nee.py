"""Norepinephrine-equivalent dose (NEE) from pump channels: what counts, what is held, what not.

NEE (ug/kg/min) is the sum over channels of dose x the drug's factor
(``config/drugs.toml``, Goradia 2021). The rules that matter at a bedside:

* a paused, occluded or emptied channel keeps its last dose, marked held,
  for a few minutes (a syringe swap must not end an episode), then counts 0;
* a silent pump's channels keep their dose until the serial edge declares
  the pump lost; from then NEE is unknown, never silently lower;
* a per-kg drug without a weight, or a unit the arithmetic does not know,
  makes NEE unknown; the weight is never assumed;
* a report above its drug's plausibility bounds (``config/drugs.toml``: a
  dose or a concentration no patient is given) makes that channel's dose
  unknown until a plausible report, as a silent pump's: never dropped, which
  would read NEE low;
* an unknown drug code is not counted, and second-line agents outside the
  equivalence table are shown, never summed.

``NeeTracker`` is pure book-keeping on stream time: reports, silence and
recovery go in, a ``NeeReading`` for any time comes out.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from devices.infusion import CONCENTRATION_UNITS, DOSE_UNITS, UnitError, dose_from_rate
from devices.readings import PumpReport, PumpState
from monitor.configuration.drug_table import Drug

NEE_UNIT = "ug/kg/min"
#: Pump states in which a channel delivers what its rate says.
DELIVERING = frozenset({PumpState.RUNNING, PumpState.BOLUS})


class ChannelState(enum.Enum):
    """How a channel's dose is known at one moment."""

    RUNNING = "running"  # delivering at its reported rate
    HELD = "held"  # paused/occluded/emptied: last dose held for the hold time
    STOPPED = "stopped"  # paused beyond the hold time, or never started: counts 0
    SILENT = "silent"  # its pump is lost: dose unknown
    UNKNOWN_DRUG = "unknown_drug"  # the code is not in the drug table: not counted
    UNKNOWN_UNIT = "unknown_unit"  # a unit the arithmetic cannot convert: dose unknown
    WEIGHT_MISSING = "weight_missing"  # a per-kg drug and no weight: dose unknown
    IMPLAUSIBLE = "implausible"  # beyond the drug table's plausibility bounds: dose unknown
    CONCENTRATION_UNKNOWN = "concentration_unknown"  # the pump states none: dose unknown
    CONCENTRATION_MISMATCH = "concentration_mismatch"  # pump and [drug_names] disagree: unknown


@dataclass(frozen=True)
class ChannelDose:
    """One channel at one moment: its drug, dose and what it adds to NEE.

    ``dose`` is in ``dose_unit`` (None when not known); ``nee`` is its NEE
    contribution (None when unknown, or for agents outside the table).
    """

    pump: str
    channel: int
    code: str
    drug: str | None
    state: ChannelState
    dose: float | None
    dose_unit: str | None
    nee: float | None
    counted: bool  # False for agents outside the equivalence table: shown, never summed
    second_line: bool  # vasopressin, angiotensin II, ...: named in the refractory message
    detail: str = ""

    @property
    def label(self) -> str:
        return self.drug or self.code


@dataclass(frozen=True)
class NeeReading:
    """NEE at one moment, with every channel behind it.

    ``value`` is None when NEE is unknown; ``unknown_because`` then says why.
    """

    t_s: float
    value: float | None
    channels: tuple[ChannelDose, ...]
    unknown_because: tuple[str, ...]
    text: str = field(default="", compare=False, repr=False)  # explain(), if already known

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def vasopressor_running(self) -> bool:
        """A counted drug is (or may be) delivering: its dose is above 0 or not known."""
        return any(
            c.dose is None or c.dose > 0.0
            for c in self.channels
            if c.counted and c.state is not ChannelState.STOPPED
        )

    @property
    def second_line_running(self) -> tuple[str, ...]:
        """Second-line agents delivering (or held) now, by name."""
        return tuple(
            dict.fromkeys(
                c.label
                for c in self.channels
                if c.second_line
                and c.state in (ChannelState.RUNNING, ChannelState.HELD)
                and (c.dose is None or c.dose > 0.0)
            )
        )

    def explain(self) -> str:
        """E.g. ``0.31 ug/kg/min (norepinephrine 0.21 + vasopressin 0.04 U/min)``."""
        return self.text or _explanation(self.value, self.channels, self.unknown_because)


def _explanation(
    value: float | None, channels: tuple[ChannelDose, ...], unknown_because: tuple[str, ...]
) -> str:
    parts = [
        f"{c.label} {_number(c.dose)}"
        + ("" if c.dose_unit == NEE_UNIT else f" {c.dose_unit}")
        + (f" ({c.state.value})" if c.state is not ChannelState.RUNNING else "")
        for c in channels
        if c.counted
    ]
    total = "unknown" if value is None else f"{value:.2f} {NEE_UNIT}"
    text = f"{total} ({' + '.join(parts)})" if parts else total
    also = [
        f"{c.label} {_number(c.dose)} {c.dose_unit}".rstrip()
        for c in channels
        if not c.counted
        and c.drug is not None
        and c.state in (ChannelState.RUNNING, ChannelState.HELD)
    ]
    if also:
        text += f"; also running, not summed: {', '.join(also)}"
    if unknown_because:
        text += f"; unknown: {'; '.join(unknown_because)}"
    return text


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


@dataclass
class _Channel:
    report: PumpReport  # the latest
    drug: Drug | None
    delivering: PumpReport | None  # the last report while delivering the same drug
    stopped_since_s: float | None  # when it last left a delivering state
    conflict: str | None = None  # why the latest report's dose cannot be trusted


class NeeTracker:
    """Channels by (pump, channel), updated by reports and by the serial edge's silence events."""

    def __init__(self, weight_kg: float | None, paused_hold_s: float) -> None:
        self.weight_kg = _checked_weight(weight_kg)
        self.paused_hold_s = paused_hold_s
        self._channels: dict[tuple[str, int], _Channel] = {}
        self._silent: set[str] = set()
        self._awaiting: set[str] = set()  # configured pump ports not heard from yet
        self._inputs = 0  # counts every change of the channels, silences or awaited ports
        self._last: tuple[tuple[object, ...], NeeReading] | None = None  # see ``reading``

    def observe(
        self, t_s: float, report: PumpReport, drug: Drug | None, conflict: str | None = None
    ) -> None:
        """A channel's report, stamped with stream time on arrival; ``conflict`` says why its
        dose cannot be trusted although the drug is known (its concentration is in doubt)."""
        self._inputs += 1
        key = (report.pump_id, report.channel)
        previous = self._channels.get(key)
        if previous is not None and previous.report.drug_code != report.drug_code:
            previous = None  # a new drug on the channel: nothing of the old one is held
        if report.state in DELIVERING:
            self._channels[key] = _Channel(report, drug, report, None, conflict)
        elif previous is None:
            self._channels[key] = _Channel(report, drug, None, t_s, conflict)
        else:
            since = t_s if previous.stopped_since_s is None else previous.stopped_since_s
            self._channels[key] = _Channel(report, drug, previous.delivering, since, conflict)

    def await_ports(self, roles: Iterable[str]) -> None:
        """Pump ports the monitor is configured with: until each reports, NEE is not known.

        Without this, the first seconds after a start would read a known 0
        (no channel yet) for a patient who may be on high-dose vasopressors.
        """
        self._inputs += 1
        self._awaiting = set(roles)

    def await_port(self, role: str) -> None:
        """A pump port added (or moved) by a reload: NEE is not known until it reports."""
        self._inputs += 1
        self._awaiting.add(role)

    def forget_pump(self, pump: str) -> None:
        """A pump whose port was removed by a reload: its channels are no longer counted."""
        self._inputs += 1
        self._silent.discard(pump)
        for key in [key for key in self._channels if key[0] == pump]:
            del self._channels[key]

    def port_heard(self, role: str) -> None:
        self._inputs += 1
        self._awaiting.discard(role)

    def pump_silent(self, pump: str) -> None:
        """The serial edge declared ``pump`` lost: its channels' doses are no longer known."""
        self._inputs += 1
        self._silent.add(pump)

    def pump_heard(self, pump: str) -> None:
        self._inputs += 1
        self._silent.discard(pump)

    def set_weight(self, weight_kg: float | None) -> None:
        """A corrected weight: every dose is recomputed from its report."""
        self.weight_kg = _checked_weight(weight_kg)

    def next_change_after(self, t_s: float) -> float | None:
        """The next time a held dose runs out with no new input, so a caller can wake then."""
        ends = [
            c.stopped_since_s + self.paused_hold_s
            for c in self._channels.values()
            if c.stopped_since_s is not None and c.stopped_since_s + self.paused_hold_s > t_s
        ]
        return min(ends, default=None)

    def reading(self, t_s: float) -> NeeReading:
        """NEE at stream time ``t_s`` (at or after every input so far).

        Between inputs only a hold running out changes a reading, so the last
        one is reused, at the new time, while its inputs, the weight, the hold
        time and which holds still run are the same: monitoring evaluates
        every beat and second, and pump reports are far rarer.
        """
        key = (
            self._inputs,
            self.weight_kg,
            self.paused_hold_s,
            tuple(
                t_s < c.stopped_since_s + self.paused_hold_s
                for c in self._channels.values()
                if c.stopped_since_s is not None
            ),
        )
        if self._last is not None and self._last[0] == key:
            last = self._last[1]
            return NeeReading(t_s, last.value, last.channels, last.unknown_because, last.text)
        reading = self._reading(t_s)
        self._last = (key, reading)
        return reading

    def _reading(self, t_s: float) -> NeeReading:
        channels = tuple(self._channel_dose(t_s, c) for _, c in sorted(self._channels.items()))
        unknown = tuple(f"{role}: no report yet" for role in sorted(self._awaiting)) + tuple(
            f"{c.pump}/{c.channel} {c.label}: {c.detail}"
            for c in channels
            if c.counted and c.nee is None
        )
        value = None if unknown else sum(c.nee for c in channels if c.nee is not None)
        # worked out once: the reading is reused until an input changes, and every
        # evaluation's evidence and messages quote it
        return NeeReading(t_s, value, channels, unknown, _explanation(value, channels, unknown))

    # --------------------------------------------------------------- helpers
    def _dose(self, report: PumpReport, drug: Drug) -> tuple[float | None, ChannelState, str]:
        """Dose in the drug's unit from rate and concentration (base, not salt), or why not."""
        unit = report.concentration_unit
        if report.concentration is None:
            return None, ChannelState.CONCENTRATION_UNKNOWN, "the pump states no concentration"
        if unit not in CONCENTRATION_UNITS:
            return None, ChannelState.UNKNOWN_UNIT, f"concentration unit {unit!r} not accepted"
        if DOSE_UNITS[drug.dose_unit][2] and self.weight_kg is None:
            return None, ChannelState.WEIGHT_MISSING, f"a dose in {drug.dose_unit} needs the weight"
        try:
            dose = dose_from_rate(
                report.rate_ml_h,
                report.concentration * drug.base_fraction,
                unit,
                drug.dose_unit,
                self.weight_kg,
            )
        except UnitError as exc:
            return None, ChannelState.UNKNOWN_UNIT, str(exc)
        return dose, ChannelState.RUNNING, ""

    def _implausible(self, report: PumpReport, drug: Drug) -> str | None:
        """Why ``report`` is beyond ``drug``'s plausibility bounds, or None.

        The dose is the one its rate delivers (not checked for a bolus, which
        runs at the pump's bolus rate for seconds); the concentration is
        compared as base. A unit the arithmetic cannot convert, or a missing
        weight, is left to ``_dose`` to name.
        """
        reasons = []
        if drug.max_dose is not None and report.state is not PumpState.BOLUS:
            dose, _, _ = self._dose(report, drug)
            if dose is not None and dose > drug.max_dose:
                reasons.append(
                    f"dose {dose:.6g} {drug.dose_unit} ({report.rate_ml_h:g} mL/h of "
                    f"{report.concentration:g} {report.concentration_unit}) is above the "
                    f"plausible maximum of {drug.max_dose:g} {drug.dose_unit}"
                )
        stated = CONCENTRATION_UNITS.get(report.concentration_unit)
        if (
            drug.max_concentration is not None
            and drug.max_concentration_unit is not None
            and report.concentration is not None
            and stated is not None
            and stated[0] == CONCENTRATION_UNITS[drug.max_concentration_unit][0]
        ):
            base = (
                report.concentration
                * drug.base_fraction
                * stated[1]
                / CONCENTRATION_UNITS[drug.max_concentration_unit][1]
            )
            if base > drug.max_concentration:
                as_base = "" if drug.base_fraction == 1.0 else f" ({base:.4g} base)"
                reasons.append(
                    f"concentration {report.concentration:g} {report.concentration_unit}"
                    f"{as_base} is above the plausible maximum of {drug.max_concentration:g} "
                    f"{drug.max_concentration_unit}"
                )
        return "; ".join(reasons) + " (drug table)" if reasons else None

    def _channel_dose(self, t_s: float, c: _Channel) -> ChannelDose:
        report, drug = c.report, c.drug
        dose: float | None = None
        held = (
            c.stopped_since_s is not None
            and c.delivering is not None
            and t_s < c.stopped_since_s + self.paused_hold_s
        )
        implausible = None
        if drug is not None:
            implausible = self._implausible(report, drug)
            if implausible is None and held and c.delivering is not None:
                implausible = self._implausible(c.delivering, drug)
        if drug is None:
            state, detail = ChannelState.UNKNOWN_DRUG, f"code {report.drug_code!r} not in the table"
        elif report.pump_id in self._silent:
            state, detail = ChannelState.SILENT, f"pump {report.pump_id} not heard"
        elif c.conflict is not None:
            state, detail = ChannelState.CONCENTRATION_MISMATCH, c.conflict
        elif implausible is not None:
            state, detail = ChannelState.IMPLAUSIBLE, f"implausible: {implausible}"
        elif c.stopped_since_s is None:
            dose, state, detail = self._dose(report, drug)
        elif c.delivering is not None and held:
            dose, state, detail = self._dose(c.delivering, drug)
            if state is ChannelState.RUNNING:
                state = ChannelState.HELD
                detail = f"{report.state.value} since {c.stopped_since_s:.0f} s: last dose held"
        else:
            dose, state, detail = 0.0, ChannelState.STOPPED, report.state.value
        factor = None if drug is None else drug.nee_factor
        return ChannelDose(
            report.pump_id,
            report.channel,
            report.drug_code,
            None if drug is None else drug.name,
            state,
            dose,
            None if drug is None else drug.dose_unit,
            None if dose is None or factor is None else dose * factor,
            factor is not None,
            drug is not None and drug.second_line,
            detail,
        )


def _checked_weight(weight_kg: float | None) -> float | None:
    if weight_kg is not None and not (math.isfinite(weight_kg) and weight_kg > 0.0):
        raise ValueError(f"weight must be a positive number of kg, got {weight_kg!r}")
    return weight_kg
