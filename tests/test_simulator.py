"""Specification of the simulated bedside: one scenario clock, real wire bytes, every artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.protocols.pump import PumpLineDecoder
from devices.protocols.transducer import BinaryTransducerDecoder
from devices.readings import PumpReport, TransducerStatus
from devices.simulation.replay import ReplayPlayer, replay_front_end
from devices.simulation.scenario_file import load_scenario
from devices.simulation.simulator import TRANSDUCER, ScenarioPlayer

STORM_HEAD = """
[scenario]
name = "mini-storm"
title = "two minutes with artifacts on the wire"
description = "test"
duration = 120
seed = 5
weight_kg = 70

[transducer]
sample_rate_hz = 250
frame_samples = 25

[physiology]
heart_rate_bpm = 80
map_mmhg = 75
pulse_pressure_mmhg = 40
respiratory_rate_bpm = 12
respiratory_swing_mmhg = 3
hr_variability = 0.01
noise_mmhg = 0.3

[[artifact]]
kind = "zeroing"
at = 20
duration_s = 10

[[artifact]]
kind = "dropout"
at = 40
duration_s = 2

[[artifact]]
kind = "garbage"
at = 60
bytes = 300

[[artifact]]
kind = "transducer_fault"
at = 80
duration_s = 5

[[pump]]
id = "P1"

[[infusion]]
pump = "P1"
channel = 1
drug = "NORAD"
concentration = 64
concentration_unit = "ug/mL"
dose_unit = "ug/kg/min"
steps = [{ at = 5, dose = 0.1 }, { at = 60, dose = 0.2 }]
"""


@pytest.fixture
def mini_storm(tmp_path: Path):
    path = tmp_path / "mini-storm.toml"
    path.write_text(STORM_HEAD)
    return load_scenario(path)


def play_all(player, step_s: float) -> list:
    out = []
    t = 0.0
    while not player.done:
        t += step_s
        out += player.advance(t)
    return out


def test_advancing_in_any_steps_sends_the_same_bytes_in_time_order(mini_storm) -> None:
    coarse = play_all(ScenarioPlayer(mini_storm), 7.3)
    fine = play_all(ScenarioPlayer(mini_storm), 0.37)
    assert coarse == fine
    times = [tx.t_s for tx in fine]
    assert times == sorted(times) and times[-1] <= mini_storm.duration_s


def transducer_frames(transmissions):
    decoder = BinaryTransducerDecoder()
    frames = []
    for tx in transmissions:
        if tx.device == TRANSDUCER:
            frames += decoder.feed(tx.data)
    return frames, decoder


def test_the_wire_carries_every_sample_but_the_dropout_and_counts_the_garbage(mini_storm) -> None:
    frames, decoder = transducer_frames(play_all(ScenarioPlayer(mini_storm), 1.0))
    received = sum(len(f.samples) for f in frames)
    assert received == 120 * 250 - 2 * 250
    assert decoder.counts["missing_samples"] == 2 * 250
    assert decoder.counts["sequence_gap"] == 1
    assert decoder.counts["garbage_bytes"] + decoder.counts["bad_checksum"] >= 1
    assert decoder.counts["frames"] == len(frames)


def test_status_flags_cover_exactly_the_zeroing_and_fault_stretches(mini_storm) -> None:
    frames, _ = transducer_frames(play_all(ScenarioPlayer(mini_storm), 1.0))
    zeroing = [f.sequence / 250 for f in frames if f.status & TransducerStatus.ZEROING]
    fault = [f.sequence / 250 for f in frames if f.status & TransducerStatus.FAULT]
    assert min(zeroing) == pytest.approx(20.0) and max(zeroing) == pytest.approx(29.9)
    assert min(fault) == pytest.approx(80.0) and max(fault) == pytest.approx(84.9)
    zeroing_samples = np.concatenate(
        [f.samples for f in frames if f.status & TransducerStatus.ZEROING]
    )
    assert np.all(np.abs(zeroing_samples) < 5.0)  # the trace really is open to air


def test_pump_reports_follow_the_titration_on_the_same_clock(mini_storm) -> None:
    decoder = PumpLineDecoder()
    reports = []
    for tx in play_all(ScenarioPlayer(mini_storm), 1.0):
        if tx.device == "P1":
            reports += [(tx.t_s, s) for s in decoder.feed(tx.data) if isinstance(s, PumpReport)]
    assert reports[0][0] == pytest.approx(5.0)
    doses = {round(s.dose, 3) for t, s in reports if t >= 60.0}
    assert doses == {0.2} and sum(decoder.counts[k] for k in ("bad_checksum", "invalid_field")) == 0


def test_every_packaged_scenario_plays_its_first_minutes_without_error() -> None:
    for name in (
        "septic-refractory",
        "artifact-storm",
        "loss-of-pulse",
        "pump-silent",
        "responsive-norepinephrine",
        "implausible-pump-report",
    ):
        player = ScenarioPlayer(load_scenario(name))
        sent = player.advance(180.0)
        assert any(tx.device == TRANSDUCER for tx in sent), name


def test_a_replayed_recording_sends_its_samples_to_a_hundredth_of_a_mmhg() -> None:
    trace = 80.0 + 20.0 * np.sin(np.arange(2500) / 25.0)
    trace[1000:1010] = np.nan  # a gap in the recording
    player = ReplayPlayer(replay_front_end(trace, 250.0), len(trace))
    frames, decoder = transducer_frames(play_all(player, 0.5))
    got = np.concatenate([f.samples for f in frames])
    assert decoder.counts["missing_samples"] == 10  # the frame holding the gap is lost
    kept = np.concatenate([trace[:1000], trace[1010:]])
    assert np.max(np.abs(got - kept)) <= 0.005 + 1e-9


@pytest.mark.parametrize("fs", [62.5, 0.0, float("nan")])
def test_replay_refuses_a_rate_the_wire_cannot_carry(fs: float) -> None:
    with pytest.raises(ValueError, match="whole-number sampling rate"):
        replay_front_end(np.zeros(100), fs)


class _Clock:
    """A monotonic clock the test moves: each read is a little later, one read jumps (a stall)."""

    def __init__(self, stall_at_read: int, stall_s: float) -> None:
        self.t, self.reads = 0.0, 0
        self._stall_at, self._stall_s = stall_at_read, stall_s

    def __call__(self) -> float:
        self.reads += 1
        self.t += self._stall_s if self.reads == self._stall_at else 0.01
        return self.t


class _Recorder:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data))


def test_a_stall_of_the_host_delays_the_scenario_instead_of_sending_it_in_one_burst(mini_storm):
    from devices.simulation.simulator import play

    player = ScenarioPlayer(mini_storm)
    reached: list[float] = []
    sinks = {device: _Recorder([], device) for device in player.devices}
    clock = _Clock(stall_at_read=5, stall_s=1.0)  # 1 s stalled: 60 s of scenario at 60x
    play(
        player, sinks, speed=60.0, tick_s=0.0, clock=clock, on_tick=reached.append,
        max_step_s=0.5,
    )  # fmt: skip
    steps = np.diff([0.0, *reached])
    assert steps.max() <= 0.5 + 1e-9
    assert reached[-1] == mini_storm.duration_s  # all of it, only later


def test_in_step_each_device_is_written_only_once_the_reader_took_the_others_bytes(mini_storm):
    from devices.simulation.simulator import play

    player = ScenarioPlayer(mini_storm)
    order: list = []
    sinks = {device: _Recorder(order, device) for device in player.devices}
    taken: list[int] = []

    def reader_caught_up() -> bool:
        taken.append(len(order))  # the reader takes everything written so far
        return True

    play(player, sinks, speed=1e6, tick_s=0.0, in_step=reader_caught_up)
    switches = [i for i in range(1, len(order)) if order[i][0] != order[i - 1][0]]
    assert switches  # the transducer and the pump take turns...
    assert all(i in taken for i in switches)  # ...and every turn waited for the reader


def test_a_reader_is_in_step_once_it_handed_over_what_was_written_not_when_the_pty_is_empty():
    import serial

    from devices.simulation.virtual_ports import ReaderInStep, VirtualPort

    handed_over = {"transducer": 0}
    with VirtualPort("transducer") as port:
        in_step = ReaderInStep({"transducer": port}, lambda: handed_over)
        reader = serial.serial_for_url(port.path, timeout=1.0)
        try:
            assert in_step()
            port.write(b"x" * 10)
            assert not in_step()
            assert reader.read(10) == b"x" * 10
            assert port.unread() == 0 and not in_step()  # read, not yet handed over
            handed_over["transducer"] = 10
            assert in_step()
        finally:
            reader.close()
