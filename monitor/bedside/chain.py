"""One bed's monitor: the processing chain, then the log, then the outputs, in that order.

Every timeline entry the pipeline produces is committed to the log before
any output sees it, so an alarm that sounded is an alarm on the disk (a
power cut between the two loses the sound, never the record). If the log
cannot take it within a short bound, the alarm is shown anyway, the entry
is kept in memory and written when the log returns, and ``log_failed`` says
the record is at risk. A log that opens only after monitoring began is
attached then (``attach_log``) and takes what was kept meanwhile. The live
monitor, the demo and the virtual bench all run this.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from devices.readings import PumpReport
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.edge.input_items import DeviceEvent, InputItem, PumpObservation
from monitor.log.record import RecordBacklog
from monitor.log.writer import BedsideLog

log = logging.getLogger(__name__)


class Bedside:
    """Feed it input items in order; it returns (and has logged and shown) the timeline."""

    def __init__(
        self,
        pipeline: MonitorPipeline,
        log: BedsideLog | None,
        outputs: SinkFanout | None = None,
        *,
        log_unavailable: str | None = None,
        pending: RecordBacklog | None = None,
    ) -> None:
        """``pending`` keeps the record while there is no log, for one that opens later."""
        self.pipeline = pipeline
        self.engine = pipeline.engine
        self.log: BedsideLog | None = None
        self.outputs = outputs
        self.pending = pending
        self._pumps: dict[tuple[str, int], tuple] = {}
        self._log_problem = log_unavailable
        # Alarm ids unique beyond this run: a log holds the alarms of many runs.
        self.engine.alarms.id_prefix = f"{uuid.uuid4().hex[:12]}-"
        if log is not None:
            self._use(log)

    def _use(self, log: BedsideLog) -> None:
        self.log = log
        self.engine.record_trends(log.settings.trend_interval_s, log.add_trend)
        self.pipeline.on_beats = lambda beats: log.add_beats(self.pipeline.fs, beats)

    def attach_log(self, log: BedsideLog) -> list[TimelineEntry]:
        """A log that opened after monitoring began: what was kept goes in first, in order.

        Its admission's weight, when it has one, is the patient's (the log
        wins over the admission file the bedside may have started with).
        """
        self._use(log)
        if self.pending is not None:
            log.adopt(self.pending, self.engine.now_s)
            self.pending = None
        entries = self._check_log() + self.engine.carry_alarms(log.carried_alarms())
        weight = log.boot.weight_kg
        if weight is not None and weight != self.engine.nee.weight_kg:
            entries += self.engine.set_weight(weight)
        return self._publish(entries)

    def log_unavailable(self, message: str) -> list[TimelineEntry]:
        """There is no log yet, and why (the technical alarm's message, e.g. the next try)."""
        self._log_problem = message
        return self._publish(self.engine.log_problem(message))

    def start(self) -> list[TimelineEntry]:
        """Resume the detector and the standing alarms from the log; report a log unavailable."""
        entries: list[TimelineEntry] = []
        if self.log is not None:
            history = self.log.history()
            entries += self.engine.resume(history.points, history.data_end_s)
            entries += self.engine.carry_alarms(self.log.carried_alarms())
        if self._log_problem is not None:
            entries += self.engine.log_problem(self._log_problem)
        return self._publish(entries)

    def take(self, item: InputItem) -> list[TimelineEntry]:
        entries = self.pipeline.take(item)
        if self.log is not None:
            self._log_input(item)
        return self._publish(entries + self._check_log())

    def advance(self, t_s: float) -> list[TimelineEntry]:
        return self._publish(self.pipeline.advance(t_s) + self._check_log())

    def acknowledge(self, name: str | None = None) -> list[TimelineEntry]:
        return self._publish(self.engine.acknowledge(name))

    def pause_audio(self) -> list[TimelineEntry]:
        return self._publish(self.engine.pause_audio())

    def apply_settings(self, settings: ClinicalSettings) -> list[TimelineEntry]:
        """A reload's clinical settings, applied to the running engine."""
        return self._publish(self.engine.apply_settings(settings))

    def pump_ports_changed(
        self, awaited: Iterable[str], removed: Iterable[str], pumps_gone: Iterable[str]
    ) -> list[TimelineEntry]:
        return self._publish(self.engine.pump_ports_changed(awaited, removed, pumps_gone))

    def end_episode(self, reason: str) -> list[TimelineEntry]:
        return self._publish(self.engine.end_episode(reason))

    def output_failed(self, name: str, message: str) -> list[TimelineEntry]:
        return self._publish(self.engine.sink_failed(name, message))

    def output_recovered(self, name: str) -> list[TimelineEntry]:
        return self._publish(self.engine.sink_recovered(name))

    def finish(self) -> list[TimelineEntry]:
        """End of the data (a replay); the log and outputs stay open until ``close``."""
        return self._publish(self.pipeline.finish())

    def close(self, reason: str = "stopped") -> None:
        if self.outputs is not None:
            self.outputs.close()
        if self.log is not None:
            self.log.close(reason, self.engine.now_s)
        elif self.pending is not None and self.pending.outage is not None:
            log.warning(
                "%d alarm and state entries were never recorded: %s",
                self.pending.kept + self.pending.lost, self.pending.outage.reason,
            )  # fmt: skip

    # ------------------------------------------------------------------ internals
    def _publish(self, entries: list[TimelineEntry]) -> list[TimelineEntry]:
        if not entries:
            return entries
        if self.log is not None:
            self.log.record_entries(entries)  # durable before anything is shown, or kept
        elif self.pending is not None:
            self.pending.keep_entries(entries, self._log_problem or "no log yet")
        if self.outputs is not None:
            alarms = [e.alarm for e in entries if e.alarm is not None]
            for transition in alarms:
                self.outputs.deliver(transition)
            if alarms:
                self.outputs.render(self.engine.alarms.annunciation(self.engine.now_s))
        return entries

    def _check_log(self) -> list[TimelineEntry]:
        """Raise or end ``log_failed`` when the log's health changed."""
        if self.log is None:
            return []
        self.log.retry(self.engine.now_s)  # what was kept, once the log takes it again
        problems = self.log.problems()
        message = "; ".join(problems[k] for k in sorted(problems)) or None
        if message == self._log_problem:
            return []
        self._log_problem = message
        return self.engine.log_problem(message)

    def _log_input(self, item: InputItem) -> None:
        assert self.log is not None
        if isinstance(item, PumpObservation) and isinstance(item.sentence, PumpReport):
            r = item.sentence
            values = (r.drug_code, r.concentration, r.concentration_unit, r.rate_ml_h, r.state)
            if self._pumps.get((r.pump_id, r.channel)) != values:
                self._pumps[(r.pump_id, r.channel)] = values
                nee = self.engine.last_nee
                self.log.add_pump_event(
                    item.t_s, r.pump_id, r.channel, r.drug_code, r.concentration,
                    r.concentration_unit, r.rate_ml_h, r.state.value,
                    None if nee is None else nee.value,
                )  # fmt: skip
        elif isinstance(item, DeviceEvent):
            self.log.add_event(
                item.t_s, item.role, item.kind.value, item.message, dict(item.detail)
            )
