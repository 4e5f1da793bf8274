"""A simulated bedside: one scenario clock drives the transducer and every pump.

``ScenarioPlayer`` knows nothing of wall time: asked to advance to scenario
time t, it returns every byte each device would have sent by then, in time
order. ``play`` paces a player against the monotonic clock at any speed-up
and writes into virtual serial ports, so at 60x the pump reports and the
waveform stay exactly as consistent as at 1x.

At a speed-up the host's own delays are multiplied too: at 120x a 100 ms
stall is 12 s of scenario time, and a reader thread 10 ms late is 1.2 s. A
pump's port and the transducer's are read by separate threads, so what one
write puts on both can be read in either order. ``play`` can therefore be
told to send at most ``max_step_s`` of scenario time per tick (after a stall
the scenario runs late instead of arriving in one burst) and to wait, before
each tick, until the reader has taken the previous tick's bytes from every
port (``in_step``, e.g. ``virtual_ports.ReaderInStep``), and again whenever
it turns from one device to another. Then the monitor takes a pump sentence
after the transducer frames sent before it and before those sent after,
whatever the load: the sentence is stamped at the end of the last frame
before it, at most one frame early (0.1 s at 25 samples and 250 Hz).

The waveform is rendered in blocks of ``BLOCK_S`` seconds, each stretched
to hold whole any artifact that starts in it, so a scenario hours long at
1000 Hz never sits in memory at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from devices.protocols.pump import DEFAULT_PROTOCOL, sentence_format
from devices.protocols.transducer import Calibration
from devices.readings import TransducerStatus
from devices.simulation.abp_waveform import AbpGenerator
from devices.simulation.bcc_rack import BccRack
from devices.simulation.pump_emulator import PumpEmulator
from devices.simulation.scenario import (
    WAVEFORM_ARTIFACTS,
    ArtifactSpec,
    Scenario,
    apply_artifact,
    trajectory_at,
)
from devices.simulation.transducer_emulator import Stretch, TransducerFrontEnd, Transmission

TRANSDUCER = "transducer"
RACK = "rack"  # the device name of a B. Braun rack that answers for every pump
BLOCK_S = 10.0
DEFAULT_TICK_S = 0.02
# In step, how long a tick waits for a reader to take the bytes already sent: a monitor
# that stops reading (stopped, or gone) must not stop the simulation, it only loses bytes.
READER_WAIT_S = 2.0
READER_POLL_S = 0.0005
GARBAGE_BYTES = 200

# Artifacts of the front end itself: a status flag on the frames it overlaps.
_STATUS = {"zeroing": TransducerStatus.ZEROING, "transducer_fault": TransducerStatus.FAULT}


def _shifted(artifact: ArtifactSpec, offset_s: float) -> ArtifactSpec:
    return ArtifactSpec(
        artifact.kind, artifact.start_s - offset_s, artifact.duration_s, artifact.params
    )


class _ScenarioWaveform:
    """Samples of the scenario's patient with its waveform artifacts, rendered block by block."""

    def __init__(self, scenario: Scenario) -> None:
        physiology, fs = scenario.physiology, scenario.transducer.sample_rate_hz
        self.fs = fs
        self.generator = AbpGenerator(
            scenario.duration_s,
            fs,
            heart_rate_bpm=lambda t: trajectory_at(physiology.heart_rate_bpm, t),
            map_mmhg=lambda t: trajectory_at(physiology.map_mmhg, t),
            pulse_pressure_mmhg=lambda t: trajectory_at(physiology.pulse_pressure_mmhg, t),
            respiratory_rate_bpm=physiology.respiratory_rate_bpm,
            respiratory_swing_mmhg=physiology.respiratory_swing_mmhg,
            hr_variability=physiology.hr_variability,
            noise_mmhg=physiology.noise_mmhg,
            seed=scenario.seed,
        )
        self.n_samples = self.generator.n_samples
        self._artifacts = sorted(
            (a for a in scenario.artifacts if a.kind in WAVEFORM_ARTIFACTS), key=lambda a: a.start_s
        )
        self._block_start, self._block = 0, np.empty(0)

    def __call__(self, start: int, end: int) -> np.ndarray:
        block_end = self._block_start + len(self._block)
        if not (self._block_start <= start and end <= block_end):
            self._render_block_from(start, end)
        offset = start - self._block_start
        return self._block[offset : offset + end - start]

    def _render_block_from(self, start: int, end: int) -> None:
        """Render from ``start`` for at least a block, stretched over any artifact begun in it."""
        stop = min(self.n_samples, max(end, start + round(BLOCK_S * self.fs)))
        inside: list[ArtifactSpec] = []
        for artifact in self._artifacts:
            first = round(artifact.start_s * self.fs)
            if start <= first < stop:
                inside.append(artifact)
                stop = min(
                    self.n_samples, max(stop, math.ceil(self._end_s(artifact) * self.fs) + 1)
                )
        block = self.generator.render(start, stop)
        for artifact in inside:
            block = apply_artifact(block, self.fs, _shifted(artifact, start / self.fs)).samples
        self._block_start, self._block = start, block

    @staticmethod
    def _end_s(artifact: ArtifactSpec) -> float:
        return artifact.start_s + artifact.duration_s


class ScenarioPlayer:
    """Every device of a scenario, advanced together on the scenario clock.

    ``pump_protocol`` is a pump sentence version (one device per pump, each
    talking unasked) or ``"bcc"``: one B. Braun rack (device ``RACK``) that
    holds every infusion and answers only when asked (``hear``).
    """

    def __init__(self, scenario: Scenario, pump_protocol: str = DEFAULT_PROTOCOL) -> None:
        self.scenario = scenario
        waveform = _ScenarioWaveform(scenario)
        fs = waveform.fs
        spec = scenario.transducer

        def stretch(a: ArtifactSpec, status: TransducerStatus) -> Stretch:
            return Stretch(
                round(a.start_s * fs), math.ceil((a.start_s + a.duration_s) * fs), status
            )

        rng = np.random.default_rng([scenario.seed, 0x6A5])
        self.transducer = TransducerFrontEnd(
            waveform,
            waveform.n_samples,
            fs,
            device=TRANSDUCER,
            frame_samples=spec.frame_samples,
            protocol=spec.protocol,
            calibration=Calibration(spec.zero_counts, spec.nano_mmhg_per_count),
            flagged=[stretch(a, _STATUS[a.kind]) for a in scenario.artifacts if a.kind in _STATUS],
            dropped=[
                stretch(a, TransducerStatus(0)) for a in scenario.artifacts if a.kind == "dropout"
            ],
            garbage=[
                (a.start_s, rng.bytes(int(a.params.get("bytes", GARBAGE_BYTES))))
                for a in scenario.artifacts
                if a.kind == "garbage"
            ],
        )
        self.rack = None
        self.pumps = {}
        if pump_protocol == "bcc":
            self.rack = BccRack(scenario.infusions, scenario.pumps)
        else:
            version = sentence_format(pump_protocol).version
            self.pumps = {
                pump.pump_id: PumpEmulator(
                    pump, [i for i in scenario.infusions if i.pump_id == pump.pump_id], version
                )
                for pump in scenario.pumps
            }
        self.t_s = 0.0

    @property
    def devices(self) -> list[str]:
        return [TRANSDUCER, *self.pump_devices]

    @property
    def pump_devices(self) -> list[str]:
        """The devices that report the pumps: each pump, or the one rack."""
        return [RACK] if self.rack is not None else list(self.pumps)

    def hear(self, device: str, data: bytes) -> list[Transmission]:
        """What ``device`` answers, now, to bytes the host wrote to it (only a rack answers)."""
        if device != RACK or self.rack is None:
            return []
        answer = self.rack.hear(self.t_s, data)
        return [Transmission(self.t_s, RACK, answer)] if answer else []

    @property
    def done(self) -> bool:
        return self.t_s >= self.scenario.duration_s

    def advance(self, until_s: float) -> list[Transmission]:
        """What every device sends in ``[t_s, until_s)``, in scenario-time order."""
        until_s = min(until_s, self.scenario.duration_s)
        if until_s <= self.t_s:
            return []
        out = self.transducer.transmissions_until(until_s)
        for pump_id, emulator in self.pumps.items():
            out += [
                Transmission(t, pump_id, data)
                for t, data in emulator.sentences_between(self.t_s, until_s)
            ]
            emulator.forget_before(until_s)
        self.t_s = until_s
        out.sort(key=lambda tx: tx.t_s)
        return out


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class Player(Protocol):
    """What ``play`` paces: a scenario or a replayed recording."""

    t_s: float

    @property
    def done(self) -> bool: ...

    def advance(self, until_s: float) -> list[Transmission]: ...

    def hear(self, device: str, data: bytes) -> list[Transmission]: ...


def play(
    player: Player,
    sinks: Mapping[str, Sink],
    *,
    speed: float,
    stop: threading.Event | None = None,
    tick_s: float = DEFAULT_TICK_S,
    clock: Callable[[], float] = time.monotonic,
    on_tick: Callable[[float], None] | None = None,
    max_step_s: float = math.inf,
    in_step: Callable[[], bool] | None = None,
    listen: Mapping[str, Callable[[], bytes]] | None = None,
) -> None:
    """Pace ``player`` at ``speed`` times real time, writing each device's bytes to its sink.

    Scenario time follows ``speed`` times the monotonic time, and a slow
    tick is caught up by the next one, but never by more than ``max_step_s``
    of scenario time in one tick: a longer stall of the host delays the
    scenario rather than sending its minutes at once. With ``in_step`` (true
    once the receiver has taken every byte sent so far), each tick, and each
    write to another device than the one before, first waits for it, up to
    ``READER_WAIT_S``: the receiver then takes every device's bytes in
    scenario order. ``on_tick`` (if given) hears the
    scenario time after each tick. ``listen`` gives, per device that answers,
    what the host wrote to it since the last tick; the player's answers are
    written back in the same tick.
    """
    if not (speed > 0.0):
        raise ValueError(f"speed must be above zero, got {speed!r}")
    if not (max_step_s > 0.0):
        raise ValueError(f"max_step_s must be above zero, got {max_step_s!r}")
    stop = stop or threading.Event()
    last = clock()
    scenario_s = player.t_s
    while not player.done and not stop.is_set():
        now = clock()
        scenario_s += min((now - last) * speed, max_step_s)
        last = now
        previous = None
        for tx in player.advance(scenario_s):
            if in_step is not None and tx.device != previous:
                _wait_for(in_step, stop, clock)
            previous = tx.device
            sinks[tx.device].write(tx.data)
        for device, take_sent in (listen or {}).items():
            asked = take_sent()
            for tx in player.hear(device, asked) if asked else []:
                sinks[tx.device].write(tx.data)
        if on_tick is not None:
            on_tick(player.t_s)
        stop.wait(tick_s)


def _wait_for(in_step: Callable[[], bool], stop: threading.Event, clock: Callable[[], float]):
    """Until the receiver has taken what was sent, or ``READER_WAIT_S`` has passed."""
    deadline = clock() + READER_WAIT_S
    while not in_step() and clock() < deadline and not stop.is_set():
        time.sleep(READER_POLL_S)
