"""Throughput of the device decoders, printed as a Markdown table for the docs.

Times the binary transducer decoder on what a front end sends (1000 Hz, 25
samples per frame) fed in serial-read-sized chunks, against a baseline timed in
the same run: a plain pure-Python decoder of the same frames, written here
(same framing and escaping, a table-driven CRC-16/CCITT-FALSE, ``struct`` per
header and per sample), checked to decode the same samples first. The ASCII
transducer decoder and the pump sentence decoder (v2 with its CRC-16, and v1
with its 8-bit XOR) are timed the same way, and the two pump checksums alone
per sentence. Timings are reported against the target (a decoder keeps up
with at least 100 transducers at 1000 Hz on one core), never asserted.

A B. Braun Space rack of 24 pumps (``bcc``, the adapter with its session)
is timed on what the rack answers to a poll every 2 s, one block per pump
modelled on a real SpaceStation block (the fixture of tests/data/bcc), with
the acknowledgements the session sends between reads; target: at least 100
times real time on one core.

A second table counts what each pump checksum lets through (issue 16):
sentences with two random bits flipped (seeded), and the same bit flipped in
two digits of the rate field, that decode as a different valid sentence.

Run as ``python bench/bench_decoders.py``; ``--quick`` is a smoke test for CI.
"""

from __future__ import annotations

import argparse
import binascii
import gc
import operator
import random
import statistics
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import numpy as np
from provenance import command_line, machine_line

from devices.protocols.bcc_frames import encode_frame as encode_bcc_frame
from devices.protocols.bcc_frames import parse_frame, parse_records
from devices.protocols.bcc_pumps import SLOTS, BccPumpAdapter
from devices.protocols.decoding import Decoder
from devices.protocols.pump import (
    PROTOCOL_VERSIONS,
    PumpLineDecoder,
    PumpProtocol,
    encode_heartbeat,
    encode_report,
)
from devices.protocols.transducer import (
    AsciiTransducerDecoder,
    BinaryTransducerDecoder,
    encode_ascii,
    encode_frame,
)
from devices.readings import PumpHeartbeat, PumpReport, PumpSentence, PumpState
from devices.simulation.abp_waveform import synthesize_abp

FS = 1000  # Hz, the transducer's sample rate
FRAME_SAMPLES = 25  # samples per frame, 40 frames/s: what a front end sends
READ_SIZES = (64, 4096)  # bytes per serial read: a small and a large driver buffer
TARGET_TRANSDUCERS = 100  # 1000 Hz transducers one core must keep up with
RACK_PUMPS = 24  # a full Space rack: three pillars of eight
RACK_POLL_S = 2.0  # the monitor polls its rack every 2 s (docs/protocols.md)
TARGET_REAL_TIME = 100  # a 24-pump rack at least this many times real time on one core
REAL_BLOCK = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "bcc" / "memget-block-arterenol.bin"
)


# --- the baseline: the obvious pure-Python decoder of the same frames ---------------------------


def _crc_table() -> list[int]:
    table = []
    for high in range(256):
        crc = high << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_TABLE = _crc_table()
_HEADER = struct.Struct("<BBHIhI")
_SAMPLE = struct.Struct("<h")
_MAX_FRAME = 2 * (_HEADER.size + 2 * 250 + 2)  # escaped bytes between flags, at most


def crc16_ccitt_false(data: bytes) -> int:
    """Table-driven, one byte per iteration, as a C programmer would write it in Python."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


class StructDecoder:
    """The straightforward decoder: split at flags, unescape, CRC in Python, struct per sample.

    Same framing, escaping and checks as ``BinaryTransducerDecoder`` for intact
    frames; no counters, no sequence tracking. Returns (sequence, samples in mmHg).
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[int, list[float]]]:
        pieces = (self._pending + data).split(b"\x7e")
        self._pending = pieces.pop()
        if len(self._pending) > _MAX_FRAME:
            self._pending = b""
        frames = []
        for piece in pieces:
            if not piece:
                continue
            payload = piece.replace(b"\x7d\x5e", b"\x7e").replace(b"\x7d\x5d", b"\x7d")
            if len(payload) < _HEADER.size + 4 or len(payload) % 2:
                continue
            (crc,) = struct.unpack(">H", payload[-2:])
            if crc16_ccitt_false(payload[:-2]) != crc:
                continue
            version, _status, _rate, sequence, zero, nano = _HEADER.unpack_from(payload)
            if version != 1:
                continue
            scale = nano / 1e9
            samples = []
            for offset in range(_HEADER.size, len(payload) - 2, 2):
                (count,) = _SAMPLE.unpack_from(payload, offset)
                samples.append((count - zero) * scale)
            frames.append((sequence, samples))
        return frames


# --- streams ------------------------------------------------------------------------------------


def pressure(seconds: float) -> np.ndarray:
    """Synthetic ABP at 1000 Hz (75 bpm, 120/75-ish, 0.3 mmHg noise)."""
    return synthesize_abp(seconds, float(FS), seed=3).samples


def binary_stream(signal: np.ndarray) -> bytes:
    return b"".join(
        encode_frame(signal[i : i + FRAME_SAMPLES], sequence=i, sample_rate=FS)
        for i in range(0, len(signal), FRAME_SAMPLES)
    )


def pump_sentences(count: int) -> list[PumpSentence]:
    """A rack of 8 pumps with 2 channels each: reports with a programmed dose, and heartbeats."""
    rng = np.random.default_rng(5)
    sentences: list[PumpSentence] = []
    seq = [0] * 8
    for i in range(count):
        pump = i % 8
        pump_id = f"ICU3-P{pump}"
        if i % 5 == 4:
            sentences.append(PumpHeartbeat(pump_id, seq[pump]))
        else:
            rate = round(float(rng.uniform(0.5, 30.0)), 1)
            sentences.append(
                PumpReport(
                    pump_id,
                    1 + i % 2,
                    seq[pump],
                    "NORAD",
                    64.0,
                    "ug/mL",
                    rate,
                    PumpState.RUNNING,
                    round(rate * 64.0 / 60.0 / 80.0, 4),
                    "ug/kg/min",
                )
            )
        seq[pump] = (seq[pump] + 1) % 65536
    return sentences


def encode_pump(s: PumpSentence, protocol: PumpProtocol) -> bytes:
    return (
        encode_report(s, protocol) if isinstance(s, PumpReport) else encode_heartbeat(s, protocol)
    )


def pump_stream(sentences: list[PumpSentence], protocol: PumpProtocol) -> bytes:
    return b"".join(encode_pump(s, protocol) for s in sentences)


def rack_answers(polls: int) -> bytes:
    """``polls`` answers of a 24-pump rack: per pump, the real block's records at its address.

    Pumps 1-8 on pillar 1, 9-16 on pillar 2, 17-24 on pillar 3 (slots 1-8);
    each answer ends with the rack's own block, as a SpaceStation's does.
    """
    template = parse_records(parse_frame(REAL_BLOCK.read_bytes()).information)
    blocks = []
    for pump in range(RACK_PUMPS):
        address = f"501{1 + pump // 8}{SLOTS[pump % 8]}"
        records = [
            f"{r.time_s},{address},{r.parameter}" + (f",{r.value}" if r.value is not None else "")
            for r in template
        ]
        blocks.append(encode_bcc_frame("ComSystem", "\x1e".join(records), more_follow=True))
    blocks.append(encode_bcc_frame("ComSystem", "300,50100,FMNOR,1"))
    return b"".join(blocks) * polls


def rack_streamer(chunks: list[bytes], polls: int) -> Callable:
    """The adapter as its reader drives it: each read fed, then the time (ACKs fall due)."""

    def stream() -> None:
        adapter = BccPumpAdapter()
        adapter.open_session(0.0)
        step = polls * RACK_POLL_S / len(chunks)
        for i, chunk in enumerate(chunks):
            adapter.feed(chunk)
            adapter.on_time(i * step)
            adapter.take_outgoing()

    return stream


def check_rack(chunks: list[bytes], polls: int) -> None:
    adapter = BccPumpAdapter()
    adapter.open_session(0.0)
    reports = [f for chunk in chunks for f in adapter.feed(chunk) if isinstance(f, PumpReport)]
    if len(reports) != polls * RACK_PUMPS or adapter.counts["frames"] != polls * (RACK_PUMPS + 1):
        raise SystemExit(f"the BCC adapter read {len(reports)} reports, not {polls * RACK_PUMPS}")


def reads(data: bytes, size: int) -> list[bytes]:
    """The stream as successive serial reads, sliced before the clock starts."""
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- checks: every row decodes what was sent ----------------------------------------------------


def check_binary(chunks: list[bytes], signal: np.ndarray) -> None:
    """The real decoder and the baseline give the same samples, exactly, and all of them."""
    real, baseline = BinaryTransducerDecoder(), StructDecoder()
    real_frames = [f for c in chunks for f in real.feed(c)]
    base_frames = [f for c in chunks for f in baseline.feed(c)]
    real_samples = np.concatenate([f.samples for f in real_frames])
    base_samples = np.array([v for _, samples in base_frames for v in samples])
    if not (
        [f.sequence for f in real_frames] == [seq for seq, _ in base_frames]
        and np.array_equal(real_samples, base_samples)
        and real_samples.size == signal.size
        and np.max(np.abs(real_samples - signal)) <= 0.005 + 1e-9
        and sum(real.counts.values()) == real.counts["frames"]
    ):
        raise SystemExit("binary: the decoder and the baseline disagree; nothing timed")


def check_ascii(chunks: list[bytes], signal: np.ndarray) -> None:
    decoder = AsciiTransducerDecoder(FS)
    samples = np.concatenate([f.samples for c in chunks for f in decoder.feed(c)])
    if samples.size != signal.size or np.max(np.abs(samples - signal)) > 0.05 + 1e-9:
        raise SystemExit("ascii: decoded readings differ from those sent; nothing timed")


def check_pump(chunks: list[bytes], sentences: list[PumpSentence], protocol: PumpProtocol) -> None:
    decoder = PumpLineDecoder(protocol)
    if [s for c in chunks for s in decoder.feed(c)] != sentences:
        raise SystemExit(
            f"pump {protocol}: decoded sentences differ from those sent; nothing timed"
        )


# --- what each pump checksum lets through -------------------------------------------------------


def _flipped(wire: bytes, bits: Sequence[int]) -> bytes:
    damaged = bytearray(wire)
    for bit in bits:
        damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def _believed(protocol: PumpProtocol, sent: PumpSentence, damaged: bytes) -> bool:
    """``damaged`` decodes as a valid sentence other than the one sent."""
    return any(s != sent for s in PumpLineDecoder(protocol).feed(damaged + b"\r\n"))


def random_flips(sentences: list[PumpSentence], protocol: PumpProtocol, trials: int) -> int:
    """Sentences with two random bits flipped anywhere (framing too) read as another sentence."""
    rng = random.Random(16)
    believed = 0
    for i in range(trials):
        sent = sentences[i % len(sentences)]
        wire = encode_pump(sent, protocol)
        believed += _believed(protocol, sent, _flipped(wire, rng.sample(range(8 * len(wire)), 2)))
    return believed


def rate_digit_flips(sentences: list[PumpSentence], protocol: PumpProtocol) -> tuple[int, int]:
    """The same bit flipped in two digits of the rate field, every bit and digit pair of every
    report: (read as another report, tried)."""
    believed = tried = 0
    for sent in sentences:
        if not isinstance(sent, PumpReport):
            continue
        wire = encode_pump(sent, protocol)
        text = f"{sent.rate_ml_h:.6g}"
        at = wire.index(f",{text},".encode()) + 1
        digits = [at + i for i, ch in enumerate(text) if ch.isdigit()]
        for a, b in ((a, b) for a in digits for b in digits if a < b):
            for bit in range(8):
                tried += 1
                believed += _believed(protocol, sent, _flipped(wire, [8 * a + bit, 8 * b + bit]))
    return believed, tried


def corruption_table(sentences: list[PumpSentence], trials: int) -> None:
    print(
        f"| pump format | random 2-bit flips read as another sentence (of {trials:,}) "
        "| same bit in two rate digits read as another rate |"
    )
    print("|---|---:|---:|")
    for protocol in reversed(PROTOCOL_VERSIONS):
        believed = random_flips(sentences, protocol, trials)
        digits, tried = rate_digit_flips(sentences[: max(50, trials // 20)], protocol)
        name = {"v1": "v1, 8-bit XOR", "v2": "v2, CRC-16/CCITT-FALSE"}[protocol]
        print(
            f"| {name} | {believed:,} ({100 * believed / trials:.2f}%) "
            f"| {digits:,} of {tried:,} ({100 * digits / tried:.1f}%) |"
        )


def checksum_costs(sentences: list[PumpSentence], runs: int) -> None:
    """The checksum alone, per sentence body: the C CRC against the XOR the v1 decoder uses."""
    bodies = [encode_pump(s, "v2")[1:-7] for s in sentences]
    costs = {}
    for name, checksum in (
        ("CRC-16 (binascii.crc_hqx)", lambda b: binascii.crc_hqx(b, 0xFFFF)),
        ("8-bit XOR (functools.reduce)", lambda b: reduce(operator.xor, b, 0)),
    ):
        times = []
        for _ in range(max(runs, 3)):
            start = time.perf_counter()
            for body in bodies:
                checksum(body)
            times.append(time.perf_counter() - start)
        costs[name] = statistics.median(times) / len(bodies)
    print("| checksum over one sentence body | ns per sentence |")
    print("|---|---:|")
    for name, cost in costs.items():
        print(f"| {name} | {1e9 * cost:,.0f} |")


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Case:
    """One row of the table: a decoder fed one stream in reads of one size."""

    decoder: str
    unit: str  # "samples" or "sentences"
    read_size: int
    items: int  # samples or sentences in the stream
    work: Callable[[], object]
    baseline: bool = False
    times: list[float] = field(default_factory=list)

    def rate(self, how: Callable[[list[float]], float] = statistics.median) -> float:
        """Items decoded per second."""
        return self.items / how(self.times)


def streamer(make: Callable[[], Decoder | StructDecoder], chunks: list[bytes]) -> Callable:
    """A new decoder fed ``chunks``: the timed loop is a reader's own loop."""

    def stream() -> None:
        decoder = make()
        for chunk in chunks:
            decoder.feed(chunk)

    return stream


def run_round_robin(cases: list[Case], runs: int) -> None:
    """Run 1 of every case, then run 2, ...: the rows share the machine's slow and fast spells."""
    for _ in range(runs):
        for case in cases:
            gc.collect()
            start = time.perf_counter()
            case.work()
            case.times.append(time.perf_counter() - start)


def rack_table(cases: list[Case], answer_bytes: int) -> None:
    """The rack's rows: pump reports a second, and how many times real time that is."""
    print(
        f"B. Braun rack: {RACK_PUMPS} pumps, an answer of {answer_bytes:,} bytes every "
        f"{RACK_POLL_S:g} s (one block per pump, modelled on a real SpaceStation block)"
    )
    print()
    print("| adapter | read bytes | reports/s | runs min-max | x real time | target |")
    print("|---|---:|---:|---:|---:|---|")
    for c in cases:
        real_time = c.rate() / (RACK_PUMPS / RACK_POLL_S)
        met = "PASS" if real_time >= TARGET_REAL_TIME else "below"
        print(
            f"| {c.decoder} | {c.read_size} | {c.rate():,.0f} | "
            f"{c.rate(max):,.0f}-{c.rate(min):,.0f} | {real_time:,.0f} | "
            f">= {TARGET_REAL_TIME}x: {met} |"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs per row; the median is shown")
    p.add_argument("--seconds", type=float, default=180.0, help="seconds of 1000 Hz pressure")
    p.add_argument("--sentences", type=int, default=20_000, help="pump sentences in the stream")
    p.add_argument("--flips", type=int, default=100_000, help="sentences damaged per format")
    p.add_argument("--polls", type=int, default=900, help="polls of the 24-pump rack (30 min)")
    p.add_argument(
        "--quick", action="store_true", help="smoke test: 1 run on 10 s, 1000 sentences, 2000 flips"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.sentences, args.flips, args.polls = 1, 10.0, 1000, 2000, 10
    return args


def main(argv: Sequence[str] | None = None) -> None:
    wall = time.perf_counter()
    args = parse_args(argv)
    print(command_line())
    print(machine_line())
    signal = pressure(args.seconds)
    binary = binary_stream(signal)
    text = encode_ascii(signal)
    sentences = pump_sentences(args.sentences)
    pumps = pump_stream(sentences, "v2")
    print(
        f"streams: {args.seconds:g} s of synthetic ABP at {FS} Hz, fixed point 0.01 mmHg: "
        f"{len(binary) // 1024} KiB binary ({FRAME_SAMPLES} samples per frame), "
        f"{len(text) // 1024} KiB ASCII; {len(sentences)} pump sentences from 8 pumps "
        f"({len(pumps) // 1024} KiB)"
    )
    print(
        f"median of {args.runs} run(s), rows timed in turn; a new decoder per run; reads sliced "
        "before timing; baseline: split at flags, unescape, table CRC and struct per sample in "
        "pure Python"
    )
    print()

    cases = []
    for size in READ_SIZES:
        chunks = reads(binary, size)
        check_binary(chunks, signal)
        cases += [
            Case(
                "binary transducer",
                "samples",
                size,
                signal.size,
                streamer(BinaryTransducerDecoder, chunks),
            ),
            Case(
                "baseline: pure-Python struct",
                "samples",
                size,
                signal.size,
                streamer(StructDecoder, chunks),
                baseline=True,
            ),
        ]
    for size in READ_SIZES:
        chunks = reads(text, size)
        check_ascii(chunks, signal)
        cases.append(
            Case(
                "ASCII transducer",
                "samples",
                size,
                signal.size,
                streamer(lambda: AsciiTransducerDecoder(FS), chunks),
            )
        )
    for protocol, name in (("v2", "pump sentences v2 (CRC-16)"), ("v1", "pump sentences v1 (XOR)")):
        for size in READ_SIZES:
            chunks = reads(pump_stream(sentences, protocol), size)
            check_pump(chunks, sentences, protocol)
            cases.append(
                Case(
                    name,
                    "sentences",
                    size,
                    len(sentences),
                    streamer(lambda protocol=protocol: PumpLineDecoder(protocol), chunks),
                )
            )
    rack = rack_answers(args.polls)
    for size in READ_SIZES:
        chunks = reads(rack, size)
        check_rack(chunks, args.polls)
        cases.append(
            Case(
                f"bcc, {RACK_PUMPS}-pump rack", "reports", size, args.polls * RACK_PUMPS,
                rack_streamer(chunks, args.polls),
            )
        )  # fmt: skip
    run_round_robin(cases, args.runs)

    baseline = {c.read_size: c.rate() for c in cases if c.baseline}
    print(
        "| decoder | read bytes | per second | runs min-max | x 1000 Hz transducer "
        "| x baseline | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for c in [c for c in cases if c.unit != "reports"]:
        spread = f"{c.rate(max):,.0f}-{c.rate(min):,.0f}"
        if c.unit == "samples":
            transducers = c.rate() / FS
            multiple = f"{transducers:,.0f}"
            met = "PASS" if transducers >= TARGET_TRANSDUCERS else "below"
            target = "" if c.baseline else f">= {TARGET_TRANSDUCERS}x: {met}"
        else:
            multiple, target = "n/a", ""
        ratio = f"{c.rate() / baseline[c.read_size]:.1f}" if c.decoder.startswith("binary") else ""
        if c.baseline:
            ratio = "1.0"
        print(
            f"| {c.decoder} | {c.read_size} | {c.rate():,.0f} {c.unit}/s | {spread} "
            f"| {multiple} | {ratio} | {target} |"
        )
    print()
    rack_table([c for c in cases if c.unit == "reports"], len(rack) // args.polls)
    print()
    checksum_costs(sentences, args.runs)
    print()
    corruption_table(sentences, args.flips)
    print()
    print(f"benchmark wall time: {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
