"""The live loop and its screen: what is shown is built only when a screen draws it.

The loop turns 20 to 40 times a second; a screen draws a few times a second at
most. Building the view (the alarm list, the NEE text, the 6 s sweep rolled into
order) on every turn was the largest cost of a running bedside with a screen.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from unittest import mock

import pytest

from devices.simulation.scenario_file import load_scenario
from devices.simulation.simulator import ScenarioPlayer, play
from devices.simulation.virtual_ports import VirtualPort
from monitor.bedside import live
from monitor.bedside.demo import demo_config
from monitor.bedside.live import LiveMonitor
from monitor.bedside.view import BedsideView
from monitor.configuration.config import default_config
from monitor.log.outside import start_admission

pytestmark = pytest.mark.usefixtures("packaged_config_only")

SCENARIO = load_scenario("loss-of-pulse")


class SometimesDrawn:
    """A screen that draws on every ``every``-th call only, as a real one draws on its clock."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.calls = 0
        self.drawn: list[BedsideView] = []

    def show(self, view: Callable[[], BedsideView], now: float) -> list[str]:
        self.calls += 1
        if self.calls % self.every == 0:
            self.drawn.append(view())
        return []


def run_with(screen: SometimesDrawn, tmp_path) -> int:
    """Four seconds of stream through real ptys; how many snapshots the loop built."""
    log_dir = tmp_path / "log"
    start_admission(log_dir, 80.0, by="test")
    player = ScenarioPlayer(SCENARIO)
    ports = {device: VirtualPort(device) for device in player.devices}
    sim_stop = threading.Event()
    try:
        monitor = LiveMonitor(
            demo_config(default_config(), SCENARIO, ports, log_dir),
            alarm_stream=io.StringIO(),
            by="test",
        )
        simulator = threading.Thread(
            target=play, args=(player, ports),
            kwargs={"speed": 4.0, "stop": sim_stop, "tick_s": 0.5 / 4.0}, daemon=True,
        )  # fmt: skip
        watchdog = threading.Timer(60.0, monitor.stop_requested.set)  # never hangs
        watchdog.start()
        with mock.patch.object(live, "snapshot", wraps=live.snapshot) as snapshot:
            try:
                monitor.run(screen, until_s=4.0, on_connected=simulator.start)
            finally:
                watchdog.cancel()
        return snapshot.call_count
    finally:
        sim_stop.set()
        for port in ports.values():
            port.close()


def test_the_loop_builds_a_snapshot_only_when_the_screen_draws(tmp_path):
    screen = SometimesDrawn(every=5)
    built = run_with(screen, tmp_path)
    assert screen.calls >= 10  # the loop turned, and showed the screen on every turn
    assert built == len(screen.drawn) == screen.calls // 5
    assert screen.drawn[-1].t_s >= screen.drawn[0].t_s  # each one built at its own turn
