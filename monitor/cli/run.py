"""``monitor run`` (the bedside on its configured ports) and ``monitor demo`` (a simulated one).

Both run ``LiveMonitor`` on this thread until SIGTERM or SIGINT (or, for
the demo, the scenario's end), then close the ports and the log cleanly.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor.cli.args import UsageError, on_signals, positive_number
from monitor.cli.config import load_effective

if TYPE_CHECKING:  # the bedside (with its network links) is loaded when a command runs
    from monitor.bedside.demo import DemoResult
    from monitor.bedside.live import Screen
    from monitor.edge.capture import CaptureWriter
    from monitor.screens.curses_screen import TextTail

DEMO_SCENARIO = "septic-refractory"
DEFAULT_SPEED = 120.0  # the 4 h refractory scenario in 2 minutes
# `monitor demo --protocol`: the pump protocol each name plays the pumps through.
DEMO_PROTOCOLS = {"own": "v2", "bcc": "bcc"}
PUMPS_SPOKEN = {"own": "pumps", "bcc": "a B. Braun pump rack (BCC)"}
DISPLAYS = ("auto", "curses", "plain", "off")


def resolve_display(display: str, stream: TextIO) -> str:
    """``auto`` is curses on an interactive terminal, plain anywhere else (a pipe, a service)."""
    from monitor.screens.curses_screen import terminal_can_show_curses

    if display != "auto":
        return display
    return "curses" if terminal_can_show_curses(stream) else "plain"


def alarm_lines_for(display: str) -> TextTail | None:
    """Under curses the terminal alarm output writes to the screen, never over it."""
    from monitor.screens.curses_screen import TextTail

    return TextTail() if display == "curses" else None


@contextmanager
def choose_screen(
    display: str, stream: TextIO, alarm_lines: TextTail | None = None
) -> Iterator[Screen | None]:
    """The screen for a resolved ``--display``; curses gives the terminal back as the block ends."""
    from monitor.screens.curses_screen import TerminalUnavailable, curses_screen
    from monitor.screens.plain_screen import PlainScreen

    if display == "off":
        yield None
    elif display == "plain":
        yield PlainScreen(stream)
    else:
        with ExitStack() as stack:
            try:
                screen = stack.enter_context(curses_screen(alarm_lines))
            except TerminalUnavailable as exc:
                raise UsageError(f"{exc}; try --display plain") from None
            yield screen


def cmd_run(args: argparse.Namespace) -> int:
    from monitor import core
    from monitor.bedside.config_change import load_bedside_config
    from monitor.bedside.live import LiveMonitor, StartupError
    from monitor.bedside.view import clock_text

    core.require_compiled()
    config = load_effective(args.config)
    display = resolve_display(args.display, sys.stdout)
    alarm_lines = alarm_lines_for(display)
    alarm_stream = sys.stdout if alarm_lines is None else alarm_lines
    stop, reload = threading.Event(), threading.Event()
    on_signals(stop, reload)
    first = True
    capture = open_capture(args.capture)
    with choose_screen(display, sys.stdout, alarm_lines) as screen, closing_capture(capture):
        while True:  # a reload for a new admission starts the bedside again for that patient
            try:
                monitor = LiveMonitor(
                    config,
                    alarm_stream=alarm_stream,
                    log_dir=args.log_dir,
                    stop=stop,
                    reload=reload,
                    capture=capture,
                )
            except StartupError as exc:
                raise UsageError(str(exc)) from None
            if first and monitor.bedside.outputs is not None:
                for note in monitor.bedside.outputs.start_notes():
                    print(f"note: {note}", file=sys.stderr)
            first = False
            # Not load_effective: a reload's refusal keeps the running bedside, never ends it.
            result = monitor.run(screen, reload_config=lambda: load_bedside_config(args.config))
            if result.next_config is None:
                break
            config = result.next_config
    print(
        f"Monitor {result.reason} at stream time {clock_text(result.stream_s)}; "
        f"log: {result.log_path or 'none'}."
    )
    if capture is not None:
        print(f"Capture: {capture.records} records in {capture.path}.")
        if capture.failure:
            print(f"monitor run: {capture.failure}", file=sys.stderr)
    return 0


def open_capture(path: str | None) -> CaptureWriter | None:
    """The wire capture --capture asks for; a file that cannot be written stops the start."""
    if path is None:
        return None
    from monitor.bedside.live import software_version
    from monitor.edge.capture import CaptureOpenError, CaptureWriter

    try:
        return CaptureWriter(path, software=software_version())
    except CaptureOpenError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def closing_capture(capture: CaptureWriter | None) -> Iterator[None]:
    try:
        yield
    finally:
        if capture is not None:
            capture.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from devices.simulation.scenario_file import load_scenario
    from monitor import core
    from monitor.bedside.demo import run_demo
    from monitor.bedside.live import StartupError
    from monitor.bedside.view import clock_text
    from monitor.configuration.config import default_config

    core.require_compiled()
    scenario = load_scenario(args.scenario)
    print(
        f"Demo: {scenario.title} ({clock_text(scenario.duration_s)} at {args.speed:g}x), "
        f"simulated transducer and {PUMPS_SPOKEN[args.protocol]} on virtual serial ports, "
        "read by the real monitor.",
        flush=True,
    )
    stop = threading.Event()
    on_signals(stop)
    display = resolve_display(args.display, sys.stdout)
    alarm_lines = alarm_lines_for(display)
    try:
        with choose_screen(display, sys.stdout, alarm_lines) as screen:
            result = run_demo(
                scenario,
                default_config(),
                speed=args.speed,
                screen=screen,
                alarm_stream=sys.stdout if alarm_lines is None else alarm_lines,
                log_dir=args.log_dir,
                stop=stop,
                pump_protocol=DEMO_PROTOCOLS[args.protocol],
            )
    except StartupError as exc:
        raise UsageError(str(exc)) from None
    print_summary(result, args.report)
    return 0


def print_summary(result: DemoResult, report: bool) -> None:
    from monitor.bedside.view import clock_text

    timeline = result.timeline
    print(f"\nDemo {result.run.reason} at stream time {clock_text(result.run.stream_s)}.")
    print("Alarm timeline (raised):")
    raised = [e for e in timeline if e.kind == "raised"]
    for e in raised:
        print(f"  {clock_text(e.t_s)}  {e.priority:<6}  {e.name}")
    if not raised:
        print("  none")
    episodes = [e for e in timeline if e.kind == "episode"]
    print("Refractory episode:")
    for e in episodes:
        print(f"  {clock_text(e.t_s)}  {e.name}: {' '.join(e.message.split())}")
    if not episodes:
        print("  none")
    print("Against the scenario's truth:")
    for name, verdict in result.expected:
        print(f"  {name}: {verdict}")
    print(f"Log: {result.run.log_path or 'none'}")
    if report and result.run.log_path is not None:
        print(f"Report: {write_demo_report(result.log_dir)}")


def write_demo_report(log_dir: Path) -> str:
    from monitor.log.reader import LogReader
    from monitor.log.report import ReportUnavailable, write_report

    out = log_dir / "report.png"
    reader = LogReader(log_dir)
    try:
        summary = write_report(reader, out, None, None)
    except ReportUnavailable as exc:
        return f"not drawn: {exc}"
    finally:
        reader.close()
    return f"{out} ({summary})"


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="monitor the bed: the configured transducer and pump ports",
        description="Open the transducer and pump ports named in the configuration and run "
        "the monitor: beats, MAP, NEE, the refractory-state detector, alarms and the log. "
        "Every configured port must open at start-up. Ends on SIGTERM or Ctrl-C, closing "
        "the ports and the log cleanly.",
    )
    run.add_argument("--config", type=Path, help="configuration file (default: search order)")
    run.add_argument("--log-dir", type=Path, help="log directory (default: log.directory)")
    run.add_argument(
        "--capture",
        metavar="FILE",
        help="also write every byte the ports carry, both ways, with its arrival time, to a "
        "wire capture (docs/protocols.md; monitor sim --replay-capture plays it back)",
    )
    run.add_argument(
        "--display",
        choices=DISPLAYS,
        default="auto",
        help="auto (default): curses on an interactive terminal, else plain; curses: the full "
        "screen (trace, numbers, NEE, state, alarms; keys a acknowledge, p pause audio, q quit); "
        "plain: one status line a second; off: alarm lines only",
    )
    run.set_defaults(run=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="a simulated bedside end to end, no hardware needed",
        description="Start a simulated transducer and infusion pumps on virtual serial ports "
        "(pty pairs), playing a scenario in accelerated time, run the real monitor against "
        "those device files, and end with a summary: the alarm timeline, the refractory "
        "episode, how both compare with the scenario's truth, and where the log is. The log "
        "goes to a fresh demo directory, never into a patient's log.",
    )
    demo.add_argument(
        "--scenario",
        default=DEMO_SCENARIO,
        help=f"a packaged scenario or a scenario TOML file (default {DEMO_SCENARIO}; "
        "`monitor sim --list` shows them)",
    )
    demo.add_argument(
        "--speed",
        type=positive_number,
        default=DEFAULT_SPEED,
        help=f"scenario seconds per wall-clock second (default {DEFAULT_SPEED:g})",
    )
    demo.add_argument(
        "--protocol",
        choices=DEMO_PROTOCOLS,
        default="own",
        help="the devices' wire formats: own (default): this project's transducer frames and "
        "pump sentences; bcc: the pumps in a simulated B. Braun Space rack, polled over BCC",
    )
    demo.add_argument("--log-dir", type=Path, help="where to log (default: a new temporary one)")
    demo.add_argument(
        "--display",
        choices=DISPLAYS,
        default="auto",
        help="as for `monitor run` (default auto: curses on an interactive terminal)",
    )
    demo.add_argument(
        "--no-report", dest="report", action="store_false", help="do not draw the trend picture"
    )
    demo.set_defaults(run=cmd_demo)
