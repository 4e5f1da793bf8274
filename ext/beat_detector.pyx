# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, annotation_typing=False
"""Compiled streaming beat core: the product's implementation.

Twin of ``monitor/beat_detector_py.py`` (read that file for the algorithm
and its sources): same class, same signatures, the same arithmetic in the
same order, so both give the same beats; the tests hold them to it. Built
with -ffp-contract=off so no compiler fuses a multiply-add and rounds
differently from the reference (aarch64 compilers do by default).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.ref cimport Py_INCREF
from libc.math cimport NAN, fabs, isfinite
from libc.stdint cimport int64_t, uint8_t, uint16_t
from libc.string cimport memcpy

import numpy as np

cimport numpy as cnp

from monitor.core.beat_detector_py import as_sample_array, check_sampling_rate
from monitor.core.beat_types import (
    BEAT_DTYPE,
    EVENT_DTYPE,
    DetectorOutput,
    DetectorSettings,
    Quality,
    detector_timing,
)

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    # Steals a reference to descr; not declared in numpy's own .pxd.
    object PyArray_NewFromDescr(
        object subtype, cnp.dtype descr, int nd, cnp.npy_intp* dims,
        cnp.npy_intp* strides, void* data, int flags, object obj
    )

# Quality bits and event kinds, as in monitor.core.beat_types.
DEF Q_GAP = 1
DEF Q_FLUSH = 2
DEF Q_ZEROING = 4
DEF Q_DAMPED = 8
DEF Q_NO_PULSATILITY = 16
DEF Q_CLIPPED = 32
DEF Q_IMPLAUSIBLE = 64
DEF Q_ABRUPT_CHANGE = 128
DEF Q_NOISY = 256
DEF Q_ISOLATED = 512
DEF EV_GAP = 1
DEF EV_FLAT_NEAR_ZERO = 2
DEF EV_NO_PULSE = 3
DEF EV_NO_PULSE_HIGH = 4
DEF RESYNC_PERIOD = 4096

assert int(Quality.ISOLATED) == Q_ISOLATED and len(Quality) == 11  # + TRANSDUCER_FAULT, set outside

cdef packed struct BeatRow:
    int64_t onset
    int64_t end
    int64_t systolic_index
    double sbp
    double dbp
    double map
    double pulse_pressure
    double period_s
    double pulse_rate
    uint16_t quality
    uint8_t clean
    int64_t known_at

cdef packed struct EventRow:
    uint8_t kind
    uint8_t begin
    int64_t index
    double level_mmhg
    int64_t known_at

assert BEAT_DTYPE.itemsize == sizeof(BeatRow) and EVENT_DTYPE.itemsize == sizeof(EventRow)

_EMPTY_BEATS = np.zeros(0, dtype=BEAT_DTYPE)
_EMPTY_BEATS.flags.writeable = False
_EMPTY_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
_EMPTY_EVENTS.flags.writeable = False
_EMPTY_OUTPUT = DetectorOutput(_EMPTY_BEATS, _EMPTY_EVENTS)

# Building the output is most of a short push's cost. np.empty() parses its
# dtype on every call, and numpy 2 also works out how to zero-fill a
# structured dtype for every array it allocates (several thousand
# instructions); so the rows are copied into a bytearray, the array is made
# on that memory from a cached descriptor, and the named tuple is made
# without its Python-level __new__.
cdef cnp.dtype _BEAT_DESCR = BEAT_DTYPE
cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE
cdef object _new_tuple = tuple.__new__


cdef cnp.ndarray _new_rows(cnp.dtype descr, Py_ssize_t n, const void* rows):
    cdef object memory = PyByteArray_FromStringAndSize(<const char*> rows, n * descr.itemsize)
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    Py_INCREF(descr)  # PyArray_NewFromDescr steals a reference
    cdef cnp.ndarray array = PyArray_NewFromDescr(
        np.ndarray, descr, 1, dims, NULL, PyByteArray_AS_STRING(memory), cnp.NPY_ARRAY_CARRAY, None
    )
    cnp.set_array_base(array, memory)
    return array


cdef double* _new_ring(Py_ssize_t n) except NULL:
    cdef double* ring = <double*> PyMem_Malloc(n * sizeof(double))
    if ring == NULL:
        raise MemoryError()
    cdef Py_ssize_t i
    for i in range(n):
        ring[i] = 0.0
    return ring


cdef inline double _ring_sum(const double* ring, Py_ssize_t n) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        total += ring[i]
    return total


cdef class BeatDetector:
    """Streaming ABP beat detector: push chunks of samples, get completed beats.

    ``push()`` returns the beats its chunk completed and the no-pulse and gap
    events it produced; ``finish()`` flushes the end of a recording. A beat is
    returned once the samples up to its end plus 0.5 s have been pushed,
    except during the first ``learning_s`` seconds, when the threshold is
    learnt. State is bounded: it does not grow with the stream's length.
    """

    cdef readonly double fs
    cdef readonly object settings
    cdef bint _finished

    # settings, copied for the hot path
    cdef double _tmin, _tmax, _min_threshold, _onset_rise, _near_zero, _phys_max
    cdef double _min_pp, _max_sbp, _min_map, _max_map, _min_rate, _max_rate
    cdef double _max_jump, _max_period_jump, _noise_slope, _max_variation
    cdef double _hysteresis_fraction, _hysteresis_mmhg
    cdef double _clip_run_s, _flush_plateau_s, _flush_min, _damped_pp, _damped_map
    cdef double _reference_beats

    # decimation
    cdef Py_ssize_t _k, _acc_n
    cdef double _fd, _acc, _hold
    cdef int64_t _j
    cdef bint _primed

    # low-pass and slope sum
    cdef Py_ssize_t _lp_len, _ssf_len, _lp_pos, _ssf_pos, _level_pos
    cdef double _lp_gain, _s1, _s2, _ssf, _y_prev
    cdef double* _x_ring
    cdef double* _s1_ring
    cdef double* _d_ring

    # detection
    cdef int64_t _half_eye, _eye, _expect, _timer, _lockout_until, _cross, _delay
    cdef int64_t _learn_block, _learn_blocks, _learn_n, _n_maxima
    cdef double* _learn_maxima
    cdef double _learn_max, _decay, _t_floor, _ta, _t1
    cdef bint _learning
    cdef Py_ssize_t _ssf_hist_len
    cdef double* _ssf_hist

    # level of the trace
    cdef Py_ssize_t _level_len
    cdef double* _level_ring

    # raw and detection samples of the beat being formed
    cdef int64_t _n, _known, _max_beat, _prev_onset
    cdef Py_ssize_t _raw_len, _dec_len
    cdef double* _raw
    cdef double* _dec
    cdef bint _has_prev_beat
    cdef double _p_hi, _p_lo, _p_onset_pressure, _p_period
    cdef int _p_quality
    cdef double _ref_pp, _ref_map

    # open condition and the no-pulse clock
    cdef int _condition
    cdef int64_t _condition_since, _condition_j, _last_pulse

    # output of the current push
    cdef BeatRow* _beats
    cdef Py_ssize_t _n_beats, _cap_beats
    cdef EventRow* _events
    cdef Py_ssize_t _n_events, _cap_events

    def __cinit__(self, *args, **kwargs):
        self._x_ring = NULL
        self._s1_ring = NULL
        self._d_ring = NULL
        self._ssf_hist = NULL
        self._learn_maxima = NULL
        self._level_ring = NULL
        self._raw = NULL
        self._dec = NULL
        self._beats = NULL
        self._events = NULL

    def __init__(self, fs: float, settings: DetectorSettings | None = None) -> None:
        self.fs = check_sampling_rate(fs)
        self.settings = s = settings if settings is not None else DetectorSettings()
        self._finished = False
        self._tmin = s.transducer_min_mmhg
        self._tmax = s.transducer_max_mmhg
        self._min_threshold = s.min_threshold_mmhg
        self._onset_rise = s.onset_rise_fraction
        self._near_zero = s.near_zero_mmhg
        self._phys_max = s.physiological_max_mmhg
        self._min_pp = s.min_pulse_pressure_mmhg
        self._max_sbp = s.max_sbp_mmhg
        self._min_map = s.min_map_mmhg
        self._max_map = s.max_map_mmhg
        self._min_rate = s.min_pulse_rate_bpm
        self._max_rate = s.max_pulse_rate_bpm
        self._max_jump = s.max_pressure_jump_mmhg
        self._max_period_jump = s.max_period_jump_s
        self._noise_slope = s.noise_slope_mmhg_s
        self._max_variation = s.max_variation_ratio
        self._hysteresis_fraction = s.variation_hysteresis_fraction
        self._hysteresis_mmhg = s.variation_hysteresis_mmhg
        self._clip_run_s = s.clip_run_s
        self._flush_plateau_s = s.flush_plateau_s
        self._flush_min = s.flush_min_mmhg
        self._damped_pp = s.damped_pulse_fraction
        self._damped_map = s.damped_map_fraction
        self._reference_beats = s.reference_beats

        t = detector_timing(self.fs, s)
        self._k = t.decimation
        self._fd = self.fs / t.decimation
        self._acc = 0.0
        self._acc_n = 0
        self._j = 0
        self._primed = False
        self._hold = 0.0

        self._lp_len = t.lowpass_len
        self._lp_pos = 0
        self._ssf_pos = 0
        self._level_pos = 0
        self._lp_gain = 1.0 / (t.lowpass_len * t.lowpass_len)
        self._ssf_len = t.slope_len
        self._x_ring = _new_ring(self._lp_len)
        self._s1_ring = _new_ring(self._lp_len)
        self._d_ring = _new_ring(self._ssf_len)
        self._s1 = 0.0
        self._s2 = 0.0
        self._ssf = 0.0
        self._y_prev = 0.0

        self._half_eye = t.half_eye
        self._eye = 2 * t.half_eye
        self._learn_block = t.learning_block
        self._learn_blocks = t.learning_blocks
        self._learn_n = 0
        self._learn_max = 0.0
        self._learn_maxima = _new_ring(self._learn_blocks)
        self._n_maxima = 0
        self._learning = True
        self._expect = t.decay_after
        self._decay = t.decay_factor
        self._t_floor = 3.0 * s.min_threshold_mmhg
        self._ta = self._t_floor
        self._t1 = s.min_threshold_mmhg
        self._timer = 0
        self._lockout_until = 0
        self._cross = -1
        self._ssf_hist_len = t.slope_capacity
        self._ssf_hist = _new_ring(self._ssf_hist_len)
        self._delay = t.onset_delay

        self._level_len = t.level_len
        self._level_ring = _new_ring(self._level_len)

        self._n = 0
        self._known = 0
        self._max_beat = t.max_beat
        self._raw_len = t.raw_capacity
        self._raw = _new_ring(self._raw_len)
        self._dec_len = t.detection_capacity
        self._dec = _new_ring(self._dec_len)
        self._prev_onset = -1
        self._has_prev_beat = False
        self._ref_pp = NAN
        self._ref_map = NAN

        self._condition = 0
        self._condition_since = 0
        self._condition_j = 0
        self._last_pulse = 0

        self._n_beats = 0
        self._cap_beats = 16
        self._beats = <BeatRow*> PyMem_Malloc(self._cap_beats * sizeof(BeatRow))
        self._n_events = 0
        self._cap_events = 8
        self._events = <EventRow*> PyMem_Malloc(self._cap_events * sizeof(EventRow))
        if self._beats == NULL or self._events == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._x_ring)
        PyMem_Free(self._s1_ring)
        PyMem_Free(self._d_ring)
        PyMem_Free(self._ssf_hist)
        PyMem_Free(self._learn_maxima)
        PyMem_Free(self._level_ring)
        PyMem_Free(self._raw)
        PyMem_Free(self._dec)
        PyMem_Free(self._beats)
        PyMem_Free(self._events)

    # ----------------------------------------------------------- public API
    def push(self, samples: np.ndarray) -> DetectorOutput:
        """Feed the next chunk of samples (mmHg); return what it completed."""
        if self._finished:
            raise RuntimeError("push() after finish(): start a new BeatDetector")
        cdef cnp.ndarray arr
        if (
            type(samples) is np.ndarray
            and cnp.PyArray_TYPE(<cnp.ndarray> samples) == cnp.NPY_DOUBLE
            and cnp.PyArray_NDIM(<cnp.ndarray> samples) == 1
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> samples)
        ):
            arr = <cnp.ndarray> samples
        else:
            arr = as_sample_array(samples)
        cdef const double* data = <const double*> cnp.PyArray_DATA(arr)
        cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0)
        cdef Py_ssize_t i
        for i in range(n):
            self._step(data[i])
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
    cdef inline int _step(self, double x) except -1:
        cdef int64_t i = self._n
        cdef double clamped
        self._known = i + 1
        if isfinite(x):
            if self._condition == EV_GAP:
                self._end_condition(i)
                self._last_pulse = i
            clamped = self._tmax if x > self._tmax else x
            clamped = self._tmin if clamped < self._tmin else clamped
            if not self._primed:
                self._prime(clamped)
            self._hold = clamped
        else:
            x = NAN
            if self._condition != EV_GAP:
                if self._condition:
                    self._end_condition(i)
                self._begin_condition(EV_GAP, i, NAN)
        self._raw[i & (self._raw_len - 1)] = x
        self._n = i + 1
        self._acc += self._hold
        self._acc_n += 1
        cdef double xd
        if self._acc_n == self._k:
            xd = self._acc / self._k
            self._acc = 0.0
            self._acc_n = 0
            if self._primed:
                self._step_decimated(xd)
            self._j += 1
            self._lp_pos += 1
            if self._lp_pos == self._lp_len:
                self._lp_pos = 0
            self._ssf_pos += 1
            if self._ssf_pos == self._ssf_len:
                self._ssf_pos = 0
            self._level_pos += 1
            if self._level_pos == self._level_len:
                self._level_pos = 0
        return 0

    cdef void _prime(self, double x) noexcept:
        cdef Py_ssize_t i
        self._primed = True
        for i in range(self._lp_len):
            self._x_ring[i] = x
        self._s1 = x * self._lp_len
        for i in range(self._lp_len):
            self._s1_ring[i] = self._s1
        self._s2 = self._s1 * self._lp_len
        self._y_prev = self._s2 * self._lp_gain
        for i in range(self._level_len):
            self._level_ring[i] = x
        self._last_pulse = self._n

    # -------------------------------------------------------- per decimated
    cdef inline int _step_decimated(self, double xd) except -1:
        cdef int64_t j = self._j
        cdef Py_ssize_t lp = self._lp_pos  # j % lowpass_len, kept without a division
        self._s1 += xd - self._x_ring[lp]
        self._x_ring[lp] = xd
        self._s2 += self._s1 - self._s1_ring[lp]
        self._s1_ring[lp] = self._s1
        cdef Py_ssize_t w = self._ssf_pos
        cdef double y = self._s2 * self._lp_gain
        cdef double d = y - self._y_prev
        if d < 0.0:
            d = 0.0
        self._y_prev = y
        self._ssf += d - self._d_ring[w]
        self._d_ring[w] = d
        if (j & (RESYNC_PERIOD - 1)) == RESYNC_PERIOD - 1:
            self._s1 = _ring_sum(self._x_ring, self._lp_len)
            self._s2 = _ring_sum(self._s1_ring, self._lp_len)
            self._ssf = _ring_sum(self._d_ring, self._ssf_len)
        cdef double ssf = self._ssf
        self._ssf_hist[j & (self._ssf_hist_len - 1)] = ssf
        self._level_ring[self._level_pos] = xd
        self._dec[j & (self._dec_len - 1)] = xd

        if self._learning:
            if ssf > self._learn_max:
                self._learn_max = ssf
            self._learn_n += 1
            if self._learn_n % self._learn_block == 0:
                self._learn_maxima[self._n_maxima] = self._learn_max
                self._n_maxima += 1
                self._learn_max = 0.0
                if self._n_maxima == self._learn_blocks:
                    self._end_learning()
            return 0
        self._timer += 1
        if self._cross < 0:
            if j >= self._lockout_until and ssf > self._t1:
                self._cross = j
            elif self._timer > self._expect and self._ta > self._t_floor:
                self._ta *= self._decay
                self._t1 = self._decision_threshold()
        if self._cross >= 0 and j >= self._cross + self._half_eye:
            self._resolve_crossing(j)
        if self._condition != EV_GAP and (
            self._condition or self._n - self._last_pulse > self._max_beat
        ):
            self._watch_pulse(j)
        return 0

    cdef inline double _decision_threshold(self) noexcept:
        cdef double t1 = self._ta / 3.0
        return t1 if t1 > self._min_threshold else self._min_threshold

    cdef void _end_learning(self) noexcept:
        self._learning = False
        cdef double* m = self._learn_maxima
        cdef Py_ssize_t n = self._n_maxima, a, b
        cdef double v
        for a in range(1, n):  # insertion sort: a handful of values
            v = m[a]
            b = a - 1
            while b >= 0 and m[b] > v:
                m[b + 1] = m[b]
                b -= 1
            m[b + 1] = v
        if n % 2:
            self._ta = m[n // 2]
        else:
            self._ta = (m[n // 2 - 1] + m[n // 2]) / 2.0
        if self._ta < self._t_floor:
            self._ta = self._t_floor
        self._t1 = self._decision_threshold()
        self._timer = 0
        self._last_pulse = self._n

    cdef int _resolve_crossing(self, int64_t last) except -1:
        cdef const double* hist = self._ssf_hist
        cdef int64_t mask = self._ssf_hist_len - 1
        cdef int64_t cross = self._cross
        self._cross = -1
        cdef double peak = hist[cross & mask]
        cdef double v
        cdef int64_t t
        for t in range(cross + 1, last + 1):
            v = hist[t & mask]
            if v > peak:
                peak = v
        cdef double rise = self._onset_rise * peak
        cdef int64_t onset = cross - self._half_eye
        t = cross
        while t > cross - self._half_eye:
            if hist[t & mask] - hist[(t - 1) & mask] < rise:
                onset = t
                break
            t -= 1
        self._ta += (peak - self._ta) / 10.0
        self._t1 = self._decision_threshold()
        self._lockout_until = cross + self._eye
        self._timer = 0
        cdef int64_t raw_onset = (onset - self._delay) * self._k + (self._k - 1) // 2
        if raw_onset < 0:
            raw_onset = 0
        self._add_onset(raw_onset)
        return 0

    # ----------------------------------------------------------------- beats
    cdef int _add_onset(self, int64_t onset) except -1:
        cdef int64_t prev = self._prev_onset
        if onset <= prev:
            return 0
        cdef int64_t oldest = self._n - self._raw_len
        if prev >= 0 and prev >= oldest and onset - prev <= self._max_beat:
            self._emit_beat(prev, onset)
        else:
            self._has_prev_beat = False
        self._prev_onset = onset
        return 0

    cdef int _emit_beat(self, int64_t onset, int64_t end) except -1:
        cdef double fs = self.fs
        cdef const double* raw = self._raw
        cdef int64_t mask = self._raw_len - 1
        cdef double total = 0.0
        cdef int64_t valid = 0
        cdef double hi = -1.0 / 0.0
        cdef int64_t hi_at = onset
        cdef double lo = 1.0 / 0.0
        cdef bint out_of_range = False
        cdef double prev
        cdef double x, step
        cdef int64_t i
        cdef int64_t same = 0, hi_run = 0, lo_run = 0
        prev = NAN
        for i in range(onset, end):
            x = raw[i & mask]
            if x != x:
                prev = NAN
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
            if x < self._tmin or x > self._tmax:
                out_of_range = True
            prev = x
        cdef int64_t n = end - onset
        cdef double period = n / fs
        cdef int quality = 0
        if valid < n:
            quality |= Q_GAP
        if valid == 0:
            self._has_prev_beat = False
            self._append_beat(onset, end, onset, NAN, NAN, NAN, NAN, period, 60.0 / period, quality)
            return 0
        cdef double mean = total / valid
        cdef double pp = hi - lo
        cdef int64_t rail_run = hi_run if hi_run > lo_run else lo_run
        cdef int64_t top_run = 0, run = 0
        cdef double band
        if hi >= self._flush_min:
            band = hi - (2.0 if 0.02 * hi < 2.0 else 0.02 * hi)
            for i in range(onset, end):
                if raw[i & mask] >= band:
                    run += 1
                    if run > top_run:
                        top_run = run
                else:
                    run = 0
        cdef double rate = 60.0 / period
        cdef double onset_pressure = raw[onset & mask]
        cdef const double* dec = self._dec
        cdef int64_t dmask = self._dec_len - 1
        cdef int64_t first = (onset + self._k - 1) // self._k
        cdef int64_t last = end // self._k
        cdef double hysteresis = self._hysteresis_fraction * pp
        if hysteresis < self._hysteresis_mmhg:
            hysteresis = self._hysteresis_mmhg
        cdef double neg_sum = 0.0
        cdef int64_t neg_n = 0
        cdef double variation = 0.0
        cdef double pivot = dec[first & dmask]
        cdef double extreme = pivot
        cdef int leg = 0
        cdef double v
        cdef int64_t jj
        for jj in range(first, last):
            v = dec[(jj + 1) & dmask]
            step = v - dec[jj & dmask]
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

        if out_of_range or (rail_run + 1 >= 3 and rail_run / fs >= self._clip_run_s):
            quality |= Q_CLIPPED
        if hi >= self._flush_min and top_run / fs >= self._flush_plateau_s:
            quality |= Q_FLUSH
        if mean < self._near_zero:
            quality |= Q_ZEROING
        if pp < self._min_pp:
            quality |= Q_NO_PULSATILITY
        if (
            hi > self._max_sbp
            or lo < 0.0
            or mean < self._min_map
            or mean > self._max_map
            or rate < self._min_rate
            or rate > self._max_rate
        ):
            quality |= Q_IMPLAUSIBLE
        if (neg_n > 0 and neg_sum / neg_n * self._fd < self._noise_slope) or (
            variation > self._max_variation * 2.0 * pp
        ):
            quality |= Q_NOISY
        if not self._has_prev_beat or self._p_quality & ~Q_ISOLATED:
            quality |= Q_ISOLATED
        if self._has_prev_beat:
            if (
                fabs(hi - self._p_hi) > self._max_jump
                or fabs(lo - self._p_lo) > self._max_jump
                or fabs(onset_pressure - self._p_onset_pressure) > self._max_jump
                or fabs(period - self._p_period) > self._max_period_jump
            ):
                quality |= Q_ABRUPT_CHANGE
        if self._ref_pp == self._ref_pp:
            if pp < self._damped_pp * self._ref_pp and fabs(
                mean - self._ref_map
            ) < self._damped_map * self._ref_map:
                quality |= Q_DAMPED
        if quality & ~(Q_DAMPED | Q_ISOLATED) == 0:
            if self._ref_pp == self._ref_pp:
                self._ref_pp += (pp - self._ref_pp) / self._reference_beats
                self._ref_map += (mean - self._ref_map) / self._reference_beats
            else:
                self._ref_pp = pp
                self._ref_map = mean
        self._has_prev_beat = True
        self._p_hi = hi
        self._p_lo = lo
        self._p_onset_pressure = onset_pressure
        self._p_period = period
        self._p_quality = quality
        self._append_beat(onset, end, hi_at, hi, lo, mean, pp, period, rate, quality)
        if not quality & (Q_NO_PULSATILITY | Q_ZEROING | Q_FLUSH | Q_GAP):
            self._pulse_seen(onset, end)
        return 0

    cdef int _append_beat(
        self, int64_t onset, int64_t end, int64_t systolic_index, double sbp, double dbp,
        double mean, double pp, double period, double rate, int quality,
    ) except -1:
        if self._n_beats == self._cap_beats:
            grown = <BeatRow*> PyMem_Realloc(self._beats, 2 * self._cap_beats * sizeof(BeatRow))
            if grown == NULL:
                raise MemoryError()
            self._beats = grown
            self._cap_beats *= 2
        cdef BeatRow* row = &self._beats[self._n_beats]
        row.onset = onset
        row.end = end
        row.systolic_index = systolic_index
        row.sbp = sbp
        row.dbp = dbp
        row.map = mean
        row.pulse_pressure = pp
        row.period_s = period
        row.pulse_rate = rate
        row.quality = <uint16_t> quality
        row.clean = quality == 0
        row.known_at = self._known
        self._n_beats += 1
        return 0

    # ------------------------------------------------------ no-pulse stretches
    cdef int _pulse_seen(self, int64_t onset, int64_t end) except -1:
        if self._condition and self._condition != EV_GAP:
            self._end_condition(onset if onset > self._condition_since else self._condition_since)
        if end > self._last_pulse:
            self._last_pulse = end
        return 0

    cdef int _watch_pulse(self, int64_t j) except -1:
        cdef double level
        cdef int kind
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
        return 0

    cdef inline double _level(self) noexcept:
        return _ring_sum(self._level_ring, self._level_len) / self._level_len

    cdef inline int _classify(self, double level) noexcept:
        if level < self._near_zero:
            return EV_FLAT_NEAR_ZERO
        if level > self._phys_max:
            return EV_NO_PULSE_HIGH
        return EV_NO_PULSE

    cdef int _begin_condition(self, int kind, int64_t index, double level) except -1:
        self._condition = kind
        self._condition_since = index
        self._condition_j = self._j
        self._append_event(kind, True, index, level)
        return 0

    cdef int _end_condition(self, int64_t index) except -1:
        self._append_event(self._condition, False, index, NAN)
        self._condition = 0
        return 0

    cdef int _append_event(self, int kind, bint begin, int64_t index, double level) except -1:
        if self._n_events == self._cap_events:
            grown = <EventRow*> PyMem_Realloc(self._events, 2 * self._cap_events * sizeof(EventRow))
            if grown == NULL:
                raise MemoryError()
            self._events = grown
            self._cap_events *= 2
        cdef EventRow* row = &self._events[self._n_events]
        row.kind = <uint8_t> kind
        row.begin = begin
        row.index = index
        row.level_mmhg = level
        row.known_at = self._known
        self._n_events += 1
        return 0

    # ---------------------------------------------------------------- output
    cdef object _drain(self):
        if self._n_beats == 0 and self._n_events == 0:
            return _EMPTY_OUTPUT
        beats = _EMPTY_BEATS
        events = _EMPTY_EVENTS
        if self._n_beats:
            beats = _new_rows(_BEAT_DESCR, self._n_beats, self._beats)
            self._n_beats = 0
        if self._n_events:
            events = _new_rows(_EVENT_DESCR, self._n_events, self._events)
            self._n_events = 0
        return _new_tuple(DetectorOutput, (beats, events))
