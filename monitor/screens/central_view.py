"""What the central station shows, as text: one tile per bed, most urgent first.

Pure functions of the tiles and the time, so the picture is tested without a
terminal; ``cli_central`` draws them with curses or prints the plain form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.network.central_board import STALE_S, BedTile
from monitor.screens.curses_screen import Cell, clip

TILE_WIDTH = 30
TILE_HEIGHT = 5


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def heard_text(tile: BedTile, now: float) -> str:
    silent = tile.silent_s(now)
    if not math.isfinite(silent):
        return "never heard"
    return f"{silent:.0f} s ago"


def alarm_text(tile: BedTile) -> str:
    top = tile.highest_alarm()
    if top is None:
        return "no alarm"
    more = f" +{len(tile.alarms) - 1}" if len(tile.alarms) > 1 else ""
    marks = " ack" if top.get("acknowledged") else ""
    return f"{top['priority'].upper()} {top['alarm']}{marks}{more}"


def status_text(tile: BedTile, now: float, stale_s: float = STALE_S) -> str:
    if tile.online is False:
        return "OFFLINE"
    if tile.stale(now, stale_s):
        return "SILENT"
    return ""


def tile_lines(tile: BedTile, now: float, stale_s: float = STALE_S) -> list[str]:
    """The tile's text, ``TILE_HEIGHT`` lines of at most ``TILE_WIDTH`` characters."""
    flag = status_text(tile, now, stale_s)
    lines = [
        f"{tile.unit}/{tile.bed}" + (f"  {flag}" if flag else ""),
        f"MAP {number(tile.map_mmhg)} mmHg  NEE {number(tile.nee, 2)}",
        f"{tile.state or '-'}" + (f" ({tile.episode})" if tile.episode else ""),
        alarm_text(tile),
        f"heard {heard_text(tile, now)}",
    ]
    return [line[:TILE_WIDTH] for line in lines]


def plain_lines(tiles: Sequence[BedTile], now: float, stale_s: float = STALE_S) -> list[str]:
    """One line per bed, most urgent first: for a log file or a terminal without curses."""
    out = []
    for tile in tiles:
        flag = status_text(tile, now, stale_s)
        out.append(
            f"{tile.unit}/{tile.bed:<10} MAP {number(tile.map_mmhg):>3}  "
            f"NEE {number(tile.nee, 2):>4}  {tile.state or '-':<21} {alarm_text(tile):<36} "
            f"{flag or 'heard ' + heard_text(tile, now)}"
        )
    return out


def header(connection: str, beds: int, counts: dict) -> str:
    rejected = counts.get("rejected", {})
    ignored = sum(rejected.values())
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
    return (
        f"central station: {connection}; {beds} beds"
        + (f"; ignored {ignored} messages ({why})" if ignored else "")
        + (f"; {counts['duplicates']} repeats dropped" if counts.get("duplicates") else "")
    )


@dataclass(frozen=True)
class CentralView:
    """One moment of the board: the tiles (most urgent first) and the header line."""

    tiles: list[BedTile]
    now: float
    header: str
    stale_s: float = STALE_S


def tile_style(tile: BedTile, now: float, stale_s: float = STALE_S) -> str:
    """A tile's look: its most urgent alarm's colour; dim when the bed is silent."""
    top = tile.highest_alarm()
    if top is not None and top["priority"] in ("high", "medium", "low"):
        return top["priority"]
    return "dim" if tile.stale(now, stale_s) else "normal"


def board_cells(view: CentralView, rows: int, cols: int) -> list[Cell]:
    """Tiles in a grid, most urgent first (left to right, top to bottom), clipped to fit."""
    cells = [Cell(0, 0, view.header, "title")]
    per_row = max(1, (cols + 2) // (TILE_WIDTH + 2))
    for n, tile in enumerate(view.tiles):
        top = 2 + (n // per_row) * (TILE_HEIGHT + 1)
        left = (n % per_row) * (TILE_WIDTH + 2)
        style = tile_style(tile, view.now, view.stale_s)
        name_style = "title" if style == "normal" else style
        for k, line in enumerate(tile_lines(tile, view.now, view.stale_s)):
            look = name_style if k == 0 else style
            cells.append(Cell(top + k, left, line.ljust(TILE_WIDTH), look))
    cells.append(Cell(rows - 1, 0, CENTRAL_LEGEND, "legend"))
    return clip(cells, rows, cols)


CENTRAL_LEGEND = "q quit"
