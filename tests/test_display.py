"""The curses bedside screen: its picture as data, then the real thing in a terminal (tmux).

The layout tests need no terminal: ``layout`` returns positioned text, drawn
here onto a character grid. The live test runs ``monitor demo --display
curses`` inside tmux as a user would, presses keys and reads the screen.
"""

from __future__ import annotations

import curses
import io
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tmux_pane import TmuxPane

from devices.readings import SampleBlock, TransducerStatus
from monitor import core
from monitor.bedside.view import BedsideView, WaveformTail
from monitor.clinical.alarm_types import ActiveAlarm, Category, Priority
from monitor.log.store import DATABASE_NAME
from monitor.screens.curses_screen import (
    LEGEND,
    Cell,
    CursesScreen,
    TextTail,
    big_text,
    layout,
    terminal_can_show_curses,
    waveform_rows,
)
from monitor.screens.plain_screen import PlainScreen

FS = 125.0
PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
RUN_DIR = Path(__file__).resolve().parent  # not the checkout: the installed package


def pulses(seconds: float = 6.0, low: float = 51.0, high: float = 94.0) -> np.ndarray:
    """An arterial-like trace at 88 beats a minute: a fast upstroke, a slow run-off."""
    phase = (np.arange(int(seconds * FS)) / FS * 88 / 60) % 1
    shape = np.where(phase < 0.15, np.sin(phase / 0.15 * np.pi / 2), np.exp(-(phase - 0.15) * 4))
    return low + (high - low) * shape


def alarm(name: str, priority: Priority, **marks: bool) -> ActiveAlarm:
    return ActiveAlarm(
        name=name,
        priority=priority,
        category=Category.TECHNICAL if marks.pop("technical", False) else Category.PHYSIOLOGICAL,
        message=f"{name} message",
        since_s=600.0,
        condition_active=marks.pop("condition_active", True),
        acknowledged=marks.pop("acknowledged", False),
        audio_paused=marks.pop("audio_paused", False),
    )


def bedside_view(**changes: object) -> BedsideView:
    view = BedsideView(
        t_s=731.0,
        waveform=pulses(),
        fs=FS,
        map_mmhg=68.0,
        systolic_mmhg=94.0,
        diastolic_mmhg=51.0,
        pulse_rate_bpm=88.0,
        clean_share=0.97,
        map_target_mmhg=65.0,
        nee=0.32,
        nee_threshold=0.25,
        nee_unknown_because=(),
        drugs=("norepinephrine 0.32 ug/kg/min (pump1/1 running)",),
        state="refractory",
        state_for_s=125.0,
        episode="refractory episode for 00:02:05",
        alarms=(),
        audible=None,
    )
    return replace(view, **changes)


def screen_of(cells: Sequence[Cell], rows: int, cols: int) -> list[str]:
    """The cells drawn on a blank ``rows`` x ``cols`` screen, one string per row."""
    grid = [[" "] * cols for _ in range(rows)]
    for cell in cells:
        for i, ch in enumerate(cell.text):
            grid[cell.row][cell.col + i] = ch
    return ["".join(row) for row in grid]


def row_with(lines: Sequence[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


# ------------------------------------------------------------------ the layout
def test_a_roomy_terminal_shows_the_numbers_five_rows_high_under_their_labels():
    lines = screen_of(layout(bedside_view(), 40, 120), 40, 120)
    label = row_with(lines, "MAP mmHg, target 65")
    assert "SYS/DIA mmHg" in lines[label] and "PR /min" in lines[label]
    assert "clean beats 97%" in lines[label]
    big = lines[label + 1 : label + 6]
    for row, (map_row, pressure_row, rate_row) in enumerate(
        zip(big_text("68"), big_text("94/51"), big_text("88"), strict=True)
    ):
        assert big[row].startswith(map_row)
        assert pressure_row in big[row] and rate_row in big[row]


def test_a_small_terminal_shows_the_numbers_on_one_line():
    lines = screen_of(layout(bedside_view(), 20, 80), 20, 80)
    assert any(
        line.startswith("MAP 68 (target 65)  SYS/DIA 94/51  PR 88  clean 97%") for line in lines
    )


def test_nee_its_drugs_the_state_and_the_episode_are_shown():
    lines = screen_of(layout(bedside_view(), 40, 120), 40, 120)
    text = "\n".join(lines)
    assert "NEE 0.32 ug/kg/min (threshold 0.25)" in text
    assert "  norepinephrine 0.32 ug/kg/min (pump1/1 running)" in text
    assert "State: refractory for 00:02:05" in text
    assert "refractory episode for 00:02:05" in text
    assert lines[0].rstrip().endswith("00:12:11")  # the stream clock
    assert "not a medical device" in lines[0]


def test_unknown_values_are_dashes_never_zero():
    unknown = bedside_view(
        map_mmhg=None,
        systolic_mmhg=None,
        diastolic_mmhg=float("nan"),
        pulse_rate_bpm=None,
        clean_share=None,
        nee=None,
        nee_unknown_because=("pump1 silent",),
        state=None,
    )
    small = "\n".join(screen_of(layout(unknown, 20, 80), 20, 80))
    assert "MAP -- (target 65)  SYS/DIA --/--  PR --  clean --" in small
    assert "NEE -- ug/kg/min (threshold 0.25): pump1 silent" in small
    assert "State: starting" in small
    big = screen_of(layout(unknown, 40, 120), 40, 120)
    label = row_with(big, "MAP mmHg")
    assert "0" not in "".join(big[label + 1 : label + 6])
    assert big[label + 3].startswith("--- ---")  # the dashes' middle row


def test_alarms_are_listed_most_urgent_first_in_their_colours_with_their_marks():
    view = bedside_view(
        alarms=(
            alarm("map_low", Priority.LOW),
            alarm("no_pulse", Priority.HIGH, acknowledged=True),
            alarm(
                "port_lost",
                Priority.MEDIUM,
                technical=True,
                audio_paused=True,
                condition_active=False,
            ),
        ),
        audible=Priority.MEDIUM,
    )
    cells = layout(view, 40, 120)
    shown = [c for c in cells if c.text.split()[0] in Priority.__members__]
    assert [c.style for c in shown] == ["high", "medium", "low"]
    assert shown[0].text.startswith("HIGH no_pulse [ack]  since 00:10:00  no_pulse message")
    assert shown[1].text.startswith("MEDIUM port_lost [paused, latched] (technical)")
    assert shown[2].text.startswith("LOW map_low  since")
    assert [c.row for c in shown] == sorted(c.row for c in shown)
    assert any(c.text == "Alarms (sounding: MEDIUM)" for c in cells)


def test_without_alarms_the_screen_says_so_and_that_it_is_silent():
    texts = [c.text for c in layout(bedside_view(), 40, 120)]
    assert "Alarms (silent)" in texts and "no active alarms" in texts


def test_the_newest_alarm_events_that_fit_are_shown_oldest_first():
    events = [f"{t:8.1f}s  HIGH  no_pulse raised" for t in range(30)]
    lines = screen_of(layout(bedside_view(), 30, 100, events=events), 30, 100)
    shown = [line.strip() for line in lines if "no_pulse raised" in line]
    assert shown and shown == [e.strip() for e in events[-len(shown) :]]
    assert "Recent alarm events" in "\n".join(lines)


def test_the_newest_log_message_is_shown_above_the_legend():
    lines = screen_of(layout(bedside_view(), 30, 100, notes=["old", "pump1 port lost\n"]), 30, 100)
    assert lines[-2].startswith("note: pump1 port lost")
    assert lines[-1].startswith(LEGEND)


@pytest.mark.parametrize("rows, cols", [(10, 20), (20, 10), (3, 80), (1, 1), (0, 0), (24, 80)])
def test_any_terminal_size_gets_a_clipped_screen_with_the_key_legend_at_the_bottom(rows, cols):
    many = tuple(alarm(f"alarm_{i}", Priority(i % 4)) for i in range(12))
    view = bedside_view(alarms=many, episode="x" * 300, drugs=("y" * 300,) * 5)
    cells = layout(view, rows, cols, events=["z" * 300] * 40, notes=["a\nmultiline\tnote"])
    for cell in cells:
        assert 0 <= cell.row < rows and 0 <= cell.col
        assert cell.col + len(cell.text) <= cols
        assert cell.text.isprintable()
        if cell.row == rows - 1:  # curses cannot write the bottom-right cell
            assert cell.col + len(cell.text) < cols
    if rows:
        assert screen_of(cells, rows, cols)[-1].startswith(LEGEND[: cols - 1])


def test_a_tiny_terminal_keeps_the_clock_and_the_most_urgent_alarm():
    view = bedside_view(alarms=(alarm("no_pulse", Priority.HIGH),), audible=Priority.HIGH)
    lines = screen_of(layout(view, 10, 20), 10, 20)
    assert lines[0].endswith("00:12:11")
    assert lines[2].startswith("  HIGH no_pulse")


# ------------------------------------------------------------------ the trace
def block(start: int, samples: Sequence[float], missing: bool = False) -> SampleBlock:
    return SampleBlock(start, np.asarray(samples, dtype=float), TransducerStatus(0), missing)


def test_the_waveform_sweep_holds_the_newest_samples_oldest_first():
    tail = WaveformTail(fs=10.0, seconds=1.0)  # 10 samples
    assert np.isnan(tail.samples()).all()
    stream = np.arange(37.0)
    for start in range(0, 37, 4):  # frames of 4, crossing the ring's end again and again
        tail.add(block(start, stream[start : start + 4]))
    assert tail.samples().tolist() == stream[-10:].tolist()


def test_a_frame_longer_than_the_sweep_keeps_its_newest_samples():
    tail = WaveformTail(fs=10.0, seconds=1.0)
    tail.add(block(0, np.arange(25.0)))
    assert tail.samples().tolist() == list(np.arange(15.0, 25.0))


def test_samples_that_never_arrived_are_nan_in_the_sweep():
    tail = WaveformTail(fs=10.0, seconds=1.0)
    tail.add(block(0, [1.0] * 6))
    tail.add(block(6, [0.0] * 3, missing=True))  # filled in by the monitor
    tail.add(block(9, [2.0, 2.0]))
    tail.add(block(14, [3.0]))  # a jump ahead: 11 to 13 are unknown
    nan = np.nan
    stream = [1.0] * 6 + [nan] * 3 + [2.0, 2.0] + [nan] * 3 + [3.0]
    np.testing.assert_array_equal(tail.samples(), stream[-10:])


def test_the_trace_spans_the_plot_on_a_scale_that_holds_it_and_the_target():
    rows = waveform_rows(pulses(), 65.0, 12, 80)
    assert len(rows) == 12 and all(len(row) == 80 for row in rows)
    assert rows[0].startswith(" 100|") and rows[-1].startswith("  40|")
    target = next(row for row in rows if row.startswith("  65|"))
    assert "." in target
    plot = [row[5:] for row in rows]
    assert all(any(row[col] in "|-" for row in plot) for col in range(75))  # no gap anywhere


def test_a_gap_in_the_samples_is_left_blank():
    samples = pulses()
    samples[: len(samples) // 2] = np.nan
    plot = [row[5:] for row in waveform_rows(samples, 65.0, 10, 45)]
    assert not any(ch in "|-" for row in plot for ch in row[:19])
    assert all(any(row[col] in "|-" for row in plot) for col in range(21, 40))


def test_a_flat_trace_is_one_line_and_no_data_says_no_signal():
    flat = [row[5:] for row in waveform_rows(np.full(750, 59.0), 65.0, 10, 45)]
    assert sum(set(row) == {"-"} for row in flat) == 1
    empty = [row[5:] for row in waveform_rows(np.full(750, np.nan), 65.0, 10, 45)]
    assert any("no signal" in row for row in empty)
    assert not any(ch in "|-" for row in empty for ch in row)


# ------------------------------------------------------------------ the screen object
class FakeWindow:
    """Enough of a curses window: keys to return, a size, and what was written."""

    def __init__(self, keys: Sequence[int] = (), size: tuple[int, int] = (24, 80)):
        self.keys = list(keys)
        self.size = size
        self.paints = 0
        self.cleared = 0
        self.writes: list[tuple[int, int, str]] = []
        self.fail_writes = False

    def getch(self) -> int:
        return self.keys.pop(0) if self.keys else -1

    def getmaxyx(self) -> tuple[int, int]:
        return self.size

    def erase(self) -> None:
        self.writes = []

    def clear(self) -> None:
        self.cleared += 1

    def addstr(self, row: int, col: int, text: str, attr: int) -> None:
        if self.fail_writes:
            raise curses.error("addwstr() returned ERR")
        self.writes.append((row, col, text))

    def refresh(self) -> None:
        self.paints += 1


def test_keys_become_commands_on_every_call_without_a_repaint():
    window = FakeWindow(keys=[ord("a"), ord("P"), ord("x"), ord("q")])
    screen = CursesScreen(window, {})
    assert screen.show(bedside_view, now=0.0) == ["acknowledge", "pause_audio", "quit"]
    window.keys = [ord("a")]
    assert screen.show(bedside_view, now=0.05) == ["acknowledge"]
    assert window.paints == 1


def test_the_screen_repaints_at_most_five_times_a_second():
    window = FakeWindow()
    screen = CursesScreen(window, {})
    for turn in range(41):  # two seconds of the monitor's 50 ms loop
        screen.show(bedside_view, now=turn * 0.05)
    assert 9 <= window.paints <= 11


def test_the_curses_screen_builds_the_view_only_for_the_turns_it_paints():
    window = FakeWindow()
    screen = CursesScreen(window, {})
    built = []

    def view() -> BedsideView:
        built.append(1)
        return bedside_view()

    for turn in range(41):  # two seconds of the monitor's 50 ms loop
        screen.show(view, now=turn * 0.05)
    assert len(built) == window.paints < 41


def test_the_plain_screen_builds_the_view_only_for_the_line_it_writes_each_second():
    stream = io.StringIO()
    screen = PlainScreen(stream)
    built = []

    def view() -> BedsideView:
        built.append(1)
        return bedside_view()

    for turn in range(41):
        assert screen.show(view, now=turn * 0.05) == []
    assert len(built) == len(stream.getvalue().splitlines()) == 3  # at 0, 1 and 2 s


def test_a_resize_repaints_everything_at_once_at_the_new_size():
    window = FakeWindow()
    screen = CursesScreen(window, {})
    screen.show(bedside_view, now=0.0)
    window.size, window.keys = (10, 20), [curses.KEY_RESIZE]
    screen.show(bedside_view, now=0.01)
    assert window.cleared == 1 and window.paints == 2
    assert all(row < 10 and col + len(text) <= 20 for row, col, text in window.writes)


def test_a_write_curses_refuses_never_ends_the_monitor():
    window = FakeWindow()
    window.fail_writes = True
    assert CursesScreen(window, {}).show(bedside_view, now=0.0) == []


def test_the_alarm_stream_keeps_the_last_complete_lines_for_the_screen():
    tail = TextTail(keep=3)
    for i in range(5):
        tail.write(f"line {i}")
        tail.write("\n")
    tail.write("partial")
    tail.flush()
    assert tail.lines() == ["line 2", "line 3", "line 4"]
    assert tail.dropped == 2
    window = FakeWindow(size=(30, 100))
    CursesScreen(window, {}, events=tail).show(bedside_view, now=0.0)
    assert any(text == "line 4" for _, _, text in window.writes)


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "tty, term, curses_on",
    [
        (True, "xterm-256color", True),
        (True, "linux", True),
        (True, "dumb", False),
        (True, "", False),
        (False, "xterm", False),
    ],
)
def test_auto_display_is_curses_only_on_an_interactive_terminal_that_names_itself(
    tty, term, curses_on
):
    assert terminal_can_show_curses(Stream(tty), {"TERM": term} if term else {}) is curses_on


# ------------------------------------------------------------------ a real terminal
@pytest.mark.skipif(PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the demo refuses")
def test_the_demo_on_a_real_terminal_shows_the_bedside_takes_keys_and_restores_the_terminal(
    tmp_path,
):
    if shutil.which("tmux") is None:
        pytest.fail(
            "tmux is not installed: install it (Debian: apt-get install tmux) to run "
            "the live-terminal test; CI installs it"
        )
    demo = [sys.executable, "-m", "monitor", "demo", "--scenario", "loss-of-pulse", "--speed", "60"]
    demo += ["--display", "curses", "--no-report", "--log-dir", str(tmp_path)]
    pane = TmuxPane(demo, tmp_path)
    try:
        pane.wait_for(
            "the numbers and the key legend",
            lambda text: (
                "MAP mmHg" in text
                and re.search(r"^\d{3} ", text, re.M) is not None
                and LEGEND in text
            ),
        )
        pane.wait_for("the no_pulse alarm", lambda text: re.search(r"^  HIGH no_pulse", text, re.M))
        pane.tmux("send-keys", "a")
        pane.wait_for(  # acknowledged while it lasts, or cleared once its cause has ended
            "the alarm acknowledged",
            lambda text: "no_pulse [ack" in text or "no active alarms" in text,
        )
        pane.tmux("send-keys", "q")
        after = pane.wait_for("the exit status", lambda text: "monitor exit status:" in text)
        restored = pane.tmux("display-message", "-p", "#{alternate_on} #{cursor_flag}")
    finally:
        pane.close()

    assert "monitor exit status: 0" in after, after
    assert "Demo stopped at stream time" in after or "Demo finished at stream time" in after
    assert "Demo: " in after  # printed before curses started: the normal screen is back
    assert "a acknowledge" not in after
    assert restored.split() == ["0", "1"]  # out of the full-screen mode, cursor visible
    conn = sqlite3.connect(tmp_path / DATABASE_NAME)
    try:
        transitions = conn.execute(
            "SELECT transition FROM alarms WHERE name = 'no_pulse' ORDER BY stream_s"
        ).fetchall()
    finally:
        conn.close()
    assert ("acknowledged",) in transitions
