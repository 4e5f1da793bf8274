"""The one clock for clinical time: sample index / sampling rate.

Every clinical timer (alarm delays, sustain times, episodes, pump silence)
runs on stream time, so a replay at 60x and a live bed give the same
timeline for the same data, and a wall-clock step never stretches an
episode. While the transducer is silent there are no samples to count, so
stream time is carried forward by the monotonic clock (after a short grace
that absorbs normal serial jitter). When samples resume, the gap is filled
with missing samples so that stream time never runs backwards past a time
it has already handed out (a pump report stamped during the silence stays
before the samples that follow it).

Silence is the transducer's, never the monitor's own: while samples that
arrived wait uncounted (the loop fell behind: a slow disk, a stalled host),
the transducer was not silent, and stream time is what has been counted;
and while the monitor itself was not running (``exclude``: the whole host
stalled), it cannot have heard a silence. A stall of the host must not
become stream time the patient's data never had (nor the missing samples
that would then pad it).
"""

from __future__ import annotations

import math

DEFAULT_SILENCE_GRACE_S = 0.5  # longer than any frame interval plus serial buffering
DEFAULT_COMM_LOSS_S = 10.0  # stream time without a valid frame before a port counts as lost


class StreamClock:
    """Counts samples into stream time and bridges transducer silence with the monotonic clock.

    ``samples`` is the number of samples the core has been (or is about to
    be) given, missing ones included; ``now(mono)`` is the current stream
    time in seconds.
    """

    def __init__(
        self, fs: float, start_mono: float, silence_grace_s: float = DEFAULT_SILENCE_GRACE_S
    ):
        if not (math.isfinite(fs) and fs > 0.0):
            raise ValueError(f"sampling rate must be a positive number of Hz, got {fs!r}")
        self.fs = float(fs)
        self.samples = 0
        self.silence_grace_s = silence_grace_s
        self._last_sample_mono = start_mono
        self._issued_s = 0.0

    def now(self, mono: float, *, samples_waiting: bool = False) -> float:
        """Stream time at monotonic time ``mono``; never less than a time already returned.

        ``samples_waiting``: samples have arrived that are not counted yet, so
        the transducer is not silent, however long ago the last counted ones came.
        """
        sample_time = self.samples / self.fs
        silent_for = mono - self._last_sample_mono
        if silent_for > self.silence_grace_s and not samples_waiting:
            sample_time += silent_for
        self._issued_s = max(self._issued_s, sample_time)
        return self._issued_s

    def exclude(self, away_s: float, mono: float) -> None:
        """The monitor was away ``away_s`` up to ``mono``: no silence of the transducer."""
        self._last_sample_mono = min(mono, self._last_sample_mono + away_s)

    def silent_for(self, mono: float) -> float:
        """Seconds of monotonic time since the last samples arrived."""
        return mono - self._last_sample_mono

    def is_silent(self, mono: float) -> bool:
        """True once no sample has arrived for longer than the grace."""
        return mono - self._last_sample_mono > self.silence_grace_s

    def admit(self, n_new: int, missing_by_sequence: int, mono: float) -> int:
        """Count ``n_new`` samples arriving at ``mono``; return how many missing ones go first.

        The fill is the largest of: what the sequence says was lost; after
        a silence, the silent span less the new samples (a front end
        without a sequence, such as ASCII, or one that restarted); and what
        keeps stream time at or after every time already handed out.
        """
        fill = max(0, missing_by_sequence)
        if self.is_silent(mono):
            silent_samples = math.floor((mono - self._last_sample_mono) * self.fs) - n_new
            fill = max(fill, silent_samples)
        behind = math.ceil(self._issued_s * self.fs - 1e-9) - self.samples
        fill = max(fill, behind)
        self.samples += fill + n_new
        self._last_sample_mono = mono
        return fill
