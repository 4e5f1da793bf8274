"""Reading a stored arterial pressure recording for offline analysis.

Two formats: a CSV of ``time in seconds, pressure in mmHg`` (optionally
gzipped, under any header), and a WFDB record read with the optional ``wfdb``
package. Every problem a user can cause (a wrong path, a damaged file, a
record without an arterial channel) becomes a :class:`RecordError` whose
message names the file and, for CSV, the line.
"""

from __future__ import annotations

import gzip
import io
import itertools
import logging
import math
import os
import re
import zlib
from collections.abc import Iterator
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


class RecordError(Exception):
    """A recording that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Recording:
    """One pressure signal at a constant rate, with NaN where samples are missing."""

    samples: np.ndarray  # float64 mmHg, NaN for missing
    fs: float
    source: str  # path, plus channel for WFDB
    channel: str


def read_recording(
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    channel: str | None = None,
) -> Recording:
    """Read the arterial pressure in a CSV file or a WFDB record.

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
        return _read_wfdb(record, fs, channel)
    return _read_csv(path, fs, channel)


def _wfdb_record_name(path: Path) -> Path | None:
    """The record name (header path without ``.hea``) if ``path`` means WFDB."""
    if path.suffix.lower() == ".hea":
        return path.with_suffix("")
    if not path.exists() and path.with_name(path.name + ".hea").is_file():
        return path
    return None


# --- WFDB -------------------------------------------------------------------


def _read_wfdb(record: Path, fs: float | None, channel: str | None) -> Recording:
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
    try:
        # smooth_frames=False keeps every sample of a channel recorded at a
        # multiple of the frame rate instead of averaging them per frame.
        data = wfdb.rdrecord(str(record), channels=[index], smooth_frames=False)
    except Exception as exc:  # missing or truncated .dat, unknown format, ...
        raise RecordError(f"{header_path}: cannot read the signal: {exc}") from exc
    samples = np.array(data.e_p_signal[0], dtype=np.float64)
    samples.setflags(write=False)
    return Recording(
        samples=samples,
        fs=rate,
        source=f"{header_path}#{names[index]}",
        channel=names[index],
    )


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


def _read_csv(path: Path, fs: float | None, channel: str | None) -> Recording:
    text = _decode(path, _read_bytes(path))
    start, header_lines, label = _split_header(text)
    if start >= len(text) or not text[start:].strip():
        raise RecordError(
            f"{path}: no data rows (a number and a comma) after {header_lines} header line(s)"
        )
    if channel is not None and channel.lower() != label.lower():
        raise RecordError(f"{path}: the pressure column is {label!r}, not {channel!r}")
    data = text[start:]
    time, pressure = _parse_rows(path, data, header_lines + 1)
    samples, rate = _place_samples(path, data, header_lines + 1, time, pressure, fs)
    samples.setflags(write=False)
    return Recording(samples=samples, fs=rate, source=str(path), channel=label)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if they start with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise RecordError(f"{path}: damaged gzip file: {exc}") from exc
    return raw


def _decode(path: Path, raw: bytes) -> str:
    """Text with ``\\n`` line ends; Latin-1 headers from older devices pass."""
    if not raw:
        raise RecordError(f"{path}: empty file")
    if b"\0" in raw:
        raise RecordError(f"{path}: binary data, not a CSV text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_header(text: str) -> tuple[int, int, str]:
    """Offset of the first data row, header line count, pressure column label.

    A header line is any leading line whose first field is not a number; the
    label is the second field of the last header line, else ``column 2``.
    """
    pos = 0
    count = 0
    label = ""
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        fields = text[pos:end].split(",")
        if _is_number(fields[0]):
            break
        label = fields[1].strip().strip('"').strip() if len(fields) > 1 else ""
        count += 1
        pos = end + 1
    return pos, count, label or "column 2"


def _parse_rows(path: Path, data: str, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Time and pressure columns, parsed by numpy's C reader (an hour at 1 kHz in about 3 s)."""
    # numpy rejects empty fields and blank-looking lines; make them NaN / empty.
    filled = re.sub(r",[ \t]*(?=[,\n]|\Z)", ",nan", data)
    filled = re.sub(r"\n[ \t]+(?=\n|\Z)", "\n", filled)
    try:
        table = np.loadtxt(
            io.StringIO(filled), delimiter=",", usecols=(0, 1), comments=None, ndmin=2
        )
    except ValueError as exc:
        located = _diagnose(path, data, first_line)
        raise located or RecordError(f"{path}: {exc}") from None
    return table[:, 0], table[:, 1]


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


def _row_error(path: Path, data: str, first_line: int, row: int, problem: str) -> RecordError:
    """The error for data row ``row`` (0-based), located at its line in the file."""
    number, _ = next(itertools.islice(_data_lines(data, first_line), row, None))
    return RecordError(f"{path}, line {number}: {problem}")


def _place_samples(
    path: Path,
    data: str,
    first_line: int,
    time: np.ndarray,
    pressure: np.ndarray,
    fs: float | None,
) -> tuple[np.ndarray, float]:
    """Put each row at its sample index, NaN where rows are missing, and find the rate.

    Without gaps the rate is (n - 1) / (t[-1] - t[0]): exact to the rounding of
    two time stamps, whereas the median step of times rounded to 0.1 ms reads
    124.945 Hz as 125 Hz and drifts a sample every 18 s. With gaps the median
    step only finds them; the ungapped steps' mean (a sum of run spans, so
    just as immune to rounding) counts each gap's missing samples, and the
    rate is the total sample count over the total span.
    """
    if len(time) < 2:
        raise RecordError(f"{path}: only {len(time)} sample; need at least 2")
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise _row_error(path, data, first_line, bad[0], f"time is {time[bad[0]]}")
    bad = np.flatnonzero(np.isinf(pressure))
    if bad.size:
        raise _row_error(path, data, first_line, bad[0], "pressure is infinite")
    step = np.diff(time)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        row = bad[0] + 1
        raise _row_error(
            path,
            data,
            first_line,
            row,
            f"time {time[row]:g} s does not increase (previous row {time[row - 1]:g} s)",
        )
    span = time[-1] - time[0]
    gap = step > GAP_PERIODS * np.median(step)
    if not gap.any():
        return pressure.copy(), fs if fs is not None else float((len(time) - 1) / span)
    period = step[~gap].mean()
    counts = np.where(gap, np.rint(step / period), 1).astype(np.int64)
    longest = int(np.argmax(step))
    if step[longest] > MAX_GAP_S:
        raise _row_error(
            path,
            data,
            first_line,
            longest + 1,
            f"time jumps by {step[longest]:g} s; a gap over {MAX_GAP_S:g} s "
            "is taken as a corrupt time stamp",
        )
    index = np.concatenate(([0], np.cumsum(counts)))
    samples = np.full(index[-1] + 1, np.nan)
    samples[index] = pressure
    log.info(
        "%s: %d missing samples filled with NaN in %d gaps",
        path,
        index[-1] + 1 - len(time),
        int(gap.sum()),
    )
    return samples, fs if fs is not None else float(index[-1] / span)


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True
