"""`monitor demo --protocol`: the same bedside through a real device protocol gives the same alarms.

Each scenario is played twice into pty pairs and read by the real monitor:
once with this project's own pump sentences, once with the pumps in a
simulated B. Braun rack that the monitor's BCC session polls. The pumps
are then heard only when asked (every 2 s), so a change may be seen up to
one poll and an answer later; the issue allows each raise to move by at most
5 s, and no alarm to appear or vanish.
"""

from __future__ import annotations

import io
import os

import pytest

from devices.simulation.scenario_file import load_scenario
from monitor import core
from monitor.bedside.demo import DemoResult, run_demo
from monitor.configuration.config import default_config

PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
pytestmark = pytest.mark.skipif(
    PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the live monitor refuses"
)
SPEED = 120.0
TOLERANCE_S = 5.0


def demo(scenario_name: str, pump_protocol: str, log_dir) -> DemoResult:
    return run_demo(
        load_scenario(scenario_name),
        default_config(),
        speed=SPEED,
        screen=None,
        alarm_stream=io.StringIO(),
        log_dir=log_dir,
        pump_protocol=pump_protocol,
    )


def raises(result: DemoResult) -> list[tuple[str, float]]:
    return [(e.name, e.t_s) for e in result.timeline if e.kind == "raised"]


@pytest.mark.parametrize("scenario", ["pump-silent", "septic-refractory"])
def test_the_pumps_through_bcc_raise_the_same_alarms_within_five_seconds(tmp_path, scenario):
    own = demo(scenario, "v2", tmp_path / "own")
    bcc = demo(scenario, "bcc", tmp_path / "bcc")
    assert own.run.reason == bcc.run.reason == "finished"
    assert [name for name, _ in raises(bcc)] == [name for name, _ in raises(own)]
    for (name, t_own), (_, t_bcc) in zip(raises(own), raises(bcc), strict=True):
        assert abs(t_bcc - t_own) <= TOLERANCE_S, (name, t_own, t_bcc)
    assert all(verdict.startswith("raised at") for _, verdict in bcc.expected), bcc.expected
