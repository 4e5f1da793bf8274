"""The monitor's input: samples, pump observations and device events, all on the stream clock.

Every reader thread delivers into one bounded hand-over (``handover.py``,
which states the drop policy), so arrivals keep their order across devices;
``DeviceInput.poll`` turns at most a budget of them into the items the core
and the clinical layer consume:

* ``SampleBlock``: consecutive samples with their stream index and the
  transducer's status; a plausible sequence gap, a silence or frames the
  hand-over could not keep become blocks of missing (NaN) samples, so time
  never shrinks;
* ``PumpObservation``: a pump sentence stamped with stream time on arrival,
  with the drug its code means;
* ``DeviceEvent``: connected, lost, communications lost and restored, decode
  errors (summarised at most once a second per port), transducer status
  changes and restarts, input overflows, silent pumps, unknown drug codes:
  what the alarm layer turns into technical alarms.

A sequence jump longer than any loss could explain (``max_gap_s`` beyond
the silence the monotonic clock saw) is a front-end restart, or a corrupt
frame that passed the CRC: it is reported and counted, never filled, so it
cannot invent hours of stream time nor make the monitor allocate them.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from devices.protocols.decoding import Decoder
from devices.protocols.transducer import SEQUENCE_MODULUS
from devices.readings import (
    PumpReport,
    SampleBlock,
    TransducerFrame,
    TransducerStatus,
)
from monitor.configuration.drug_names import NamedDrug, resolve
from monitor.configuration.drug_table import DrugTable
from monitor.edge.handover import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_SENTENCES,
    Backlog,
    Dropped,
    Handover,
    Tally,
)
from monitor.edge.input_items import DeviceEvent, DeviceEventKind, InputItem, PumpObservation
from monitor.edge.serial_link import (
    READ_SIZE,
    LinkEvent,
    LinkEventKind,
    PortReader,
    PortSettings,
    Received,
)
from monitor.edge.stream_clock import DEFAULT_COMM_LOSS_S, StreamClock

DEFAULT_MAX_GAP_S = 5.0  # the configuration's ports.max_gap_s
SUMMARY_INTERVAL_S = 1.0  # at most one decode-error summary per port this often
DEFAULT_BUDGET_FRAMES = 200  # frames one poll hands on: 5 s of a 1000 Hz transducer
# Bytes since the last valid frame beyond which bytes waiting in the port no longer hold
# the stream clock: a 1000 Hz stream brings a frame every 66 bytes, so two full reads
# without one are a flood or a wrong baud rate, and its silence is real (comm loss).
NOISE_AFTER_BYTES = 2 * READ_SIZE
MAX_FILL_BLOCK = 1 << 16  # missing samples per block: 512 KiB of NaN, shared by every fill
_NAN = np.full(MAX_FILL_BLOCK, math.nan)
_NAN.flags.writeable = False


class Reader(Protocol):
    """A port's reader as ``DeviceInput`` drives it: ``PortReader``, or the virtual bench's.

    One that has an ``unread()`` (bytes waiting in its port) is asked it, so
    that a reader behind its port is not taken for a silent transducer.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...


#: Makes a port's reader from its settings, its decoder and where to deliver.
ReaderFactory = Callable[[PortSettings, Decoder, Callable[[LinkEvent | Received], None]], Reader]

_LINK_KINDS = {
    LinkEventKind.CONNECTED: DeviceEventKind.CONNECTED,
    LinkEventKind.DISCONNECTED: DeviceEventKind.DISCONNECTED,
    LinkEventKind.OPEN_FAILED: DeviceEventKind.OPEN_FAILED,
    LinkEventKind.READER_ERROR: DeviceEventKind.READER_ERROR,
}


@dataclass
class _Link:
    """What the monitor knows about one port's health."""

    settings: PortSettings
    decoder: Decoder
    last_frame_s: float = 0.0
    bytes_since_frame: int = 0
    lost: bool = False
    unanswered: str = ""  # the session's last request the device left unanswered, since a frame
    problems: Counter[str] = field(default_factory=Counter)  # not yet summarised
    examples: dict[str, str] = field(default_factory=dict)
    last_summary_mono: float = -math.inf
    counts: Counter[str] = field(default_factory=Counter)  # restarts, drops, problems

    @property
    def where(self) -> str:
        return f"{self.settings.role} port {self.settings.url}"


@dataclass(frozen=True)
class PumpPortChange:
    """What a reload did to the pump ports: opened (new or moved), removed, pumps forgotten."""

    opened: tuple[str, ...]
    removed: tuple[str, ...]
    pumps_gone: tuple[str, ...]


class DeviceInput:
    """Runs one reader per port and merges their output onto the stream clock.

    ``sample_rate`` is the rate the configuration expects from the
    transducer; frames at any other rate are dropped and reported, because
    the core cannot mix rates. ``comm_loss_s`` (stream time) without a valid
    frame on a port, or without a sentence from a pump that was heard, is a
    communications loss. A sequence gap of more than ``max_gap_s`` beyond
    the silence before it is a restart. ``away_after_s`` (None: never) is the
    longest the caller's loop looks away between polls: a longer gap is the
    monitor's own stall, never counted as the transducer's silence.
    ``budget_frames`` bounds what one poll hands on; ``max_queued_frames`` (transducer) and
    ``max_queued_sentences`` (per pump port) bound what waits.
    """

    def __init__(
        self,
        transducer: tuple[PortSettings, Decoder],
        pumps: Sequence[tuple[PortSettings, Decoder]],
        *,
        sample_rate: float,
        drug_table: DrugTable,
        drug_names: Mapping[str, NamedDrug] | None = None,
        comm_loss_s: float = DEFAULT_COMM_LOSS_S,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        away_after_s: float | None = None,
        budget_frames: int = DEFAULT_BUDGET_FRAMES,
        max_queued_frames: int = DEFAULT_MAX_FRAMES,
        max_queued_sentences: int = DEFAULT_MAX_SENTENCES,
        clock: Callable[[], float] = time.monotonic,
        reader_factory: ReaderFactory = PortReader,
    ) -> None:
        if budget_frames < 1:
            raise ValueError(f"a poll must hand on at least one frame, got {budget_frames}")
        self._clock = clock
        self.stream_clock = StreamClock(sample_rate, clock())
        self._sample_rate = sample_rate
        self._drugs = drug_table
        self._drug_names = drug_names or {}
        self._comm_loss_s = comm_loss_s
        self._max_gap_s = max_gap_s
        self._budget = budget_frames
        self._away_after_s = away_after_s
        self._looked_mono = self._clock()
        self.transducer_role = transducer[0].role
        self._links = {s.role: _Link(s, d) for s, d in [transducer, *pumps]}
        if len(self._links) != 1 + len(pumps):
            raise ValueError("every port needs its own role name")
        self._handover = Handover(
            self.transducer_role,
            list(self._links),
            max_frames=max_queued_frames,
            max_sentences=max_queued_sentences,
        )
        self._reader_factory = reader_factory
        self._readers = {
            role: reader_factory(link.settings, link.decoder, self._handover.put)
            for role, link in self._links.items()
        }
        self._next_sequence: int | None = None  # the transducer's, as far as it was followed
        self._status = TransducerStatus(0)
        self._pumps_heard: dict[str, tuple[float, str]] = {}  # pump -> (last heard, port role)
        self._pumps_silent: set[str] = set()
        self._unknown_codes: set[tuple[str, int, str]] = set()
        self.rejected_rate_frames = 0
        self._rate_mismatch_reported = False

    def start(self) -> None:
        for reader in self._readers.values():
            reader.start()

    def stop(self) -> None:
        for reader in self._readers.values():
            reader.stop()

    def replace_pumps(
        self,
        pumps: Sequence[tuple[PortSettings, Decoder]],
        *,
        comm_loss_s: float,
        max_gap_s: float,
        drug_table: DrugTable,
        drug_names: Mapping[str, NamedDrug] | None = None,
        reopen: Collection[str] = (),
    ) -> PumpPortChange:
        """A reload: only the pump ports whose settings changed are closed and opened again.

        An unchanged port keeps its reader, its decoder and its pumps' timers
        (no reopening, no communications loss); a new or moved one starts
        from now, so its loss timer runs from the reload, not from stream
        time 0. ``reopen``: ports to reopen even if their settings are the same
        (a new protocol needs a new decoder). The
        transducer never changes here: it makes stream time.
        """
        self._comm_loss_s, self._max_gap_s, self._drugs = comm_loss_s, max_gap_s, drug_table
        self._drug_names = drug_names or {}
        wanted = {settings.role: (settings, decoder) for settings, decoder in pumps}
        if self.transducer_role in wanted or len(wanted) != len(pumps):
            raise ValueError("every pump port needs its own role name, not the transducer's")
        now_s = self.now(self._clock())
        opened, removed = [], []
        for role in [r for r in self._links if r != self.transducer_role]:
            if (
                role in reopen
                or role not in wanted
                or wanted[role][0] != self._links[role].settings
            ):
                self._readers.pop(role).stop()
                link = self._links.pop(role)
                if role in wanted:
                    self._links[role] = _Link(*wanted[role], last_frame_s=now_s, lost=link.lost)
                else:
                    removed.append(role)
        for role, (settings, decoder) in wanted.items():
            if role not in self._links:
                self._links[role] = _Link(settings, decoder, last_frame_s=now_s)
            if role not in self._readers:
                self._handover.add_role(role)
                self._readers[role] = self._reader_factory(settings, decoder, self._handover.put)
                self._readers[role].start()
                opened.append(role)
        gone = [p for p, (_, role) in self._pumps_heard.items() if role not in self._links]
        gone += [p for p, (_, role) in self._pumps_heard.items() if role in opened]
        for pump in gone:
            del self._pumps_heard[pump]
            self._pumps_silent.discard(pump)
        return PumpPortChange(tuple(opened), tuple(removed), tuple(gone))

    def decoder_counts(self) -> dict[str, Counter[str]]:
        """Every decoder's loss counters, by port role."""
        return {role: link.decoder.counts for role, link in self._links.items()}

    def edge_counts(self) -> dict[str, Counter[str]]:
        """What the input itself counted, by port role: ``restarts``, ``dropped_samples``,
        ``dropped_sentences``, ``decode_problems``."""
        return {role: link.counts for role, link in self._links.items()}

    def now(self, mono: float) -> float:
        """Stream time at ``mono``: a transducer whose bytes wait to be read or used is not silent.

        What the monitor's loop uses to move time on between inputs; a loop
        or a reader that fell behind its input never bridges the backlog as
        silence.
        """
        self._look(mono)
        return self.stream_clock.now(mono, samples_waiting=self._samples_waiting(mono))

    def _samples_waiting(self, mono: float) -> bool:
        """Transducer bytes wait for the loop (in the hand-over) or for the reader (in the port)."""
        if not self.stream_clock.is_silent(mono):
            return False  # nothing to tell apart: no need to ask the port
        if self._handover.waiting(self.transducer_role):
            return True
        if self._links[self.transducer_role].bytes_since_frame > NOISE_AFTER_BYTES:
            return False  # what the port gave lately was noise: what waits in it is too
        unread = getattr(self._readers[self.transducer_role], "unread", None)
        return unread is not None and unread() > 0

    def _look(self, mono: float) -> None:
        """The loop looks now; a gap since its last look beyond ``away_after_s`` was a stall."""
        away = mono - self._looked_mono
        if self._away_after_s is not None and away > self._away_after_s:
            self.stream_clock.exclude(away, mono)
        self._looked_mono = max(self._looked_mono, mono)

    def bytes_received(self) -> dict[str, int]:
        """Bytes each port's reader has handed over: a simulator keeps in step with these."""
        return self._handover.bytes_in()

    def backlog(self) -> Backlog:
        """What waits for the next polls: a loop falling behind shows here first."""
        return self._handover.backlog(self._clock())

    def poll(self, timeout_s: float = 0.1) -> list[InputItem]:
        """Items from what arrived (waiting up to ``timeout_s`` for something), at most a budget.

        What is beyond the budget waits for the next poll, so a caller can
        look at its clock, its stop flag and its watchdog between polls
        however fast input arrives.
        """
        self._look(self._clock())
        arrivals, tallies = self._handover.take(self._budget, timeout_s)
        self._look(self._clock())
        items: list[InputItem] = []
        for arrival in arrivals:
            if arrival.role not in self._links:
                continue  # from a pump port a reload has just removed
            if isinstance(arrival, LinkEvent):
                t_s = self.stream_clock.now(arrival.mono)
                items.append(
                    DeviceEvent(t_s, arrival.role, _LINK_KINDS[arrival.kind], arrival.message)
                )
            elif isinstance(arrival, Dropped):
                items += self._dropped(arrival)
            elif arrival.role == self.transducer_role:
                items += self._samples(arrival)
            else:
                items += self._pump_sentences(arrival)
        now_mono = self._clock()
        for role, tally in tallies.items():
            if role in self._links:
                self._tally(self._links[role], tally)
        now_s = self.now(now_mono)
        items += self._summaries(now_mono, now_s)
        items += self._watch(now_s)
        return items

    def _tally(self, link: _Link, tally: Tally) -> None:
        link.bytes_since_frame += tally.bytes_without_frames
        link.problems.update(tally.problems)
        link.counts["decode_problems"] += tally.problems.total()
        for kind, detail in tally.examples.items():
            link.examples.setdefault(kind, detail)
        if "no_answer" in tally.examples:
            link.unanswered = tally.examples["no_answer"]

    def _summaries(self, now_mono: float, now_s: float) -> list[DeviceEvent]:
        """One decode-error event per port with problems, at most every ``SUMMARY_INTERVAL_S``.

        The first problem after a quiet second is reported at once; a
        flood becomes one counted summary a second, not an event per read.
        """
        events = []
        for role, link in self._links.items():
            if not link.problems or now_mono - link.last_summary_mono < SUMMARY_INTERVAL_S:
                continue
            summary = ", ".join(f"{n} {kind}" for kind, n in link.problems.items())
            first = next(iter(link.problems))
            message = f"{link.where}: {summary} ({link.examples.get(first, first)})"
            detail = dict(link.problems)
            events.append(DeviceEvent(now_s, role, DeviceEventKind.DECODE_ERRORS, message, detail))
            link.problems.clear()
            link.examples.clear()
            link.last_summary_mono = now_mono
        return events

    def _dropped(self, dropped: Dropped) -> list[InputItem]:
        """Arrivals the hand-over could not keep: counted, reported, and (samples) missing."""
        link = self._links[dropped.role]
        items: list[InputItem] = []
        if dropped.role == self.transducer_role:
            fill = self.stream_clock.admit(0, dropped.samples, dropped.mono)
            items += _missing_blocks(self.stream_clock.samples - fill, fill)
            self._next_sequence = None  # the dropped frames moved it on, unseen
            link.counts["dropped_samples"] += dropped.samples
            what = f"{dropped.samples} transducer samples dropped, kept as missing samples"
            detail = {"transducer_samples": dropped.samples}
        else:
            link.counts["dropped_sentences"] += dropped.sentences
            what = (
                f"{dropped.sentences} pump sentences dropped; a dose may be out of date "
                "until the pump's next report"
            )
            detail = {"pump_sentences": dropped.sentences}
        message = f"{link.where}: input faster than the monitor can handle: {what}"
        t_s = self.stream_clock.now(dropped.mono)
        event = DeviceEvent(t_s, dropped.role, DeviceEventKind.INPUT_OVERFLOW, message, detail)
        return [event, *items]

    def _restart(self, frame: TransducerFrame, mono: float, link: _Link) -> DeviceEvent | None:
        """A sequence discontinuity no loss explains, as an event; None for a plausible one.

        Forward, the gap may be as long as the silence before the frame (the
        front end counted on while the link was down) plus ``max_gap_s``;
        backward is always a restart (the decoder does not fill it either).
        """
        expected, sequence = self._next_sequence, frame.sequence
        if expected is None or sequence is None or sequence == expected:
            return None
        missing = frame.missing_before
        silent_s = max(0.0, self.stream_clock.silent_for(mono))
        if missing and missing <= (silent_s + self._max_gap_s) * self._sample_rate:
            return None
        if missing:
            jump = missing
            what = (
                f"sequence jumped from {expected} to {sequence} ({jump} samples, "
                f"{jump / self._sample_rate:.0f} s, after {silent_s:.1f} s)"
            )
        else:
            jump = -((expected - sequence) % SEQUENCE_MODULUS)
            what = f"sequence went back from {expected} to {sequence}"
        link.counts["restarts"] += 1
        message = (
            f"{link.where}: {what}: a front-end restart (or a corrupt frame); "
            "not filled, stream time kept"
        )
        detail = {"from": expected, "to": sequence, "jump_samples": jump}
        t_s = self.stream_clock.samples / self._sample_rate
        return DeviceEvent(
            t_s, link.settings.role, DeviceEventKind.TRANSDUCER_RESTART, message, detail
        )

    def _heard(self, link: _Link, t_s: float) -> list[DeviceEvent]:
        """Book-keeping for a valid frame; a restored link is an event."""
        link.last_frame_s = t_s
        link.bytes_since_frame = 0
        link.unanswered = ""
        if not link.lost:
            return []
        link.lost = False
        return [
            DeviceEvent(
                t_s,
                link.settings.role,
                DeviceEventKind.COMM_RESTORED,
                f"{link.settings.role} port {link.settings.url}: valid frames again",
            )
        ]

    def _samples(self, arrival: Received) -> list[InputItem]:
        link = self._links[arrival.role]
        items: list[InputItem] = []
        events: list[InputItem] = []
        run: list[np.ndarray] = []
        run_start = self.stream_clock.samples

        def close_run() -> None:
            if run:
                samples = run[0] if len(run) == 1 else np.concatenate(run)
                items.append(SampleBlock(run_start, samples, self._status))
                run.clear()

        frames: list[TransducerFrame] = arrival.frames
        accepted = []
        wrong_rate = []
        for frame in frames:
            if frame.sample_rate != self._sample_rate:
                wrong_rate.append(frame.sample_rate)
                self._next_sequence = None  # the decoder followed frames the core never sees
                continue
            accepted.append(frame)
            missing = frame.missing_before
            restart = self._restart(frame, arrival.mono, link)
            if restart is not None:
                events.append(restart)
                missing = 0
            if frame.sequence is not None:
                self._next_sequence = (frame.sequence + len(frame.samples)) % SEQUENCE_MODULUS
            fill = self.stream_clock.admit(len(frame.samples), missing, arrival.mono)
            if fill or frame.status != self._status:
                close_run()
                first = self.stream_clock.samples - len(frame.samples)
                items += _missing_blocks(first - fill, fill)
                if frame.status != self._status:
                    items.append(self._status_change(frame.status, first / self._sample_rate))
                run_start = first
            run.append(frame.samples)
        close_run()
        if wrong_rate:
            self.rejected_rate_frames += len(wrong_rate)
            if not self._rate_mismatch_reported:
                self._rate_mismatch_reported = True
                events.append(
                    DeviceEvent(
                        self.stream_clock.samples / self._sample_rate,
                        arrival.role,
                        DeviceEventKind.DECODE_ERRORS,
                        f"{arrival.role} port {link.settings.url}: frames at {wrong_rate[0]} Hz, "
                        f"but the configuration expects {self._sample_rate:g} Hz; dropping them",
                        {"rate_mismatch": len(wrong_rate)},
                    )
                )
        # Stamped after the samples are counted: reading the clock first
        # would hand out a time the samples must then be padded to reach.
        t_s = self.stream_clock.now(arrival.mono)
        if accepted:
            self._rate_mismatch_reported = False
            events += self._heard(link, t_s)
        else:
            link.bytes_since_frame += arrival.n_bytes
        return [*events, *items]

    def _status_change(self, status: TransducerStatus, t_s: float) -> DeviceEvent:
        flags = TransducerStatus.__members__.items()
        began = [name for name, flag in flags if flag & status and not flag & self._status]
        ended = [name for name, flag in flags if flag & self._status and not flag & status]
        self._status = status
        words = [f"{name.lower()} began" for name in began] + [
            f"{name.lower()} ended" for name in ended
        ]
        return DeviceEvent(
            t_s,
            self.transducer_role,
            DeviceEventKind.TRANSDUCER_STATUS,
            f"transducer: {', '.join(words)}",
            {"status": int(status)},
        )

    def _pump_sentences(self, arrival: Received) -> list[InputItem]:
        link = self._links[arrival.role]
        t_s = self.stream_clock.now(arrival.mono)
        items: list[InputItem] = [*self._heard(link, t_s)]
        for sentence in arrival.frames:
            pump = sentence.pump_id
            if pump not in self._pumps_heard or pump in self._pumps_silent:
                self._pumps_silent.discard(pump)
                items.append(
                    DeviceEvent(
                        t_s,
                        arrival.role,
                        DeviceEventKind.PUMP_HEARD,
                        f"pump {pump} reporting on {link.settings.url}",
                        {"pump": pump},
                    )
                )
            self._pumps_heard[pump] = (t_s, arrival.role)
            if isinstance(sentence, PumpReport):
                resolved = resolve(sentence, self._drugs, self._drug_names)
                if resolved.drug is None:
                    items += self._unknown_drug(sentence, link, t_s)
                items.append(
                    PumpObservation(
                        t_s, arrival.role, resolved.report, resolved.drug, resolved.conflict
                    )
                )
            else:
                items.append(PumpObservation(t_s, arrival.role, sentence))
        return items

    def _unknown_drug(self, report: PumpReport, link: _Link, t_s: float) -> list[DeviceEvent]:
        """Reported once per pump, channel and code: it is not counted, and people must know."""
        key = (report.pump_id, report.channel, report.drug_code)
        if key in self._unknown_codes:
            return []
        self._unknown_codes.add(key)
        message = (
            f"pump {report.pump_id} channel {report.channel} on {link.settings.url}: drug code "
            f"{report.drug_code!r} is not in the drug table ({self._drugs.version}); not counted"
        )
        detail = {"pump": report.pump_id, "channel": report.channel, "code": report.drug_code}
        return [DeviceEvent(t_s, link.settings.role, DeviceEventKind.UNKNOWN_DRUG, message, detail)]

    def _watch(self, now_s: float) -> list[DeviceEvent]:
        """Communications-loss watchdogs, per port and per pump, on stream time."""
        events = []
        for role, link in self._links.items():
            if not link.lost and now_s - link.last_frame_s > self._comm_loss_s:
                link.lost = True
                hint = (
                    f"; {link.bytes_since_frame} bytes arrived but none decoded "
                    "(wrong baud rate or protocol?)"
                    if link.bytes_since_frame
                    else ""
                )
                detail: dict[str, object] = {"bytes_without_frame": link.bytes_since_frame}
                if link.unanswered:  # a device that must be asked: say which step it ignores
                    hint += f"; the device does not answer: {link.unanswered}"
                    detail["unanswered"] = link.unanswered
                events.append(
                    DeviceEvent(
                        now_s,
                        role,
                        DeviceEventKind.COMM_LOST,
                        f"{role} port {link.settings.url}: no valid frame for "
                        f"{now_s - link.last_frame_s:.0f} s{hint}",
                        detail,
                    )
                )
        for pump, (heard_s, role) in self._pumps_heard.items():
            if pump not in self._pumps_silent and now_s - heard_s > self._comm_loss_s:
                self._pumps_silent.add(pump)
                events.append(
                    DeviceEvent(
                        now_s,
                        role,
                        DeviceEventKind.PUMP_SILENT,
                        f"pump {pump}: nothing heard for {now_s - heard_s:.0f} s",
                        {"pump": pump},
                    )
                )
        return events


def _missing_blocks(start: int, n: int) -> list[SampleBlock]:
    """``n`` missing samples from ``start``, as views of one shared NaN array.

    However long the silence, no block is larger than ``MAX_FILL_BLOCK``
    and none allocates its samples.
    """
    return [
        SampleBlock(
            first, _NAN[: min(MAX_FILL_BLOCK, start + n - first)], TransducerStatus(0), missing=True
        )
        for first in range(start, start + n, MAX_FILL_BLOCK)
    ]
