"""One bedside's processing chain: input items in, timeline entries out.

The same object serves the live monitor (items from ``DeviceInput``), the
virtual bench that plays scenarios without ports, and ``monitor analyze``
(items made from a recording and a pump file): one chain, so they cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devices.readings import PumpReport, SampleBlock
from monitor.clinical.engine import ClinicalEngine, TimelineEntry
from monitor.clinical.settings import ClinicalSettings
from monitor.core.beat_stream import BeatStream
from monitor.edge.input_items import InputItem, PumpObservation


class MonitorPipeline:
    """Beat core (with the transducer's status) feeding the clinical engine."""

    def __init__(
        self,
        settings: ClinicalSettings,
        fs: float,
        weight_kg: float | None,
        transducer_role: str = "transducer",
    ) -> None:
        self.beat_stream = BeatStream(fs)
        self.engine = ClinicalEngine(settings, fs, weight_kg)
        self.engine.set_transducer_role(transducer_role)
        self.fs = fs
        self.beats_seen = 0
        self.clean_beats = 0
        self.on_beats: Callable[[np.ndarray], None] | None = None  # e.g. the log's beat table

    def take(self, item: InputItem) -> list[TimelineEntry]:
        """Apply one input item; items must come in the order the input produced them."""
        if isinstance(item, SampleBlock):
            output = self.beat_stream.push(item)
            self.beats_seen += len(output.beats)
            self.clean_beats += int(np.count_nonzero(output.beats["clean"]))
            if self.on_beats is not None and len(output.beats):
                self.on_beats(output.beats)
            return self.engine.beats(output) + self.engine.advance(item.end / self.fs)
        if isinstance(item, PumpObservation):
            self.engine.nee.port_heard(item.role)
            if isinstance(item.sentence, PumpReport):
                return self.engine.pump(item.t_s, item.sentence, item.drug, item.conflict)
            return self.engine.advance(item.t_s)
        return self.engine.device_event(item)

    def advance(self, t_s: float) -> list[TimelineEntry]:
        """Stream time moved on with no input (a silent transducer, a quiet poll)."""
        return self.engine.advance(t_s)

    def finish(self) -> list[TimelineEntry]:
        """End of the data: the core's last beat and open conditions."""
        return self.engine.beats(self.beat_stream.finish())
