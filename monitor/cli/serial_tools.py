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
    from monitor.configuration.config import Config

DEFAULT_SCENARIO = "septic-refractory"
PROGRESS_EVERY_S = 10.0


def cmd_sim(args: argparse.Namespace) -> int:
    from devices.capture_file import CaptureError, read_capture
    from devices.simulation.capture_replay import CapturePlayer
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
    player: ReplayPlayer | ScenarioPlayer | CapturePlayer
    listening: list[str] = []
    if args.replay_capture:
        try:
            capture = read_capture(args.replay_capture)
        except CaptureError as exc:
            raise UsageError(str(exc)) from None
        if capture.truncated:
            print(f"note: {args.replay_capture}: its last line was cut short; left out")
        player = CapturePlayer(capture)
        listening = list(player.devices)  # heard, never answered: the ports must not fill
        what, duration_s = f"capture {args.replay_capture}", player.duration_s
    elif args.replay:
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

        listening += [RACK] if RACK in ports else []
        listen = {device: ports[device].take_sent for device in listening}
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


def device_spec(text: str) -> dict[str, str | int]:
    """``role=pumps,path=socket://rack:4001,protocol=bcc`` -> the fields of a [[ports.device]]."""
    fields: dict[str, str | int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not FIELD=VALUE; write e.g. "
                "role=pumps,path=/dev/ttyUSB1,protocol=bcc,baud=9600"
            )
        fields[name] = int(value) if name == "baud" and value.isdigit() else value
    return fields


def listen_config(args: argparse.Namespace) -> Config:
    """The ports to listen to, in the configuration's own terms, so they are checked as a
    start checks them: --config's ports, then the flags, which name [ports] keys, and
    --device, which adds a [[ports.device]] each."""
    from monitor.configuration.config import ConfigError, default_config, load_config

    try:
        config = load_config(args.config) if args.config else default_config()
        flags: dict[str, object] = {}
        if args.transducer:
            flags["ports.transducer"] = args.transducer
            flags["ports.transducer_protocol"] = args.protocol
        if args.pump:
            flags["ports.pumps"] = args.pump
            flags["ports.pump_protocol"] = args.pump_protocol
        if args.baud is not None:
            flags["ports.transducer_baudrate"] = flags["ports.pump_baudrate"] = args.baud
        if args.rate is not None:
            flags["ports.sample_rate_hz"] = float(args.rate)
        if args.device:
            flags["ports.device"] = [*config.tables("ports.device"), *args.device]
        return config.with_overrides(flags, "the command line")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_listen(args: argparse.Namespace) -> int:
    import serial

    from monitor import core
    from monitor.bedside.listen import Listener
    from monitor.bedside.live import Ports, StartupError
    from monitor.configuration.drug_names import configured_drug_names
    from monitor.configuration.drug_table import load_drug_table
    from monitor.core.beat_stream import BeatStream
    from monitor.edge.device_input import DeviceInput

    if args.baud is not None and args.baud not in serial.Serial.BAUDRATES:
        raise UsageError(f"--baud {args.baud} is not a standard rate (e.g. 9600, 115200, 230400)")
    if not (args.transducer or args.config or args.device):
        raise UsageError("name the ports: --transducer PORT, --device FIELDS, or --config FILE")
    if args.rate is not None:
        try:
            BeatStream(args.rate)
        except ValueError as exc:
            raise UsageError(f"--rate {args.rate}: {exc}") from None
    config = listen_config(args)
    try:
        ports = Ports.from_config(config)
    except StartupError as exc:
        raise UsageError(str(exc)) from None
    stream = BeatStream(ports.sample_rate_hz)
    if core.IMPLEMENTATION != "compiled":
        print("note: beat core is the pure-Python reference (slow)", file=sys.stderr)
    drugs = load_drug_table(config.text("drugs.table").strip() or None)
    device_input = DeviceInput(
        (ports.transducer, ports.transducer_decoder()),
        ports.pump_readers(),
        sample_rate=ports.sample_rate_hz,
        drug_table=drugs,
        drug_names=configured_drug_names(config, drugs),
        comm_loss_s=args.comm_loss,
    )
    for port in ports.all():
        print(f"  {port.role:12s} {port.url} at {port.baudrate} baud", flush=True)
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


def port_at_baud(text: str) -> tuple[str, int | None]:
    """``/dev/ttyUSB1@19200`` -> (path, 19200); ``socket://rack:4001`` -> (path, None)."""
    path, at, baud = text.rpartition("@")
    if at and baud.isdigit() and path:
        return path, int(baud)
    if not text.strip():
        raise argparse.ArgumentTypeError("a port must name a path or URL")
    return text, None


def recorded_ports(args: argparse.Namespace) -> list:
    """--port and --protocol paired: one protocol for all ports, or one per port in order."""
    import serial

    from devices.protocol_catalogue import CATALOGUE
    from monitor.configuration.device_ports import no_line_rate
    from monitor.edge.recorder import PASSIVE, RecordedPort

    protocols = args.protocol or [PASSIVE]
    if len(protocols) == 1:
        protocols = protocols * len(args.port)
    if len(protocols) != len(args.port):
        raise UsageError(
            f"{len(args.protocol)} --protocol for {len(args.port)} --port: give one for all "
            "ports, or one per port in the same order"
        )
    ports = []
    for (path, baud), protocol in zip(args.port, protocols, strict=True):
        facts = CATALOGUE.get(protocol)
        if protocol != PASSIVE and facts is None:
            raise UsageError(
                f"--protocol {protocol}: not a protocol this monitor reads; one of "
                + ", ".join(sorted(CATALOGUE))
            )
        if baud is None:
            baud = facts.default_baud if facts is not None else 115200
        if baud not in serial.Serial.BAUDRATES:
            raise UsageError(f"--port {path}@{baud}: {baud} is not a standard baud rate")
        if facts is not None and baud not in facts.bauds and not no_line_rate(path):
            raise UsageError(
                f"--port {path}@{baud}: {protocol} runs at "
                + ", ".join(str(b) for b in facts.bauds)
            )
        ports.append(RecordedPort(path, baud, protocol))
    return ports


def cmd_record(args: argparse.Namespace) -> int:
    from monitor.bedside.live import software_version
    from monitor.edge.capture import CaptureOpenError, CaptureWriter
    from monitor.edge.recorder import record

    ports = recorded_ports(args)
    try:
        writer = CaptureWriter(args.out, software=software_version())
    except CaptureOpenError as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    on_signals(stop)
    until = f" for {args.duration:g} s" if args.duration else " until Ctrl-C"
    print(f"Recording {len(ports)} port(s) to {args.out}{until}.", flush=True)
    tallies = record(
        ports,
        writer,
        duration_s=args.duration,
        stop=stop,
        on_event=lambda event: print(f"  {event.kind.value}: {event.message}", flush=True),
    )
    print(f"Recorded {writer.records} records to {args.out}.")
    for tally in tallies:
        what = tally.port.protocol or "passive"
        problems = f", {dict(tally.problems)}" if tally.problems else ""
        print(
            f"  {tally.name} ({what}, {tally.port.path}): {tally.bytes_rx} bytes received, "
            f"{tally.bytes_tx} sent, {tally.frames} frames decoded{problems}"
        )
    if writer.failure:
        print(f"monitor record: {writer.failure}", file=sys.stderr)
        return 1
    never = [t.name for t in tallies if not t.opened]
    if never:
        print(f"monitor record: never opened: {', '.join(never)}", file=sys.stderr)
        return 1
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
    source.add_argument(
        "--replay-capture",
        metavar="FILE",
        help="play a wire capture's device side (monitor record, monitor run --capture) on "
        "its own timing, one port per captured port; what the host sends is not answered",
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
    listen.add_argument("--transducer", metavar="PORT", help="transducer port")
    listen.add_argument(
        "--rate",
        type=positive_integer,
        help="the transducer's sampling rate in Hz (frames at another rate are dropped; "
        "default ports.sample_rate_hz)",
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
        choices=(*PROTOCOL_VERSIONS, "bcc"),
        default=DEFAULT_PROTOCOL,
        help=f"the --pump ports' protocol (default {DEFAULT_PROTOCOL}; v1 only for old pumps; "
        "bcc: B. Braun Space racks, polled)",
    )
    listen.add_argument(
        "--baud",
        type=int,
        help="baud rate of --transducer and every --pump (default: the configuration's, "
        "115200 and 9600)",
    )
    listen.add_argument(
        "--device",
        action="append",
        default=[],
        type=device_spec,
        metavar="FIELDS",
        help="a device as a [[ports.device]] table names it (repeatable): "
        "role=pumps,path=socket://rack:4001,protocol=bcc[,baud=9600][,name=rack]",
    )
    listen.add_argument(
        "--config",
        metavar="FILE",
        help="listen to the ports this configuration names (and its drug table and names)",
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

    rec = sub.add_parser(
        "record",
        help="capture what ports carry, both ways, while their devices' sessions run",
        description="Open each port, run its protocol's session as monitor run does (a "
        "patient monitor or a pump rack sends nothing until it is asked), and write every byte "
        "received and sent, with its direction and arrival time, to a capture file "
        "(docs/protocols.md, 'Wire captures'). monitor sim --replay-capture plays it back. "
        "A port without --protocol is recorded passively (nothing is sent). Exit 0, 1 if a "
        "port never opened or the file could not be written, 2 for a usage error.",
    )
    rec.add_argument(
        "--port",
        action="append",
        required=True,
        type=port_at_baud,
        metavar="PATH[@BAUD]",
        help="a device path or pyserial URL, optionally @baud (repeatable; default baud: the "
        "protocol's)",
    )
    rec.add_argument(
        "--protocol",
        action="append",
        metavar="P",
        help="the protocol whose session runs: one for every port, or one per --port in order "
        "(binary, ascii, pump-nmea-v1, pump-nmea-v2, bcc)",
    )
    rec.add_argument("--out", required=True, metavar="FILE", help="the capture file to write")
    rec.add_argument(
        "--duration", type=positive_number, metavar="S", help="stop after S seconds (wall clock)"
    )
    rec.set_defaults(run=cmd_record)
