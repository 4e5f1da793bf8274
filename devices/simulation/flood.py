"""Floods and steady devices for the flood tests: babble, then valid frames, on real ports.

A wrong baud rate, a faulty front end or a device that ignores the line
settings (USB CDC adapters do) floods a port with bytes that never decode.
The flood tests and ``bench/bench_flood.py`` point a ``Babbler`` at a
virtual port, at a multiple of the configured line's byte rate, and a
``SteadyDevices`` (a transducer and a pump that keep time) at the same
ports, to check that the monitor stays live whatever arrives and reads
the valid frames that follow.
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Self

import numpy as np

from devices.protocols.pump import HEARTBEAT_S, encode_heartbeat
from devices.protocols.pump import SEQUENCE_MODULUS as PUMP_SEQUENCE_MODULUS
from devices.protocols.transducer import SEQUENCE_MODULUS, encode_frame
from devices.readings import PumpHeartbeat
from devices.simulation.virtual_ports import VirtualPort

CHUNK_BYTES = 128  # small writes, so a reader that keeps up sees many small reads, as on a UART
WRITES_PER_S = 2000  # above CHUNK_BYTES * this, the chunks grow instead of the writes


def line_bytes_per_s(baudrate: int) -> float:
    """What an 8N1 serial line carries at most: 10 bits on the wire per byte."""
    return baudrate / 10.0


class _Device:
    """A daemon thread running ``_run`` from ``start`` until ``stop``: what both devices share."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class Babbler(_Device):
    """Writes random bytes into ``port`` at ``bytes_per_s`` until stopped.

    The pace is kept against the monotonic clock in chunks of
    ``CHUNK_BYTES`` (larger above ``WRITES_PER_S`` chunks a second); what
    the port's buffer cannot take is dropped and counted by the port, as
    on a real wire.
    """

    def __init__(self, port: VirtualPort, bytes_per_s: float, *, seed: int = 0) -> None:
        if not bytes_per_s > 0:
            raise ValueError(f"a babbler needs a positive rate, got {bytes_per_s!r}")
        self.port = port
        self.bytes_per_s = bytes_per_s
        self.bytes_sent = 0
        self.chunk = max(CHUNK_BYTES, round(bytes_per_s / WRITES_PER_S))
        self._rng = random.Random(seed)
        super().__init__(f"babbler-{port.name}")

    def _run(self) -> None:
        start = time.monotonic()
        interval = self.chunk / self.bytes_per_s
        while not self._stop.is_set():
            self.port.write(self._rng.randbytes(self.chunk))
            self.bytes_sent += self.chunk
            due = start + self.bytes_sent / self.bytes_per_s
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(min(delay, interval))


class SteadyDevices(_Device):
    """A transducer sending frames in real time and a pump sending heartbeats, until stopped.

    The transducer's sequence counts the samples it takes whether or not
    they are sent: while ``muted`` (the babble has the wire) nothing is
    written, and the first frame after carries the gap, as a front end
    that kept running would. The pressure is a 72/min pulse around 80 mmHg.
    """

    def __init__(
        self,
        transducer: VirtualPort,
        pump: VirtualPort | None = None,
        *,
        sample_rate: int = 250,
        frame_samples: int = 25,
        pump_id: str = "P1",
    ) -> None:
        self.transducer, self.pump = transducer, pump
        self.sample_rate, self.frame_samples, self.pump_id = sample_rate, frame_samples, pump_id
        self.muted = threading.Event()
        self.frames_sent = 0
        super().__init__("steady-devices")

    def _run(self) -> None:
        start = time.monotonic()
        taken = 0
        beats = 0
        next_heartbeat = start
        while not self._stop.is_set():
            now = time.monotonic()
            if self.pump is not None and now >= next_heartbeat:
                if not self.muted.is_set():
                    heartbeat = PumpHeartbeat(self.pump_id, beats % PUMP_SEQUENCE_MODULUS)
                    self.pump.write(encode_heartbeat(heartbeat))
                beats += 1
                next_heartbeat += HEARTBEAT_S
            while (taken + self.frame_samples) / self.sample_rate <= now - start:
                if not self.muted.is_set():
                    t = (taken + np.arange(self.frame_samples)) / self.sample_rate
                    pressure = 80.0 + 20.0 * np.sin(2.0 * math.pi * 1.2 * t)
                    frame = encode_frame(
                        pressure, sequence=taken % SEQUENCE_MODULUS, sample_rate=self.sample_rate
                    )
                    self.transducer.write(frame)
                    self.frames_sent += 1
                taken += self.frame_samples
            self._stop.wait(self.frame_samples / self.sample_rate / 2)
