"""``monitor report``: MAP and NEE over a period, with the detector's states and the alarms.

Plotting is an optional extra (matplotlib); the log never depends on it.
Time runs along UTC as logged; a gap in the trends (the monitor off, the
signal lost) is drawn as a gap, never joined across.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.log.reader import LogReader

STATE_COLOURS = {
    "normotensive": "#e8f5e9",
    "vasopressor_dependent": "#fff8e1",
    "hypotensive": "#ffe0b2",
    "refractory": "#ffcdd2",
    "insufficient_signal": "#eeeeee",
    "no_pulse": "#d1c4e9",
}
PRIORITY_COLOURS = {"high": "#c62828", "medium": "#ef6c00", "low": "#0277bd", "info": "#2e7d32"}
GAP_FACTOR = 3.0  # trend points further apart than this many intervals are a gap


class ReportUnavailable(Exception):
    """The report cannot be drawn; the message says why and what to do."""


def write_report(
    reader: LogReader,
    out: str | Path,
    since: float | None,
    until: float | None,
    map_target_mmhg: float = 65.0,
    nee_threshold: float = 0.25,
) -> str:
    """Draw the period's trends into ``out`` (PNG); return a one-line summary."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportUnavailable(
            "the trend report needs matplotlib: pip install '.[report]' (the log works without)"
        ) from None
    trends = reader.rows(["trend"], since, until)
    if not trends:
        raise ReportUnavailable(f"no trend data in {reader.path} for that period")
    states = [r for r in reader.rows(["state"], since, until) if r.detail.get("kind") == "state"]
    alarms = [r for r in reader.rows(["alarm"], since, until) if r.detail["transition"] == "raised"]

    times, maps, nees = [], [], []
    spacing = _typical_spacing([r.utc for r in trends])
    for previous, row in zip([None, *trends], trends, strict=False):
        if previous is not None and row.utc - previous.utc > GAP_FACTOR * spacing:
            times.append(_when(previous.utc + spacing))
            maps.append(float("nan"))
            nees.append(float("nan"))
        times.append(_when(row.utc))
        maps.append(_number(row.detail["map_mmhg"]))
        nees.append(_number(row.detail["nee"]))

    figure, (map_axis, nee_axis) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6), height_ratios=(2, 1), layout="constrained"
    )
    end = times[-1]
    for state, following in zip(states, [*states[1:], None], strict=False):
        stop = _when(following.utc) if following is not None else end
        colour = STATE_COLOURS.get(state.name, "#ffffff")
        map_axis.axvspan(_when(state.utc), stop, color=colour, lw=0)
    map_axis.plot(times, maps, color="black", lw=1.0, label="MAP (median of clean beats)")
    map_axis.axhline(map_target_mmhg, color="#c62828", ls="--", lw=1.0, label="target")
    for alarm in alarms:
        colour = PRIORITY_COLOURS.get(alarm.priority, "grey")
        map_axis.axvline(_when(alarm.utc), color=colour, lw=1.2)
        map_axis.annotate(
            alarm.name, (_when(alarm.utc), 1.0), xycoords=("data", "axes fraction"),
            rotation=90, va="top", ha="right", fontsize=7, color=colour,
        )  # fmt: skip
    map_axis.set_ylabel("MAP (mmHg)")
    map_axis.legend(loc="lower left", fontsize=8)
    nee_axis.plot(times, nees, color="#1565c0", lw=1.0, label="NEE")
    nee_axis.axhline(nee_threshold, color="#c62828", ls="--", lw=1.0, label="threshold")
    nee_axis.set_ylabel("NEE (ug/kg/min)")
    nee_axis.set_xlabel("UTC")
    nee_axis.legend(loc="upper left", fontsize=8)
    first = times[0].strftime("%Y-%m-%d %H:%M")
    map_axis.set_title(f"Bedside trend from {first} UTC (shaded: detector state)")
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return (
        f"report written to {out}: {len(trends)} trend points, {len(states)} state changes, "
        f"{len(alarms)} alarms raised"
    )


def _when(utc: float) -> datetime:
    return datetime.fromtimestamp(utc, UTC)


def _number(value: float | None) -> float:
    """A logged numeric (JSON: a number or null) as a float, NaN where it was unknown."""
    return float("nan") if value is None else float(value)


def _typical_spacing(utcs: list[float]) -> float:
    steps = sorted(b - a for a, b in zip(utcs, utcs[1:], strict=False) if b > a)
    return steps[len(steps) // 2] if steps else 5.0
