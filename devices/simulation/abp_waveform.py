"""Synthetic arterial blood pressure with known truth, to test the beat detector.

A detector can only be scored against a record whose beats are known
exactly. Each beat here is ``baseline + pulse_pressure * template + breath``:
the baseline runs linearly from this beat's diastolic pressure to the next
one's, so consecutive beats meet without a step; the template is a smooth
closed-form shape (upstroke, systolic peak, dicrotic notch and wave,
diastolic run-off) whose integral is known in closed form; the breath is a
sinusoid. The true MAP of a beat is therefore the exact integral of the
continuous noise-free pressure over the beat divided by its duration, not a
mean of samples.

The beats are planned first (a few numbers each), so ``AbpGenerator`` can
render any range of samples on demand: a simulator plays hours at up to
1000 Hz chunk by chunk, and any split gives the same samples as the whole.
``synthesize_abp`` renders a whole record at once.

Conventions a detector test must know:

* sample ``k`` is taken at ``k / fs`` seconds;
* a beat's onset is the foot of its upstroke (its minimum: the pressure
  falls into it and rises out of it); ``onsets[i] = ceil(onset_times_s[i] * fs)``,
  the first sample at or after the true onset, so the samples of beat ``i``
  are exactly ``samples[onsets[i]:onsets[i + 1]]``;
* even a perfectly segmented noise-free beat has a sample mean a little off
  its true MAP, because the beat's ends fall between samples: by up to about
  ``(MAP - DBP) / (fs * period)`` (0.2 mmHg at 125 Hz, 75 bpm, pulse
  pressure 45 mmHg), so score a detector's MAP with at least that slack;
* the upstroke lasts 0.1 s at 75 bpm and scales with the square root of the
  period (0.07 s at 150 bpm); the rest of the beat stretches with the period.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Trajectory = float | Callable[[float], float]

# Template, in beat phase u in [0, 1]: a sin^2 upstroke to the systolic peak
# at u = _PEAK, then, in v = (u - _PEAK) / (1 - _PEAK), a run-off
# (1 + x) exp(-x) with x = v / _RUNOFF_V (flat at the peak, concave over the
# systolic shoulder, convex in diastole) plus an incisura and a dicrotic wave.
_PEAK = 0.125
_RUNOFF_V = 0.2
_INCISURA = (-0.05, 0.29, 0.02)  # amplitude, centre and width in v
_DICROTIC = (0.12, 0.36, 0.035)

_UPSTROKE_S_AT_75_BPM = 0.1
_MIN_HR_BPM, _MAX_HR_BPM = 20.0, 300.0
# Samples per noise generator (4 to 40 s at 1000 to 100 Hz): a range draws
# at most one block beyond itself at each end, at some 30 us a block.
_NOISE_BLOCK = 4096


def _runoff(v: np.ndarray) -> np.ndarray:
    x = v / _RUNOFF_V
    end = (1.0 + 1.0 / _RUNOFF_V) * math.exp(-1.0 / _RUNOFF_V)
    return ((1.0 + x) * np.exp(-x) - end) / (1.0 - end)


def _runoff_mean() -> float:
    big_x = 1.0 / _RUNOFF_V
    end = (1.0 + big_x) * math.exp(-big_x)
    integral = _RUNOFF_V * (2.0 - (2.0 + big_x) * math.exp(-big_x))
    return (integral - end) / (1.0 - end)


def _bump(v: np.ndarray, amplitude: float, centre: float, width: float) -> np.ndarray:
    return amplitude * np.exp(-0.5 * ((v - centre) / width) ** 2)


def _bump_mean(amplitude: float, centre: float, width: float) -> float:
    s = width * math.sqrt(2.0)
    inside = math.erf((1.0 - centre) / s) + math.erf(centre / s)
    return amplitude * width * math.sqrt(math.pi / 2.0) * inside


# Mean of the template over v in [0, 1] (its part after the peak); the
# upstroke's mean is exactly 1/2. The bumps are ~1e-25 at v = 0 and v = 1.
_AFTER_PEAK_MEAN = _runoff_mean() + _bump_mean(*_INCISURA) + _bump_mean(*_DICROTIC)


def beat_template(phase: np.ndarray) -> np.ndarray:
    """Normalised pulse shape: 0 at phase 0 and 1, exactly 1 at the systolic peak.

    Shared by tests and artifacts that need a beat's shape without its
    pressure levels; phase is the fraction of the beat elapsed.
    """
    u = np.asarray(phase, dtype=np.float64)
    if np.any(~((u >= 0.0) & (u <= 1.0))):
        raise ValueError("beat phase must lie in [0, 1]")
    rise = np.sin(0.5 * np.pi * np.minimum(u, _PEAK) / _PEAK) ** 2
    v = np.maximum(u - _PEAK, 0.0) / (1.0 - _PEAK)
    after = _runoff(v) + _bump(v, *_INCISURA) + _bump(v, *_DICROTIC)
    return np.where(u < _PEAK, rise, after)


@dataclass(frozen=True)
class BeatTruth:
    """The truth about a record's beats, known before any of its samples.

    ``beat_map[i]`` is the exact mean of the noise-free continuous pressure
    over ``[onset_times_s[i], onset_times_s[i + 1])``; ``onsets`` are
    ``ceil(onset_times_s * fs)``. Only onsets inside the record are listed;
    the partial beats before the first and after the last have no truth.
    """

    fs: float
    onsets: np.ndarray
    onset_times_s: np.ndarray
    beat_map: np.ndarray


@dataclass(frozen=True)
class SyntheticAbp:
    """A pressure record and the truth about its beats, as in ``BeatTruth``."""

    samples: np.ndarray
    fs: float
    onsets: np.ndarray
    onset_times_s: np.ndarray
    beat_map: np.ndarray


def _upstroke_s(period_s: np.ndarray) -> np.ndarray:
    return _UPSTROKE_S_AT_75_BPM * np.sqrt(period_s / 0.8)


def _at(value: Trajectory, t: float) -> float:
    return float(value(t) if callable(value) else value)


def _check_number(name: str, value: float, low: float, high: float = math.inf) -> None:
    if not (low <= value <= high):
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")


def _beat_times(
    t_last: float,
    heart_rate_bpm: Trajectory,
    hr_variability: float,
    rng: np.random.Generator,
    clamp: Callable[[float], float],
) -> np.ndarray:
    """Onset times from before 0 to past ``t_last``, so every sample lies in a beat."""

    def period(t: float) -> float:
        hr = _at(heart_rate_bpm, clamp(t))
        if not (_MIN_HR_BPM <= hr <= _MAX_HR_BPM):
            raise ValueError(
                f"heart rate must lie in [{_MIN_HR_BPM:g}, {_MAX_HR_BPM:g}] bpm, "
                f"got {hr!r} at t = {clamp(t):.3f} s"
            )
        jitter = float(np.clip(rng.standard_normal(), -3.0, 3.0))
        return 60.0 / hr * (1.0 + hr_variability * jitter)

    times = [-rng.uniform(0.0, period(0.0))]
    while times[-1] <= t_last:
        times.append(times[-1] + period(times[-1]))
    return np.array(times)


class AbpGenerator:
    """An ABP record planned beat by beat up front and rendered range by range.

    A simulator playing hours at up to 1000 Hz cannot hold the record, but
    it can hold the plan: a few numbers per beat. ``render(start, stop)``
    costs in proportion to ``stop - start`` and is chunk-invariant: any
    split of a range renders, concatenated, bit-identical to the whole.

    Heart rate, MAP and pulse pressure are constants or callables of time in
    seconds (evaluated at each beat's onset, clamped to the record). Each
    beat's diastolic pressure is set so its MAP lands on the requested one;
    the breath then adds a sinusoid of ``respiratory_swing_mmhg`` peak to
    peak, included in the truth. ``hr_variability`` is the SD of the
    beat-to-beat period as a fraction of the period. White noise of
    ``noise_mmhg`` SD is added to the samples only; it draws from its own
    stream, so changing it never moves the beats. That stream is cut into
    blocks of 4096 samples, block ``b`` drawn from child ``b`` of its seed
    sequence, so a range draws its noise without drawing what precedes it.
    """

    def __init__(
        self,
        duration_s: float,
        fs: float,
        *,
        heart_rate_bpm: Trajectory = 75.0,
        map_mmhg: Trajectory = 75.0,
        pulse_pressure_mmhg: Trajectory = 45.0,
        respiratory_rate_bpm: float = 14.0,
        respiratory_swing_mmhg: float = 4.0,
        hr_variability: float = 0.01,
        noise_mmhg: float = 0.3,
        seed: int = 0,
    ) -> None:
        _check_number("duration_s", duration_s, 1e-3)
        _check_number("fs", fs, 1.0)
        _check_number("respiratory_rate_bpm", respiratory_rate_bpm, 0.0, 60.0)
        _check_number("respiratory_swing_mmhg", respiratory_swing_mmhg, 0.0)
        _check_number("hr_variability", hr_variability, 0.0, 0.2)
        _check_number("noise_mmhg", noise_mmhg, 0.0)
        n = round(duration_s * fs)
        if n < 2:
            raise ValueError(f"{duration_s} s at {fs} Hz is fewer than two samples")
        self.n_samples: int = n
        self.fs: float = float(fs)
        t_last = (n - 1) / self.fs
        beats_seed, self._noise_seed = np.random.SeedSequence(seed).spawn(2)

        def clamp(t: float) -> float:
            return min(max(t, 0.0), t_last)

        times = _beat_times(
            t_last, heart_rate_bpm, hr_variability, np.random.default_rng(beats_seed), clamp
        )
        period = np.diff(times)
        upstroke = _upstroke_s(period)
        # Template mean over time: the upstroke and the rest each fill their share.
        shape_mean = (0.5 * upstroke + _AFTER_PEAK_MEAN * (period - upstroke)) / period
        shape_mean = np.append(shape_mean, shape_mean[-1])
        mean_at = np.array([_at(map_mmhg, clamp(t)) for t in times])
        pp_at = np.array([_at(pulse_pressure_mmhg, clamp(t)) for t in times])
        if np.any(~(pp_at >= 0.0)) or np.any(~np.isfinite(mean_at)):
            raise ValueError("pulse pressure must be >= 0 and MAP finite over the record")
        diastolic = mean_at - pp_at * shape_mean
        index = np.ceil(times * self.fs).astype(np.int64)

        self._times, self._index, self._period, self._upstroke = times, index, period, upstroke
        self._diastolic, self._pulse_pressure = diastolic, pp_at
        self._breath_amplitude = 0.5 * respiratory_swing_mmhg
        self._omega = 2.0 * math.pi * respiratory_rate_bpm / 60.0
        self._noise_mmhg = noise_mmhg

        inside = np.flatnonzero((index >= 0) & (index < n))
        t0, t1 = times[inside[:-1]], times[inside[:-1] + 1]
        breath_mean = (
            self._breath_amplitude
            * (np.cos(self._omega * t0) - np.cos(self._omega * t1))
            / (self._omega * (t1 - t0))
            if self._omega > 0.0
            else np.zeros(len(t0))
        )
        beat_map = (
            0.5 * (diastolic[inside[:-1]] + diastolic[inside[:-1] + 1])
            + pp_at[inside[:-1]] * shape_mean[inside[:-1]]
            + breath_mean
        )
        self._truth = BeatTruth(
            fs=self.fs, onsets=index[inside], onset_times_s=times[inside], beat_map=beat_map
        )

    def truth(self) -> BeatTruth:
        """The beats of the whole record, from the plan: no sample is rendered."""
        return self._truth

    def render(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the record, noise included."""
        start, stop = operator.index(start), operator.index(stop)
        if not 0 <= start <= stop <= self.n_samples:
            raise ValueError(
                f"render range [{start}, {stop}) must satisfy "
                f"0 <= start <= stop <= n_samples = {self.n_samples}"
            )
        return self._pressure(np.arange(start, stop)) + self._noise_mmhg * self._noise(start, stop)

    def _pressure(self, k: np.ndarray) -> np.ndarray:
        """Noise-free pressure at samples ``k``; each value depends on its ``k`` alone."""
        beat = np.searchsorted(self._index, k, side="right") - 1
        period = self._period[beat]
        since = np.clip(k / self.fs - self._times[beat], 0.0, period)
        up = self._upstroke[beat]
        phase = np.where(
            since < up,
            _PEAK * since / up,
            _PEAK + (1.0 - _PEAK) * (since - up) / (period - up),
        )
        start_dbp, end_dbp = self._diastolic[beat], self._diastolic[beat + 1]
        baseline = start_dbp + (end_dbp - start_dbp) * since / period
        breath = self._breath_amplitude * np.sin(self._omega * k / self.fs)
        return baseline + self._pulse_pressure[beat] * beat_template(phase) + breath

    def _noise(self, start: int, stop: int) -> np.ndarray:
        """Unit white noise for ``[start, stop)``, each block drawn whole, so any split agrees."""
        noise = np.empty(stop - start)
        entropy, key = self._noise_seed.entropy, self._noise_seed.spawn_key
        for block in range(start // _NOISE_BLOCK, -(-stop // _NOISE_BLOCK)):
            seed = np.random.SeedSequence(entropy, spawn_key=(*key, block))
            drawn = np.random.default_rng(seed).standard_normal(_NOISE_BLOCK)
            low = block * _NOISE_BLOCK
            a, b = max(start, low), min(stop, low + _NOISE_BLOCK)
            noise[a - start : b - start] = drawn[a - low : b - low]
        return noise


def synthesize_abp(
    duration_s: float,
    fs: float,
    *,
    heart_rate_bpm: Trajectory = 75.0,
    map_mmhg: Trajectory = 75.0,
    pulse_pressure_mmhg: Trajectory = 45.0,
    respiratory_rate_bpm: float = 14.0,
    respiratory_swing_mmhg: float = 4.0,
    hr_variability: float = 0.01,
    noise_mmhg: float = 0.3,
    seed: int = 0,
) -> SyntheticAbp:
    """Synthesise a whole ABP record whose beat onsets and MAPs are known exactly.

    The parameters are ``AbpGenerator``'s; this renders its record at once,
    for tests and benchmarks short enough to hold it.
    """
    generator = AbpGenerator(
        duration_s,
        fs,
        heart_rate_bpm=heart_rate_bpm,
        map_mmhg=map_mmhg,
        pulse_pressure_mmhg=pulse_pressure_mmhg,
        respiratory_rate_bpm=respiratory_rate_bpm,
        respiratory_swing_mmhg=respiratory_swing_mmhg,
        hr_variability=hr_variability,
        noise_mmhg=noise_mmhg,
        seed=seed,
    )
    truth = generator.truth()
    return SyntheticAbp(
        samples=generator.render(0, generator.n_samples),
        fs=truth.fs,
        onsets=truth.onsets,
        onset_times_s=truth.onset_times_s,
        beat_map=truth.beat_map,
    )
