"""Sample blocks in, beats out: the beat core plus what the transducer itself said.

The core judges a beat by its shape; the front end knows things the shape
cannot show: zeroing in progress, a transducer fault, a saturated ADC. A
beat that overlaps samples so flagged is marked with the matching quality
flag and is never clean, whatever it looks like.
"""

from __future__ import annotations

import functools
from collections import deque

from devices.readings import SampleBlock, TransducerStatus
from monitor import core
from monitor.core.beat_types import DetectorOutput, DetectorSettings, Quality

STATUS_QUALITY = {
    TransducerStatus.ZEROING: Quality.ZEROING,
    TransducerStatus.FAULT: Quality.TRANSDUCER_FAULT,
    TransducerStatus.OVERRANGE: Quality.CLIPPED,
}


@functools.cache
def status_quality(status: TransducerStatus) -> int:
    """The beat quality flags a transducer status implies (cached: flag arithmetic on an
    enum costs more than the rest of a block's bookkeeping)."""
    return int(sum(q for flag, q in STATUS_QUALITY.items() if status & flag))


class BeatStream:
    """Feeds contiguous sample blocks to the beat core and applies the transducer's status."""

    def __init__(self, fs: float, settings: DetectorSettings | None = None) -> None:
        self.detector = core.BeatDetector(fs, settings)
        self._flagged: deque[tuple[int, int, int]] = deque()  # [start, end), quality bits

    @property
    def samples_seen(self) -> int:
        return self.detector.samples_seen

    def push(self, block: SampleBlock) -> DetectorOutput:
        """Beats and no-pulse events completed by this block (blocks must follow each other)."""
        seen = self.detector.samples_seen
        if block.start != seen:
            raise ValueError(f"sample block starts at {block.start}, the stream is at {seen}")
        quality = status_quality(block.status)
        if quality:
            last = self._flagged[-1] if self._flagged else None
            if last is not None and last[1] == block.start and last[2] == quality:
                self._flagged[-1] = (last[0], block.end, quality)
            else:
                self._flagged.append((block.start, block.end, quality))
        return self._mark(self.detector.push(block.samples))

    def finish(self) -> DetectorOutput:
        return self._mark(self.detector.finish())

    def _mark(self, output: DetectorOutput) -> DetectorOutput:
        beats = output.beats
        if not self._flagged or not len(beats):
            return output
        for start, end, quality in self._flagged:
            hit = (beats["onset"] < end) & (beats["end"] > start)
            if hit.any():
                beats["quality"][hit] |= quality
                beats["clean"][hit] = False
        # Beats come out in onset order: a stretch that ended before this
        # output's last onset can touch no later beat.
        last_onset = int(beats["onset"][-1])
        while self._flagged and self._flagged[0][1] <= last_onset:
            self._flagged.popleft()
        return DetectorOutput(beats, output.events)
