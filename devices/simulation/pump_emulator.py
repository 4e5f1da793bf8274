"""A simulated infusion pump speaking the pump sentence protocol, driven by a scenario.

The pump follows its channels' titration schedules (devices.simulation.scenario) and
sends what devices/protocols/pump.py specifies, in version 2 (``PMST2``/``PMHB2``,
CRC-16) unless it is asked to speak version 1 (to try a monitor configured for v1):

* a channel is silent until its first step, then reports (a status sentence) at
  every step time, immediately;
* on the grid ``k * heartbeat_s`` (k = 0, 1, ...) the pump sends a status
  sentence for every channel that has started, then one heartbeat; a step
  falling exactly on a grid time is reported once;
* sentences due at one instant go out in channel order, heartbeat last;
* during a silent period ``[start, end)`` nothing at all is sent, and the
  sequence counter does not advance (a pump that is off the wire sends
  nothing, so nothing is lost: the receiver sees no sequence gap, only a
  silence). A step taken while silent is first seen on the next grid time
  after the silence;
* the sequence counter, shared by all channels of the pump, starts at 0 and
  counts every sentence sent, modulo 65536;
* a report carries the step's rate, state, and, when the infusion has a
  dose unit, its dose; paused or occluded channels report the held rate
  and dose as a pump's display does (whether they deliver is for the
  clinical layer to decide from the state).

What is sent is a pure function of scenario time: however an interval is
split into calls, the sentences and their sequence numbers are the same.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from devices.protocols.pump import (
    DEFAULT_PROTOCOL,
    SEQUENCE_MODULUS,
    PumpProtocol,
    encode_heartbeat,
    encode_report,
    sentence_format,
)
from devices.readings import PumpHeartbeat, PumpReport
from devices.simulation.scenario import InfusionSpec, InfusionStep, PumpSpec


class _Channel:
    """One infusion and the start times of its steps, for lookup by time."""

    def __init__(self, infusion: InfusionSpec) -> None:
        self.infusion = infusion
        self.times = [step.t_s for step in infusion.steps]

    def step_at(self, t_s: float) -> InfusionStep | None:
        """The step in force at ``t_s`` (None before the first)."""
        i = bisect_right(self.times, t_s)
        return self.infusion.steps[i - 1] if i else None


class PumpEmulator:
    """One simulated pump (all its channels) following the scenario's titration schedule."""

    def __init__(
        self,
        pump: PumpSpec,
        infusions: Sequence[InfusionSpec],
        protocol: PumpProtocol = DEFAULT_PROTOCOL,
    ) -> None:
        sentence_format(protocol)  # an unknown version fails here, not at the first sentence
        for infusion in infusions:
            if infusion.pump_id != pump.pump_id:
                raise ValueError(
                    f"infusion on pump {infusion.pump_id!r} given to pump {pump.pump_id!r}"
                )
        channels = sorted(infusions, key=lambda i: i.channel)
        for a, b in zip(channels, channels[1:], strict=False):
            if a.channel == b.channel:
                raise ValueError(f"pump {pump.pump_id} has two infusions on channel {a.channel}")
        if not (math.isfinite(pump.heartbeat_s) and pump.heartbeat_s > 0.0):
            raise ValueError(f"heartbeat_s must be above 0, got {pump.heartbeat_s!r}")
        self.pump = pump
        self.protocol = protocol
        self._channels = [_Channel(i) for i in channels]
        # Every step of every channel, in time order: (t_s, channel position).
        self._changes = sorted(
            (step.t_s, n) for n, c in enumerate(self._channels) for step in c.infusion.steps
        )
        # Sentences generated so far: every one due before the latest time asked for.
        self._times: list[float] = []
        self._wire: list[bytes] = []
        self._forgotten_before = -math.inf
        self._next_tick = 0
        self._next_change = 0
        self._sequence = 0

    def sentences_between(self, t0_s: float, t1_s: float) -> list[tuple[float, bytes]]:
        """(scenario time, wire bytes) of every sentence due in ``[t0_s, t1_s)``, in time order."""
        if not math.isfinite(t1_s):
            raise ValueError(f"t1_s must be finite, got {t1_s!r}")
        if not t1_s > t0_s:
            return []
        if t0_s < self._forgotten_before:
            raise ValueError(
                f"sentences before {self._forgotten_before:g} s were forgotten;"
                f" asked from {t0_s:g} s"
            )
        self._generate_before(t1_s)
        lo, hi = bisect_left(self._times, t0_s), bisect_left(self._times, t1_s)
        return list(zip(self._times[lo:hi], self._wire[lo:hi], strict=True))

    def forget_before(self, t_s: float) -> None:
        """Drop the sentences due before ``t_s``: a player only moves forward, and a day of two
        pumps' sentences kept for nothing is about 0.7 MB an hour."""
        behind = bisect_left(self._times, t_s)
        del self._times[:behind], self._wire[:behind]
        self._forgotten_before = max(self._forgotten_before, t_s)

    def _generate_before(self, t1_s: float) -> None:
        """Generate, in order, every instant with sentences due before ``t1_s``."""
        heartbeat = self.pump.heartbeat_s
        while True:
            tick = self._next_tick * heartbeat
            change = (
                self._changes[self._next_change][0]
                if self._next_change < len(self._changes)
                else math.inf
            )
            t = min(tick, change)
            if t >= t1_s:
                return
            changed: set[int] = set()
            while (
                self._next_change < len(self._changes) and self._changes[self._next_change][0] == t
            ):
                changed.add(self._changes[self._next_change][1])
                self._next_change += 1
            is_tick = tick == t
            if is_tick:
                self._next_tick += 1
            if not self._silent(t):
                self._send(t, changed, is_tick)

    def _silent(self, t_s: float) -> bool:
        return any(start <= t_s < end for start, end in self.pump.silent)

    def _send(self, t_s: float, changed: set[int], is_tick: bool) -> None:
        for n, channel in enumerate(self._channels):
            step = channel.step_at(t_s)
            if step is not None and (is_tick or n in changed):
                report = self._report(channel.infusion, step)
                self._emit(t_s, encode_report(report, self.protocol))
        if is_tick:
            heartbeat = PumpHeartbeat(self.pump.pump_id, self._sequence)
            self._emit(t_s, encode_heartbeat(heartbeat, self.protocol))

    def _report(self, infusion: InfusionSpec, step: InfusionStep) -> PumpReport:
        with_dose = infusion.dose_unit is not None and step.dose is not None
        return PumpReport(
            pump_id=self.pump.pump_id,
            channel=infusion.channel,
            sequence=self._sequence,
            drug_code=infusion.drug_code,
            concentration=infusion.concentration,
            concentration_unit=infusion.concentration_unit,
            rate_ml_h=step.rate_ml_h,
            state=step.state,
            dose=step.dose if with_dose else None,
            dose_unit=infusion.dose_unit if with_dose else None,
        )

    def _emit(self, t_s: float, data: bytes) -> None:
        self._times.append(t_s)
        self._wire.append(data)
        self._sequence = (self._sequence + 1) % SEQUENCE_MODULUS
