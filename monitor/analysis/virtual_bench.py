"""A simulated bedside without ports: a scenario's bytes through the real input and pipeline.

Engineers and tests want to know what the monitor makes of a four-hour
scenario in seconds, not in four hours. ``run_scenario`` plays every
device's bytes, in scenario-time order, into the very ``DeviceInput``
(decoders, stream clock, watchdogs) and ``MonitorPipeline`` a live monitor
runs; only the reader threads and the wall clock are replaced: each read
arrives at its scenario time, so silences and communications losses happen
as they would live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devices.protocols.decoding import Decoder
from devices.protocols.pump import PumpLineDecoder
from devices.protocols.transducer import AsciiTransducerDecoder, BinaryTransducerDecoder
from devices.simulation.scenario import Scenario
from devices.simulation.simulator import TRANSDUCER, ScenarioPlayer
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.bedside.chain import Bedside
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.drug_table import DrugTable
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import InputItem
from monitor.edge.serial_link import PortSettings, Received
from monitor.log.writer import BedsideLog, Clocks

STEP_S = 0.1  # scenario time handed to the devices per step


class ScenarioClock:
    """Scenario time, the one clock of a bench run; the log can read it too."""

    def __init__(self, start_s: float = 0.0, utc_at_zero: float = 1.8e9) -> None:
        self.now_s = start_s
        self.utc_at_zero = utc_at_zero

    def __call__(self) -> float:
        return self.now_s

    def log_clocks(self, kernel_boot_id: str = "virtual-bench") -> Clocks:
        """Wall clock and boot time that follow the scenario: a restart's gap is exact."""
        return Clocks(lambda: self.utc_at_zero + self.now_s, self, lambda: kernel_boot_id)


@dataclass(frozen=True)
class BenchRun:
    """What a scenario produced: the timeline and a few counts."""

    scenario: str
    timeline: list[TimelineEntry]
    beats: int
    clean_beats: int
    suppressed: dict[str, int]


class _DirectReader:
    """Stands in for ``PortReader``: decodes what it is handed and delivers it at once."""

    def __init__(self, settings: PortSettings, decoder: Decoder, deliver: Callable) -> None:
        self.settings, self.decoder, self.deliver = settings, decoder, deliver

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def feed(self, data: bytes, t_s: float) -> None:
        frames = self.decoder.feed(data)
        self.deliver(
            Received(self.settings.role, frames, self.decoder.take_problems(), len(data), t_s)
        )


def run_scenario(
    scenario: Scenario,
    settings: ClinicalSettings,
    drug_table: DrugTable,
    *,
    weight_kg: float | None = None,
    comm_loss_s: float = 10.0,
    until_s: float | None = None,
    clock: ScenarioClock | None = None,
    log: BedsideLog | None = None,
    outputs: SinkFanout | None = None,
    on_item: Callable[[InputItem], None] | None = None,
) -> BenchRun:
    """Play ``scenario`` (to ``until_s``) through the monitor as fast as possible.

    ``clock`` (default: from 0) says when the monitor starts: one started at
    scenario time 6000 s sees nothing before, and its stream time starts at
    0 there. With ``log`` it resumes from the log's history and records
    everything, as a live monitor does (give the log ``clock.log_clocks()``);
    with ``outputs`` the alarms reach those sinks once they are logged.
    ``on_item`` sees every input item before the pipeline does (to record a run).
    """
    fs = float(scenario.transducer.sample_rate_hz)
    clock = clock or ScenarioClock()
    from_s = clock.now_s
    readers: dict[str, _DirectReader] = {}

    def factory(port: PortSettings, decoder: Decoder, deliver: Callable) -> _DirectReader:
        readers[port.role] = _DirectReader(port, decoder, deliver)
        return readers[port.role]

    transducer_decoder: Decoder = (
        BinaryTransducerDecoder()
        if scenario.transducer.protocol == "binary"
        else AsciiTransducerDecoder(fs)
    )
    device_input = DeviceInput(
        (PortSettings(TRANSDUCER, f"sim://{scenario.name}/{TRANSDUCER}"), transducer_decoder),
        [
            (PortSettings(pump.pump_id, f"sim://{scenario.name}/{pump.pump_id}"), PumpLineDecoder())
            for pump in scenario.pumps
        ],
        sample_rate=fs,
        drug_table=drug_table,
        comm_loss_s=comm_loss_s,
        clock=clock,
        reader_factory=factory,
    )
    weight = scenario.weight_kg if weight_kg is None else weight_kg
    pipeline = MonitorPipeline(settings, fs, weight, TRANSDUCER)
    bedside = Bedside(pipeline, log, outputs)
    player = ScenarioPlayer(scenario)
    player.advance(from_s)  # what happened before this monitor started
    end_s = scenario.duration_s if until_s is None else min(until_s, scenario.duration_s)
    timeline: list[TimelineEntry] = bedside.start()

    def take(items: list[InputItem]) -> list[TimelineEntry]:
        out = []
        for item in items:
            if on_item is not None:
                on_item(item)
            out += bedside.take(item)
        return out

    t = from_s
    while t < end_s:
        t = min(t + STEP_S, end_s)
        for tx in player.advance(t):
            clock.now_s = tx.t_s
            readers[tx.device].feed(tx.data, tx.t_s)
            timeline += take(device_input.poll(0.0))
        clock.now_s = t
        timeline += take(device_input.poll(0.0))
        timeline += bedside.advance(device_input.now(t))
    timeline += bedside.finish()
    return BenchRun(
        scenario.name,
        timeline,
        pipeline.beats_seen,
        pipeline.clean_beats,
        dict(pipeline.engine.suppressed),
    )
