"""A wire capture played back as its devices: what each sent, when it sent it, whatever it hears.

The device side of a capture (its ``rx`` records) is sent on the port of
the same name at the capture's own times, scaled by the player's speed;
what the host sends (polls, acknowledgements) is heard and ignored, because
a recording cannot answer a question it was not asked. A monitor under test
therefore sees the bytes the bed's devices sent, in the order and with the
gaps they had: a decoder's bug or a session's timing problem found at the
bed reproduces at a desk.
"""

from __future__ import annotations

from devices.capture_file import Capture
from devices.simulation.transducer_emulator import Transmission


class CapturePlayer:
    """A capture as the devices of a bedside, for ``devices.simulation.simulator.play``."""

    def __init__(self, capture: Capture) -> None:
        self.devices = list(capture.ports)
        sent = [Transmission(r.t_s, r.port, r.data) for r in capture.records if r.direction == "rx"]
        self._sent = sorted(sent, key=lambda tx: tx.t_s)  # stable: each port keeps its order
        self.duration_s = capture.duration_s
        self.t_s = 0.0
        self._next = 0

    @property
    def done(self) -> bool:
        return self._next >= len(self._sent)

    def hear(self, device: str, data: bytes) -> list[Transmission]:
        """The host's requests are heard (so its port never fills) and never answered."""
        return []

    def advance(self, until_s: float) -> list[Transmission]:
        self.t_s = min(max(self.t_s, until_s), self.duration_s)
        start = self._next
        while self._next < len(self._sent) and self._sent[self._next].t_s <= self.t_s:
            self._next += 1
        return self._sent[start : self._next]
