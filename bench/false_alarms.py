"""The false-alarm figure: physiological alarms of a naive rule against this detector's.

Cases: the ``artifact-storm`` scenario (45 min of a stable patient, MAP 80,
every arterial-line and wire artifact), played through the live input path
by ``monitor.analysis.virtual_bench.run_scenario`` with the packaged settings; and
every real recording in ``tests/data`` (``*/abp.csv.gz``), read as
``monitor analyze`` reads it and run through ``monitor.analysis.analyze.analyze``
with no pump file and a weight of 70 kg.

Three counts per case:

* **naive**: the alarms of a cheap monitor's rule "MAP < 65 mmHg for 10 s".
  Its mean pressure is the mean of the raw samples over each second
  (consecutive 1 s bins from the first sample; a last, partial second is
  dropped), with no beat detection, signal quality or status flags. Ten
  consecutive 1 s means below 65 mmHg raise one alarm (at the end of the
  tenth second); a new one can be raised only after a 1 s mean has been
  >= 65 mmHg again. Missing samples are left out of a mean; a second with no
  sample at all (a dropout) shows nothing, so it ends a run of low seconds
  without re-arming the rule.
* **detector**: the physiological alarms this monitor raised
  (``refractory_hypotension``, ``map_critically_low``, ``no_pulse``,
  ``hypotension``; timeline rows with ``kind == "raised"``).
* **suppressed**: the ones it counted as suppressed (``kind ==
  "suppressed"``): ``hypotension`` or ``map_critically_low`` that a monitor
  using the median of every beat, artifacts included, with this monitor's
  delays (60 s), would have raised. It is this detector's own count, not the
  naive rule's, so the two columns need not agree.

The real recordings carry no pump data: NEE is 0 there, so no refractory
episode can open and only hypotension, map_critically_low and no_pulse can
fire. Whether an alarm is false is for the reader to judge from what the
record holds (``tests/data/README.md``): the script counts, it does not
grade.

Run as ``python bench/false_alarms.py``; ``--quick`` (the artifact storm
only) is a smoke test for CI.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from provenance import command_line, machine_line

from devices.readings import SampleBlock
from devices.simulation.scenario_file import load_scenario
from monitor.analysis.analyze import analyze
from monitor.analysis.records import read_recording
from monitor.analysis.virtual_bench import run_scenario
from monitor.clinical.alarm_types import PHYSIOLOGICAL
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.edge.input_items import InputItem

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SCENARIO = "artifact-storm"
NAIVE_LIMIT_MMHG = 65.0
NAIVE_HOLD_S = 10
WEIGHT_KG = 70.0


def naive_alarm_times(samples: np.ndarray, fs: float) -> list[float]:
    """When the naive "1 s mean < 65 mmHg for 10 s" rule raises, in seconds (see the docstring)."""
    seconds = int(len(samples) // fs)
    edges = np.round(np.arange(seconds + 1) * fs).astype(np.int64)
    times: list[float] = []
    run, armed = 0, True
    for k in range(seconds):
        second = samples[edges[k] : edges[k + 1]]
        second = second[np.isfinite(second)]
        if second.size == 0:  # nothing to show: neither low nor recovered
            run = 0
            continue
        if second.mean() < NAIVE_LIMIT_MMHG:
            run += 1
            if run >= NAIVE_HOLD_S and armed:
                times.append(float(k + 1))
                armed = False
        else:
            run, armed = 0, True
    return times


@dataclass(frozen=True)
class Case:
    """One row of the table."""

    name: str
    duration_s: float
    naive: list[float]
    raised: Counter[str]
    suppressed: Counter[str]
    seconds: float  # wall time of the detector run


def physiological(timeline: list[TimelineEntry], kind: str) -> Counter[str]:
    return Counter(e.name for e in timeline if e.kind == kind and e.name in PHYSIOLOGICAL)


def run_storm(settings: ClinicalSettings) -> Case:
    """The scenario through the live input path; the naive rule sees the samples it received."""
    scenario = load_scenario(SCENARIO)
    blocks: list[SampleBlock] = []

    def record(item: InputItem) -> None:
        if isinstance(item, SampleBlock):
            blocks.append(item)

    start = time.perf_counter()
    run = run_scenario(scenario, settings, load_drug_table(), on_item=record)
    seconds = time.perf_counter() - start
    fs = float(scenario.transducer.sample_rate_hz)
    samples = np.full(max(b.end for b in blocks), np.nan)
    for b in blocks:  # missing samples arrive as NaN blocks; a gap stays NaN
        samples[b.start : b.end] = b.samples
    return Case(
        f"scenario {SCENARIO}",
        len(samples) / fs,
        naive_alarm_times(samples, fs),
        physiological(run.timeline, "raised"),
        physiological(run.timeline, "suppressed"),
        seconds,
    )


def run_record(folder: Path, settings: ClinicalSettings) -> Case:
    """A real recording as ``monitor analyze --abp .../abp.csv.gz --weight 70`` runs it."""
    recording = read_recording(folder / "abp.csv.gz")
    start = time.perf_counter()
    timeline, _ = analyze(
        recording.samples,
        recording.fs,
        [],
        settings=settings,
        drugs=load_drug_table(),
        weight_kg=WEIGHT_KG,
    )
    seconds = time.perf_counter() - start
    return Case(
        folder.name,
        len(recording.samples) / recording.fs,
        naive_alarm_times(recording.samples, recording.fs),
        physiological(timeline, "raised"),
        physiological(timeline, "suppressed"),
        seconds,
    )


def counted(counter: Counter[str]) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{name} {n}' for name, n in sorted(counter.items()))})"


def duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"smoke test: the {SCENARIO} scenario only")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    print(command_line())
    print(machine_line())
    settings = ClinicalSettings.from_config(default_config())
    print(
        f"naive rule: the mean of the raw samples over each 1 s below {NAIVE_LIMIT_MMHG:g} mmHg "
        f"for {NAIVE_HOLD_S} consecutive seconds raises one alarm; re-armed once a 1 s mean is "
        f">= {NAIVE_LIMIT_MMHG:g}"
    )
    print(
        "detector: physiological alarms raised (refractory_hypotension, map_critically_low, "
        "no_pulse, hypotension) with the packaged settings; suppressed: the ones it counted as "
        "artifacts (median of every beat with the same 60 s delays)"
    )
    print()
    cases = [run_storm(settings)]
    if not args.quick:
        folders = sorted(p.parent for p in DATA.glob("*/abp.csv.gz"))
        cases += [run_record(folder, settings) for folder in folders]

    print("| record | duration | naive alarms | detector alarms | suppressed |")
    print("|---|---:|---:|---|---|")
    for c in cases:
        naive_at = ", ".join(f"{t:.0f}" for t in c.naive)
        naive = f"{len(c.naive)}" + (f" (at {naive_at} s)" if c.naive else "")
        print(
            f"| {c.name} | {duration(c.duration_s)} | {naive} | {counted(c.raised)} "
            f"| {counted(c.suppressed)} |"
        )
    total_s = sum(c.duration_s for c in cases)
    print(
        f"| **all {len(cases)}** | {duration(total_s)} | {sum(len(c.naive) for c in cases)} "
        f"| {sum(sum(c.raised.values()) for c in cases)} "
        f"| {sum(sum(c.suppressed.values()) for c in cases)} |"
    )
    print()
    if not args.quick:
        print(
            f"The real recordings carry no pump data: NEE is 0 there (weight {WEIGHT_KG:g} kg), "
            "so refractory_hypotension cannot fire; only hypotension, map_critically_low and "
            "no_pulse can. What each record holds, and so which alarms are true: "
            "tests/data/README.md."
        )
    print(
        f"detector time: {sum(c.seconds for c in cases):.1f} s for {duration(total_s)} of "
        f"pressure; benchmark wall time: {time.perf_counter() - wall:.1f} s"
    )


if __name__ == "__main__":
    main()
