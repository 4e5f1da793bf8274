"""``monitor sim`` and ``monitor listen``: simulated devices on virtual ports, and a bench view.

``sim`` plays a scenario (or replays a recording) through pty pairs and
prints the device paths; ``listen`` opens real or virtual ports, runs the
serial edge and the beat core, and prints what arrives. Together they let
an engineer check the whole wire without hardware.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devices.protocols.pump import DEFAULT_PROTOCOL, PROTOCOL_VERSIONS
from monitor.cli.args import UsageError, on_signals, positive_integer, positive_number
from monitor.edge.stream_clock import DEFAULT_COMM_LOSS_S

if TYPE_CHECKING:
    from monitor.edge.serial_link import PortSettings

DEFAULT_SCENARIO = "septic-refractory"
PROGRESS_EVERY_S = 10.0


def cmd_sim(args: argparse.Namespace) -> int:
    from devices.simulation.replay import ReplayPlayer, replay_front_end
    from devices.simulation.scenario_file import list_scenarios, load_scenario
    from devices.simulation.simulator import RACK, ScenarioPlayer, play
    from devices.simulation.virtual_ports import VirtualPort
    from monitor.analysis.records import read_recording
    from monitor.bedside.view import clock_text

    if args.list:
        for name in list_scenarios():
            print(f"{name:28s} {load_scenario(name).title}")
        return 0
    player: ReplayPlayer | ScenarioPlayer
    if args.replay:
        recording = read_recording(args.replay, fs=args.fs, channel=args.channel)
        try:
            front_end = replay_front_end(recording.samples, recording.fs, protocol=args.protocol)
        except ValueError as exc:
            raise UsageError(f"{recording.source}: {exc}") from None
        player = ReplayPlayer(front_end, len(recording.samples))
        what, duration_s = f"replay of {recording.source}", player.duration_s
    else:
        scenario = load_scenario(args.scenario)
        player = ScenarioPlayer(scenario, args.pump_protocol)
        what, duration_s = f"scenario {scenario.name}: {scenario.title}", scenario.duration_s
    link_dir = Path(args.link_dir) if args.link_dir else None
    ports = {
        device: VirtualPort(device, None if link_dir is None else link_dir / device)
        for device in player.devices
    }
    try:
        print(f"Simulating {what}, {clock_text(duration_s)} at {args.speed:g}x.")
        for device, port in ports.items():
            print(f"  {device:12s} {port.device}" + (f" -> {port.path}" if port.link else ""))
        sys.stdout.flush()
        stop = threading.Event()
        on_signals(stop)
        next_progress = [time.monotonic() + PROGRESS_EVERY_S]

        def progress(t_s: float) -> None:
            if not args.quiet and time.monotonic() >= next_progress[0]:
                next_progress[0] += PROGRESS_EVERY_S
                print(f"  scenario time {clock_text(t_s)} / {clock_text(duration_s)}", flush=True)

        listen = {RACK: ports[RACK].take_sent} if RACK in ports else None
        play(player, ports, speed=args.speed, stop=stop, on_tick=progress, listen=listen)
        if args.hold_s and not stop.is_set():
            stop.wait(args.hold_s)  # let a monitor read the last bytes before the ports vanish
        sent = sum(p.bytes_written for p in ports.values())
        dropped = sum(p.bytes_dropped for p in ports.values())
        ended = "stopped" if stop.is_set() else "finished"
        print(
            f"Simulation {ended} at {clock_text(player.t_s)}: {sent} bytes sent"
            + (f", {dropped} dropped because nobody was reading" if dropped else "")
            + "."
        )
    finally:
        for port in ports.values():
            port.close()
    return 0


def _pump_ports(urls: list[str], baud: int) -> list[PortSettings]:
    from monitor.edge.serial_link import PortSettings

    return [PortSettings(f"pump{i + 1}", url, baud) for i, url in enumerate(urls)]


def cmd_listen(args: argparse.Namespace) -> int:
    import serial

    from devices.protocols.pump import PumpLineDecoder
    from devices.protocols.transducer import AsciiTransducerDecoder, BinaryTransducerDecoder
    from monitor import core
    from monitor.bedside.listen import Listener
    from monitor.configuration.drug_table import load_drug_table
    from monitor.core.beat_stream import BeatStream
    from monitor.edge.device_input import DeviceInput
    from monitor.edge.serial_link import PortSettings

    if args.baud not in serial.Serial.BAUDRATES:
        raise UsageError(f"--baud {args.baud} is not a standard rate (e.g. 9600, 115200, 230400)")
    try:
        stream = BeatStream(args.rate)
    except ValueError as exc:
        raise UsageError(f"--rate {args.rate}: {exc}") from None
    if core.IMPLEMENTATION != "compiled":
        print("note: beat core is the pure-Python reference (slow)", file=sys.stderr)
    decoder = (
        AsciiTransducerDecoder(args.rate) if args.protocol == "ascii" else BinaryTransducerDecoder()
    )
    device_input = DeviceInput(
        (PortSettings("transducer", args.transducer, args.baud), decoder),
        [
            (settings, PumpLineDecoder(args.pump_protocol))
            for settings in _pump_ports(args.pump, args.baud)
        ],
        sample_rate=args.rate,
        drug_table=load_drug_table(),
        comm_loss_s=args.comm_loss,
    )
    listener = Listener(device_input, stream)
    stop = threading.Event()
    on_signals(stop)
    device_input.start()
    try:
        reached = listener.run(
            lambda line: print(line, flush=True),
            until_s=args.duration,
            stop=stop,
            every_s=args.every,
        )
    finally:
        device_input.stop()
    clean = 100 * listener.clean_count / max(1, listener.beat_count)
    print(
        f"Listened to {reached:.1f} s of stream: {listener.beat_count} beats ({clean:.0f}% clean), "
        f"{listener.reports} pump sentences."
    )
    for role, counts in device_input.decoder_counts().items():
        losses = {k: v for k, v in counts.items() if k not in ("frames", "readings")}
        print(f"  {role}: {counts.get('frames', 0)} frames" + (f", {losses}" if losses else ""))
    return 0


def add_serial_commands(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser(
        "sim",
        help="simulated transducer and pumps on virtual serial ports",
        description="Create one virtual serial port (a pty pair) per simulated device, print "
        "their paths, and play a scenario (or replay a recording) into them, paced from one "
        "scenario clock. Point a monitor at the printed paths as if they were /dev/ttyUSB0. "
        "Ends when the scenario does, or on Ctrl-C.",
    )
    source = sim.add_mutually_exclusive_group()
    source.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"a packaged scenario name or a scenario TOML file (default {DEFAULT_SCENARIO}; "
        "--list shows them)",
    )
    source.add_argument(
        "--replay",
        metavar="RECORD",
        help="replay a recording (CSV, .csv.gz, or WFDB with the wfdb extra) as the transducer",
    )
    source.add_argument("--list", action="store_true", help="list the packaged scenarios and exit")
    sim.add_argument(
        "--speed",
        type=positive_number,
        default=1.0,
        help="scenario seconds per wall-clock second (default 1: real time; 60 plays an hour "
        "in a minute)",
    )
    sim.add_argument(
        "--link-dir",
        metavar="DIR",
        help="also create stable symlinks DIR/transducer, DIR/<pump id> to the ports",
    )
    sim.add_argument("--fs", type=positive_number, help="replay: sampling rate of a CSV in Hz")
    sim.add_argument("--channel", help="replay: WFDB signal to send (default ABP or ART)")
    sim.add_argument(
        "--protocol",
        choices=("binary", "ascii"),
        default="binary",
        help="replay: wire format of the transducer (default binary frames)",
    )
    sim.add_argument(
        "--pump-protocol",
        choices=(*PROTOCOL_VERSIONS, "bcc"),
        default=DEFAULT_PROTOCOL,
        help=f"scenario: the pumps' sentence format (default {DEFAULT_PROTOCOL}, CRC-16; v1 is "
        "the old 8-bit XOR, to try a monitor configured for it); bcc: every pump in one "
        "simulated B. Braun rack (device 'rack') that answers a monitor's BCC polls, in real "
        "time at --speed 1",
    )
    sim.add_argument(
        "--hold-s",
        type=float,
        default=1.0,
        metavar="S",
        help="keep the ports open S seconds after the end so a reader gets the last bytes "
        "(default 1)",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress lines")
    sim.set_defaults(run=cmd_sim)

    listen = sub.add_parser(
        "listen",
        help="read a transducer and pumps, print beats, pump reports and device events",
        description="Open the transducer port (and any pump ports) with pyserial "
        "(/dev/ttyUSB0, a pty path, socket://host:port, loop://), decode, detect beats, and "
        "print device events as they happen and one summary line per second: stream time, "
        "median MAP, SBP/DBP and pulse rate of the clean beats of the last 10 s, and each "
        "pump channel's last report. Ends after --duration seconds of stream time, or on "
        "Ctrl-C, with the decoders' loss counters.",
    )
    listen.add_argument("--transducer", required=True, metavar="PORT", help="transducer port")
    listen.add_argument(
        "--rate",
        type=positive_integer,
        required=True,
        help="the transducer's sampling rate in Hz (frames at another rate are dropped)",
    )
    listen.add_argument(
        "--protocol",
        choices=("binary", "ascii"),
        default="binary",
        help="transducer wire format (default binary frames)",
    )
    listen.add_argument(
        "--pump", action="append", default=[], metavar="PORT", help="a pump port (repeatable)"
    )
    listen.add_argument(
        "--pump-protocol",
        choices=PROTOCOL_VERSIONS,
        default=DEFAULT_PROTOCOL,
        help=f"the pumps' sentence format (default {DEFAULT_PROTOCOL}; v1 only for old pumps)",
    )
    listen.add_argument(
        "--baud", type=int, default=115200, help="baud rate of every port (default 115200)"
    )
    listen.add_argument(
        "--comm-loss",
        type=positive_number,
        default=DEFAULT_COMM_LOSS_S,
        metavar="S",
        help=f"seconds without a valid frame before a port counts as lost "
        f"(default {DEFAULT_COMM_LOSS_S:g})",
    )
    listen.add_argument(
        "--duration", type=positive_number, metavar="S", help="stop after S seconds of stream time"
    )
    listen.add_argument(
        "--every",
        type=positive_number,
        default=1.0,
        metavar="S",
        help="wall-clock seconds between summary lines (default 1)",
    )
    listen.set_defaults(run=cmd_listen)
