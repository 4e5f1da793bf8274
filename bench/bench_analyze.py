"""Time and peak memory of ``monitor analyze`` on long synthetic records, as a Markdown table.

Each record is synthetic ABP from the project's generator at 125 Hz: MAP
78 mmHg, dipping to 58 mmHg for 30 of every 60 min, under norepinephrine
0.3 ug/kg/min (70 kg), so every hour opens and confirms a refractory episode
and the whole timeline logic runs. Records are rendered and written chunk by
chunk (CSV ``time_s,abp_mmHg`` or a WFDB format-16 record) into a temporary
folder, then ``monitor analyze`` runs on each in a subprocess; its wall time
and peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) are printed
with the time per hour of record against the shortest record of the same
run, so linearity shows. ``--baseline-rev COMMIT`` also runs the
``monitor``/``devices`` packages of that commit (exported with ``git
archive``, given this tree's compiled core) on the same records, and adds
its figures and the ratios. Figures are reported, never asserted.

Run as ``python bench/bench_analyze.py`` (1 h, 6 h and 24 h); ``--quick``
runs 10 min and 1 h for CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from provenance import command_line, machine_line

from devices.simulation.abp_waveform import AbpGenerator

FS = 125.0
WEIGHT_KG = 70.0
CHUNK = 1 << 20  # samples rendered and written at a time
GOAL_24H_S = 10.0
GOAL_RSS_MIB = 150.0
WFDB_GAIN = 100.0  # adu per mmHg: 0.01 mmHg resolution in 16 bits
PUMPS = (
    "time_s,pump,channel,drug,concentration,concentration_unit,rate_ml_h,state\n"
    "0,P1,1,NORAD,64,ug/mL,19.7,running\n"
)


def map_mmhg(t: float) -> float:
    """Normotension, then 30 min of hypotension, every hour."""
    return 58.0 if 1200.0 <= t % 3600.0 < 3000.0 else 78.0


def write_record(folder: Path, duration_s: float, fmt: str) -> Path:
    """Render the record chunk by chunk into ``folder``; return what ``--abp`` takes."""
    generator = AbpGenerator(duration_s, FS, map_mmhg=map_mmhg, seed=17)
    n = generator.n_samples
    if fmt == "csv":
        path = folder / f"abp_{duration_s:g}s.csv"
        with open(path, "w", encoding="ascii") as out:
            out.write("time_s,abp_mmHg\n")
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                rows = np.column_stack((np.arange(start, stop) / FS, generator.render(start, stop)))
                np.savetxt(out, rows, fmt=("%.4f", "%.3f"), delimiter=",")
        return path
    name = f"abp_{duration_s:g}s"
    with open(folder / f"{name}.dat", "wb") as out:
        for start in range(0, n, CHUNK):
            adu = np.rint(generator.render(start, min(n, start + CHUNK)) * WFDB_GAIN)
            out.write(np.clip(adu, -32767, 32767).astype("<i2").tobytes())
    (folder / f"{name}.hea").write_text(
        f"{name} 1 {FS:g} {n}\n{name}.dat 16 {WFDB_GAIN:g}/mmHg 16 0 0 0 0 ABP\n"
    )
    return folder / f"{name}.hea"


def write_record_apart(folder: Path, duration_s: float, fmt: str) -> Path:
    """``write_record`` in a process of its own: Linux counts the memory of the process that
    starts ``monitor analyze`` in the child's peak RSS, so this one must stay small."""
    written = subprocess.run(
        [sys.executable, __file__, "--write-record", str(folder), repr(duration_s), fmt],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(written.stdout.strip())


@dataclass
class Run:
    duration_s: float
    wall_s: float
    peak_rss_mib: float
    rows: int
    timeline: bytes

    @property
    def hours(self) -> float:
        return self.duration_s / 3600.0

    @property
    def samples_per_s(self) -> float:
        return self.duration_s * FS / self.wall_s


ROOT = Path(__file__).resolve().parent.parent


def export_revision(commit: str, folder: Path) -> Path:
    """The packages of ``commit`` in ``folder``, with this tree's compiled core beside them."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "monitor", "devices"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    import monitor

    for core in Path(monitor.__file__).parent.glob("_beat_detector*.so"):
        shutil.copy(core, folder / "monitor")
    return folder


def run_analyze(
    abp: Path, pumps: Path, out: Path, duration_s: float, code: Path | None = None
) -> Run:
    """``monitor analyze`` as a user runs it, in its own process, timed and measured.

    ``code``: a folder whose ``monitor`` package runs instead of the installed one.
    """
    command = [
        sys.executable, "-m", "monitor", "analyze",
        "--abp", str(abp), "--pumps", str(pumps), "--weight", f"{WEIGHT_KG:g}", "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(code)) if code else None
    started = time.perf_counter()
    # run outside the source tree: ``-m`` would put the current folder before PYTHONPATH
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=abp.parent)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    assert child.stderr is not None
    summary = child.stderr.read()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"monitor analyze failed on {abp}:\n{summary}")
    timeline = out.read_bytes()
    return Run(duration_s, wall, usage.ru_maxrss / 1024.0, timeline.count(b"\n") - 1, timeline)


def length(hours: float) -> str:
    return f"{hours:g} h" if hours >= 1 else f"{hours * 60:.0f} min"


def table(runs: list[Run], fmt: str, code: str) -> str:
    base = runs[0]
    per_hour_base = base.wall_s / base.hours
    lines = [
        f"| {code}: record ({fmt}, {FS:g} Hz) | samples | wall time | peak RSS | samples/s "
        f"| time per hour of record | vs the {length(base.hours)} run | timeline rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        per_hour = r.wall_s / r.hours
        lines.append(
            f"| {length(r.hours)} | {r.duration_s * FS / 1e6:.2f} M | {r.wall_s:.2f} s "
            f"| {r.peak_rss_mib:.0f} MiB | {r.samples_per_s / 1e6:.2f} M "
            f"| {per_hour:.2f} s | {per_hour / per_hour_base:.2f}x | {r.rows} |"
        )
    return "\n".join(lines)


def comparison(runs: list[Run], baseline: list[Run], commit: str) -> str:
    lines = [
        f"| record | wall time, {commit} | wall time, this tree | speed-up "
        f"| peak RSS, {commit} | peak RSS, this tree | same timeline |",
        "|---|---|---|---|---|---|---|",
    ]
    for r, b in zip(runs, baseline, strict=True):
        lines.append(
            f"| {length(r.hours)} | {b.wall_s:.2f} s | {r.wall_s:.2f} s "
            f"| {b.wall_s / r.wall_s:.2f}x | {b.peak_rss_mib:.0f} MiB | {r.peak_rss_mib:.0f} MiB "
            f"| {r.timeline == b.timeline} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 min and 1 h only (CI smoke test)")
    parser.add_argument("--format", choices=("csv", "wfdb"), default="csv")
    parser.add_argument(
        "--hours", type=float, nargs="+", help="record lengths in hours (default 1 6 24)"
    )
    parser.add_argument(
        "--baseline-rev", metavar="COMMIT", help="also run this commit's code on the same records"
    )
    parser.add_argument("--write-record", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_record:
        folder, duration_s, fmt = args.write_record
        print(write_record(Path(folder), float(duration_s), fmt))
        return
    hours = args.hours or ([1 / 6, 1.0] if args.quick else [1.0, 6.0, 24.0])
    print(command_line())
    print(machine_line())
    runs, baseline = [], []
    with tempfile.TemporaryDirectory(prefix="bench_analyze_") as tmp:
        folder = Path(tmp)
        old_code = None
        if args.baseline_rev:
            (folder / "baseline").mkdir()
            old_code = export_revision(args.baseline_rev, folder / "baseline")
        pumps = folder / "pumps.csv"
        pumps.write_text(PUMPS)
        for h in sorted(hours):
            abp = write_record_apart(folder, h * 3600.0, args.format)
            runs.append(run_analyze(abp, pumps, folder / "timeline.csv", h * 3600.0))
            if old_code is not None:
                baseline.append(run_analyze(abp, pumps, folder / "old.csv", h * 3600.0, old_code))
            for f in folder.glob("abp_*"):
                f.unlink()
    print()
    print(table(runs, args.format, "this tree"))
    if baseline:
        print()
        print(table(baseline, args.format, args.baseline_rev))
        print()
        print(comparison(runs, baseline, args.baseline_rev))
    longest = runs[-1]
    print()
    print(
        f"goals: 24 h under {GOAL_24H_S:g} s, peak RSS at most {GOAL_RSS_MIB:g} MiB for any "
        f"length; longest here {longest.hours:g} h: {longest.wall_s:.1f} s, "
        f"{max(r.peak_rss_mib for r in runs):.0f} MiB peak"
    )


if __name__ == "__main__":
    main()
