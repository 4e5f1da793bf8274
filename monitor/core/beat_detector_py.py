"""Pure-Python reference of the streaming beat core.

This is the readable twin of ``ext/beat_detector.pyx``: same class name,
same signatures, same arithmetic in the same order, so the two give the
same beats (tests assert it). It exists for tests and for understanding;
the product runs the compiled core (see :mod:`monitor.core`).

Pipeline, per raw sample: hold the last valid value over missing samples,
clamp to the transducer's range, block-average down to about 125 Hz (the
rate wabp was designed for), then per decimated sample:

1. low-pass: two cascaded moving sums (Zong 2003: y(n) = 2y(n-1) - y(n-2)
   + x(n) - 2x(n-5) + x(n-10) at 125 Hz), normalised to mmHg;
2. slope sum: sum over 128 ms of the positive increments of y;
3. adaptive threshold Ta, updated on every beat (Ta += (peak - Ta) / 10,
   decision at Ta / 3), lowered after 2.5 s without a beat; 250 ms
   eye-closing period. wabp starts Ta at 3 x the mean slope sum of the
   first 8 s and then re-reads those 8 s; a stream cannot re-read, so Ta
   starts at the typical upstroke instead: the median of the slope sum's
   maximum in each of the first 8 seconds;
4. onset: back from the threshold crossing to where the slope sum stops
   rising (less than 1% of its peak per sample), less the 16 ms by which
   that search lands after the foot.

A beat spans one onset to the next; its values come from the raw samples
(MAP is their mean over the beat: the area divided by the duration), and
its quality verdict from rules after Sun et al. 2006 (see
:class:`monitor.core.beat_types.Quality`).
"""

from __future__ import annotations

import math

import numpy as np

from monitor.core.beat_types import (
    BEAT_DTYPE,
    EVENT_DTYPE,
    MAX_SAMPLING_RATE_HZ,
    MIN_SAMPLING_RATE_HZ,
    DetectorOutput,
    DetectorSettings,
    EventKind,
    Quality,
    detector_timing,
)

# Running sums are recomputed from their rings this often (decimated
# samples) so float rounding cannot drift over a day-long stream.
RESYNC_PERIOD = 4096

_EMPTY_BEATS = np.zeros(0, dtype=BEAT_DTYPE)
_EMPTY_BEATS.flags.writeable = False
_EMPTY_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
_EMPTY_EVENTS.flags.writeable = False
_EMPTY_OUTPUT = DetectorOutput(_EMPTY_BEATS, _EMPTY_EVENTS)


def check_sampling_rate(fs: float) -> float:
    """Return ``fs`` as a float, or raise ValueError if the core cannot run at it."""
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise ValueError(f"sampling rate must be a number of Hz, got {fs!r}") from None
    if not (MIN_SAMPLING_RATE_HZ <= rate <= MAX_SAMPLING_RATE_HZ):
        raise ValueError(
            f"sampling rate {fs!r} Hz is out of range: the core runs at "
            f"{MIN_SAMPLING_RATE_HZ:g} to {MAX_SAMPLING_RATE_HZ:g} Hz"
        )
    return rate


def as_sample_array(samples: object) -> np.ndarray:
    """Return a chunk as contiguous float64, or raise ValueError for a caller mistake."""
    if not isinstance(samples, np.ndarray):
        raise ValueError(
            f"samples must be a 1-D numpy array of pressures in mmHg, got {type(samples).__name__}"
        )
    if samples.ndim != 1:
        raise ValueError(f"samples must be 1-D, got an array of shape {samples.shape}")
    if samples.dtype.kind not in "fiu":
        raise ValueError(
            f"samples must be float or integer pressures in mmHg, got dtype {samples.dtype}"
        )
    return np.ascontiguousarray(samples, dtype=np.float64)


def _ring_sum(ring: list[float]) -> float:
    """Sum in index order: the compiled core adds in the same order."""
    total = 0.0
    for v in ring:
        total += v
    return total


class BeatDetector:
    """Streaming ABP beat detector: push chunks of samples, get completed beats.

    ``push()`` returns the beats its chunk completed and the no-pulse and gap
    events it produced; ``finish()`` flushes the end of a recording. A beat is
    returned once the samples up to its end plus 0.5 s have been pushed (its
    end is the next onset, found at most 0.3 s after it), except during the
    first ``learning_s`` seconds, when the threshold is learnt and no beat is
    reported. State is bounded: it does not grow with the stream's length.
    """

    def __init__(self, fs: float, settings: DetectorSettings | None = None) -> None:
        self.fs = check_sampling_rate(fs)
        self.settings = s = settings if settings is not None else DetectorSettings()
        self._finished = False

        t = detector_timing(self.fs, s)
        self._k = t.decimation
        self._fd = self.fs / t.decimation
        self._acc = 0.0
        self._acc_n = 0
        self._j = 0  # detection samples processed
        self._primed = False  # a valid sample has been seen
        self._hold = 0.0  # last valid sample (clamped), held over gaps

        # Low-pass: two moving sums of L detection samples; slope sum over W.
        self._lp_len = t.lowpass_len
        self._lp_gain = 1.0 / (t.lowpass_len * t.lowpass_len)
        self._ssf_len = t.slope_len
        self._x_ring = [0.0] * t.lowpass_len
        self._s1_ring = [0.0] * t.lowpass_len
        self._d_ring = [0.0] * t.slope_len
        self._s1 = 0.0
        self._s2 = 0.0
        self._ssf = 0.0
        self._y_prev = 0.0

        # Detection state (detection samples).
        self._half_eye = t.half_eye
        self._eye = 2 * t.half_eye
        self._learn_block = t.learning_block
        self._learn_blocks = t.learning_blocks
        self._learn_n = 0
        self._learn_max = 0.0
        self._learn_maxima: list[float] = []
        self._learning = True
        self._expect = t.decay_after
        self._decay = t.decay_factor
        self._t_floor = 3.0 * s.min_threshold_mmhg
        self._ta = self._t_floor
        self._t1 = s.min_threshold_mmhg
        self._timer = 0
        self._lockout_until = 0
        self._cross = -1  # detection index of a threshold crossing awaiting its peak
        self._ssf_hist_len = t.slope_capacity
        self._ssf_hist = [0.0] * t.slope_capacity
        self._delay = t.onset_delay  # from where the onset search lands to the foot

        # Level of the detection trace, for classifying no-pulse stretches.
        self._level_len = t.level_len
        self._level_ring = [0.0] * t.level_len

        # Raw and detection samples of the beat being formed, and the beat before.
        self._n = 0  # raw samples seen
        self._known = 0  # samples consumed when the current output row is emitted
        self._max_beat = t.max_beat
        self._raw_len = t.raw_capacity
        self._raw = [0.0] * t.raw_capacity
        self._dec_len = t.detection_capacity
        self._dec = [0.0] * t.detection_capacity
        self._prev_onset = -1
        self._prev_beat: tuple[float, float, float, float, int] | None = None
        self._ref_pp = math.nan
        self._ref_map = math.nan

        # Open conditions (at most one) and the no-pulse clock, raw indices.
        self._condition = 0  # EventKind value or 0
        self._condition_since = 0
        self._condition_j = 0
        self._last_pulse = 0

        self._beats: list[tuple] = []
        self._events: list[tuple] = []

    # ----------------------------------------------------------- public API
    def push(self, samples: np.ndarray) -> DetectorOutput:
        """Feed the next chunk of samples (mmHg); return what it completed."""
        if self._finished:
            raise RuntimeError("push() after finish(): start a new BeatDetector")
        for x in as_sample_array(samples).tolist():
            self._step(x)
        return self._drain()

    def finish(self) -> DetectorOutput:
        """End of the stream: resolve a pending detection, close open conditions."""
        if not self._finished:
            self._finished = True
            self._known = self._n
            if self._cross >= 0:
                self._resolve_crossing(self._j - 1)
            if self._condition:
                self._end_condition(self._n)
        return self._drain()

    @property
    def samples_seen(self) -> int:
        """How many samples have been pushed: the next sample's index."""
        return self._n

    # ------------------------------------------------------------ per sample
    def _step(self, x: float) -> None:
        s = self.settings
        i = self._n
        self._known = i + 1
        if math.isfinite(x):
            if self._condition == EventKind.GAP:
                self._end_condition(i)
                self._last_pulse = i
            clamped = s.transducer_max_mmhg if x > s.transducer_max_mmhg else x
            clamped = s.transducer_min_mmhg if clamped < s.transducer_min_mmhg else clamped
            if not self._primed:
                self._prime(clamped)
            self._hold = clamped
        else:
            x = math.nan
            if self._condition != EventKind.GAP:
                if self._condition:
                    self._end_condition(i)
                self._begin_condition(EventKind.GAP, i, math.nan)
        self._raw[i & (self._raw_len - 1)] = x
        self._n = i + 1
        self._acc += self._hold
        self._acc_n += 1
        if self._acc_n == self._k:
            xd = self._acc / self._k
            self._acc = 0.0
            self._acc_n = 0
            if self._primed:
                self._step_decimated(xd)
            self._j += 1

    def _prime(self, x: float) -> None:
        """Start the filters on the first valid sample, so start-up is no step."""
        self._primed = True
        self._x_ring = [x] * self._lp_len
        self._s1 = x * self._lp_len
        self._s1_ring = [self._s1] * self._lp_len
        self._s2 = self._s1 * self._lp_len
        self._y_prev = self._s2 * self._lp_gain
        self._level_ring = [x] * self._level_len
        self._last_pulse = self._n

    # -------------------------------------------------------- per decimated
    def _step_decimated(self, xd: float) -> None:
        j = self._j
        lp = j % self._lp_len
        self._s1 += xd - self._x_ring[lp]
        self._x_ring[lp] = xd
        self._s2 += self._s1 - self._s1_ring[lp]
        self._s1_ring[lp] = self._s1
        w = j % self._ssf_len
        y = self._s2 * self._lp_gain
        d = y - self._y_prev
        if d < 0.0:
            d = 0.0
        self._y_prev = y
        self._ssf += d - self._d_ring[w]
        self._d_ring[w] = d
        if j % RESYNC_PERIOD == RESYNC_PERIOD - 1:
            self._resync()
        ssf = self._ssf
        self._ssf_hist[j & (self._ssf_hist_len - 1)] = ssf
        self._level_ring[j % self._level_len] = xd
        self._dec[j & (self._dec_len - 1)] = xd

        if self._learning:
            if ssf > self._learn_max:
                self._learn_max = ssf
            self._learn_n += 1
            if self._learn_n % self._learn_block == 0:
                self._learn_maxima.append(self._learn_max)
                self._learn_max = 0.0
                if len(self._learn_maxima) == self._learn_blocks:
                    self._end_learning()
            return
        self._timer += 1
        if self._cross < 0:
            if j >= self._lockout_until and ssf > self._t1:
                self._cross = j
            elif self._timer > self._expect and self._ta > self._t_floor:
                self._ta *= self._decay
                self._t1 = self._decision_threshold()
        if self._cross >= 0 and j >= self._cross + self._half_eye:
            self._resolve_crossing(j)
        if self._condition != EventKind.GAP and (
            self._condition or self._n - self._last_pulse > self._max_beat
        ):
            self._watch_pulse(j)

    def _resync(self) -> None:
        """Recompute the running sums from their rings, in ring order."""
        self._s1 = _ring_sum(self._x_ring)
        self._s2 = _ring_sum(self._s1_ring)
        self._ssf = _ring_sum(self._d_ring)

    def _decision_threshold(self) -> float:
        t1 = self._ta / 3.0
        return t1 if t1 > self.settings.min_threshold_mmhg else self.settings.min_threshold_mmhg

    def _end_learning(self) -> None:
        """Start the threshold at the median of the per-second slope-sum maxima."""
        self._learning = False
        maxima = sorted(self._learn_maxima)
        half = len(maxima) // 2
        if len(maxima) % 2:
            self._ta = maxima[half]
        else:
            self._ta = (maxima[half - 1] + maxima[half]) / 2.0
        if self._ta < self._t_floor:
            self._ta = self._t_floor
        self._t1 = self._decision_threshold()
        self._timer = 0
        self._last_pulse = self._n

    def _resolve_crossing(self, last: int) -> None:
        """Find the peak after a crossing and the onset before it; adapt the threshold."""
        hist = self._ssf_hist
        mask = self._ssf_hist_len - 1
        cross = self._cross
        self._cross = -1
        peak = hist[cross & mask]
        for t in range(cross + 1, last + 1):
            v = hist[t & mask]
            if v > peak:
                peak = v
        rise = self.settings.onset_rise_fraction * peak
        onset = cross - self._half_eye
        for t in range(cross, cross - self._half_eye, -1):
            if hist[t & mask] - hist[(t - 1) & mask] < rise:
                onset = t
                break
        self._ta += (peak - self._ta) / 10.0
        self._t1 = self._decision_threshold()
        self._lockout_until = cross + self._eye
        self._timer = 0
        raw_onset = (onset - self._delay) * self._k + (self._k - 1) // 2
        if raw_onset < 0:
            raw_onset = 0
        self._add_onset(raw_onset)

    # ----------------------------------------------------------------- beats
    def _add_onset(self, onset: int) -> None:
        prev = self._prev_onset
        if onset <= prev:
            return
        oldest = self._n - self._raw_len
        if prev >= 0 and prev >= oldest and onset - prev <= self._max_beat:
            self._emit_beat(prev, onset)
        else:
            self._prev_beat = None
        self._prev_onset = onset

    def _emit_beat(self, onset: int, end: int) -> None:
        s = self.settings
        fs = self.fs
        raw = self._raw
        mask = self._raw_len - 1
        total = 0.0
        valid = 0
        hi = -math.inf
        hi_at = onset
        lo = math.inf
        out_of_range = False
        # Longest runs of identical samples at the extremes (an ADC rail),
        # counted in the same pass: a run at the final maximum can only
        # start once that maximum has been reached.
        prev = math.nan
        same = 0
        hi_run = 0
        lo_run = 0
        for i in range(onset, end):
            x = raw[i & mask]
            if x != x:
                prev = math.nan
                same = 0
                continue
            valid += 1
            total += x
            same = same + 1 if x == prev else 0
            if x > hi:
                hi = x
                hi_at = i
                hi_run = 0
            elif x == hi and same > hi_run:
                hi_run = same
            if x < lo:
                lo = x
                lo_run = 0
            elif x == lo and same > lo_run:
                lo_run = same
            if x < s.transducer_min_mmhg or x > s.transducer_max_mmhg:
                out_of_range = True
            prev = x
        n = end - onset
        period = n / fs
        quality = 0
        if valid < n:
            quality |= Quality.GAP
        if valid == 0:
            self._prev_beat = None
            self._beats.append(
                (
                    onset,
                    end,
                    onset,
                    math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                    period,
                    60.0 / period,
                    int(quality),
                    False,
                    self._known,
                )
            )
            return
        mean = total / valid
        pp = hi - lo
        rail_run = hi_run if hi_run > lo_run else lo_run
        # Longest run near the top, only where a flush is possible at all.
        top_run = 0
        if hi >= s.flush_min_mmhg:
            band = hi - (2.0 if 0.02 * hi < 2.0 else 0.02 * hi)
            run = 0
            for i in range(onset, end):
                if raw[i & mask] >= band:
                    run += 1
                    if run > top_run:
                        top_run = run
                else:
                    run = 0
        rate = 60.0 / period
        onset_pressure = raw[onset & mask]
        # On the detection trace (about 125 Hz, so independent of the rate):
        # the mean negative slope (Sun 2006), and the total variation with a
        # hysteresis that ignores sensor noise: a pulse rises once and falls
        # once, noise and line manipulation add legs.
        dec = self._dec
        dmask = self._dec_len - 1
        first = (onset + self._k - 1) // self._k
        last = end // self._k
        hysteresis = s.variation_hysteresis_fraction * pp
        if hysteresis < s.variation_hysteresis_mmhg:
            hysteresis = s.variation_hysteresis_mmhg
        neg_sum = 0.0
        neg_n = 0
        variation = 0.0
        pivot = dec[first & dmask]
        extreme = pivot
        leg = 0  # +1 rising, -1 falling, 0 not yet moved by the hysteresis
        for j in range(first, last):
            v = dec[(j + 1) & dmask]
            step = v - dec[j & dmask]
            if step < 0.0:
                neg_sum += step
                neg_n += 1
            if leg == 0:
                if v - pivot >= hysteresis:
                    leg = 1
                    extreme = v
                elif pivot - v >= hysteresis:
                    leg = -1
                    extreme = v
            elif leg > 0:
                if v > extreme:
                    extreme = v
                elif extreme - v >= hysteresis:
                    variation += extreme - pivot
                    pivot = extreme
                    extreme = v
                    leg = -1
            else:
                if v < extreme:
                    extreme = v
                elif v - extreme >= hysteresis:
                    variation += pivot - extreme
                    pivot = extreme
                    extreme = v
                    leg = 1
        variation += extreme - pivot if extreme > pivot else pivot - extreme

        if out_of_range or (rail_run + 1 >= 3 and rail_run / fs >= s.clip_run_s):
            quality |= Quality.CLIPPED
        if hi >= s.flush_min_mmhg and top_run / fs >= s.flush_plateau_s:
            quality |= Quality.FLUSH
        if mean < s.near_zero_mmhg:
            quality |= Quality.ZEROING
        if pp < s.min_pulse_pressure_mmhg:
            quality |= Quality.NO_PULSATILITY
        if (
            hi > s.max_sbp_mmhg
            or lo < 0.0
            or mean < s.min_map_mmhg
            or mean > s.max_map_mmhg
            or rate < s.min_pulse_rate_bpm
            or rate > s.max_pulse_rate_bpm
        ):
            quality |= Quality.IMPLAUSIBLE
        if (neg_n > 0 and neg_sum / neg_n * self._fd < s.noise_slope_mmhg_s) or (
            variation > s.max_variation_ratio * 2.0 * pp
        ):
            quality |= Quality.NOISY
        prev_beat = self._prev_beat
        if prev_beat is None or prev_beat[4] & ~int(Quality.ISOLATED):
            # Sun 2006: a good beat among bad ones is bad (causal half: the one before).
            quality |= Quality.ISOLATED
        if prev_beat is not None:
            p_hi, p_lo, p_onset_pressure, p_period, _ = prev_beat
            if (
                abs(hi - p_hi) > s.max_pressure_jump_mmhg
                or abs(lo - p_lo) > s.max_pressure_jump_mmhg
                or abs(onset_pressure - p_onset_pressure) > s.max_pressure_jump_mmhg
                or abs(period - p_period) > s.max_period_jump_s
            ):
                quality |= Quality.ABRUPT_CHANGE
        if self._ref_pp == self._ref_pp:
            if (
                pp < s.damped_pulse_fraction * self._ref_pp
                and abs(mean - self._ref_map) < s.damped_map_fraction * self._ref_map
            ):
                quality |= Quality.DAMPED
        if quality & ~int(Quality.DAMPED | Quality.ISOLATED) == 0:
            if self._ref_pp == self._ref_pp:
                self._ref_pp += (pp - self._ref_pp) / s.reference_beats
                self._ref_map += (mean - self._ref_map) / s.reference_beats
            else:
                self._ref_pp = pp
                self._ref_map = mean
        self._prev_beat = (hi, lo, onset_pressure, period, int(quality))
        self._beats.append(
            (
                onset,
                end,
                hi_at,
                hi,
                lo,
                mean,
                pp,
                period,
                rate,
                int(quality),
                quality == 0,
                self._known,
            )
        )
        if not quality & (Quality.NO_PULSATILITY | Quality.ZEROING | Quality.FLUSH | Quality.GAP):
            self._pulse_seen(onset, end)

    # ------------------------------------------------------ no-pulse stretches
    def _pulse_seen(self, onset: int, end: int) -> None:
        if self._condition and self._condition != EventKind.GAP:
            self._end_condition(onset if onset > self._condition_since else self._condition_since)
        if end > self._last_pulse:
            self._last_pulse = end

    def _watch_pulse(self, j: int) -> None:
        """Open, reclassify or keep a no-pulse stretch, once per second while it lasts."""
        if self._condition == 0:
            if self._n - self._last_pulse > self._max_beat:
                level = self._level()
                self._begin_condition(self._classify(level), self._last_pulse, level)
        elif (j - self._condition_j) % self._level_len == 0 and j != self._condition_j:
            level = self._level()
            kind = self._classify(level)
            if kind != self._condition:
                self._end_condition(self._n)
                self._begin_condition(kind, self._n, level)

    def _level(self) -> float:
        return _ring_sum(self._level_ring) / self._level_len

    def _classify(self, level: float) -> EventKind:
        s = self.settings
        if level < s.near_zero_mmhg:
            return EventKind.FLAT_NEAR_ZERO
        if level > s.physiological_max_mmhg:
            return EventKind.NO_PULSE_HIGH
        return EventKind.NO_PULSE

    def _begin_condition(self, kind: EventKind, index: int, level: float) -> None:
        self._condition = int(kind)
        self._condition_since = index
        self._condition_j = self._j
        self._events.append((int(kind), True, index, level, self._known))

    def _end_condition(self, index: int) -> None:
        self._events.append((self._condition, False, index, math.nan, self._known))
        self._condition = 0

    # ---------------------------------------------------------------- output
    def _drain(self) -> DetectorOutput:
        if not self._beats and not self._events:
            return _EMPTY_OUTPUT
        beats = np.array(self._beats, dtype=BEAT_DTYPE) if self._beats else _EMPTY_BEATS
        events = np.array(self._events, dtype=EVENT_DTYPE) if self._events else _EMPTY_EVENTS
        self._beats = []
        self._events = []
        return DetectorOutput(beats, events)
