"""``monitor demo``: a simulated bedside, end to end, with no hardware and no arguments.

The scenario's transducer and pumps are played into pty pairs by the
simulator, paced from one scenario clock at ``speed`` times real time, and
the real ``LiveMonitor`` reads those device files exactly as it would read
``/dev/ttyUSB0``. The simulator keeps in step with the monitor's readers,
so a loaded or stalled host slows the demo down but never reorders what the
devices sent (``devices.simulation.simulator.play``). The log goes to a
fresh demo directory, never into a patient's log. The summary compares the
alarms with what the scenario says a correct monitor concludes.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devices.protocols.pump import DEFAULT_PROTOCOL
from devices.simulation.scenario import Scenario
from devices.simulation.simulator import RACK, TRANSDUCER, ScenarioPlayer, play
from devices.simulation.virtual_ports import ReaderInStep, VirtualPort
from monitor.alarm_outputs.configured import TextStream
from monitor.bedside.live import LiveMonitor, RunResult, Screen
from monitor.bedside.view import clock_text
from monitor.clinical.engine import TimelineEntry
from monitor.configuration.config import Config
from monitor.edge.serial_link import SessionClock
from monitor.log.outside import start_admission

STALL_S = 10.0  # the simulation ended and nothing arrived for this long: stop
SIMULATOR_JOIN_S = 5.0
# Scenario time per simulator tick, and the most one tick sends however late it
# runs: a stall of the host delays the scenario, it never arrives as a burst (at
# 120x a 100 ms stall would be 12 s at once, read from each port in any order).
TICK_SCENARIO_S = 0.5


@dataclass(frozen=True)
class DemoResult:
    """The run and where its log went; ``expected`` pairs each expected alarm with a verdict."""

    run: RunResult
    timeline: list[TimelineEntry]
    log_dir: Path
    expected: list[tuple[str, str]]


def demo_config(
    base: Config,
    scenario: Scenario,
    ports: dict[str, VirtualPort],
    log_dir: Path,
    pump_protocol: str = DEFAULT_PROTOCOL,
):
    """The packaged settings, pointed at the virtual ports and the demo's own log."""
    pump_devices = [RACK] if pump_protocol == "bcc" else [p.pump_id for p in scenario.pumps]
    return base.with_overrides(
        {
            "ports.transducer": ports[TRANSDUCER].device,
            "ports.transducer_protocol": scenario.transducer.protocol,
            "ports.sample_rate_hz": float(scenario.transducer.sample_rate_hz),
            "ports.pumps": [ports[device].device for device in pump_devices],
            "ports.pump_protocol": pump_protocol,
            "log.directory": str(log_dir),
            "alarms.audio": "off",  # a demo at 120x would be a minute of beeping
        },
        "monitor demo",
    )


def run_demo(
    scenario: Scenario,
    base: Config,
    *,
    speed: float,
    screen: Screen | None,
    alarm_stream: TextStream,
    log_dir: Path | None = None,
    stop: threading.Event | None = None,
    pump_protocol: str = DEFAULT_PROTOCOL,
) -> DemoResult:
    """Play ``scenario`` into virtual ports and monitor them until the scenario ends.

    ``pump_protocol`` "bcc" puts the scenario's pumps in a simulated B. Braun
    rack, polled by the monitor's BCC session at the demo's speed.
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    player = ScenarioPlayer(scenario, pump_protocol)
    ports = {device: VirtualPort(device) for device in player.devices}
    sim_stop = threading.Event()
    timeline: list[TimelineEntry] = []
    simulator: threading.Thread | None = None
    try:
        start_admission(log_dir, scenario.weight_kg, by="monitor demo")
        monitor = LiveMonitor(
            demo_config(base, scenario, ports, log_dir, pump_protocol),
            alarm_stream=alarm_stream,
            by="monitor demo",
            read_gather_s=0.0,  # the simulator waits on the readers: resting would slow it
            session_clock=SessionClock(lambda: player.t_s, speed),  # polled in scenario time
        )
        simulator = threading.Thread(
            target=play,
            args=(player, ports),
            kwargs={
                "speed": speed,
                "stop": sim_stop,
                "tick_s": TICK_SCENARIO_S / speed,
                "max_step_s": TICK_SCENARIO_S,
                "in_step": ReaderInStep(ports, _received_by_device(monitor, ports)),
                "listen": {RACK: ports[RACK].take_sent} if RACK in ports else None,
            },
            name="demo-simulator",
            daemon=True,
        )
        watcher = threading.Thread(
            target=_stop_when_done,
            args=(monitor, simulator, stop or threading.Event()),
            name="demo-watcher",
            daemon=True,
        )
        watcher.start()
        run = monitor.run(
            screen,
            until_s=scenario.duration_s,
            on_entries=timeline.extend,
            on_connected=simulator.start,
        )
    finally:
        sim_stop.set()
        if simulator is not None and simulator.ident is not None:
            simulator.join(SIMULATOR_JOIN_S)  # it writes no more before its ports close
        for port in ports.values():
            port.close()
    return DemoResult(run, timeline, log_dir, expected_alarms(scenario, timeline))


def pump_stamp_tolerance_s(scenario: Scenario) -> float:
    """How early a simulated pump report may be stamped: one transducer frame (see ``play``)."""
    return scenario.transducer.frame_samples / scenario.transducer.sample_rate_hz


def _received_by_device(
    monitor: LiveMonitor, ports: dict[str, VirtualPort]
) -> Callable[[], dict[str, int]]:
    """The bytes the monitor's readers handed over, by the simulator's device names."""
    device_of = {
        settings.role: name
        for name, port in ports.items()
        for settings in monitor.ports.all()
        if settings.url == port.device
    }
    return lambda: {device_of[role]: n for role, n in monitor.input.bytes_received().items()}


def _stop_when_done(monitor: LiveMonitor, simulator: threading.Thread, stop: threading.Event):
    """End the run on the caller's stop, or ``STALL_S`` after the simulation ended.

    Normally the run ends first, at the scenario's end in stream time; this
    is for bytes the ports dropped, which the stream clock bridges at 1x.
    """
    ended: float | None = None
    while not monitor.stop_requested.is_set() and not stop.wait(0.2):
        if ended is None and simulator.ident is not None and not simulator.is_alive():
            ended = time.monotonic()
        if ended is not None and time.monotonic() - ended > STALL_S:
            break
    monitor.stop_requested.set()


def expected_alarms(scenario: Scenario, timeline: list[TimelineEntry]) -> list[tuple[str, str]]:
    """Each alarm the scenario expects, with when it was first raised and whether in time.

    A window's start is checked one transducer frame early: the simulator
    plays in step with the monitor (``TICK_SCENARIO_S`` at most per tick, each
    device's bytes taken in scenario order), so a pump report is stamped at
    the end of the last frame sent before it, never earlier, whatever the
    load. Everything else is on the samples themselves, exactly.
    """
    frame_s = pump_stamp_tolerance_s(scenario)
    verdicts = []
    for want in scenario.expect.alarms:
        raised = [e.t_s for e in timeline if e.kind == "raised" and e.name == want.name]
        low, high = want.within_s
        window = f"expected {clock_text(low)}-{clock_text(high)}"
        if not raised:
            verdicts.append((want.name, f"NOT raised ({window})"))
        else:
            in_time = low - frame_s <= raised[0] <= high
            ok = "as expected" if in_time else "OUTSIDE the expected window"
            verdicts.append((want.name, f"raised at {clock_text(raised[0])}, {ok} ({window})"))
    for name in scenario.expect.never_alarms:
        if any(e.kind == "raised" and e.name == name for e in timeline):
            verdicts.append((name, "raised, but the scenario says it never should be"))
    return verdicts
