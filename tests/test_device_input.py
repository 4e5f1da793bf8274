"""Specification of the monitor's input: what readers deliver, on the stream clock, as items."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.protocols.decoding import Problem
from devices.protocols.pump import PumpLineDecoder
from devices.protocols.transducer import BinaryTransducerDecoder
from devices.readings import (
    PumpHeartbeat,
    PumpReport,
    PumpState,
    SampleBlock,
    TransducerFrame,
    TransducerStatus,
)
from devices.simulation.virtual_ports import VirtualPort
from monitor.configuration.drug_table import load_drug_table
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import DeviceEvent, DeviceEventKind, PumpObservation
from monitor.edge.serial_link import LinkEvent, LinkEventKind, PortSettings, Received

FS = 250


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class PortStub:
    """The transducer's reader, as far as the input asks it: how many bytes wait in the port."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def unread(self) -> int:
        return self.bench.unread


class Bench:
    """A DeviceInput whose readers are replaced by direct deliveries."""

    def __init__(self, comm_loss_s: float = 10.0, away_after_s: float | None = None) -> None:
        self.clock = FakeClock()
        self.deliver = {}
        self.unread = 0  # bytes waiting in the transducer's port, not read yet

        def factory(settings, decoder, deliver):
            self.deliver[settings.role] = deliver
            return PortStub(self) if settings.role == "transducer" else None

        self.input = DeviceInput(
            (PortSettings("transducer", "/dev/ttyT"), BinaryTransducerDecoder()),
            [(PortSettings("pump1", "/dev/ttyP"), PumpLineDecoder())],
            sample_rate=FS,
            drug_table=load_drug_table(),
            comm_loss_s=comm_loss_s,
            away_after_s=away_after_s,
            clock=self.clock,
            reader_factory=factory,
        )

    def frames(self, *frames: TransducerFrame, at: float, problems=(), n_bytes: int = 100):
        self.clock.t = at
        arrival = Received("transducer", list(frames), list(problems), n_bytes, at)
        self.deliver["transducer"](arrival)
        return self.input.poll(0.0)

    def pump(self, *sentences, at: float):
        self.clock.t = at
        self.deliver["pump1"](Received("pump1", list(sentences), [], 60, at))
        return self.input.poll(0.0)

    def idle(self, at: float):
        self.clock.t = at
        return self.input.poll(0.0)


def frame(sequence: int, n: int = 25, status: int = 0, missing_before: int = 0, rate: int = FS):
    samples = np.full(n, 80.0)
    return TransducerFrame(samples, rate, TransducerStatus(status), sequence, missing_before)


def report(code: str = "NORAD", rate: float = 5.0, sequence: int = 0) -> PumpReport:
    return PumpReport("P1", 1, sequence, code, 64.0, "ug/mL", rate, PumpState.RUNNING)


def blocks(items) -> list[SampleBlock]:
    return [i for i in items if isinstance(i, SampleBlock)]


def events(items, kind: DeviceEventKind | None = None) -> list[DeviceEvent]:
    return [i for i in items if isinstance(i, DeviceEvent) and (kind is None or i.kind == kind)]


def test_frames_become_contiguous_sample_blocks_on_the_stream_index() -> None:
    bench = Bench()
    first = blocks(bench.frames(frame(0), frame(25), at=0.2))
    second = blocks(bench.frames(frame(50), at=0.3))
    assert [(b.start, b.end) for b in first + second] == [(0, 50), (50, 75)]


def test_a_sequence_gap_arrives_as_a_block_of_missing_samples_so_time_never_shrinks() -> None:
    bench = Bench()
    bench.frames(frame(0), at=0.1)
    items = blocks(bench.frames(frame(100, missing_before=75), at=0.2))
    gap, data = items
    assert (gap.start, gap.end, gap.missing) == (25, 100, True)
    assert np.all(np.isnan(gap.samples))
    assert (data.start, data.missing) == (100, False)


def test_transducer_status_travels_with_the_samples_and_its_changes_are_events() -> None:
    bench = Bench()
    bench.frames(frame(0), at=0.1)
    items = bench.frames(frame(25, status=TransducerStatus.ZEROING), frame(50), at=0.3)
    zeroing, after = blocks(items)
    assert zeroing.status == TransducerStatus.ZEROING and after.status == TransducerStatus(0)
    changes = events(items, DeviceEventKind.TRANSDUCER_STATUS)
    assert [e.message for e in changes] == [
        "transducer: zeroing began",
        "transducer: zeroing ended",
    ]
    assert changes[0].t_s == pytest.approx(25 / FS)


def test_pump_reports_are_stamped_with_stream_time_on_arrival() -> None:
    bench = Bench()
    for k in range(20):  # 2 s of samples, arriving as they are taken
        bench.frames(frame(25 * k), at=0.1 * (k + 1))
    observed = [i for i in bench.pump(report(), at=2.01) if isinstance(i, PumpObservation)]
    assert observed[0].t_s == pytest.approx(2.0)
    assert observed[0].drug is not None and observed[0].drug.name == "norepinephrine"


def test_an_unknown_drug_code_is_reported_once_naming_pump_channel_and_port() -> None:
    bench = Bench()
    first = bench.pump(report("XYZ"), at=0.1)
    again = bench.pump(report("XYZ", sequence=1), at=0.2)
    unknown = events(first, DeviceEventKind.UNKNOWN_DRUG)
    assert len(unknown) == 1 and not events(again, DeviceEventKind.UNKNOWN_DRUG)
    assert "pump P1 channel 1 on /dev/ttyP" in unknown[0].message and "'XYZ'" in unknown[0].message
    observed = [i for i in first if isinstance(i, PumpObservation)]
    assert observed[0].drug is None


def test_no_valid_frame_for_the_comm_loss_time_is_a_loss_and_a_frame_restores_it() -> None:
    bench = Bench(comm_loss_s=5.0)
    bench.frames(frame(0), at=0.1)
    bench.pump(PumpHeartbeat("P1", 0), at=0.1)
    assert not events(bench.idle(4.0), DeviceEventKind.COMM_LOST)
    lost = events(bench.idle(6.0), DeviceEventKind.COMM_LOST)
    assert {e.role for e in lost} == {"transducer", "pump1"}
    restored = events(bench.frames(frame(25), at=6.1), DeviceEventKind.COMM_RESTORED)
    assert [e.role for e in restored] == ["transducer"]


def test_bytes_that_never_decode_are_named_as_a_likely_baud_rate_or_protocol_mistake() -> None:
    bench = Bench(comm_loss_s=5.0)
    bench.frames(at=1.0, n_bytes=500)  # a wrong baud rate: bytes, no frame
    bench.frames(at=3.0, n_bytes=500)
    lost_events = events(bench.idle(6.0), DeviceEventKind.COMM_LOST)
    (lost,) = [e for e in lost_events if e.role == "transducer"]
    assert "1000 bytes arrived but none decoded" in lost.message
    assert "baud rate" in lost.message


def test_decoder_problems_become_a_counted_summary_naming_the_port() -> None:
    bench = Bench()
    items = bench.frames(
        frame(0),
        at=0.1,
        problems=[Problem("bad_checksum", "CRC mismatch"), Problem("bad_checksum", "CRC mismatch")],
    )
    (errors,) = events(items, DeviceEventKind.DECODE_ERRORS)
    assert errors.detail == {"bad_checksum": 2}
    assert "transducer port /dev/ttyT: 2 bad_checksum" in errors.message


def test_a_silent_pump_is_reported_and_heard_again_when_it_returns() -> None:
    bench = Bench(comm_loss_s=5.0)
    heard = events(bench.pump(PumpHeartbeat("P1", 0), at=0.5), DeviceEventKind.PUMP_HEARD)
    assert heard[0].detail == {"pump": "P1"}
    silent = events(bench.idle(6.0), DeviceEventKind.PUMP_SILENT)
    assert [e.detail for e in silent] == [{"pump": "P1"}]
    back = events(bench.pump(PumpHeartbeat("P1", 1), at=7.0), DeviceEventKind.PUMP_HEARD)
    assert back


def test_frames_at_a_rate_other_than_configured_are_dropped_and_reported_once() -> None:
    bench = Bench()
    first = bench.frames(frame(0, rate=500), at=0.1)
    second = bench.frames(frame(25, rate=500), at=0.2)
    assert not blocks(first) and not blocks(second)
    (mismatch,) = events(first + second, DeviceEventKind.DECODE_ERRORS)
    assert "500 Hz" in mismatch.message and "expects 250 Hz" in mismatch.message
    assert bench.input.rejected_rate_frames == 2


def test_link_events_keep_their_message_and_get_a_stream_time() -> None:
    bench = Bench()
    bench.clock.t = 1.0
    bench.deliver["transducer"](
        LinkEvent("transducer", LinkEventKind.DISCONNECTED, "transducer port /dev/ttyT: gone", 1.0)
    )
    (event,) = events(bench.input.poll(0.0), DeviceEventKind.DISCONNECTED)
    assert event.message == "transducer port /dev/ttyT: gone"
    assert math.isfinite(event.t_s)


def test_frames_waiting_for_a_late_loop_are_no_silence_and_pad_nothing() -> None:
    bench = Bench()
    bench.frames(frame(0), at=0.1)
    bench.clock.t = 0.2
    for i in range(1, 5):  # arrive while the loop is busy elsewhere (a slow disk)
        bench.deliver["transducer"](Received("transducer", [frame(25 * i)], [], 100, 0.1 + i / 10))
    bench.clock.t = 3.0
    assert bench.input.now(3.0) == pytest.approx(0.1)
    items = bench.input.poll(0.0)
    assert not [b for b in blocks(items) if b.missing]
    assert bench.input.stream_clock.samples == 125


def test_a_stall_of_the_monitors_own_loop_is_not_the_transducers_silence() -> None:
    bench = Bench(away_after_s=0.25)
    bench.frames(frame(0), at=0.1)
    bench.idle(0.2)
    bench.clock.t = 1.5  # the host stopped the monitor for 1.3 s
    assert bench.input.now(1.5) == pytest.approx(0.1)
    items = bench.frames(frame(25), at=1.55)
    assert not [b for b in blocks(items) if b.missing]
    assert bench.input.now(1.6) == pytest.approx(0.2)


def test_bytes_waiting_in_the_port_are_no_silence_while_the_port_gives_frames() -> None:
    bench = Bench()
    bench.frames(frame(0), at=0.1)
    bench.unread = 120  # the reader rests or fell behind; two frames wait in the port
    bench.clock.t = 3.0
    assert bench.input.now(3.0) == pytest.approx(0.1)


def test_a_port_that_gives_only_noise_is_silent_however_many_bytes_wait() -> None:
    bench = Bench(comm_loss_s=5.0)
    bench.frames(frame(0), at=0.1)
    bench.unread = 4096  # a flood: the port is never empty
    items = []
    for k in range(1, 8):
        items += bench.frames(at=float(k), n_bytes=20_000)  # and nothing in it decodes
    assert bench.input.now(7.0) == pytest.approx(7.0, abs=0.6)
    lost = events(items, DeviceEventKind.COMM_LOST)
    assert "transducer" in [e.role for e in lost]


def test_a_port_whose_device_ignores_its_session_is_lost_with_the_step_named() -> None:
    """A B. Braun rack on a silent port: the loss names the request nobody answered."""
    with VirtualPort("transducer") as transducer, VirtualPort("rack") as rack:
        device_input = DeviceInput(
            (PortSettings("transducer", transducer.path), BinaryTransducerDecoder()),
            [(PortSettings("rack", rack.path, 9600), BccPumpAdapter(answer_timeout_s=0.3))],
            sample_rate=250.0, drug_table=load_drug_table(), comm_loss_s=1.0,
        )  # fmt: skip
        device_input.start()
        lost: list = []
        try:
            deadline = time.monotonic() + 20.0
            while not lost and time.monotonic() < deadline:
                lost = [
                    i for i in device_input.poll(0.1)
                    if isinstance(i, DeviceEvent) and i.kind is DeviceEventKind.COMM_LOST
                    and i.role == "rack"
                ]  # fmt: skip
        finally:
            device_input.stop()
    (event,) = lost
    assert "the device does not answer: no answer to ADMIN:ALIVE in 0.3 s" in event.message
    assert event.detail["unanswered"] == "no answer to ADMIN:ALIVE in 0.3 s"
