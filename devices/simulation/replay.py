"""Replay a recorded pressure trace as a live transducer stream.

A recording (WFDB or CSV, read by the caller) becomes the sample source of
a simulated front end, so the monitor receives the real signal through the
real wire format and reader, at real time or faster. Stretches the
recording lacks (NaN) are sent as lost frames, as a real front end's
dropout would look.
"""

from __future__ import annotations

import math

import numpy as np

from devices.simulation.transducer_emulator import TransducerFrontEnd, Transmission


def replay_front_end(
    samples: np.ndarray,
    fs: float,
    *,
    frame_samples: int | None = None,
    protocol: str = "binary",
) -> TransducerFrontEnd:
    """A front end that sends ``samples`` (mmHg at ``fs`` Hz) as its stream.

    ``fs`` must be a whole number of Hz, because the wire carries it as one;
    by default a frame holds 40 ms of samples, as a front end would send.
    """
    if not (math.isfinite(fs) and fs == round(fs) and 1 <= fs <= 0xFFFF):
        raise ValueError(f"replay needs a whole-number sampling rate in Hz, got {fs!r}")
    rate = int(round(fs))
    trace = np.asarray(samples, dtype=np.float64)
    if trace.ndim != 1 or not len(trace):
        raise ValueError("replay needs a non-empty one-dimensional trace")
    per_frame = frame_samples or max(1, round(rate / 25))
    return TransducerFrontEnd(
        lambda start, end: trace[start:end],
        len(trace),
        rate,
        frame_samples=per_frame,
        protocol=protocol,
    )


class ReplayPlayer:
    """A recording as the only device of a bedside, for ``devices.simulation.simulator.play``."""

    def __init__(self, front_end: TransducerFrontEnd, n_samples: int) -> None:
        self.front_end = front_end
        self.duration_s = n_samples / front_end.fs
        self.devices = [front_end.device]
        self.t_s = 0.0

    @property
    def done(self) -> bool:
        return self.front_end.done

    def hear(self, device: str, data: bytes) -> list[Transmission]:
        """A recording plays on whatever the host sends: it answers nothing."""
        return []

    def advance(self, until_s: float) -> list[Transmission]:
        self.t_s = min(max(self.t_s, until_s), self.duration_s)
        return self.front_end.transmissions_until(self.t_s)
