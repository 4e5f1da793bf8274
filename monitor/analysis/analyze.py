"""Retrospective analysis: would the monitor have alarmed on this recorded case, and when?

A recording of the arterial pressure and a file of pump reports are turned
into the very input items a live monitor makes (sample blocks, pump
observations on the stream clock) and run through the same
``MonitorPipeline``: a pump row at ``time_s`` is applied after exactly the
samples a live monitor would have counted by then, so the timeline is the
one the bedside would have shown. File formats: ``docs/analyze.md``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from devices.readings import PumpReport, PumpState, SampleBlock, TransducerStatus
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.drug_names import NamedDrug, resolve
from monitor.configuration.drug_table import DrugTable
from monitor.edge.input_items import PumpObservation

PUMP_COLUMNS = (
    "time_s",
    "pump",
    "channel",
    "drug",
    "concentration",
    "concentration_unit",
    "rate_ml_h",
    "state",
)
TIMELINE_COLUMNS = ("time_s", "kind", "name", "priority", "map_mmhg", "nee_ug_kg_min", "message")
PUMP_ROLE = "pumps"
BLOCK_S = 1.0  # samples are handed over in blocks of this length, as a transducer's frames


class PumpFileError(ValueError):
    """A pump file that cannot be trusted; the message names the file, line and column."""


@dataclass(frozen=True)
class PumpRow:
    """One pump report from a file, at ``t_s`` seconds from the recording's first sample."""

    t_s: float
    report: PumpReport


def read_pump_rows(path: str | Path) -> list[PumpRow]:
    """Read and check a pump file; every bad row is reported, none is guessed."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PumpFileError(f"{where}: cannot read the pump file: {exc}") from None
    return parse_pump_rows(text, where)


def parse_pump_rows(text: str, where: str) -> list[PumpRow]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise PumpFileError(f"{where}: empty file; expected the header {','.join(PUMP_COLUMNS)}")
    names = [h.strip() for h in header]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise PumpFileError(f"{where}: line 1: the header names {repeated} more than once")
    missing = [c for c in PUMP_COLUMNS if c not in names]
    unknown = [c for c in names if c not in PUMP_COLUMNS]
    if missing or unknown:
        raise PumpFileError(
            f"{where}: line 1: header must name the columns {','.join(PUMP_COLUMNS)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {unknown}" if unknown else "")
        )
    column = {name: i for i, name in enumerate(names)}
    rows: list[PumpRow] = []
    problems: list[str] = []
    last_t = -math.inf
    for line, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            problems.append(f"line {line}: {len(fields)} fields, the header has {len(names)}")
            continue
        try:
            row = _pump_row(fields, column, line - 1)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if row.t_s < last_t:
            problems.append(
                f"line {line}: time_s {row.t_s:g} is before the previous row's {last_t:g}; "
                "rows must be in time order"
            )
            continue
        last_t = row.t_s
        rows.append(row)
    if problems:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PumpFileError(f"{where}: {len(problems)} bad rows:\n  " + "\n  ".join(shown) + more)
    return rows


def _pump_row(fields: list[str], column: dict[str, int], sequence: int) -> PumpRow:
    def text(name: str) -> str:
        value = fields[column[name]].strip()
        if not value:
            raise ValueError(f"{name} is empty")
        return value

    def number(name: str, minimum: float = 0.0) -> float:
        raw = text(name)
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} {raw!r} is not a number") from None
        if not math.isfinite(value) or value < minimum:
            raise ValueError(f"{name} {raw!r} must be a finite number >= {minimum:g}")
        return value

    raw_channel = text("channel")
    if not raw_channel.isdigit():
        raise ValueError(f"channel {raw_channel!r} is not a whole number")
    raw_state = fields[column["state"]].strip().lower() or PumpState.RUNNING.value
    try:
        state = PumpState(raw_state)
    except ValueError:
        known = ", ".join(s.value for s in PumpState)
        raise ValueError(f"state {raw_state!r} is not one of {known}") from None
    report = PumpReport(
        pump_id=text("pump"),
        channel=int(raw_channel),
        sequence=sequence,
        drug_code=text("drug"),
        concentration=number("concentration"),
        concentration_unit=text("concentration_unit"),
        rate_ml_h=number("rate_ml_h"),
        state=state,
    )
    return PumpRow(number("time_s"), report)


class _Cursor:
    """Consecutive sample chunks read as one array, front to back, a range at a time."""

    def __init__(self, chunks: Iterable[np.ndarray]) -> None:
        self._chunks = iter(chunks)
        self._buffer = np.empty(0)
        self._start = 0  # sample index of the buffer's first sample

    def take(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``; ``start`` is where the last range ended."""
        while self._start + len(self._buffer) < stop:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ValueError(f"the recording ended before sample {stop}")
            kept = self._buffer[start - self._start :]
            self._buffer = np.concatenate((kept, chunk)) if len(kept) else chunk
            self._start = start
        return self._buffer[start - self._start : stop - self._start]


def input_items(
    samples: np.ndarray | Iterable[np.ndarray],
    fs: float,
    rows: Iterable[PumpRow],
    drugs: DrugTable,
    total: int | None = None,
    drug_names: Mapping[str, NamedDrug] | None = None,
) -> Iterator[SampleBlock | PumpObservation]:
    """The items a live monitor would have made, in its order.

    ``samples`` is the whole recording, or its consecutive chunks with
    ``total`` their length (a stream: never all in memory). A live monitor
    stamps a pump report with the samples counted when it arrives, so a row
    at ``t_s`` comes after sample ``floor(t_s * fs) - 1`` and before the
    next. Rows after the recording's end are not applied.
    """
    if isinstance(samples, np.ndarray):
        total = len(samples)
        samples = [samples]
    if total is None:
        raise TypeError("total is needed when samples come in chunks")
    cursor = _Cursor(samples)
    block = max(1, round(BLOCK_S * fs))
    pushed = 0

    def blocks_until(n: int) -> Iterator[SampleBlock]:
        nonlocal pushed
        while pushed < n:
            end = min(n, (pushed // block + 1) * block)
            yield SampleBlock(pushed, cursor.take(pushed, end), TransducerStatus(0))
            pushed = end

    for row in rows:
        n = math.floor(row.t_s * fs + 1e-6)
        if n > total:
            break
        yield from blocks_until(n)
        resolved = resolve(row.report, drugs, drug_names or {})
        yield PumpObservation(row.t_s, PUMP_ROLE, resolved.report, resolved.drug, resolved.conflict)
    yield from blocks_until(total)


def analyze(
    samples: np.ndarray | Iterable[np.ndarray],
    fs: float,
    rows: list[PumpRow],
    *,
    settings: ClinicalSettings,
    drugs: DrugTable,
    weight_kg: float | None,
    total: int | None = None,
    drug_names: Mapping[str, NamedDrug] | None = None,
) -> tuple[list[TimelineEntry], MonitorPipeline]:
    """Run the pipeline over a recording (or its chunks, ``total`` samples) and its pump
    rows; return the timeline."""
    pipeline = MonitorPipeline(settings, fs, weight_kg)
    timeline: list[TimelineEntry] = []
    for item in input_items(samples, fs, rows, drugs, total, drug_names):
        timeline += pipeline.take(item)
    timeline += pipeline.finish()
    return timeline, pipeline


def write_timeline(timeline: Iterable[TimelineEntry], out: TextIO) -> int:
    """The timeline as CSV (``TIMELINE_COLUMNS``); return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIMELINE_COLUMNS)
    count = 0
    for e in timeline:
        writer.writerow(
            (
                f"{e.t_s:.3f}",
                e.kind,
                e.name,
                e.priority,
                "" if e.map_mmhg is None else f"{e.map_mmhg:.1f}",
                "" if e.nee is None else f"{e.nee:.3f}",
                e.message,
            )
        )
        count += 1
    return count
