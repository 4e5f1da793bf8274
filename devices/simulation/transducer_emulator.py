"""A simulated transducer front end: a sample source in, the bytes it would send out.

The front end samples at an integer rate and sends a frame as soon as its
last sample is taken, so a frame of samples ``[k, k + n)`` leaves at stream
time ``(k + n) / fs``. It can be told which stretches carry a status flag
(zeroing, fault), which frames never make it onto the wire (dropouts: the
sequence then jumps, exactly as a lost frame looks to the monitor), and
when to spit out garbage bytes. Non-finite samples (gaps in a replayed
recording) are never sent either: the frames holding them are lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from devices.protocols.transducer import FIXED_POINT_MMHG, Calibration, encode_ascii, encode_frame
from devices.readings import TransducerStatus

PROTOCOLS = ("binary", "ascii")
SampleSource = Callable[[int, int], np.ndarray]


class Transmission(NamedTuple):
    """Bytes a simulated device sends at scenario time ``t_s``."""

    t_s: float
    device: str
    data: bytes


class Stretch(NamedTuple):
    """Samples ``[start, end)`` that carry a status, or are dropped."""

    start: int
    end: int
    status: TransducerStatus = TransducerStatus(0)


class TransducerFrontEnd:
    """Cuts a sample source into wire frames, in order, up to any scenario time."""

    def __init__(
        self,
        source: SampleSource,
        n_samples: int,
        fs: int,
        *,
        device: str = "transducer",
        frame_samples: int = 25,
        protocol: str = "binary",
        calibration: Calibration = FIXED_POINT_MMHG,
        flagged: Sequence[Stretch] = (),
        dropped: Sequence[Stretch] = (),
        garbage: Sequence[tuple[float, bytes]] = (),
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"transducer protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if not (isinstance(fs, int) and 1 <= fs <= 0xFFFF):
            raise ValueError(f"a front end samples at a whole number of Hz, got {fs!r}")
        self.fs = fs
        self.device = device
        self._source = source
        self._n = n_samples
        self._frame = frame_samples
        self._protocol = protocol
        self._calibration = calibration
        self._flagged = list(flagged)
        self._dropped = list(dropped)
        self._garbage = sorted(garbage)
        self._next = 0  # first sample of the next frame
        self._next_garbage = 0
        self.frames_sent = 0
        self.frames_dropped = 0

    @property
    def done(self) -> bool:
        return self._next >= self._n and self._next_garbage >= len(self._garbage)

    def transmissions_until(self, until_s: float) -> list[Transmission]:
        """Every frame whose last sample is taken by ``until_s``, and garbage due by then."""
        out = []
        last = min(self._n, math.floor(until_s * self.fs + 1e-9))
        while self._next < last:
            start, end = self._next, min(self._next + self._frame, self._n)
            if end > last:
                break
            self._next = end
            data = self._encode(start, end)
            if data is None:
                self.frames_dropped += 1
            else:
                self.frames_sent += 1
                out.append(Transmission(end / self.fs, self.device, data))
        while self._next_garbage < len(self._garbage):
            t_s, noise = self._garbage[self._next_garbage]
            if t_s > until_s:
                break
            out.append(Transmission(t_s, self.device, noise))
            self._next_garbage += 1
        out.sort(key=lambda tx: tx.t_s)
        return out

    def _encode(self, start: int, end: int) -> bytes | None:
        if any(s.start < end and s.end > start for s in self._dropped):
            return None
        samples = self._source(start, end)
        if not np.all(np.isfinite(samples)):
            return None
        if self._protocol == "ascii":
            return encode_ascii(samples)
        status = TransducerStatus(0)
        for stretch in self._flagged:
            if stretch.start < end and stretch.end > start:
                status |= stretch.status
        return encode_frame(
            samples,
            sequence=start % (1 << 32),
            sample_rate=self.fs,
            status=status,
            calibration=self._calibration,
        )
