"""What a bedside screen shows at one moment, as plain data, and its one-line text form.

The curses display and the headless line-per-second mode draw the same
``BedsideView``, taken from the running engine by ``snapshot``; keeping the
picture as data lets both be tested without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from devices.readings import SampleBlock
from monitor.bedside.chain import Bedside
from monitor.clinical.alarm_types import ActiveAlarm, Priority
from monitor.clinical.nee import NEE_UNIT, ChannelDose
from monitor.clinical.refractory import Phase

WAVEFORM_S = 6.0  # the sweep the display draws


def clock_text(seconds: float) -> str:
    """``hh:mm:ss`` of a stream time or a duration (hours may pass 24)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class WaveformTail:
    """The last few seconds of the transducer's samples, NaN where none arrived.

    A ring: adding a 25-sample frame 40 times a second writes 25 values, where
    shifting the whole sweep would copy 6000.
    """

    def __init__(self, fs: float, seconds: float = WAVEFORM_S) -> None:
        self.fs = fs
        self._ring = np.full(max(1, int(round(seconds * fs))), np.nan)
        self._end = 0  # stream index just past the newest sample

    def add(self, block: SampleBlock) -> None:
        """A block of the stream, in stream order; a jump ahead leaves NaN between."""
        size = len(self._ring)
        if block.end > self._end:
            self._clear(max(self._end, block.end - size), block.end)
            self._end = block.end
        first = max(block.start, self._end - size)  # older samples fell off the sweep
        if first < block.end and not block.missing:
            self._ring[np.arange(first, block.end) % size] = block.samples[first - block.start :]

    def _clear(self, start: int, end: int) -> None:
        self._ring[np.arange(start, end) % len(self._ring)] = np.nan

    def samples(self) -> np.ndarray:
        """The sweep, oldest sample first, ending at the newest."""
        return np.roll(self._ring, -(self._end % len(self._ring)))


@dataclass(frozen=True)
class BedsideView:
    """Everything on the screen; None means not known (shown as dashes, never as 0)."""

    t_s: float
    waveform: np.ndarray
    fs: float
    map_mmhg: float | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    pulse_rate_bpm: float | None
    clean_share: float | None
    map_target_mmhg: float
    nee: float | None
    nee_threshold: float
    nee_unknown_because: tuple[str, ...]
    drugs: tuple[str, ...]
    state: str | None
    state_for_s: float
    episode: str | None
    alarms: tuple[ActiveAlarm, ...]
    audible: Priority | None


def snapshot(bedside: Bedside, waveform: WaveformTail) -> BedsideView:
    """The engine's state now, as the screen shows it."""
    engine = bedside.engine
    t_s = engine.now_s
    estimate = engine.last_map
    nee = engine.last_nee
    detector = engine.detector
    settings = engine.settings.detector
    annunciation = engine.alarms.annunciation(t_s)
    episode = None
    if detector.phase is Phase.PENDING and detector.episode_start_s is not None:
        episode = (
            f"refractory criteria met for {clock_text(t_s - detector.episode_start_s)} "
            f"(alarm after {settings.sustain_s / 60:.0f} min)"
        )
    elif detector.phase is Phase.CONFIRMED and detector.episode_start_s is not None:
        episode = f"refractory episode for {clock_text(t_s - detector.episode_start_s)}"
    return BedsideView(
        t_s=t_s,
        waveform=waveform.samples(),
        fs=waveform.fs,
        map_mmhg=None if estimate is None else estimate.map_mmhg,
        systolic_mmhg=None if estimate is None else estimate.systolic_mmhg,
        diastolic_mmhg=None if estimate is None else estimate.diastolic_mmhg,
        pulse_rate_bpm=None if estimate is None else estimate.pulse_rate_bpm,
        clean_share=None if estimate is None or not estimate.beats else estimate.clean_coverage,
        map_target_mmhg=settings.map_target_mmhg,
        nee=None if nee is None else nee.value,
        nee_threshold=settings.nee_threshold,
        nee_unknown_because=() if nee is None else nee.unknown_because,
        drugs=() if nee is None else tuple(drug_text(c) for c in nee.channels),
        state=None if detector.state is None else detector.state.value,
        state_for_s=t_s - detector.state_since_s,
        episode=episode,
        alarms=annunciation.alarms,
        audible=annunciation.audible,
    )


def drug_text(channel: ChannelDose) -> str:
    """``norepinephrine 0.30 ug/kg/min (pump1/1 running)``."""
    name = channel.drug or channel.code
    dose = "--" if channel.dose is None else f"{channel.dose:.2f} {channel.dose_unit}"
    return f"{name} {dose} ({channel.pump}/{channel.channel} {channel.state.value})"


def number(value: float | None, digits: int = 0) -> str:
    return "--" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def alarm_text(alarm: ActiveAlarm) -> str:
    marks = [m for m, on in (("ack", alarm.acknowledged), ("paused", alarm.audio_paused)) if on]
    if not alarm.condition_active:
        marks.append("latched")
    return f"{alarm.priority.name} {alarm.name}" + (f" [{', '.join(marks)}]" if marks else "")


def plain_line(view: BedsideView) -> str:
    """The headless mode's line: one a second, everything a nurse would glance at."""
    pressure = (
        f"MAP {number(view.map_mmhg)} ({number(view.systolic_mmhg)}/"
        f"{number(view.diastolic_mmhg)}) PR {number(view.pulse_rate_bpm)}"
    )
    clean = "--" if view.clean_share is None else f"{100 * view.clean_share:.0f}%"
    nee = f"NEE {number(view.nee, 2)} {NEE_UNIT}"
    if view.nee is None and view.nee_unknown_because:
        nee += f" ({'; '.join(view.nee_unknown_because)})"
    state = f"{view.state or 'starting'} {clock_text(view.state_for_s)}"
    if view.episode:
        state += f", {view.episode}"
    alarms = ", ".join(alarm_text(a) for a in view.alarms) or "no alarms"
    return f"{clock_text(view.t_s)}  {pressure} clean {clean} | {nee} | {state} | {alarms}"
