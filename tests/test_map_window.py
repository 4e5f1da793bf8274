"""The clean-beat MAP window: its incremental medians are the full numpy computation, to the bit.

Every behaviour holds for the compiled window and its pure-Python twin alike.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor._map_window import MapWindow as CompiledMapWindow
from monitor.clinical import map_window
from monitor.clinical.map_window import MapEstimate, ReferenceMapWindow
from monitor.core import pure_python_requested
from monitor.core.beat_types import BEAT_DTYPE

FS = 125.0
FIELDS = tuple(MapEstimate.__dataclass_fields__)


class FullMediansWindow:
    """The window as it was computed before it was incremental: two full medians per estimate."""

    def __init__(self, fs: float, window_s: float, min_coverage: float) -> None:
        self.fs, self.window_s, self.min_coverage = fs, window_s, min_coverage
        self.rows = np.empty((0, 7))

    def add(self, beats) -> None:
        new = [
            (b["onset"] / self.fs, b["end"] / self.fs, b["map"], b["sbp"], b["dbp"],
             b["pulse_rate"], b["clean"])
            for b in beats
        ]  # fmt: skip
        self.rows = np.vstack([self.rows, np.array(new, dtype=float).reshape(-1, 7)])

    def estimate(self, t_s: float) -> MapEstimate:
        start = t_s - self.window_s
        self.rows = self.rows[int(np.searchsorted(self.rows[:, 1] > start, True)) :]
        rows = self.rows
        overlap = np.minimum(rows[:, 1], t_s) - np.maximum(rows[:, 0], start)
        rows, overlap = rows[overlap > 0.0], overlap[overlap > 0.0]
        clean = rows[:, 6] > 0.0
        clean_s = float(overlap[clean].sum())
        artifact_s = float(overlap[~clean].sum())
        every_map = rows[:, 2][~np.isnan(rows[:, 2])]
        naive = float(np.median(every_map)) if len(every_map) else None
        coverage = clean_s / self.window_s
        n_clean = int(clean.sum())
        medians: list[float | None] = [None] * 4
        if n_clean and coverage >= self.min_coverage:
            medians = [float(v) for v in np.median(rows[clean][:, 2:6], axis=0)]
        return MapEstimate(
            t_s, *medians, coverage, artifact_s / self.window_s, len(every_map), n_clean, naive
        )


@pytest.fixture(params=[CompiledMapWindow, ReferenceMapWindow], ids=["compiled", "reference"])
def MapWindow(request):
    return request.param


def bitwise(estimate: MapEstimate) -> tuple[str, ...]:
    """Every field by ``repr``: exact for floats, and NaN equal to NaN."""
    return tuple(repr(getattr(estimate, name)) for name in FIELDS)


def beat(onset: int, end: int, values: tuple[float, float, float, float], clean: bool) -> np.void:
    row = np.zeros(1, dtype=BEAT_DTYPE)[0]
    row["onset"], row["end"], row["known_at"] = onset, end, end
    row["map"], row["sbp"], row["dbp"], row["pulse_rate"] = values
    row["clean"] = clean
    return row


def random_session(seed: int, steps: int = 1500):
    """Beats (some with NaN values, some artifacts, some gaps), estimates and reconfigurations."""
    rng = np.random.default_rng(seed)
    sample = 0
    t = 0.0
    actions: list[tuple[str, object]] = []
    for _ in range(steps):
        kind = rng.choice(["beat", "estimate", "estimate", "configure"], p=[0.5, 0.2, 0.28, 0.02])
        if kind == "beat":
            if rng.random() < 0.03:
                sample += int(rng.integers(1, 40 * FS))  # a gap without beats
            length = int(rng.integers(1, 2 * FS))
            # Few distinct values, so equal values and even counts meet often.
            values = tuple(
                float(rng.integers(40, 48)) + 0.25 * int(rng.integers(0, 4)) for _ in range(4)
            )
            values = tuple(math.nan if rng.random() < 0.05 else v for v in values)
            actions.append(("beat", beat(sample, sample + length, values, rng.random() < 0.8)))
            sample += length
        elif kind == "estimate":
            # Mostly at or after the newest beat's end; sometimes before it, or at the same time.
            if rng.random() < 0.8:
                t = max(t, sample / FS + float(rng.random()) * 2.0 * (rng.random() < 0.7))
            actions.append(("estimate", t))
        else:
            actions.append(("configure", (float(rng.choice([5.0, 20.0, 60.0, 90.0])),
                                          float(rng.choice([0.1, 0.5, 1.0])))))  # fmt: skip
    return actions


@pytest.mark.parametrize("seed", range(12))
def test_incremental_estimates_equal_the_full_numpy_medians(MapWindow, seed):
    window, reference = MapWindow(FS, 60.0, 0.5), FullMediansWindow(FS, 60.0, 0.5)
    compared = 0
    for kind, what in random_session(seed):
        if kind == "beat":
            window.add([what])
            reference.add([what])
        elif kind == "configure":
            window.configure(*what)
            reference.window_s, reference.min_coverage = what
        else:
            assert bitwise(window.estimate(what)) == bitwise(reference.estimate(what))
            compared += 1
    assert compared > 300


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([60.0, 61.0, 62.5, 64.0, math.nan]), min_size=1, max_size=40))
@pytest.mark.parametrize("MapWindow", [CompiledMapWindow, ReferenceMapWindow])
def test_medians_of_any_values_equal_numpy_including_nan_and_even_counts(MapWindow, maps):
    window, reference = MapWindow(FS, 1000.0, 0.01), FullMediansWindow(FS, 1000.0, 0.01)
    beats = [
        beat(i * 100, (i + 1) * 100, (m, m + 40, m - 20, 70.0), True) for i, m in enumerate(maps)
    ]
    window.add(beats)
    reference.add(beats)
    t = len(maps) * 100 / FS
    assert bitwise(window.estimate(t)) == bitwise(reference.estimate(t))


def test_a_nan_map_in_a_clean_beat_makes_the_median_nan_and_is_not_counted_as_a_beat(MapWindow):
    window = MapWindow(FS, 60.0, 0.01)
    window.add(
        [beat(0, 100, (70.0, 110, 50, 75), True), beat(100, 200, (math.nan, 110, 50, 75), True)]
    )
    est = window.estimate(200 / FS)
    assert math.isnan(est.map_mmhg) and est.systolic_mmhg == 110.0
    assert est.beats == 1 and est.clean_beats == 2 and est.naive_map_mmhg == 70.0


def test_an_even_count_median_is_the_mean_of_the_two_middle_values(MapWindow):
    window = MapWindow(FS, 60.0, 0.01)
    window.add([beat(0, 100, (0.1, 1, 1, 1), True), beat(100, 200, (0.2, 1, 1, 1), True)])
    assert window.estimate(200 / FS).map_mmhg == (0.1 + 0.2) / 2 == float(np.median([0.1, 0.2]))


def test_configure_changes_the_window_and_keeps_the_beats_it_holds(MapWindow):
    window = MapWindow(FS, 60.0, 0.5)
    window.add([beat(i * 125, (i + 1) * 125, (60.0 + i, 100, 40, 60), True) for i in range(60)])
    assert window.estimate(60.0).clean_beats == 60
    window.configure(10.0, 0.5)
    assert window.estimate(60.0).clean_beats == 10
    window.configure(60.0, 0.5)  # the beats a short window dropped are gone: it fills again
    assert window.estimate(60.0).clean_beats == 10


@pytest.mark.parametrize("window_s, coverage", [(0.0, 0.5), (60.0, 0.0), (60.0, 1.5)])
def test_configure_refuses_an_empty_window_or_a_coverage_outside_0_1(MapWindow, window_s, coverage):
    with pytest.raises(ValueError, match="window_s must be positive"):
        MapWindow(FS, 60.0, 0.5).configure(window_s, coverage)


@pytest.mark.parametrize("beats_in_window", [7, 8, 9, 127, 128, 129, 300, 1000])
def test_coverage_is_summed_as_numpy_sums_beyond_its_pairwise_block(MapWindow, beats_in_window):
    """numpy adds eight partial sums, and halves arrays longer than 128: so must the window."""
    rng = np.random.default_rng(beats_in_window)
    lengths = rng.integers(20, 90, size=beats_in_window + 5)
    ends = np.cumsum(lengths)
    window_s = float(ends[-1] - ends[4]) / FS + 0.3  # the oldest beat only partly inside
    window, reference = MapWindow(FS, window_s, 0.5), FullMediansWindow(FS, window_s, 0.5)
    beats = [
        beat(int(end - length), int(end), (70.0, 110.0, 50.0, 80.0), bool(rng.random() < 0.7))
        for end, length in zip(ends, lengths, strict=True)
    ]
    window.add(beats)
    reference.add(beats)
    last_end_s = float(ends[-1]) / FS
    assert window.estimate(last_end_s).beats >= beats_in_window
    for t in (last_end_s, last_end_s + 0.37, last_end_s + 1.1):
        assert bitwise(window.estimate(t)) == bitwise(reference.estimate(t))


def test_the_monitor_runs_the_compiled_window_unless_told_otherwise():
    if pure_python_requested():
        assert map_window.IMPLEMENTATION == "pure-python"
        assert map_window.MapWindow is ReferenceMapWindow
    else:
        assert map_window.IMPLEMENTATION == "compiled"
        assert map_window.MapWindow is CompiledMapWindow
