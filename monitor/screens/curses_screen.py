"""The full bedside screen on a terminal (a Pi console or SSH), drawn with the standard curses.

``layout`` turns a ``BedsideView`` into positioned, styled text for a
terminal of a given size. It is pure, so the picture is tested without a
terminal; ``CursesScreen`` only reads keys and paints that picture, at most
five times a second, and ``curses_screen`` gives the terminal back sane
however the run ends (a crash, Ctrl-C, SIGTERM). Everything drawn is plain
ASCII, so the Linux console shows it as well as an SSH client does.
"""

from __future__ import annotations

import curses
import io
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TextIO

import numpy as np

from monitor.bedside.view import BedsideView, alarm_text, clock_text, number
from monitor.clinical.alarm_types import Category
from monitor.clinical.nee import NEE_UNIT

REDRAW_S = 0.2  # at most five paints a second: enough for a trace, cheap on a Pi
TITLE = "Refractory hypotension - research software, not a medical device"
LEGEND = "a acknowledge   p pause audio   q quit"
KEYS = {"a": "acknowledge", "p": "pause_audio", "q": "quit"}
BIG_MIN_ROWS = 24  # below this the numbers take one line, not six
WAVE_MIN_ROWS = 3  # a trace lower than this is unreadable: leave the room to the text
WAVE_MAX_ROWS = 12
EVENT_MIN_ROWS = 4  # the recent alarm events' heading and three lines, before the trace grows
AXIS = 4  # the trace's scale labels
SCALE_STEP = 20.0  # mmHg


class Cell(NamedTuple):
    """Text at a position; ``style`` names a look (a priority's colour, bold, dim)."""

    row: int
    col: int
    text: str
    style: str


Line = list[tuple[int, str, str]]  # (col, text, style) spans on one row
Picture = Callable[[Any, int, int], list["Cell"]]  # a view, the rows and columns -> cells


class TextTail(io.TextIOBase):
    """A text stream that keeps only its last lines, for other threads to write to.

    The terminal alarm output and the log write here while curses owns the
    terminal; the screen shows the lines instead of letting them scribble.
    """

    def __init__(self, keep: int = 50) -> None:
        super().__init__()
        self._lines: deque[str] = deque(maxlen=keep)
        self._partial = ""
        self._lock = threading.Lock()
        self.dropped = 0  # lines pushed out by newer ones

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            for line in complete:
                self.dropped += len(self._lines) == self._lines.maxlen
                self._lines.append(line)
        return len(text)

    def lines(self) -> list[str]:
        """The complete lines kept, oldest first."""
        with self._lock:
            return list(self._lines)


def terminal_can_show_curses(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """``--display auto``: curses on an interactive terminal that names itself, else plain."""
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        interactive = False
    return interactive and environ.get("TERM", "") not in ("", "dumb")


# ---------------------------------------------------------------- the picture
_GLYPHS = {  # 3x5 digits, drawn with the character itself so they read even when copied
    "0": ("xxx", "x x", "x x", "x x", "xxx"),
    "1": ("  x", "  x", "  x", "  x", "  x"),
    "2": ("xxx", "  x", "xxx", "x  ", "xxx"),
    "3": ("xxx", "  x", "xxx", "  x", "xxx"),
    "4": ("x x", "x x", "xxx", "  x", "  x"),
    "5": ("xxx", "x  ", "xxx", "  x", "xxx"),
    "6": ("xxx", "x  ", "xxx", "x x", "xxx"),
    "7": ("xxx", "  x", "  x", "  x", "  x"),
    "8": ("xxx", "x x", "xxx", "x x", "xxx"),
    "9": ("xxx", "x x", "xxx", "  x", "xxx"),
    "-": ("   ", "   ", "xxx", "   ", "   "),
    "/": ("  x", "  x", " x ", "x  ", "x  "),
}
GLYPH_ROWS = 5


def big_text(text: str) -> list[str]:
    """``text`` five rows high, each character a 3x5 glyph of itself, one column apart."""
    blank = ("   ",) * GLYPH_ROWS
    glyphs = [(_GLYPHS.get(ch, blank), ch) for ch in text]
    return [" ".join(g[row].replace("x", ch) for g, ch in glyphs) for row in range(GLYPH_ROWS)]


def waveform_rows(samples: np.ndarray, target: float, rows: int, cols: int) -> list[str]:
    """The trace in ``rows`` x ``cols`` characters: scale labels, then the plot.

    Each column spans its share of the samples from their lowest to their
    highest value, so an upstroke stays visible in a narrow window; columns
    with no data (NaN) stay blank. The scale fits the trace and the MAP target
    (the dotted row) in steps of 20 mmHg.
    """
    width = cols - AXIS - 1
    if rows < 1 or width < 1:
        return []
    finite = samples[np.isfinite(samples)]
    low = min(float(finite.min()), target) if finite.size else target
    high = max(float(finite.max()), target) if finite.size else target
    low = SCALE_STEP * np.floor(low / SCALE_STEP)
    high = max(SCALE_STEP * np.ceil(high / SCALE_STEP), low + 2 * SCALE_STEP)

    def row_of(value: float) -> int:
        return min(rows - 1, max(0, int(round((high - value) / (high - low) * (rows - 1)))))

    grid = [[" "] * width for _ in range(rows)]
    grid[row_of(target)] = ["."] * width
    edges = np.linspace(0, len(samples), width + 1).astype(int)
    for col in range(width if len(samples) else 0):
        chunk = samples[edges[col] : max(edges[col + 1], edges[col] + 1)]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            top, bottom = row_of(float(chunk.max())), row_of(float(chunk.min()))
            for row in range(top, bottom + 1):
                grid[row][col] = "-" if top == bottom else "|"
    if not finite.size:
        message = "no signal"
        grid[rows // 2][: len(message)] = list(message[:width])
    labels = {row_of(target): target, rows - 1: low, 0: high}  # the scale wins a shared row
    return [
        f"{labels[row]:.0f}".rjust(AXIS)[:AXIS] + "|" + "".join(grid[row])
        if row in labels
        else " " * AXIS + "|" + "".join(grid[row])
        for row in range(rows)
    ]


def _header(view: BedsideView, cols: int) -> list[Line]:
    clock = clock_text(view.t_s)
    title = TITLE[: max(0, cols - len(clock) - 2)]
    return [[(0, title, "title"), (max(0, cols - len(clock)), clock, "title")]]


def _alarms(view: BedsideView) -> list[Line]:
    sounding = f"sounding: {view.audible.name}" if view.audible is not None else "silent"
    lines: list[Line] = [[(0, f"Alarms ({sounding})", "title")]]
    for alarm in sorted(view.alarms, key=lambda a: a.priority, reverse=True):  # stable
        technical = " (technical)" if alarm.category is Category.TECHNICAL else ""
        text = f"{alarm_text(alarm)}{technical}  since {clock_text(alarm.since_s)}  {alarm.message}"
        lines.append([(2, text, alarm.priority.label)])
    if not view.alarms:
        lines.append([(2, "no active alarms", "dim")])
    return lines


def _numbers(view: BedsideView, rows: int, cols: int) -> list[Line]:
    """MAP, systolic/diastolic and pulse rate: five rows high when the terminal has room."""
    clean = "--" if view.clean_share is None else f"{100 * view.clean_share:.0f}%"
    map_text = number(view.map_mmhg)
    pressures = f"{number(view.systolic_mmhg)}/{number(view.diastolic_mmhg)}"
    rate = number(view.pulse_rate_bpm)
    target = number(view.map_target_mmhg)
    blocks = (  # label, value, the widest value the block keeps room for
        (f"MAP mmHg, target {target}", map_text, 3),
        ("SYS/DIA mmHg", pressures, 7),
        ("PR /min", rate, 3),
        (f"clean beats {clean}", "", 0),
    )
    widths = [max(len(label), 4 * chars - 1) for label, _, chars in blocks]
    if rows < BIG_MIN_ROWS or sum(widths) + 2 * (len(blocks) - 1) > cols:
        text = f"MAP {map_text} (target {target})  SYS/DIA {pressures}  PR {rate}  clean {clean}"
        return [[(0, text, "value")]]
    lines: list[Line] = [[] for _ in range(1 + GLYPH_ROWS)]
    col = 0
    for (label, value, _), width in zip(blocks, widths, strict=True):
        lines[0].append((col, label, "normal"))
        for row, text in enumerate(big_text(value) if value else []):
            lines[1 + row].append((col, text, "value"))
        col += width + 2
    return lines


def _waveform(view: BedsideView, rows: int, cols: int) -> list[Line]:
    seconds = len(view.waveform) / view.fs if view.fs > 0 else 0.0
    title = (
        f"Arterial pressure, last {seconds:.0f} s, mmHg "
        f"(dots: MAP target {number(view.map_target_mmhg)})"
    )
    plot = waveform_rows(view.waveform, view.map_target_mmhg, rows, cols)
    return [[(0, title, "normal")]] + [[(0, row, "normal")] for row in plot]


def _treatment(view: BedsideView) -> list[Line]:
    """NEE with the drugs behind it, then the detector's state and the episode."""
    nee = f"NEE {number(view.nee, 2)} {NEE_UNIT} (threshold {view.nee_threshold:.2f})"
    if view.nee is None and view.nee_unknown_because:
        nee += ": " + "; ".join(view.nee_unknown_because)
    lines: list[Line] = [[(0, nee, "value")]]
    lines += [[(2, drug, "normal")] for drug in view.drugs]
    state = f"State: {view.state or 'starting'} for {clock_text(view.state_for_s)}"
    lines.append([(0, state, "value")])
    if view.episode:
        lines.append([(2, view.episode, "medium")])
    return lines


def _events(events: Sequence[str], rows: int) -> list[Line]:
    """The heading and as many of the newest events as fit in ``rows``, oldest first."""
    if rows < 1:
        return []
    newest = list(events)[max(0, len(events) - (rows - 1)) :] if rows > 1 else []
    shown: list[Line] = [[(2, e.strip(), "normal")] for e in newest]
    if not events and rows > 1:
        shown = [[(2, "none yet", "dim")]]
    return [[(0, "Recent alarm events", "title")], *shown]


def layout(
    view: BedsideView,
    rows: int,
    cols: int,
    events: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> list[Cell]:
    """The whole screen for a ``rows`` x ``cols`` terminal, clipped to fit it.

    Top to bottom, most urgent first, so a small terminal loses the least:
    the clock, the alarms, the numbers, the trace (when there is room), NEE
    and the detector's state, the recent alarm events (``events``, oldest
    first), the newest log message (``notes``) and, always on the last row,
    the key legend.
    """
    if rows < 1 or cols < 1:
        return []
    legend_row = rows - 1
    note_rows = 1 if notes and rows > 1 else 0  # the newest note keeps the row above the legend
    body = legend_row - note_rows
    top = _header(view, cols) + _alarms(view) + _numbers(view, rows, cols)
    middle = _treatment(view)
    spare = body - len(top) - len(middle)
    wave_rows = min(WAVE_MAX_ROWS, spare - EVENT_MIN_ROWS - 1)  # 1: the trace's title
    wave = _waveform(view, wave_rows, cols) if wave_rows >= WAVE_MIN_ROWS else []
    lines = (top + wave + middle + _events(events, spare - len(wave)))[:body]
    cells = [
        Cell(row, col, text, style) for row, line in enumerate(lines) for col, text, style in line
    ]
    if note_rows:
        cells.append(Cell(legend_row - 1, 0, f"note: {notes[-1].strip()}", "dim"))
    cells.append(Cell(legend_row, 0, LEGEND, "legend"))
    return clip(cells, rows, cols)


def clip(cells: Sequence[Cell], rows: int, cols: int) -> list[Cell]:
    """Only what fits: no cell off the screen, and none in the bottom-right corner.

    curses raises when a write ends in the last cell of the screen (the
    cursor cannot move on), so that one cell is never written. Control
    characters become spaces: a message's newline must not move the cursor.
    """
    fitted = []
    for cell in cells:
        if not (0 <= cell.row < rows and 0 <= cell.col < cols):
            continue
        room = cols - cell.col - (cell.row == rows - 1)
        text = "".join(ch if ch.isprintable() else " " for ch in cell.text[:room])
        if text:
            fitted.append(cell._replace(text=text))
    return fitted


# ---------------------------------------------------------------- the terminal
class TerminalUnavailable(Exception):
    """curses cannot drive this terminal; the message says why."""


class CursesScreen:
    """The ``Screen`` of ``live.py`` on a curses window.

    Keys are read on every call without waiting (the window is in nodelay
    mode); the picture is painted at most every ``every_s`` seconds of the
    caller's monotonic clock, and at once after a resize.
    """

    def __init__(
        self,
        window: Any,
        styles: Mapping[str, int],
        *,
        events: TextTail | None = None,
        notes: TextTail | None = None,
        every_s: float = REDRAW_S,
        picture: Picture | None = None,
    ) -> None:
        self._window = window
        self._styles = styles
        self.alarm_stream = TextTail() if events is None else events
        self.notes = TextTail() if notes is None else notes
        self._every_s = every_s
        self._next_paint: float | None = None
        self._picture = picture or self._bedside

    def _bedside(self, view: BedsideView, rows: int, cols: int) -> list[Cell]:
        return layout(view, rows, cols, self.alarm_stream.lines(), self.notes.lines())

    def show(self, view: Callable[[], Any], now: float) -> list[str]:
        """Key commands since the last call; ``view()`` is built only when it is painted."""
        commands = []
        while (key := self._window.getch()) != -1:
            if key == curses.KEY_RESIZE:
                self._window.clear()  # repaint every cell: the old picture no longer lines up
                self._next_paint = None
            elif 0 <= key < 256 and chr(key).lower() in KEYS:
                commands.append(KEYS[chr(key).lower()])
        if self._next_paint is None or now >= self._next_paint:
            self._next_paint = now + self._every_s
            self._paint(view())
        return commands

    def _paint(self, view: Any) -> None:
        rows, cols = self._window.getmaxyx()
        self._window.erase()
        for cell in self._picture(view, rows, cols):
            try:
                self._window.addstr(cell.row, cell.col, cell.text, self._styles.get(cell.style, 0))
            except curses.error:
                pass  # the terminal shrank after getmaxyx: the resize repaints it
        self._window.refresh()


def _styles() -> dict[str, int]:
    """Curses attributes per style: HIGH red, MEDIUM yellow, LOW cyan (bold and underline
    stand in on a terminal without colours)."""
    styles = {
        "normal": curses.A_NORMAL,
        "info": curses.A_NORMAL,
        "title": curses.A_BOLD,
        "value": curses.A_BOLD,
        "dim": curses.A_DIM,
        "legend": curses.A_REVERSE,
        "high": curses.A_BOLD | curses.A_REVERSE,
        "medium": curses.A_BOLD,
        "low": curses.A_UNDERLINE,
    }
    if not curses.has_colors():
        return styles
    try:
        curses.start_color()
        try:
            curses.use_default_colors()
            background = -1  # the terminal's own background
        except curses.error:
            background = curses.COLOR_BLACK
        colours = (
            ("high", curses.COLOR_RED, curses.A_BOLD),
            ("medium", curses.COLOR_YELLOW, curses.A_BOLD),
            ("low", curses.COLOR_CYAN, curses.A_NORMAL),
        )
        for pair, (style, colour, extra) in enumerate(colours, start=1):
            curses.init_pair(pair, colour, background)
            styles[style] = curses.color_pair(pair) | extra
    except curses.error:
        pass  # keep the monochrome looks
    return styles


@contextmanager
def _log_records_into(stream: TextTail) -> Iterator[None]:
    """Send the log handlers that write to the terminal into ``stream`` for the block."""
    terminal = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    moved = [
        (handler, handler.stream)
        for handler in logging.getLogger().handlers
        if type(handler) is logging.StreamHandler and id(handler.stream) in terminal
    ]
    for handler, _ in moved:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, original in moved:
            handler.setStream(original)


@contextmanager
def curses_screen(
    events: TextTail | None = None, picture: Picture | None = None
) -> Iterator[CursesScreen]:
    """A ``CursesScreen`` on the whole terminal, which is restored however the block ends.

    ``events`` is where the terminal alarm output writes (shown as the recent
    alarm events). Log messages are shown on the screen while it runs and
    written to stderr once the terminal is restored. ``picture`` draws
    something else than the bedside (the central station's board).
    """
    try:
        window = curses.initscr()
    except curses.error as exc:
        term = os.environ.get("TERM", "")
        raise TerminalUnavailable(f"cannot draw on this terminal (TERM={term!r}): {exc}") from None
    notes = TextTail(keep=200)
    try:
        curses.noecho()
        curses.cbreak()  # keys at once; Ctrl-C still raises SIGINT for a clean stop
        window.keypad(True)
        window.nodelay(True)
        try:
            curses.curs_set(0)
        except curses.error:
            pass  # a terminal that cannot hide its cursor
        screen = CursesScreen(window, _styles(), events=events, notes=notes, picture=picture)
        with _log_records_into(notes):
            yield screen
    finally:
        try:
            window.keypad(False)
            curses.nocbreak()
            curses.echo()
        finally:
            curses.endwin()
        if notes.dropped:
            sys.stderr.write(f"({notes.dropped} earlier log messages not kept)\n")
        sys.stderr.writelines(line + "\n" for line in notes.lines())
