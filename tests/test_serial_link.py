"""Specification of a port reader: real device files, unplugging, and every way opening fails."""

from __future__ import annotations

import errno
import queue
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from devices.protocols.transducer import BinaryTransducerDecoder, encode_frame
from devices.simulation.virtual_ports import VirtualPort
from monitor.edge.serial_link import (
    READ_SIZE,
    REST_BYTES,
    LinkEvent,
    LinkEventKind,
    PortReader,
    PortSettings,
    Received,
    rest_after_read,
)

FAST_RETRY = (0.05, 0.2)


def frames(first: int, count: int) -> bytes:
    return b"".join(
        encode_frame(np.full(25, 80.0 + k), sequence=25 * k, sample_rate=250)
        for k in range(first, first + count)
    )


def collect(inbox: queue.Queue, until, timeout_s: float = 5.0) -> list:
    """Items from a reader until ``until(items)`` holds (or fail after the timeout)."""
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"reader did not deliver in time; got {items!r}")
        try:
            items.append(inbox.get(timeout=remaining))
        except queue.Empty:
            pass
    return items


def decoded(items: list) -> list:
    return [f for i in items if isinstance(i, Received) for f in i.frames]


def kinds(items: list) -> list[LinkEventKind]:
    return [i.kind for i in items if isinstance(i, LinkEvent)]


def start_reader(url: str, inbox: queue.Queue, **kwargs) -> PortReader:
    reader = PortReader(
        PortSettings("transducer", url),
        BinaryTransducerDecoder(),
        inbox.put,
        backoff_s=FAST_RETRY,
        **kwargs,
    )
    reader.start()
    return reader


def test_a_reader_opens_a_pty_by_path_and_delivers_decoded_frames() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("transducer") as port:
        reader = start_reader(port.path, inbox)
        try:
            collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
            port.write(frames(0, 8))
            items = collect(inbox, lambda items: len(decoded(items)) >= 8)
        finally:
            reader.stop()
    assert [f.sequence for f in decoded(items)] == [25 * k for k in range(8)]


def test_stopping_a_reader_cancels_its_read_on_a_silent_port() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("pump") as port:
        reader = start_reader(port.path, inbox, read_timeout_s=60.0)  # a read that would wait
        collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
        reader.stop(timeout_s=10.0)
        assert not reader.alive


def test_after_a_read_that_took_all_that_waited_the_reader_rests_so_frames_come_together() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("transducer") as port:
        reader = start_reader(port.path, inbox, gather_s=1.0)
        try:
            collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
            time.sleep(0.5)  # a quiet port, then one frame: a slow device, a full rest
            port.write(frames(0, 1))
            first = collect(inbox, lambda items: len(decoded(items)) >= 1)
            for k in range(1, 4):  # three frames while the reader rests
                port.write(frames(k, 1))
                time.sleep(0.05)
            rest = collect(inbox, lambda items: len(decoded(items)) >= 3)
        finally:
            reader.stop()
    together = [i for i in rest if isinstance(i, Received) and i.frames]
    assert [[f.sequence for f in i.frames] for i in together] == [[25, 50, 75]]
    assert [f.sequence for f in decoded(first)] == [0]


def test_a_read_that_filled_the_buffer_is_followed_by_the_next_at_once() -> None:
    assert rest_after_read(READ_SIZE, 0.5, longest_s=0.1) == 0.0


def test_a_slow_device_gets_the_longest_rest() -> None:
    # 40 frames a second of 98 bytes: 100 ms brings about 400 bytes, well within REST_BYTES
    assert rest_after_read(4 * 98, 0.1, longest_s=0.1) == 0.1


def test_a_fast_device_rests_only_as_long_as_rest_bytes_take_to_come() -> None:
    # a 125 Hz record replayed at 100x: 3.6 KB came in the last 50 ms, 1 KB comes in 14 ms
    rest = rest_after_read(3600, 0.05, longest_s=0.1)
    assert rest == pytest.approx(0.05 * REST_BYTES / 3600)
    assert rest < 0.1


def test_a_stop_ends_a_readers_rest_at_once() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("transducer") as port:
        reader = start_reader(port.path, inbox, gather_s=60.0)  # a rest that would wait
        collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
        port.write(frames(0, 1))
        collect(inbox, lambda items: len(decoded(items)) >= 1)
        started = time.monotonic()
        reader.stop(timeout_s=10.0)
        assert not reader.alive
    assert time.monotonic() - started < 5.0


def test_a_negative_rest_between_reads_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="rest between reads"):
        PortReader(
            PortSettings("transducer", "/dev/null"), BinaryTransducerDecoder(), print, gather_s=-0.1
        )


def test_a_reader_reads_socket_urls_through_pyserial() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    inbox: queue.Queue = queue.Queue()
    reader = start_reader(f"socket://127.0.0.1:{server.getsockname()[1]}", inbox)
    try:
        connection, _ = server.accept()
        # pyserial discards what arrives while it opens a port, as a UART
        # driver would: send once the reader says the port is open.
        collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
        connection.sendall(frames(0, 4))
        items = collect(inbox, lambda items: len(decoded(items)) >= 4)
        connection.close()
    finally:
        reader.stop()
        server.close()
    assert len(decoded(items)) == 4


def test_a_missing_device_is_reported_once_by_path_and_retried(tmp_path: Path) -> None:
    inbox: queue.Queue = queue.Queue()
    missing = tmp_path / "ttyUSB9"
    reader = start_reader(str(missing), inbox)
    try:
        items = collect(inbox, lambda items: items)
        time.sleep(0.5)  # several retries at the fast back-off
        assert reader.alive
    finally:
        reader.stop()
    while not inbox.empty():
        items.append(inbox.get())
    assert kinds(items) == [LinkEventKind.OPEN_FAILED]
    assert f"transducer port {missing}: no such device" in items[0].message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (serial.SerialException(errno.EACCES, "Permission denied"), "permission denied"),
        (serial.SerialException(errno.EBUSY, "busy"), "busy, another program has it open"),
        (ValueError("Not a valid baudrate: 12"), "invalid settings: Not a valid baudrate: 12"),
    ],
)
def test_opening_failures_are_explained_with_the_port_and_the_likely_fix(
    error: Exception, expected: str
) -> None:
    def refuse(*args, **kwargs):
        raise error

    inbox: queue.Queue = queue.Queue()
    reader = start_reader("/dev/ttyUSB0", inbox, open_port=refuse)
    try:
        (event,) = collect(inbox, lambda items: items)
    finally:
        reader.stop()
    assert event.kind == LinkEventKind.OPEN_FAILED
    assert event.message.startswith("transducer port /dev/ttyUSB0: ")
    assert expected in event.message


def test_an_unplugged_device_is_reported_and_read_again_when_plugged_back(tmp_path: Path) -> None:
    link = tmp_path / "transducer"
    inbox: queue.Queue = queue.Queue()
    port = VirtualPort("transducer", link)
    reader = start_reader(str(link), inbox)
    try:
        collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
        port.write(frames(0, 5))
        before = collect(inbox, lambda items: len(decoded(items)) >= 5)
        port.close()  # unplug
        unplugged = collect(inbox, lambda items: LinkEventKind.DISCONNECTED in kinds(items))
        port = VirtualPort("transducer", link)  # plug back in
        collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
        port.write(frames(5, 5))
        after = collect(inbox, lambda items: len(decoded(items)) >= 5)
    finally:
        reader.stop()
        port.close()
    assert [f.sequence for f in decoded(before) + decoded(after)] == [25 * k for k in range(10)]
    (lost,) = [i for i in unplugged if isinstance(i, LinkEvent)]
    assert lost.message.startswith(f"transducer port {link}")
    assert reader.alive is False  # stopped on request, not by the unplug


class ExplodingDecoder(BinaryTransducerDecoder):
    """A decoder with a bug: the reader must report it and carry on."""

    def _decode(self, data: bytes):
        raise RuntimeError("decoder bug")


def test_an_unexpected_error_in_a_reader_is_reported_and_the_reader_carries_on() -> None:
    inbox: queue.Queue = queue.Queue()
    with VirtualPort("transducer") as port:
        reader = PortReader(
            PortSettings("transducer", port.path),
            ExplodingDecoder(),
            inbox.put,
            backoff_s=FAST_RETRY,
        )
        reader.start()
        try:
            collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
            port.write(frames(0, 1))
            items = collect(
                inbox,
                lambda items: (
                    kinds(items).count(LinkEventKind.CONNECTED) >= 1
                    and LinkEventKind.READER_ERROR in kinds(items)
                ),
            )
            port.write(frames(1, 1))
            again = collect(inbox, lambda items: LinkEventKind.CONNECTED in kinds(items))
            assert reader.alive
        finally:
            reader.stop()
    (error,) = [
        i for i in items if isinstance(i, LinkEvent) and i.kind == LinkEventKind.READER_ERROR
    ]
    assert "unexpected RuntimeError: decoder bug" in error.message
    assert again
