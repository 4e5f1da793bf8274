"""``monitor central --broker URL``: the unit's overview, one tile per bed, most urgent first."""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor.cli.args import UsageError, on_signals, positive_number
from monitor.cli.run import DISPLAYS, resolve_display
from monitor.network.central_board import STALE_S

if TYPE_CHECKING:  # the MQTT client (paho) is loaded only when the station runs
    from monitor.configuration.network_settings import MqttSettings
    from monitor.network.central_station import CentralStation
    from monitor.screens.central_view import CentralView

TICK_S = 0.2


def station_settings(args: argparse.Namespace) -> MqttSettings:
    """The broker and the station's credentials, checked as a bed's are."""
    from monitor.configuration.config import default_config
    from monitor.configuration.network_settings import MqttSettings, NetworkConfigError

    overrides = {
        "mqtt.broker": args.broker,
        "mqtt.topic_root": args.topic_root,
        "mqtt.username": args.username,
        "mqtt.password_file": str(args.password_file or ""),
        "mqtt.ca_file": str(args.ca_file or ""),
        "mqtt.cert_file": str(args.cert_file or ""),
        "mqtt.key_file": str(args.key_file or ""),
    }
    try:
        settings = MqttSettings.from_config(default_config().with_overrides(overrides, "command"))
    except NetworkConfigError as exc:
        option = "--" + exc.problem.key.removeprefix("mqtt.").replace("_", "-")
        raise UsageError(f"{option}: {exc.problem.message}") from None
    if settings is None:
        raise UsageError("--broker is empty")
    return settings


def connection_text(station: CentralStation) -> str:
    where = f"{station.settings.host}:{station.settings.port}"
    return f"{where} connected" if station.connected else f"{where} {station.problem}"


def view_of(station: CentralStation, stale_s: float) -> CentralView:
    from monitor.screens.central_view import CentralView, header

    tiles = station.tiles()
    top = header(connection_text(station), len(tiles), station.counts())
    return CentralView(tiles, time.monotonic(), top, stale_s)


def print_board(view: CentralView, out: TextIO) -> None:
    from monitor.screens.central_view import plain_lines

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [f"{stamp} {view.header}", *plain_lines(view.tiles, view.now, view.stale_s)]
    out.write("\n".join(lines) + "\n\n")
    out.flush()


def cmd_central(args: argparse.Namespace) -> int:
    from monitor.network.central_station import CentralStation

    station = CentralStation(station_settings(args), unit=args.unit, client_id=args.client_id)
    stop = threading.Event()
    on_signals(stop)
    display = resolve_display(args.display, sys.stdout)
    if display == "off":
        raise UsageError("--display off shows nothing: use plain or curses")
    ends = None if args.duration is None else time.monotonic() + args.duration
    station.start()
    try:
        if display == "curses":
            _run_curses(station, args, stop, ends)
        else:
            _run_plain(station, args, stop, ends)
    finally:
        station.stop()
    return 0


def _run_plain(station: CentralStation, args, stop: threading.Event, ends: float | None) -> None:
    next_print = time.monotonic() + args.interval
    while not stop.wait(TICK_S):
        now = time.monotonic()
        if ends is not None and now >= ends:
            break
        if now >= next_print:
            next_print = now + args.interval
            print_board(view_of(station, args.stale_s), sys.stdout)
    print_board(view_of(station, args.stale_s), sys.stdout)


def _run_curses(station: CentralStation, args, stop: threading.Event, ends: float | None) -> None:
    from monitor.screens.central_view import board_cells
    from monitor.screens.curses_screen import TerminalUnavailable, curses_screen

    try:
        board = functools.partial(view_of, station, args.stale_s)
        with curses_screen(picture=board_cells) as screen:
            while not stop.wait(TICK_S):
                if ends is not None and time.monotonic() >= ends:
                    break
                if "quit" in screen.show(board, time.monotonic()):
                    break
    except TerminalUnavailable as exc:
        raise UsageError(f"{exc}; try --display plain") from None


def add_central_command(sub: argparse._SubParsersAction) -> None:
    central = sub.add_parser(
        "central",
        help="the unit's central station: every bed's MAP, NEE, state and alarms (MQTT)",
        description="Subscribe to the beds' messages on an MQTT broker and show one tile per "
        "bed (MAP, NEE, state, most urgent alarm, time since its last message), most urgent "
        "first, silent beds marked. Everything shown is rebuilt from the broker's retained "
        "messages, so the station can restart at any time. Messages that are not a bed's "
        "(docs/network.md) are ignored and counted.",
    )
    central.add_argument("--broker", required=True, help="mqtts://host:8883 or mqtt://host:1883")
    central.add_argument("--unit", default="+", help="one unit's beds (default: every unit)")
    central.add_argument("--topic-root", default="monitor", help="as the beds' mqtt.topic_root")
    central.add_argument("--username", default="", help="the station's user name on the broker")
    central.add_argument("--password-file", type=Path, help="a file holding only the password")
    central.add_argument("--ca-file", type=Path, help="the CA of the broker's certificate")
    central.add_argument("--cert-file", type=Path, help="a client certificate (optional)")
    central.add_argument("--key-file", type=Path, help="its key")
    central.add_argument("--client-id", default="central", help="MQTT client id (default central)")
    central.add_argument(
        "--display",
        choices=DISPLAYS,
        default="auto",
        help="auto (default): curses on an interactive terminal, else plain (the board printed "
        "every --interval seconds)",
    )
    central.add_argument(
        "--interval", type=positive_number, default=5.0, help="plain mode: seconds between boards"
    )
    central.add_argument(
        "--stale-s",
        type=positive_number,
        default=STALE_S,
        help=f"a bed silent this long is marked SILENT (default {STALE_S:g})",
    )
    central.add_argument(
        "--duration", type=positive_number, help="stop after this many seconds (default: never)"
    )
    central.set_defaults(run=cmd_central)
