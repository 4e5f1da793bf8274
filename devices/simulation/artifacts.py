"""Arterial-line artifacts injected into a pressure record, for detector tests.

The six artifact types are those Li, Mark and Clifford found in over 6000 h
of MIMIC II ABP (BioMed Eng OnLine 2009;8:13), plus missing samples and
single absurd values. Each function is pure: it returns a new float64
array and the ``[start, end)`` sample interval it touched, and leaves every
sample outside that interval bit-identical, so a test knows exactly which
beats the artifact may spoil. Times convert to samples by rounding
``seconds * fs``; a caller mistake (interval outside the record, nonsensical
parameter) raises ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

_FLUSH_RISE_S = 0.04  # the flush valve opens in a few tens of milliseconds
_DISCONNECT_FALL_S = 0.02
_DAMPING_MEAN_WINDOW_S = 2.0  # longer than any beat, so the local mean holds no pulse
_DAMPING_ROUNDING_S = 0.06  # smoothing width at factor 1; it grows as 1 / factor
_DAMPING_FADE_S = 0.2
_TAP_RATE_HZ = 3.0
_TAP_MMHG = (30.0, 150.0)
_TAP_HZ = (8.0, 25.0)
_TAP_DECAY_S = (0.02, 0.06)


class Injected(NamedTuple):
    """A record with an artifact, and the ``[start, end)`` samples it touched."""

    samples: np.ndarray
    start: int
    end: int


def _copy(samples: np.ndarray, fs: float) -> np.ndarray:
    x = np.array(samples, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"samples must be a non-empty 1-D array, got shape {x.shape}")
    if not (math.isfinite(fs) and fs > 0.0):
        raise ValueError(f"fs must be a positive number of Hz, got {fs!r}")
    return x


def _interval(n: int, fs: float, start_s: float, duration_s: float) -> tuple[int, int]:
    if not (math.isfinite(start_s) and start_s >= 0.0):
        raise ValueError(f"start_s must be >= 0 s, got {start_s!r}")
    if not (math.isfinite(duration_s) and duration_s > 0.0):
        raise ValueError(f"duration_s must be > 0 s, got {duration_s!r}")
    start = round(start_s * fs)
    length = round(duration_s * fs)
    if length < 1:
        raise ValueError(f"duration {duration_s} s is shorter than one sample at {fs} Hz")
    if start + length > n:
        raise ValueError(
            f"artifact [{start_s} s, {start_s + duration_s} s) runs past the end of "
            f"the record ({n / fs} s, {n} samples)"
        )
    return start, start + length


def _samples_in(seconds: float, fs: float, name: str) -> int:
    if not (math.isfinite(seconds) and seconds > 0.0):
        raise ValueError(f"{name} must be > 0 s, got {seconds!r}")
    return max(1, round(seconds * fs))


def fast_flush(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    *,
    plateau_mmhg: float = 300.0,
    plateau_s: float = 2.0,
    ringing_s: float = 1.0,
    ringing_hz: float = 20.0,
    damping_ratio: float = 0.3,
) -> Injected:
    """Fast flush (square-wave test): steep rise, flat top at the bag pressure, ringing.

    On release the line behaves as an underdamped second-order system: the
    pressure drops, undershoots and oscillates at ``ringing_hz`` back onto
    the signal. ``ringing_s`` must let the ringing decay below 1% of the step.
    """
    x = _copy(samples, fs)
    if not math.isfinite(plateau_mmhg):
        raise ValueError(f"plateau_mmhg must be finite, got {plateau_mmhg!r}")
    if not (0.0 < ringing_hz < fs / 2.0):
        raise ValueError(f"ringing_hz must lie in (0, fs/2 = {fs / 2} Hz), got {ringing_hz!r}")
    if not (0.0 < damping_ratio < 1.0):
        raise ValueError(f"damping_ratio must lie in (0, 1) to ring, got {damping_ratio!r}")
    omega = 2.0 * math.pi * ringing_hz
    shortest = math.log(100.0) / (damping_ratio * omega)
    if ringing_s < shortest:
        raise ValueError(f"ringing_s must be >= {shortest:.3f} s for the ringing to die out")
    rise = _samples_in(_FLUSH_RISE_S, fs, "rise")
    plateau = _samples_in(plateau_s, fs, "plateau_s")
    ringing = _samples_in(ringing_s, fs, "ringing_s")
    start, end = _interval(len(x), fs, start_s, (rise + plateau + ringing) / fs)
    top, release = start + rise, start + rise + plateau

    w = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, rise + 1) / rise)
    x[start:top] = x[start:top] * (1.0 - w) + plateau_mmhg * w
    x[top:release] = plateau_mmhg
    t = np.arange(ringing) / fs
    damped = omega * math.sqrt(1.0 - damping_ratio**2)
    left = np.exp(-damping_ratio * omega * t) * (
        np.cos(damped * t) + damping_ratio * omega / damped * np.sin(damped * t)
    )
    x[release:end] += (plateau_mmhg - x[release]) * left
    return Injected(x, start, end)


def zeroing(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    level_mmhg: float = 0.0,
    noise_mmhg: float = 0.2,
    seed: int = 0,
) -> Injected:
    """Zeroing (stopcock open to air): a flat trace at atmospheric pressure, no pulse."""
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    if not noise_mmhg >= 0.0:
        raise ValueError(f"noise_mmhg must be >= 0, got {noise_mmhg!r}")
    noise = np.random.default_rng(seed).standard_normal(end - start)
    x[start:end] = level_mmhg + noise_mmhg * noise
    return Injected(x, start, end)


def disconnection(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    level_mmhg: float = -2.0,
    noise_mmhg: float = 0.5,
    seed: int = 0,
) -> Injected:
    """Disconnection: the pressure falls within tens of ms to near 0 and the pulse is lost.

    Unlike zeroing the level depends on the open end's height (a few mmHg
    either side of 0) and the trace is noisier.
    """
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    if not noise_mmhg >= 0.0:
        raise ValueError(f"noise_mmhg must be >= 0, got {noise_mmhg!r}")
    before = x[start] if math.isfinite(x[start]) else level_mmhg
    fall = np.exp(-np.arange(end - start) / (_DISCONNECT_FALL_S * fs))
    noise = np.random.default_rng(seed).standard_normal(end - start)
    x[start:end] = level_mmhg + (before - level_mmhg) * fall + noise_mmhg * noise
    return Injected(x, start, end)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average, the ends reflected so the output keeps the input's length."""
    half = width // 2
    padded = np.pad(x, (half, width - 1 - half), mode="reflect")
    sums = np.cumsum(np.concatenate(([0.0], padded)))
    return (sums[width:] - sums[:-width]) / width


def damping(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    factor: float = 0.3,
) -> Injected:
    """Over-damping (clot, bubble): pulse shrunk to ``factor`` and rounded, mean kept.

    The local mean (a 2 s moving average) is set aside, the pulsatile rest is
    smoothed (more as ``factor`` falls) and scaled so its RMS is ``factor``
    of the original, then the mean is restored. The change fades in and out
    over 0.2 s so the artifact adds no step of its own.
    """
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    if not (0.0 < factor <= 1.0):
        raise ValueError(f"factor must lie in (0, 1], got {factor!r}")
    seg = x[start:end]
    if not np.all(np.isfinite(seg)):
        raise ValueError("damping needs finite samples in its interval")
    if len(seg) < 2:
        return Injected(x, start, end)
    wide = min(len(seg) - 1, max(1, round(_DAMPING_MEAN_WINDOW_S * fs)))
    mean = _moving_average(_moving_average(seg, wide), wide)
    pulse = seg - mean
    narrow = min(len(seg) - 1, max(1, round(_DAMPING_ROUNDING_S / factor * fs)))
    rounded = _moving_average(_moving_average(pulse, narrow), narrow)
    spread = float(np.std(rounded))
    gain = factor * float(np.std(pulse)) / spread if spread > 0.0 else 0.0
    fade = min(round(_DAMPING_FADE_S * fs), len(seg) // 4)
    w = np.ones(len(seg))
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, fade + 1) / (fade + 1))
        w[:fade], w[-fade:] = ramp, ramp[::-1]
    x[start:end] = seg + w * (mean + gain * rounded - seg)
    return Injected(x, start, end)


def clipping(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    rail_mmhg: float,
) -> Injected:
    """ADC saturation: values pinned at a rail.

    A rail at or above the interval's mean is an upper rail (values above it
    are pinned down to it); below the mean, a lower rail.
    """
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    if not math.isfinite(rail_mmhg):
        raise ValueError(f"rail_mmhg must be finite, got {rail_mmhg!r}")
    seg = x[start:end]
    upper = rail_mmhg >= np.nanmean(seg) if np.any(np.isfinite(seg)) else True
    x[start:end] = np.minimum(seg, rail_mmhg) if upper else np.maximum(seg, rail_mmhg)
    return Injected(x, start, end)


def dropout(samples: np.ndarray, fs: float, start_s: float, duration_s: float) -> Injected:
    """Missing samples (lost packets, disconnected cable): NaN."""
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    x[start:end] = np.nan
    return Injected(x, start, end)


def line_manipulation(
    samples: np.ndarray,
    fs: float,
    start_s: float,
    duration_s: float,
    *,
    seed: int = 0,
) -> Injected:
    """Line handling or a blood draw: taps at erratic times, each a ringing impulse.

    Taps arrive as a Poisson process (3 per second, the first at the start);
    each jumps by 30-150 mmHg of either sign and rings at 8-25 Hz, dying
    out in tens of ms. Taps are cut at the interval's end.
    """
    x = _copy(samples, fs)
    start, end = _interval(len(x), fs, start_s, duration_s)
    rng = np.random.default_rng(seed)
    tap_s = 0.0
    while (first := start + math.ceil(tap_s * fs)) < end:
        amplitude = rng.uniform(*_TAP_MMHG) * rng.choice((-1.0, 1.0))
        freq = min(rng.uniform(*_TAP_HZ), 0.45 * fs)
        decay = rng.uniform(*_TAP_DECAY_S)
        last = min(end, first + math.ceil(10.0 * decay * fs))
        after = np.arange(first, last) / fs - (start / fs + tap_s)
        x[first:last] += amplitude * np.exp(-after / decay) * np.cos(2.0 * np.pi * freq * after)
        tap_s += rng.exponential(1.0 / _TAP_RATE_HZ)
    return Injected(x, start, end)


def spikes(
    samples: np.ndarray,
    fs: float,
    at_s: Sequence[float],
    *,
    height_mmhg: float = 10000.0,
) -> Injected:
    """Single-sample absurd values (bit errors, electrical interference).

    Each sample nearest a time in ``at_s`` is set to ``height_mmhg``; the
    interval returned spans the first to the last spike, and only the spike
    samples themselves change.
    """
    x = _copy(samples, fs)
    times = np.asarray(at_s, dtype=np.float64).reshape(-1)
    if len(times) == 0:
        raise ValueError("at_s must name at least one spike time")
    if not np.all(np.isfinite(times)):
        raise ValueError("spike times must be finite")
    index = np.round(times * fs).astype(np.int64)
    if np.any((index < 0) | (index >= len(x))):
        raise ValueError(f"spike times must fall inside the record (0 to {(len(x) - 1) / fs} s)")
    x[index] = height_mmhg
    return Injected(x, int(index.min()), int(index.max()) + 1)
