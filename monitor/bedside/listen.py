"""The engineer's bench view: serial edge and beat core, summarised line by line.

Before the clinical layer is trusted with a device, an engineer wants to
see that its bytes become samples, beats and pump reports on the right
clock. ``Listener`` runs the readers and the core and turns what happens
into text lines: a device event as soon as it happens, and a summary of
the latest beats and pump channels at a steady wall-clock cadence.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np

from devices.readings import PumpReport, SampleBlock
from monitor.core.beat_stream import BeatStream
from monitor.core.beat_types import EventKind
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import DeviceEvent, PumpObservation

SUMMARY_WINDOW_S = 10.0


def summary_line(
    t_s: float, beats: Iterable[np.void], channels: dict[tuple[str, int], PumpReport]
) -> str:
    """One line: clean-beat medians over the window, and every pump channel's last report."""
    recent = list(beats)
    clean = [b for b in recent if b["clean"]]
    if clean:

        def median(key: str) -> float:
            return float(np.median([b[key] for b in clean]))

        pressure = (
            f"MAP {median('map'):5.1f}  {median('sbp'):3.0f}/{median('dbp'):<3.0f} "
            f"PR {median('pulse_rate'):3.0f}"
        )
    else:
        pressure = "MAP   --   --/--  PR  --"
    share = f"{100 * len(clean) / len(recent):3.0f}%" if recent else "  --"
    pumps = "  ".join(
        f"{pump}/{channel} {r.drug_code} {r.rate_ml_h:.2f} mL/h {r.state.value}"
        for (pump, channel), r in sorted(channels.items())
    )
    return f"{t_s:9.1f}s  {pressure}  clean {share} of {len(recent):3d}  {pumps}".rstrip()


class Listener:
    """Feeds ``DeviceInput`` items to a ``BeatStream`` and reports in lines."""

    def __init__(self, device_input: DeviceInput, beat_stream: BeatStream) -> None:
        self.input = device_input
        self.beats = beat_stream
        self.fs = device_input.stream_clock.fs
        self._recent: deque[np.void] = deque()
        self._channels: dict[tuple[str, int], PumpReport] = {}
        self.beat_count = 0
        self.clean_count = 0
        self.reports = 0

    def run(
        self,
        emit: Callable[[str], None],
        *,
        until_s: float | None = None,
        stop: threading.Event | None = None,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> float:
        """Run until stream time ``until_s`` or ``stop``; return the stream time reached."""
        stop = stop or threading.Event()
        next_line = clock() + every_s
        now_s = 0.0
        while not stop.is_set() and (until_s is None or now_s < until_s):
            for item in self.input.poll(0.05):
                self._take(item, emit)
            now_s = self.input.now(clock())
            if clock() >= next_line:
                next_line += every_s
                emit(summary_line(now_s, self._recent, self._channels))
        return now_s

    def _take(
        self, item: SampleBlock | PumpObservation | DeviceEvent, emit: Callable[[str], None]
    ) -> None:
        if isinstance(item, DeviceEvent):
            emit(f"{item.t_s:9.1f}s  {item.kind.value}: {item.message}")
        elif isinstance(item, PumpObservation):
            self.reports += 1
            if isinstance(item.sentence, PumpReport):
                self._channels[(item.sentence.pump_id, item.sentence.channel)] = item.sentence
        else:
            output = self.beats.push(item)
            self.beat_count += len(output.beats)
            self.clean_count += int(np.count_nonzero(output.beats["clean"]))
            self._recent.extend(output.beats)
            for event in output.events:
                what = EventKind(int(event["kind"])).name.lower()
                edge = "began" if event["begin"] else "ended"
                t_s = int(event["index"]) / self.fs
                emit(f"{t_s:9.1f}s  core: {what} {edge} (level {event['level_mmhg']:.1f} mmHg)")
            horizon = item.end - SUMMARY_WINDOW_S * self.fs
            while self._recent and self._recent[0]["onset"] < horizon:
                self._recent.popleft()
