# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, annotation_typing=False
"""Compiled MAP window: the engine's clean-beat medians, the product's implementation.

Twin of ``monitor/clinical/map_window_py.py`` (read that file for what the
window means): same class, same signatures, the same arithmetic in the same
order, so both give the same estimates to the bit; the tests hold them to
it. Coverage is summed as numpy sums (pairwise, eight accumulators), the
sorted columns are C arrays kept in order by insertion, and the window's
rows live in one C array, so an estimate costs no Python object but the
``MapEstimate`` it returns.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport NAN, isnan
from libc.string cimport memmove

from monitor.clinical.map_window_py import MapEstimate

DEF PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE


cdef struct Row:
    double onset
    double end
    double map
    double sbp
    double dbp
    double rate
    bint clean
    bint member  # overlapped the window at the last estimate


cdef struct Column:
    double* values  # the non-NaN values, ascending
    Py_ssize_t n
    Py_ssize_t cap
    Py_ssize_t nans


cdef void* _grown(void* block, size_t size) except NULL:
    """``block`` reallocated to ``size`` bytes (on failure it is left as it was)."""
    cdef void* grown = PyMem_Realloc(block, size)
    if grown == NULL:
        raise MemoryError()
    return grown


cdef int _column_add(Column* c, double value) except -1:
    cdef Py_ssize_t lo = 0, hi, mid
    if isnan(value):
        c.nans += 1
        return 0
    if c.n == c.cap:
        c.values = <double*> _grown(c.values, 2 * c.cap * sizeof(double))
        c.cap *= 2
    hi = c.n
    while lo < hi:  # after any equal value, as bisect.insort
        mid = (lo + hi) // 2
        if value < c.values[mid]:
            hi = mid
        else:
            lo = mid + 1
    memmove(&c.values[lo + 1], &c.values[lo], (c.n - lo) * sizeof(double))
    c.values[lo] = value
    c.n += 1
    return 0


cdef void _column_remove(Column* c, double value) noexcept:
    cdef Py_ssize_t lo = 0, hi = c.n, mid
    if isnan(value):
        c.nans -= 1
        return
    while lo < hi:  # the first equal value, as bisect.bisect_left
        mid = (lo + hi) // 2
        if c.values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    memmove(&c.values[lo], &c.values[lo + 1], (c.n - lo - 1) * sizeof(double))
    c.n -= 1


cdef inline double _median(const Column* c) noexcept:
    """As ``np.median``: the middle value, or the mean of the two middle ones."""
    cdef Py_ssize_t half = c.n // 2
    if c.n % 2:
        return c.values[half]
    return (c.values[half - 1] + c.values[half]) / 2


cdef double _pairwise_sum(const double* a, Py_ssize_t n) noexcept:
    """``np.add.reduce`` of a contiguous float64 array, in numpy's order of additions."""
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, res
    cdef Py_ssize_t i, n2
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= PAIRWISE_BLOCK:
        r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
        r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
        i = 8
        while i < n - (n % 8):
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


cdef class MapWindow:
    """Beats in, ``MapEstimate`` for any later time out; memory bounded by the window."""

    cdef readonly double fs
    cdef public double window_s
    cdef public double min_coverage
    cdef Row* _rows
    cdef Py_ssize_t _cap, _first, _end
    cdef Column _every_map  # non-NaN MAPs of the member beats
    cdef Column _clean[4]  # MAP, SBP, DBP, rate of the clean member beats
    cdef Py_ssize_t _clean_beats
    cdef double* _clean_overlap  # scratch for the sums, _cap long
    cdef double* _artifact_overlap

    def __cinit__(self, *args, **kwargs):
        cdef int k
        self._cap = 256
        self._rows = <Row*> PyMem_Malloc(self._cap * sizeof(Row))
        self._clean_overlap = <double*> PyMem_Malloc(self._cap * sizeof(double))
        self._artifact_overlap = <double*> PyMem_Malloc(self._cap * sizeof(double))
        self._every_map.values = <double*> PyMem_Malloc(64 * sizeof(double))
        self._every_map.cap = 64
        for k in range(4):
            self._clean[k].values = <double*> PyMem_Malloc(64 * sizeof(double))
            self._clean[k].cap = 64
        if (self._rows == NULL or self._clean_overlap == NULL or self._artifact_overlap == NULL
                or self._every_map.values == NULL or self._clean[0].values == NULL
                or self._clean[1].values == NULL or self._clean[2].values == NULL
                or self._clean[3].values == NULL):
            raise MemoryError()

    def __dealloc__(self):
        cdef int k
        PyMem_Free(self._rows)
        PyMem_Free(self._clean_overlap)
        PyMem_Free(self._artifact_overlap)
        PyMem_Free(self._every_map.values)
        for k in range(4):
            PyMem_Free(self._clean[k].values)

    def __init__(self, double fs, double window_s, double min_coverage):
        self.fs = fs
        self.configure(window_s, min_coverage)

    def configure(self, double window_s, double min_coverage):
        """A new window length and coverage; the beats already held are kept (a reload)."""
        if not (window_s > 0 and 0.0 < min_coverage <= 1.0):
            raise ValueError("window_s must be positive and min_coverage in (0, 1]")
        self.window_s = window_s
        self.min_coverage = min_coverage

    def add(self, beats):
        """Beats from the core (``BEAT_DTYPE`` rows), in the order it emitted them."""
        cdef Row* row
        for b in beats:
            if self._end == self._cap:
                self._make_room()
            row = &self._rows[self._end]
            row.onset = <double> b["onset"] / self.fs
            row.end = <double> b["end"] / self.fs
            row.map = b["map"]
            row.sbp = b["sbp"]
            row.dbp = b["dbp"]
            row.rate = b["pulse_rate"]
            row.clean = bool(b["clean"])
            row.member = False
            self._end += 1

    cdef int _make_room(self) except -1:
        cdef Py_ssize_t n = self._end - self._first
        if n > self._cap // 2:
            self._rows = <Row*> _grown(self._rows, 2 * self._cap * sizeof(Row))
            self._clean_overlap = <double*> _grown(self._clean_overlap, 2 * self._cap * sizeof(double))
            self._artifact_overlap = <double*> _grown(
                self._artifact_overlap, 2 * self._cap * sizeof(double)
            )
            self._cap *= 2
        memmove(self._rows, &self._rows[self._first], n * sizeof(Row))
        self._first, self._end = 0, n
        return 0

    cdef int _join(self, const Row* row) except -1:
        if not isnan(row.map):
            _column_add(&self._every_map, row.map)
        if row.clean:
            self._clean_beats += 1
            _column_add(&self._clean[0], row.map)
            _column_add(&self._clean[1], row.sbp)
            _column_add(&self._clean[2], row.dbp)
            _column_add(&self._clean[3], row.rate)
        return 0

    cdef void _leave(self, const Row* row) noexcept:
        if not isnan(row.map):
            _column_remove(&self._every_map, row.map)
        if row.clean:
            self._clean_beats -= 1
            _column_remove(&self._clean[0], row.map)
            _column_remove(&self._clean[1], row.sbp)
            _column_remove(&self._clean[2], row.dbp)
            _column_remove(&self._clean[3], row.rate)

    def estimate(self, double t_s):
        """The estimate over ``[t_s - window_s, t_s]``; beats that ended before it are dropped."""
        cdef double start = t_s - self.window_s
        cdef double overlap, coverage
        cdef Py_ssize_t i, n_clean_rows = 0, n_artifact_rows = 0
        cdef Row* row
        cdef bint inside
        cdef int k
        while self._first < self._end and not (self._rows[self._first].end > start):
            row = &self._rows[self._first]
            if row.member:
                self._leave(row)
            self._first += 1
        for i in range(self._first, self._end):
            row = &self._rows[i]
            overlap = (row.end if row.end < t_s else t_s) - (
                row.onset if row.onset > start else start
            )
            inside = overlap > 0.0
            if inside != row.member:
                if inside:
                    self._join(row)
                else:
                    self._leave(row)
                row.member = inside
            if inside:
                if row.clean:
                    self._clean_overlap[n_clean_rows] = overlap
                    n_clean_rows += 1
                else:
                    self._artifact_overlap[n_artifact_rows] = overlap
                    n_artifact_rows += 1
        clean_s = _pairwise_sum(self._clean_overlap, n_clean_rows)
        artifact_s = _pairwise_sum(self._artifact_overlap, n_artifact_rows)
        naive = _median(&self._every_map) if self._every_map.n else None
        coverage = clean_s / self.window_s
        medians = [None, None, None, None]
        if self._clean_beats and coverage >= self.min_coverage:
            for k in range(4):
                medians[k] = NAN if self._clean[k].nans else _median(&self._clean[k])
        return MapEstimate(
            t_s, medians[0], medians[1], medians[2], medians[3],
            coverage, artifact_s / self.window_s, self._every_map.n, self._clean_beats, naive,
        )
