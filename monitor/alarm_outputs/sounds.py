"""Auditory alarm signals in the IEC 60601-1-8 pattern, synthesised as PCM.

A burst is a group of pulses whose count and rhythm encode the priority:
high = 10 pulses in the rhythm 3+2, pause, 3+2; medium = 3 pulses; low = 2.
Each pulse is a tone with a fundamental in 150-1000 Hz and four harmonics
within -15 dB of it, with raised-cosine rise and fall so that it never clicks.

The timing below uses typical values from the ranges of IEC 60601-1-8 tables 3
(burst) and 4 (pulse) as commonly summarised; they were not checked against
the standard's own text. Pulse duration ``td`` and spacing are measured here
from the start of the rise to the end of the fall, and from the end of one
fall to the start of the next rise; measured at the half-amplitude points
instead, every value still lies in its range.

| | high | medium | low | range (typical summary) |
|---|---|---|---|---|
| pulses per burst | 10 (3+2, 3+2) | 3 | 2 | 10 / 3 / 1-2 |
| fundamental | 660 Hz | 520 Hz | 440 Hz | 150-1000 Hz |
| pulse duration td | 150 ms | 200 ms | 200 ms | high 75-200, medium/low 125-250 ms |
| pulse spacing | x = 100 ms | y = 200 ms | y = 200 ms | x 50-125 ms, y 125-250 ms |
| 3rd-4th, 8th-9th spacing | 2x + td = 350 ms | | | 2x + td |
| 5th-6th spacing | 700 ms | | | 0.35-1.30 s |
| rise and fall | 20 ms | 20 ms | 20 ms | 10-20 % of td |
| interburst interval | 10 s | 20 s | 30 s | high 2.5-15 s, medium 2.5-30 s, low > 15 s |

Higher pitch for higher priority is our choice (pitch raises perceived
urgency: Edworthy, Loxley and Dennis, Human Factors 1991). The fundamentals
stay at or below 800 Hz so that the 2nd to 5th harmonics all fall within
300-4000 Hz, whether or not the fundamental counts as one of the four.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass

import numpy as np

from monitor.clinical.alarm_types import Priority

DEFAULT_SAMPLE_RATE = 16000
RAMP_S = 0.020  # rise and fall: long enough to be click-free, short enough to keep 10 % of td
LEVEL = 0.5  # peak amplitude as a fraction of full scale (-6 dBFS); loudness is the mixer's job
#: Relative amplitudes of the fundamental and harmonics 2-5: 0, -3, -6, -9, -12 dB.
HARMONIC_AMPLITUDES = (1.0, 0.7, 0.5, 0.35, 0.25)


@dataclass(frozen=True)
class BurstPattern:
    """One priority's burst: the tone, the pulse length and where each pulse starts."""

    fundamental_hz: float
    pulse_s: float  # td, start of the rise to the end of the fall
    onsets_s: tuple[float, ...]  # start of each pulse's rise, from the start of the burst
    repeat_interval_s: float  # silence from the end of one burst to the start of the next

    @property
    def duration_s(self) -> float:
        return self.onsets_s[-1] + self.pulse_s


def _onsets(pulse_s: float, spacings_s: tuple[float, ...]) -> tuple[float, ...]:
    """Pulse starts from the silences between consecutive pulses."""
    onsets = [0.0]
    for spacing in spacings_s:
        onsets.append(round(onsets[-1] + pulse_s + spacing, 6))
    return tuple(onsets)


_TD_HIGH, _X = 0.150, 0.100
_TD_LOW, _Y = 0.200, 0.200
_HIGH_PAUSE = 0.700  # between the 5th and 6th pulse
_TWO_X_TD = 2 * _X + _TD_HIGH  # where a 4th pulse of the group would be: "3+2"

PATTERNS: dict[Priority, BurstPattern] = {
    Priority.HIGH: BurstPattern(
        fundamental_hz=660.0,
        pulse_s=_TD_HIGH,
        onsets_s=_onsets(_TD_HIGH, (_X, _X, _TWO_X_TD, _X, _HIGH_PAUSE, _X, _X, _TWO_X_TD, _X)),
        repeat_interval_s=10.0,
    ),
    Priority.MEDIUM: BurstPattern(
        fundamental_hz=520.0,
        pulse_s=_TD_LOW,
        onsets_s=_onsets(_TD_LOW, (_Y, _Y)),
        repeat_interval_s=20.0,
    ),
    Priority.LOW: BurstPattern(
        fundamental_hz=440.0,
        pulse_s=_TD_LOW,
        onsets_s=_onsets(_TD_LOW, (_Y,)),
        repeat_interval_s=30.0,
    ),
}


def pattern(priority: Priority) -> BurstPattern:
    """The burst of an alarm priority; information signals have none."""
    try:
        return PATTERNS[Priority(priority)]
    except KeyError:
        raise ValueError(f"no auditory alarm signal for priority {priority!r}") from None


def pulse_onsets(priority: Priority) -> tuple[float, ...]:
    """Start of each pulse in a burst, seconds from the start of the burst."""
    return pattern(priority).onsets_s


def fundamental_hz(priority: Priority) -> float:
    """Pitch of the burst's pulses; harmonics 2 to 5 sound with it."""
    return pattern(priority).fundamental_hz


def burst_duration_s(priority: Priority) -> float:
    """Start of the first pulse's rise to the end of the last pulse's fall."""
    return pattern(priority).duration_s


def repeat_interval_s(priority: Priority) -> float:
    """Silence between the end of one burst and the start of the next."""
    return pattern(priority).repeat_interval_s


def _pulse(f0: float, pulse_s: float, sample_rate: int) -> np.ndarray:
    """One pulse, peak 1.0: harmonic tone under a raised-cosine rise and fall."""
    n = round(pulse_s * sample_rate)
    t = np.arange(n) / sample_rate
    tone = sum(
        a * np.sin(2.0 * np.pi * k * f0 * t) for k, a in enumerate(HARMONIC_AMPLITUDES, start=1)
    )
    tone /= np.max(np.abs(tone))
    n_ramp = round(RAMP_S * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_ramp) / n_ramp)  # 0 -> just under 1
    envelope = np.ones(n)
    envelope[:n_ramp] = ramp
    envelope[n - n_ramp :] = ramp[::-1]
    return tone * envelope


def burst(priority: Priority, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """One burst of ``priority`` as mono 16-bit PCM (numpy int16), silent at both ends."""
    p = pattern(priority)
    top_harmonic_hz = p.fundamental_hz * len(HARMONIC_AMPLITUDES)
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 2 * top_harmonic_hz:
        raise ValueError(
            f"sample rate must be an integer above {2 * top_harmonic_hz:.0f} Hz "
            f"to carry the harmonics up to {top_harmonic_hz:.0f} Hz, got {sample_rate!r}"
        )
    pulse = _pulse(p.fundamental_hz, p.pulse_s, sample_rate)
    out = np.zeros(round(p.duration_s * sample_rate))
    for onset in p.onsets_s:
        start = round(onset * sample_rate)
        out[start : start + pulse.size] += pulse
    return np.round(out * (LEVEL * 32767)).astype(np.int16)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM to a WAV file (what aplay, paplay and pw-play all read)."""
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.dtype != np.int16:
        raise ValueError(f"expected a 1-D int16 array, got {samples.ndim}-D {samples.dtype}")
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())
