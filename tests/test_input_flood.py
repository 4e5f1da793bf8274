"""Specification of the input path under floods and impossible input.

What the readers hand over is bounded whatever arrives: decode errors are
counted and summarised, link events are never dropped, transducer frames
beyond the bound become counted missing samples, pump sentences beyond it
are counted and reported; one poll handles a bounded amount. A sequence
jump no loss could explain is a front-end restart: counted, reported, not
filled, and no input makes the monitor allocate without bound.
"""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

from devices.protocols.decoding import MAX_PENDING_PROBLEMS, Problem
from devices.protocols.pump import PumpLineDecoder, encode_heartbeat
from devices.protocols.transducer import SEQUENCE_MODULUS, BinaryTransducerDecoder, encode_frame
from devices.readings import PumpHeartbeat, SampleBlock
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.configuration.drug_table import load_drug_table
from monitor.edge.device_input import MAX_FILL_BLOCK, DeviceInput
from monitor.edge.input_items import DeviceEvent, DeviceEventKind, PumpObservation
from monitor.edge.serial_link import LinkEvent, LinkEventKind, PortSettings, Received

FS = 250
FRAME = 25
TRANSDUCER_URL = "/dev/ttyT"
PUMP_URL = "/dev/ttyP"


class Wire:
    """A DeviceInput fed bytes through the real decoders, at times the test chooses."""

    def __init__(self, **options) -> None:
        self.t = 0.0
        self.deliver = {}
        self.decoders = {"transducer": BinaryTransducerDecoder(), "pump1": PumpLineDecoder()}

        def factory(settings, decoder, deliver):
            self.deliver[settings.role] = deliver
            return None

        self.input = DeviceInput(
            (PortSettings("transducer", TRANSDUCER_URL), self.decoders["transducer"]),
            [(PortSettings("pump1", PUMP_URL), self.decoders["pump1"])],
            sample_rate=FS,
            drug_table=load_drug_table(),
            clock=lambda: self.t,
            reader_factory=factory,
            **options,
        )
        self.next_sequence = 0

    def bytes(self, role: str, data: bytes, at: float) -> None:
        """One read of ``data`` on ``role``'s port, decoded as its reader would."""
        self.t = at
        decoder = self.decoders[role]
        frames = decoder.feed(data)
        self.deliver[role](Received(role, frames, decoder.take_problems(), len(data), at))

    def frame(self, at: float, sequence: int | None = None, n: int = FRAME) -> None:
        sequence = self.next_sequence if sequence is None else sequence
        samples = np.full(n, 80.0)
        self.bytes("transducer", encode_frame(samples, sequence=sequence, sample_rate=FS), at)
        self.next_sequence = (sequence + n) % SEQUENCE_MODULUS

    def poll(self, at: float | None = None) -> list:
        if at is not None:
            self.t = at
        return self.input.poll(0.0)

    def drain(self, at: float | None = None) -> list:
        items = []
        for _ in range(10_000):
            items += self.poll(at)
            if not self.input.backlog().arrivals:
                return items
        raise AssertionError("the backlog never emptied")


def blocks(items) -> list[SampleBlock]:
    return [i for i in items if isinstance(i, SampleBlock)]


def events(items, kind: DeviceEventKind) -> list[DeviceEvent]:
    return [i for i in items if isinstance(i, DeviceEvent) and i.kind is kind]


def missing_samples(items) -> int:
    return sum(len(b.samples) for b in blocks(items) if b.missing)


def contiguous(items) -> bool:
    spans = [(b.start, b.end) for b in blocks(items)]
    return all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


# ------------------------------------------------------------------ sequence jumps
@pytest.mark.parametrize("jump", [10**7, 2**31 - 1])
def test_a_sequence_jump_no_loss_explains_is_a_restart_counted_reported_and_not_filled(jump):
    wire = Wire()
    items = []
    for k in range(4):
        wire.frame(at=0.1 * (k + 1))
        items += wire.poll()
    tracemalloc.start()
    try:
        wire.frame(at=0.5, sequence=wire.next_sequence + jump)
        items += wire.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for k in range(4):
        wire.frame(at=0.6 + 0.1 * k)
        items += wire.poll()
    assert peak < 4 * 2**20  # no allocation in proportion to the jump
    assert missing_samples(items) == 0
    assert wire.input.stream_clock.samples == 9 * FRAME  # the clock did not jump
    assert wire.input.stream_clock.now(wire.t) < 2.0
    assert contiguous(items)
    (restart,) = events(items, DeviceEventKind.TRANSDUCER_RESTART)
    assert restart.detail["jump_samples"] == jump
    assert f"transducer port {TRANSDUCER_URL}" in restart.message and "restart" in restart.message
    assert wire.input.edge_counts()["transducer"]["restarts"] == 1


def test_a_sequence_that_goes_back_is_a_restart_too() -> None:
    wire = Wire()
    items = []
    for k in range(4):
        wire.frame(at=0.1 * (k + 1))
    wire.frame(at=0.5, sequence=0)
    wire.frame(at=0.6)
    items = wire.drain()
    assert missing_samples(items) == 0 and wire.input.stream_clock.samples == 6 * FRAME
    assert len(events(items, DeviceEventKind.TRANSDUCER_RESTART)) == 1


def test_the_sequence_wraps_around_at_2_to_the_32_without_a_gap_or_a_restart() -> None:
    wire = Wire()
    start = SEQUENCE_MODULUS - 2 * FRAME
    wire.frame(at=0.1, sequence=start)
    for k in range(4):  # 2**32 - 25, then 0, 25, 50
        wire.frame(at=0.2 + 0.1 * k)
    items = wire.drain()
    assert wire.next_sequence == 3 * FRAME
    assert missing_samples(items) == 0 and contiguous(items)
    assert not events(items, DeviceEventKind.TRANSDUCER_RESTART)


def test_a_gap_of_a_few_frames_is_still_filled_with_missing_samples() -> None:
    wire = Wire(max_gap_s=5.0)
    wire.frame(at=0.1)
    lost = 2 * FS  # two seconds of frames lost in line noise, well inside 5 s
    wire.frame(at=0.2, sequence=wire.next_sequence + lost)
    items = wire.drain()
    assert missing_samples(items) == lost and contiguous(items)
    assert not events(items, DeviceEventKind.TRANSDUCER_RESTART)


def test_a_gap_just_beyond_max_gap_s_is_a_restart() -> None:
    wire = Wire(max_gap_s=5.0)
    wire.frame(at=0.1)
    wire.frame(at=0.2, sequence=wire.next_sequence + 6 * FS)
    items = wire.drain()
    assert missing_samples(items) == 0
    assert len(events(items, DeviceEventKind.TRANSDUCER_RESTART)) == 1


def test_a_gap_the_silence_explains_is_a_loss_not_a_restart() -> None:
    """An unplugged cable for 30 s: the front end counted on, and 30 s did pass."""
    wire = Wire(max_gap_s=5.0)
    wire.frame(at=0.1)
    wire.drain(at=20.0)
    wire.frame(at=30.1, sequence=wire.next_sequence + 30 * FS)
    items = wire.drain()
    assert not events(items, DeviceEventKind.TRANSDUCER_RESTART)
    assert missing_samples(items) == pytest.approx(30 * FS, abs=FS)
    assert wire.input.stream_clock.samples == pytest.approx(30.1 * FS + FRAME, abs=FS)


def test_a_long_silence_is_filled_in_blocks_of_bounded_size() -> None:
    wire = Wire()
    wire.frame(at=0.1)
    wire.drain()
    hours = 2
    wire.frame(at=hours * 3600.0)
    items = wire.drain()
    gap = [b for b in blocks(items) if b.missing]
    assert sum(len(b.samples) for b in gap) == pytest.approx(hours * 3600 * FS, abs=FS)
    assert max(len(b.samples) for b in gap) <= MAX_FILL_BLOCK
    assert contiguous(items)
    assert all(np.isnan(b.samples).all() for b in gap)


# ------------------------------------------------------------------ decode errors
def test_decode_errors_are_counted_per_kind_and_summarised_at_most_once_a_second_per_port():
    wire = Wire()
    items = []
    for k in range(1000):  # 1000 reads in 2 s, each with three problems
        at = 0.002 * k
        wire.t = at
        problems = [Problem("bad_checksum", "CRC mismatch"), Problem("truncated", "short")] + [
            Problem("garbage_bytes", "17 bytes before '$'")
        ]
        wire.deliver["transducer"](Received("transducer", [], problems[:2], 4096, at))
        wire.deliver["pump1"](Received("pump1", [], problems[2:], 4096, at))
        items += wire.poll()
    items += wire.poll(at=3.0)
    summaries = events(items, DeviceEventKind.DECODE_ERRORS)
    for role in ("transducer", "pump1"):
        mine = [e for e in summaries if e.role == role]
        assert 1 <= len(mine) <= 4  # 0 s, 1 s, 2 s and the flush at 3 s
        times = [e.t_s for e in mine]
        assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    transducer = [e for e in summaries if e.role == "transducer"]
    assert sum(e.detail["bad_checksum"] for e in transducer) == 1000
    assert sum(e.detail["truncated"] for e in transducer) == 1000
    pump = [e for e in summaries if e.role == "pump1"]
    assert sum(e.detail["garbage_bytes"] for e in pump) == 1000
    assert f"transducer port {TRANSDUCER_URL}" in transducer[0].message
    assert "bad_checksum" in transducer[0].message and "CRC mismatch" in transducer[0].message


def test_the_first_decode_error_is_reported_at_once() -> None:
    wire = Wire()
    wire.frame(at=0.1)
    wire.bytes("transducer", b"\x7e\x01\x02\x7e", at=0.2)
    (summary,) = events(wire.poll(), DeviceEventKind.DECODE_ERRORS)
    assert summary.detail == {"truncated": 1}


def test_every_problem_is_counted_even_beyond_the_described_ones() -> None:
    wire = Wire()
    wire.frame(at=0.1)
    wire.bytes("transducer", b"\x7e\x01" * 300 + b"\x7e", at=0.2)  # 300 truncated frames
    (summary,) = events(wire.poll(), DeviceEventKind.DECODE_ERRORS)
    assert summary.detail == {"truncated": 300}
    assert 300 > MAX_PENDING_PROBLEMS


def test_garbage_takes_no_room_in_the_hand_over_and_still_counts_towards_comm_loss() -> None:
    wire = Wire(comm_loss_s=5.0)
    wire.frame(at=0.1)
    wire.drain()
    rng = random.Random(1)
    for k in range(2000):  # 8 MB of random bytes in 8 s, never polled
        wire.bytes("transducer", rng.randbytes(4096), at=0.1 + 0.004 * k)
    assert wire.input.backlog().arrivals == 0
    items = wire.poll(at=8.2)
    (lost,) = [e for e in events(items, DeviceEventKind.COMM_LOST) if e.role == "transducer"]
    assert "bytes arrived but none decoded" in lost.message
    wire.frame(at=8.3)  # the valid frame after the garbage
    items = wire.drain()
    assert [e.role for e in events(items, DeviceEventKind.COMM_RESTORED)] == ["transducer"]
    assert blocks(items)[-1].missing is False


# ------------------------------------------------------------------ bounds and budget
def test_link_events_are_never_dropped_however_full_the_hand_over_is() -> None:
    wire = Wire(max_queued_frames=10)
    kinds = [LinkEventKind.CONNECTED, LinkEventKind.DISCONNECTED] * 50
    for k, kind in enumerate(kinds):
        wire.frame(at=0.01 * k)
        wire.deliver["pump1"](LinkEvent("pump1", kind, f"event {k}", 0.01 * k))
    items = wire.drain()
    link = [
        i
        for i in items
        if isinstance(i, DeviceEvent)
        and i.kind in (DeviceEventKind.CONNECTED, DeviceEventKind.DISCONNECTED)
    ]
    assert [e.message for e in link] == [f"event {k}" for k in range(len(kinds))]


def test_transducer_frames_beyond_the_bound_become_counted_missing_samples() -> None:
    wire = Wire(max_queued_frames=10)
    for k in range(30):  # the loop did not look for 0.3 s
        wire.frame(at=0.01 * (k + 1))
    items = wire.drain()
    assert wire.input.stream_clock.samples == 30 * FRAME  # time did not shrink
    assert missing_samples(items) == 20 * FRAME and contiguous(items)
    overflow = events(items, DeviceEventKind.INPUT_OVERFLOW)
    assert sum(e.detail["transducer_samples"] for e in overflow) == 20 * FRAME
    assert wire.input.edge_counts()["transducer"]["dropped_samples"] == 20 * FRAME
    wire.frame(at=0.4)
    after = wire.drain()
    assert not events(after, DeviceEventKind.INPUT_OVERFLOW) and missing_samples(after) == 0


def test_pump_sentences_beyond_the_bound_are_counted_and_reported_never_silently_lost() -> None:
    wire = Wire(max_queued_sentences=5)
    for k in range(12):
        wire.bytes("pump1", encode_heartbeat(PumpHeartbeat("P1", k)), at=0.01 * (k + 1))
    items = wire.drain()
    observed = [i for i in items if isinstance(i, PumpObservation)]
    assert [o.sentence.sequence for o in observed] == [0, 1, 2, 3, 4]
    (overflow,) = events(items, DeviceEventKind.INPUT_OVERFLOW)
    assert overflow.role == "pump1" and overflow.detail == {"pump_sentences": 7}
    assert f"pump1 port {PUMP_URL}" in overflow.message and "7 pump sentences" in overflow.message
    wire.bytes("pump1", encode_heartbeat(PumpHeartbeat("P1", 12)), at=0.2)
    later = [i for i in wire.drain() if isinstance(i, PumpObservation)]
    assert [o.sentence.sequence for o in later] == [12]


def test_one_poll_handles_a_bounded_budget_and_the_backlog_says_what_waits() -> None:
    wire = Wire(budget_frames=10)
    for k in range(100):
        wire.frame(at=0.001 * k)
    first = wire.poll(at=0.2)
    assert sum(len(b.samples) for b in blocks(first)) <= 10 * FRAME
    backlog = wire.input.backlog()
    assert backlog.arrivals == 90 and backlog.frames == 90
    assert backlog.oldest_s == pytest.approx(0.2 - 0.010, abs=1e-6)
    rest = wire.drain()
    assert wire.input.stream_clock.samples == 100 * FRAME and missing_samples(first + rest) == 0


def test_the_hand_over_keeps_arrival_order_across_ports() -> None:
    wire = Wire()
    wire.frame(at=0.1)
    wire.bytes("pump1", encode_heartbeat(PumpHeartbeat("P1", 0)), at=0.11)
    wire.frame(at=0.12)
    items = [i for i in wire.drain() if isinstance(i, SampleBlock | PumpObservation)]
    assert [type(i).__name__ for i in items] == ["SampleBlock", "PumpObservation", "SampleBlock"]


# ---------------------------------------------------------- through the clinical layer
def test_a_sequence_jump_invents_no_trend_rows_and_raises_a_restart_alarm() -> None:
    settings = ClinicalSettings.from_config(default_config())
    pipeline = MonitorPipeline(settings, FS, 70.0)
    trends = []
    pipeline.engine.record_trends(5.0, trends.append)
    wire = Wire()
    timeline = []
    for k in range(200):  # 20 s, with a jump of 10**7 at 10 s
        jump = 10**7 if k == 100 else 0
        wire.frame(at=0.1 * (k + 1), sequence=wire.next_sequence + jump)
        for item in wire.poll():
            timeline += pipeline.take(item)
    assert pipeline.engine.now_s < 25.0
    assert len(trends) < 40  # 20 s of trends, not 11 h
    raised = [e for e in timeline if e.kind == "raised"]
    assert "transducer_restart" in [e.name for e in raised]
    assert "hydrocortisone_advisory" not in [e.name for e in raised]


def engine_after(*device_events: DeviceEvent, until_s: float):
    settings = ClinicalSettings.from_config(default_config())
    engine = MonitorPipeline(settings, FS, 70.0).engine
    timeline = []
    for event in device_events:
        timeline += engine.device_event(event)
    timeline += engine.advance(until_s)
    return timeline


@pytest.mark.parametrize(
    "kind, detail, name",
    [
        (DeviceEventKind.TRANSDUCER_RESTART, {"jump_samples": 10**7}, "transducer_restart"),
        (DeviceEventKind.INPUT_OVERFLOW, {"pump_sentences": 7}, "input_overflow"),
        (DeviceEventKind.INPUT_OVERFLOW, {"transducer_samples": 500}, "input_overflow"),
    ],
)
def test_a_restart_or_an_overflow_is_a_medium_technical_alarm_for_a_minute(kind, detail, name):
    event = DeviceEvent(10.0, "transducer", kind, "what happened", detail)
    timeline = [e for e in engine_after(event, until_s=100.0) if e.name == name]
    raised = [e for e in timeline if e.kind == "raised"]
    cleared = [e for e in timeline if e.kind == "cleared"]
    assert [(e.t_s, e.priority) for e in raised] == [(10.0, "medium")]
    assert raised[0].alarm is not None and raised[0].alarm.category.value == "technical"
    assert "what happened" in raised[0].message
    assert [e.t_s for e in cleared] == [pytest.approx(70.0)]
