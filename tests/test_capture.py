"""Wire captures: the file format, its writer beside running readers, and its replay.

A capture is how a problem seen at a bed reaches a desk, so it must read
back exactly as written, lose at most a line to a power cut, name the line
of any damage, never stop monitoring when its disk fails, and replay the
devices' bytes on their own timing.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.capture_file import (
    CapturedPort,
    CaptureError,
    Record,
    header_line,
    parse_capture,
    read_capture,
)
from devices.simulation.capture_replay import CapturePlayer
from monitor.edge.capture import CaptureOpenError, CaptureWriter

RACK = CapturedPort("rack", "/dev/ttyUSB1", 9600, "bcc", "pumps")
TRANSDUCER = CapturedPort("transducer", "/dev/ttyUSB0", 115200, "binary", "transducer")


def capture_text(*lines: str) -> str:
    return "\n".join([header_line({"started_utc": "2026-12-06T20:00:00Z"}), *lines]) + "\n"


def test_a_capture_reads_back_every_record_as_written() -> None:
    records = [
        Record(0.0, "rack", "tx", b"\x01ADMIN:ALIVE\x04"),
        Record(0.0415, "rack", "rx", bytes(range(256))),
        Record(0.05, "transducer", "rx", b"\x7e\x00\xff"),
    ]
    text = capture_text(RACK.line(), TRANSDUCER.line(), *(r.line() for r in records))
    capture = parse_capture(text, "bed7.cap")
    assert capture.ports == {"rack": RACK, "transducer": TRANSDUCER}
    assert capture.records == records and not capture.truncated
    assert capture.header == {"started_utc": "2026-12-06T20:00:00Z"}
    assert capture.received("rack") == bytes(range(256))
    assert capture.duration_s == 0.05


def test_a_line_cut_short_by_a_power_cut_is_left_out_and_said() -> None:
    whole = capture_text(RACK.line(), Record(1.0, "rack", "rx", b"ab").line())
    capture = parse_capture(whole + "1.5 rack rx 61", "bed7.cap")
    assert [r.t_s for r in capture.records] == [1.0] and capture.truncated


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        (["0.1 rack rx 6162"], "line 2: port 'rack' was not declared"),
        ([RACK.line(), "0.1 rack up 6162"], "line 3: direction 'up' is neither rx nor tx"),
        ([RACK.line(), "0.1 rack rx 6g"], "line 3: the bytes are not hexadecimal"),
        ([RACK.line(), "soon rack rx 61"], "line 3: time 'soon' is not a number"),
        ([RACK.line(), "-1 rack rx 61"], "line 3: time '-1' must be 0 s or more"),
        (
            [RACK.line(), "2 rack rx 61", "1 rack rx 61"],
            "line 4: time 1.000000 s is before rack's record above",
        ),
        ([RACK.line(), "0.1 rack rx"], "line 3: a record is 'SECONDS PORT rx|tx HEX'"),
        ([RACK.line(), "0.1 rack rx "], "line 3: a record carries at least one byte"),
        (['# port {"name": "a b", "path": "/dev/x", "baud": 9600}'], "line 2: a port needs a name"),
        (['# port {"name": "rack", "path": "/dev/x"}'], "line 2: port rack needs a path"),
        (["# port {rack}"], "line 2: the port is not JSON"),
    ],
)
def test_damage_is_refused_naming_the_file_and_the_line(lines: list[str], named: str) -> None:
    with pytest.raises(CaptureError, match="^bed7.cap: ") as refused:
        parse_capture(capture_text(*lines), "bed7.cap")
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a,b,c\n", "line 1: not a capture"),
        ("# monitor-capture 2 {}\n", "capture version '2'; this monitor reads version 1"),
        ("# monitor-capture 1 [1]\n", "the header must be a JSON object"),
    ],
)
def test_a_file_that_is_no_capture_of_this_version_says_so(text: str, named: str) -> None:
    with pytest.raises(CaptureError, match=named):
        parse_capture(text, "bed7.cap")


def test_a_binary_file_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "bed7.cap"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CaptureError, match="not a capture"):
        read_capture(path)


def test_the_writer_keeps_each_threads_records_whole_with_their_time(tmp_path: Path) -> None:
    now = [100.0]
    writer = CaptureWriter(
        tmp_path / "bed7.cap",
        software="monitor test",
        clock=lambda: now[0],
        utc=lambda: datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
    )
    second = CapturedPort("rack2", "socket://10.1.2.3:4001", 9600, "bcc", "pumps")
    taps = [writer.tap(RACK), writer.tap(TRANSDUCER), writer.tap(second)]
    writer.tap(RACK)  # a port reopened is declared once

    def send(tap, n: int) -> None:
        for i in range(n):
            tap("rx", bytes([i % 256]) * 40, 100.0 + i / 1000)

    threads = [threading.Thread(target=send, args=(tap, 500)) for tap in taps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taps[0]("tx", b"\x06", 101.0)
    writer.close()
    capture = read_capture(tmp_path / "bed7.cap")
    assert capture.header == {
        "started_utc": "2026-12-06T20:00:00.000000Z",
        "software": "monitor test",
    }
    assert list(capture.ports) == ["rack", "transducer", "rack2"]
    assert len(capture.records) == writer.records == 1501
    assert capture.records[-1] == Record(1.0, "rack", "tx", b"\x06")
    assert capture.received("transducer") == b"".join(bytes([i % 256]) * 40 for i in range(500))


def test_a_failing_disk_stops_the_capture_and_says_so_never_the_reader(tmp_path: Path) -> None:
    clock = iter(range(10**6)).__next__  # a second passes at every write: each one flushes
    writer = CaptureWriter(tmp_path / "bed7.cap", software="monitor test", clock=clock)
    writer._file = open("/dev/full", "w")  # noqa: SIM115  # the disk fills up mid-capture
    tap = writer.tap(RACK)
    for _ in range(5):
        tap("rx", b"x" * 4096, 1.0)  # the flush a second later fails: no exception here
    writer.close()
    assert writer.failure is not None and "No space left on device" in writer.failure
    assert writer.failure.startswith(f"capture {tmp_path / 'bed7.cap'} stopped")


def test_a_capture_that_cannot_be_created_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureOpenError, match=f"cannot write the capture {tmp_path}/no/bed7.cap"):
        CaptureWriter(tmp_path / "no" / "bed7.cap", software="monitor test")


def test_a_replay_sends_what_each_device_sent_at_its_own_time_and_answers_nothing() -> None:
    text = capture_text(
        RACK.line(),
        TRANSDUCER.line(),
        "0.000000 rack tx 01",
        "0.010000 rack rx 0203",
        "0.020000 transducer rx 7e",
        "2.000000 rack tx 01",
        "2.010000 rack rx 04",
    )
    player = CapturePlayer(parse_capture(text, "bed7.cap"))
    assert player.devices == ["rack", "transducer"] and player.duration_s == 2.01
    assert [(t.device, t.data) for t in player.advance(0.015)] == [("rack", b"\x02\x03")]
    assert player.hear("rack", b"\x01") == []  # a poll at another time changes nothing
    assert [(t.device, t.data) for t in player.advance(1.0)] == [("transducer", b"\x7e")]
    assert not player.done
    assert [(t.t_s, t.data) for t in player.advance(5.0)] == [(2.01, b"\x04")]
    assert player.done and player.t_s == 2.01
