"""Reading a stored arterial pressure recording for offline analysis, in bounded memory.

Two formats: a CSV of ``time in seconds, pressure in mmHg`` (optionally
gzipped, under any header), and a WFDB record read with the optional ``wfdb``
package. Every problem a user can cause (a wrong path, a damaged file, a
record without an arterial channel) becomes a :class:`RecordError` whose
message names the file and, for CSV, the line.

``open_recording`` streams: it checks the whole record first and then hands
out its samples a block at a time, so a day of samples never sits in memory.
``read_recording`` gathers them into one array, for the short records of the
tools that want one.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import logging
import math
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: A row whose time jumps more than this many sample periods starts a gap.
GAP_PERIODS = 1.5
#: A hole longer than this is taken as a corrupt time stamp, not a gap to fill.
MAX_GAP_S = 86_400.0
#: Arterial channel names: ABP or ART, alone or with a non-letter suffix
#: (ART1, "ABP 2"). MIMIC numerics such as ABPMean are trends, not waveforms.
_ARTERIAL = re.compile(r"(ABP|ART)(?![A-Za-z])", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"
#: CSV text parsed at a time (about 200,000 rows).
CHUNK_BYTES = 4 << 20
#: Samples handed out at a time, at most.
CHUNK_SAMPLES = 1 << 18
#: WFDB samples read at a time.
WFDB_CHUNK_SAMPLES = 1 << 20


class RecordError(Exception):
    """A recording that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Recording:
    """One pressure signal at a constant rate, with NaN where samples are missing."""

    samples: np.ndarray  # float64 mmHg, NaN for missing
    fs: float
    source: str  # path, plus channel for WFDB
    channel: str


@dataclass(frozen=True)
class RecordStream:
    """A checked recording whose samples come a block at a time: ``chunks()`` may be
    called again and starts over. ``close()`` frees what the stream holds (temporary files).

    A WFDB signal file damaged past what its header says is found while
    streaming, as a ``RecordError`` from ``chunks()``.
    """

    fs: float
    n_samples: int
    source: str
    channel: str
    chunks: Callable[[], Iterator[np.ndarray]]  # consecutive float64 blocks, NaN for missing
    close: Callable[[], None] = lambda: None


def open_recording(
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    channel: str | None = None,
) -> RecordStream:
    """Check the arterial pressure in a CSV file or a WFDB record and stream it.

    ``path`` names a CSV (``.csv``, ``.csv.gz`` or anything not WFDB), a WFDB
    header ``X.hea``, or a WFDB record ``X`` whose ``X.hea`` exists. ``fs``
    overrides the rate a CSV time column implies (the column still places the
    rows); for WFDB the header's rate is authoritative and ``fs`` must agree.
    ``channel`` picks the WFDB signal (default: the one named ABP or ART); for
    a CSV it must match the pressure column's header.
    """
    if fs is not None and not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive number of hertz, not {fs!r}")
    path = Path(path)
    record = _wfdb_record_name(path)
    if record is not None:
        return _open_wfdb(record, fs, channel)
    return _open_csv(path, fs, channel)


def read_recording(
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    channel: str | None = None,
) -> Recording:
    """The whole recording in one read-only array; arguments as for ``open_recording``."""
    stream = open_recording(path, fs=fs, channel=channel)
    try:
        samples = np.empty(stream.n_samples)
        at = 0
        for chunk in stream.chunks():
            samples[at : at + len(chunk)] = chunk
            at += len(chunk)
    finally:
        stream.close()
    samples.setflags(write=False)
    return Recording(samples=samples, fs=stream.fs, source=stream.source, channel=stream.channel)


def _wfdb_record_name(path: Path) -> Path | None:
    """The record name (header path without ``.hea``) if ``path`` means WFDB."""
    if path.suffix.lower() == ".hea":
        return path.with_suffix("")
    if not path.exists() and path.with_name(path.name + ".hea").is_file():
        return path
    return None


# --- WFDB -------------------------------------------------------------------


def _open_wfdb(record: Path, fs: float | None, channel: str | None) -> RecordStream:
    header_path = record.with_name(record.name + ".hea")
    _read_bytes(header_path)  # a missing or unreadable header fails here, plainly
    try:
        import wfdb
    except ImportError:
        raise RecordError(
            f"{header_path}: reading WFDB records needs the wfdb extra "
            "(pip install 'monitor[wfdb]')"
        ) from None
    try:
        header = wfdb.rdheader(str(record))
    except Exception as exc:  # wfdb raises assorted types for malformed headers
        raise RecordError(f"{header_path}: not a readable WFDB header: {exc}") from exc
    if isinstance(header, wfdb.MultiRecord):
        segments = zip(header.seg_name, header.seg_len, strict=True)
        raise RecordError(
            f"{header_path}: multi-segment record; open one of its segments "
            f"({', '.join(n for n, length in segments if n != '~' and length)})"
        )
    if header.sig_len is not None and header.sig_len < 2:
        raise RecordError(
            f"{header_path}: {header.sig_len} samples (a layout header?); need at least 2"
        )
    names = list(header.sig_name or [])
    index = _pick_channel(names, channel, header_path)
    units = (header.units or [None] * len(names))[index]
    if (units or "").lower() != "mmhg":
        raise RecordError(f"{header_path}: channel {names[index]} is in {units!r}, expected mmHg")
    rate = float(header.fs) * header.samps_per_frame[index]
    if fs is not None and not math.isclose(fs, rate, rel_tol=1e-9):
        raise RecordError(
            f"{header_path}: the header gives {names[index]} at {rate:g} Hz, "
            f"not the {fs:g} Hz asked for"
        )
    frames = header.sig_len
    if frames is None:  # a header without a length: the signal file says it
        return _whole_wfdb(record, header_path, index, names[index], rate)

    def chunks() -> Iterator[np.ndarray]:
        step = max(1, WFDB_CHUNK_SAMPLES // header.samps_per_frame[index])
        for start in range(0, frames, step):
            yield _wfdb_samples(record, header_path, index, start, min(frames, start + step))

    chunks().__next__()  # a missing or unreadable signal file fails here, before any output
    return RecordStream(
        fs=rate,
        n_samples=frames * header.samps_per_frame[index],
        source=f"{header_path}#{names[index]}",
        channel=names[index],
        chunks=chunks,
    )


def _wfdb_samples(
    record: Path, header_path: Path, index: int, start: int | None = None, stop: int | None = None
) -> np.ndarray:
    """Frames ``[start, stop)`` of one channel (all of it by default), in mmHg."""
    import wfdb

    try:
        # smooth_frames=False keeps every sample of a channel recorded at a
        # multiple of the frame rate instead of averaging them per frame.
        data = wfdb.rdrecord(
            str(record), channels=[index], smooth_frames=False, sampfrom=start or 0, sampto=stop
        )
    except Exception as exc:  # missing or truncated .dat, unknown format, ...
        raise RecordError(f"{header_path}: cannot read the signal: {exc}") from exc
    return np.array(data.e_p_signal[0], dtype=np.float64)


def _whole_wfdb(
    record: Path, header_path: Path, index: int, name: str, rate: float
) -> RecordStream:
    samples = _wfdb_samples(record, header_path, index)
    return RecordStream(
        fs=rate,
        n_samples=len(samples),
        source=f"{header_path}#{name}",
        channel=name,
        chunks=lambda: iter([samples]),
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _pick_channel(names: list[str], channel: str | None, where: Path) -> int:
    """Index of the wanted channel, or of the first arterial one."""
    if channel is not None:
        wanted = [i for i, name in enumerate(names) if name.lower() == channel.lower()]
        problem = f"no channel named {channel!r}"
    else:
        wanted = [i for i, name in enumerate(names) if _ARTERIAL.match(name)]
        problem = "no arterial pressure channel (ABP or ART); pass channel="
    if not wanted:
        raise RecordError(f"{where}: {problem}; channels: {', '.join(names)}")
    if channel is None:
        log.info("%s: using channel %s", where, names[wanted[0]])
    return wanted[0]


# --- CSV --------------------------------------------------------------------
#
# Two passes, so memory stays bounded whatever the length. The first reads
# the text a block at a time, checks every row and writes the parsed time and
# pressure columns, as float64, to two temporary files; only then are the
# rate and the gaps known. The second pass streams the samples from those
# files, NaN where rows are missing. Errors are kept in the order a reader of
# the whole file would meet them: a damaged file before a bad row, a bad row
# before a bad time stamp, whichever block each was found in.


class _NotUtf8(Exception):
    """The text is not UTF-8: it is read again as Latin-1."""


@dataclass
class _Block:
    """Data lines parsed from one block of text, and where they are in the file."""

    text: str
    first_line: int
    time: np.ndarray
    pressure: np.ndarray


class _CsvScan:
    """The first pass over a CSV: checks, row count, time statistics, spilled columns."""

    def __init__(self, path: Path, encoding: str) -> None:
        # the spilled columns live in temporary files (TMPDIR), 16 bytes a row
        self.path = path
        self.encoding = encoding
        self.errors: dict[int, RecordError] = {}  # by priority: the lowest is raised
        self.header_lines = 0
        self.label = ""
        self.rows = 0
        self.first_time = math.nan
        self.last_time = math.nan
        self.max_step = -math.inf
        self.max_step_error: RecordError | None = None  # the longest step, if over MAX_GAP_S
        self.histogram = np.zeros(1 << 16, np.int64)  # steps by their top 16 bits
        self.times = tempfile.TemporaryFile()
        self.pressures = tempfile.TemporaryFile()

    def close(self) -> None:
        self.times.close()
        self.pressures.close()

    def fail(self, priority: int, error: RecordError) -> None:
        self.errors.setdefault(priority, error)

    def stopped(self) -> bool:
        """A bad row or the wrong column was found: read on only for a damaged file."""
        return any(priority <= _ROWS for priority in self.errors)

    def run(self, channel: str | None) -> None:
        seen = False
        in_header = True
        pending = ""
        line = 1
        for text, raw in self._text_blocks():
            final = not raw
            seen = seen or not final
            if b"\0" in raw:
                self.fail(_BINARY, RecordError(f"{self.path}: binary data, not a CSV text file"))
            if self.stopped():
                continue
            pending += text
            if in_header:
                start, count, label, done = _split_header(
                    pending + "\n" if final and pending else pending
                )
                if count:
                    self.header_lines += count
                    self.label = label
                    line += count
                pending = pending[start:]
                if not done:
                    continue
                in_header = False
                self.label = self.label or "column 2"
                if channel is not None and channel.lower() != self.label.lower():
                    self.fail(
                        _CHANNEL,
                        RecordError(
                            f"{self.path}: the pressure column is {self.label!r}, not {channel!r}"
                        ),
                    )
                    continue
            cut = len(pending) if final else pending.rfind("\n") + 1
            if cut:
                self._parse(pending[:cut], line)
                line += pending.count("\n", 0, cut)
                pending = pending[cut:]
        if not seen:
            self.fail(_EMPTY, RecordError(f"{self.path}: empty file"))
        elif in_header:
            self.fail(
                _NO_DATA,
                RecordError(
                    f"{self.path}: no data rows (a number and a comma) after "
                    f"{self.header_lines} header line(s)"
                ),
            )
        if self.rows < 2:
            self.fail(_SHORT, RecordError(f"{self.path}: only {self.rows} sample; need at least 2"))

    def _text_blocks(self) -> Iterator[tuple[str, bytes]]:
        """(text, raw bytes) a block at a time: decoded, ``\\n`` line ends, never a split CRLF."""
        try:
            file = self.path.open("rb")
        except OSError as exc:
            raise RecordError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        with file:
            zipped = file.read(2) == _GZIP_MAGIC
            file.seek(0)
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=file) if zipped else file
            decoder = codecs.getincrementaldecoder(self.encoding)()
            carry = ""
            while True:
                try:
                    raw = stream.read(CHUNK_BYTES)
                except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    raise RecordError(f"{self.path}: damaged gzip file: {exc}") from exc
                except OSError as exc:
                    if zipped:
                        raise RecordError(f"{self.path}: damaged gzip file: {exc}") from exc
                    raise RecordError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
                try:
                    text = carry + decoder.decode(raw, final=not raw)
                except UnicodeDecodeError:
                    raise _NotUtf8 from None
                if raw and text.endswith("\r"):
                    text, carry = text[:-1], "\r"
                else:
                    carry = ""
                yield text.replace("\r\n", "\n").replace("\r", "\n"), raw
                if not raw:
                    return

    def _parse(self, data: str, first_line: int) -> None:
        """Parse, check and spill one block of whole data lines."""
        if not data.strip():
            return  # blank lines only: numpy would warn of no data
        try:
            table = _numbers(data)
        except ValueError as exc:
            located = _diagnose(self.path, data, first_line)
            self.fail(_ROWS, located or RecordError(f"{self.path}: {exc}"))
            return
        if not len(table):
            return
        block = _Block(data, first_line, table[:, 0].copy(), table[:, 1].copy())
        self._check(block)
        self.times.write(block.time.tobytes())
        self.pressures.write(block.pressure.tobytes())
        self.rows += len(block.time)

    def _check(self, b: _Block) -> None:
        time, pressure = b.time, b.pressure
        bad = np.flatnonzero(~np.isfinite(time))
        if bad.size:
            self.fail(_TIME, _row_error(self.path, b, bad[0], f"time is {time[bad[0]]}"))
        bad = np.flatnonzero(np.isinf(pressure))
        if bad.size:
            self.fail(_PRESSURE, _row_error(self.path, b, bad[0], "pressure is infinite"))
        before = self.last_time if self.rows else math.nan
        if not self.rows:
            self.first_time = time[0]
        step = np.diff(time, prepend=before) if self.rows else np.diff(time)
        offset = 0 if self.rows else 1  # the row each step ends at, in this block
        self.last_time = time[-1]
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            row = bad[0] + offset
            previous = time[row - 1] if row else before
            self.fail(
                _ORDER,
                _row_error(
                    self.path,
                    b,
                    row,
                    f"time {time[row]:g} s does not increase (previous row {previous:g} s)",
                ),
            )
        if self.errors or not step.size:
            return  # the scan will fail: its statistics no longer matter
        self.histogram += np.bincount(step.view(np.int64) >> 48, minlength=1 << 16)
        longest = int(np.argmax(step))
        if step[longest] > self.max_step:
            self.max_step = float(step[longest])
            if self.max_step > MAX_GAP_S:
                self.max_step_error = _row_error(
                    self.path,
                    b,
                    longest + offset,
                    f"time jumps by {step[longest]:g} s; a gap over {MAX_GAP_S:g} s "
                    "is taken as a corrupt time stamp",
                )

    def raise_first_error(self) -> None:
        if self.errors:
            raise self.errors[min(self.errors)]


def _numbers(data: str) -> np.ndarray:
    """The time and pressure columns of whole data lines; ValueError if they do not parse.

    Empty fields read as NaN and blank-looking lines as blank, by rewriting
    the text, but only when numpy's C reader (an hour at 1 kHz in about 3 s)
    refuses the block as it is: the rewriting costs as much as the parse,
    and a block it would change does not parse unchanged unless the change
    is in a column not read, so the result is the same either way.
    """
    try:
        return _loadtxt(data)
    except ValueError:
        filled = re.sub(r",[ \t]*(?=[,\n]|\Z)", ",nan", data)
        return _loadtxt(re.sub(r"(?m)^[ \t]+(?=\n|\Z)", "", filled))


def _loadtxt(data: str) -> np.ndarray:
    return np.loadtxt(io.StringIO(data), delimiter=",", usecols=(0, 1), comments=None, ndmin=2)


# Priorities of the errors a scan can find, in the order a whole-file reader meets them.
_EMPTY, _BINARY, _NO_DATA, _CHANNEL, _ROWS, _SHORT, _TIME, _PRESSURE, _ORDER = range(9)


def _scan_csv(path: Path, channel: str | None) -> _CsvScan:
    """The first pass, in UTF-8, or again in Latin-1 if the file is not UTF-8."""
    for encoding in ("utf-8-sig", "latin-1"):
        scan = _CsvScan(path, encoding)
        try:
            scan.run(channel)
            scan.raise_first_error()
        except _NotUtf8:
            scan.close()
            continue
        except BaseException:
            scan.close()
            raise
        return scan
    raise AssertionError("Latin-1 decodes any bytes")


def _open_csv(path: Path, fs: float | None, channel: str | None) -> RecordStream:
    scan = _scan_csv(path, channel)
    try:
        layout = _CsvLayout(scan)
    except BaseException:
        scan.close()
        raise
    return RecordStream(
        fs=fs if fs is not None else layout.rate,
        n_samples=layout.n_samples,
        source=str(path),
        channel=scan.label,
        chunks=layout.samples,
        close=scan.close,
    )


class _CsvLayout:
    """Where each row goes, and the rate, from the scan's spilled time column.

    Without gaps the rate is (n - 1) / (t[-1] - t[0]): exact to the rounding of
    two time stamps, whereas the median step of times rounded to 0.1 ms reads
    124.945 Hz as 125 Hz and drifts a sample every 18 s. With gaps the median
    step only finds them; the ungapped steps' mean (a sum of run spans, so
    just as immune to rounding) counts each gap's missing samples, and the
    rate is the total sample count over the total span. The median is exact,
    found by a radix selection over the spilled times (16 bits a pass), so no
    pass holds more than a block.
    """

    def __init__(self, scan: _CsvScan) -> None:
        self.scan = scan
        span = scan.last_time - scan.first_time
        n_steps = scan.rows - 1
        half = n_steps // 2
        if n_steps % 2:
            median = self._kth_step(half)[0]
        else:  # np.median's (a + b) / 2; the upper middle is most often the lower one again
            low, at_most_low = self._kth_step(half - 1)
            high = low if at_most_low > half else self._kth_step(half)[0]
            median = (low + high) / 2
        self.threshold = GAP_PERIODS * median
        self.gaps = scan.max_step > self.threshold
        if not self.gaps:
            self.period = math.nan
            self.n_samples = scan.rows
            self.rate = float(n_steps / span)
            return
        if scan.max_step_error is not None:
            raise scan.max_step_error
        total, count, gaps = 0.0, 0, 0
        for step in self._steps():
            kept = step[step <= self.threshold]
            total += float(kept.sum())
            count += len(kept)
        self.period = total / count
        last = 0
        for step in self._steps():
            gap = step > self.threshold
            gaps += int(gap.sum())
            last += len(step) - int(gap.sum()) + int(np.rint(step[gap] / self.period).sum())
        self.n_samples = last + 1
        self.rate = float(last / span)
        log.info(
            "%s: %d missing samples filled with NaN in %d gaps",
            scan.path,
            self.n_samples - scan.rows,
            gaps,
        )

    def _columns(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(time, pressure) of the rows, a block at a time, from the spilled columns."""
        times, pressures = self.scan.times, self.scan.pressures
        times.seek(0)
        pressures.seek(0)
        while True:
            time = np.frombuffer(times.read(8 * CHUNK_SAMPLES), np.float64)
            if not len(time):
                return
            yield time, np.frombuffer(pressures.read(8 * len(time)), np.float64)

    def _steps(self) -> Iterator[np.ndarray]:
        """Every step between consecutive rows, a block at a time."""
        times = self.scan.times
        times.seek(0)
        before: np.ndarray | None = None
        while True:
            time = np.frombuffer(times.read(8 * CHUNK_SAMPLES), np.float64)
            if not len(time):
                return
            yield np.diff(time) if before is None else np.diff(time, prepend=before)
            before = time[-1:]

    def _kth_step(self, k: int) -> tuple[float, int]:
        """The ``k``-th smallest step (0-based) and how many steps are at most it.

        Steps are positive floats, so their bits sort as integers: each pass
        counts the next 16 bits of the steps whose higher bits are decided.
        """
        counts = self.scan.histogram  # the top 16 bits, counted by the scan
        prefix = below = 0
        for shift in (48, 32, 16, 0):
            if shift < 48:
                counts = np.zeros(1 << 16, np.int64)
                for step in self._steps():
                    key = step.view(np.int64)
                    key = key[(key >> (shift + 16)) == prefix]
                    counts += np.bincount((key >> shift) & 0xFFFF, minlength=1 << 16)
            cumulative = np.cumsum(counts)
            digit = int(np.searchsorted(cumulative, k, side="right"))
            passed = int(cumulative[digit - 1]) if digit else 0
            k -= passed
            below += passed
            prefix = (prefix << 16) | digit
        value = float(np.array([prefix], np.int64).view(np.float64)[0])
        return value, below + int(counts[digit])

    def samples(self) -> Iterator[np.ndarray]:
        """The samples in order, NaN where rows are missing, in pieces of bounded length."""
        before: np.ndarray | None = None
        for time, pressure in self._columns():
            if not self.gaps:
                yield pressure
                continue
            # a step ends at the row after it in the first block, at its own row later
            first = before is None
            step = np.diff(time) if before is None else np.diff(time, prepend=before)
            before = time[-1:]
            gap = step > self.threshold
            gap_rows = np.flatnonzero(gap) + (1 if first else 0)
            missing = np.rint(step[gap] / self.period).astype(np.int64) - 1
            start = 0
            for row, hole in zip(gap_rows.tolist(), missing.tolist(), strict=True):
                if row > start:
                    yield pressure[start:row]
                for low in range(0, hole, CHUNK_SAMPLES):
                    yield np.full(min(CHUNK_SAMPLES, hole - low), np.nan)
                start = row
            if start < len(pressure):
                yield pressure[start:]


def _split_header(text: str) -> tuple[int, int, str, bool]:
    """Offset of the first data row, header line count, pressure column label, and whether
    the data was reached (a header line cut at the end of ``text`` is left for later).

    A header line is any leading line whose first field is not a number; the
    label is the second field of the last header line (empty: ``column 2``).
    """
    pos = 0
    count = 0
    label = ""
    while pos < len(text):
        end = text.find("\n", pos)
        if end < 0:
            return pos, count, label, False
        fields = text[pos:end].split(",")
        if _is_number(fields[0]):
            return pos, count, label, True
        label = fields[1].strip().strip('"').strip() if len(fields) > 1 else ""
        count += 1
        pos = end + 1
    return pos, count, label, False


def _data_lines(data: str, first_line: int) -> Iterator[tuple[int, str]]:
    """(line number, line) of each non-blank line, as numpy's reader counts rows."""
    for number, line in enumerate(data.split("\n"), start=first_line):
        if line.strip():
            yield number, line


def _diagnose(path: Path, data: str, first_line: int) -> RecordError | None:
    """Locate the row numpy refused, to name its line and problem."""
    for number, line in _data_lines(data, first_line):
        fields = line.split(",")
        if len(fields) < 2:
            problem = "one column; expected time and pressure separated by a comma"
        elif not _is_number(fields[0]):
            problem = f"time {fields[0].strip()!r} is not a number"
        elif fields[1].strip() and not _is_number(fields[1]):
            problem = f"pressure {fields[1].strip()!r} is not a number"
        else:
            continue
        return RecordError(f"{path}, line {number}: {problem}")
    return None


def _row_error(path: Path, block: _Block, row: int, problem: str) -> RecordError:
    """The error for data row ``row`` (0-based) of a block, located at its line in the file."""
    number, _ = next(itertools.islice(_data_lines(block.text, block.first_line), row, None))
    return RecordError(f"{path}, line {number}: {problem}")


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True
