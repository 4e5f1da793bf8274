"""A host's side of a B. Braun BCC session: associate, poll the rack, acknowledge each block.

The ComDevice speaks only when asked. The host says ``ADMIN:ALIVE`` under
the default bed id and learns the real one from the ``GNACK`` answer (every
later request must carry it), then asks ``MEM:GET``; the answer comes one
block per pump, and each block after an acknowledgement (ACK, 0x06) of the
one before; a block that fails its check is asked again with NAK (0x15).
The ComDevice has no keep-alive: polling keeps the link up, and after a
silence the host starts again with ``ADMIN:ALIVE``. Each complete answer
is one *cycle*: the records of the rack and every pump, as they were at
that poll. Timings: B. Braun asks for about 0.1 s before an ACK and at
least 0.5 s between polls; how long to wait for an answer it leaves to the
host (peers wait 5 s).
"""

from __future__ import annotations

import enum

from devices.protocols.bcc_frames import (
    ACK,
    DEFAULT_BED_ID,
    EOT,
    NAK,
    SOH,
    BccRecord,
    FrameError,
    parse_frame,
    parse_records,
    request,
)
from devices.protocols.decoding import Decoder

RACK_ADDRESS = "50100"
MAX_FRAME_BYTES = 64 * 1024  # a block is one pump (about 1.2 kB); beyond this it is noise
ACK_DELAY_S = 0.1
SHORTEST_POLL_S = 0.5
NAKS_BEFORE_RESTART = 3
# GNERR 11: no further data, or no pumps in the system: a complete, empty answer.
NO_PUMPS = "11"


class Step(enum.Enum):
    """What the host is waiting for; its value names the step in a technical alarm."""

    CLOSED = "nothing"
    ASSOCIATING = "ADMIN:ALIVE"
    POLLING = "MEM:GET"
    IDLE = "the next poll"


class BccSession(Decoder[list[BccRecord]]):
    """The request cycle over one ComDevice port; ``feed`` returns each complete cycle.

    ``no_answer`` is counted (and described with the step) whenever a
    request goes unanswered for ``answer_timeout_s``; the session then
    associates again, as the ComDevice expects after a silence.
    """

    protocol = "bcc-session"

    def __init__(self, *, poll_s: float = 5.0, answer_timeout_s: float = 5.0) -> None:
        super().__init__()
        if not poll_s >= SHORTEST_POLL_S:
            raise ValueError(f"a BCC rack is polled at most every {SHORTEST_POLL_S} s")
        self._poll_s = poll_s
        self._answer_timeout_s = answer_timeout_s
        self._buffer = bytearray()
        self._bytes_seen = 0  # stream offset of the buffer's end, to name a bad frame's place
        self.step = Step.CLOSED
        self.bed_id = DEFAULT_BED_ID
        # what a read asked of the session, done at the next on_time, which knows the time
        self._answered = self._ack_wanted = self._poll_wanted = False
        self._answer_by: float | None = None
        self._ack_at: float | None = None
        self._poll_at: float | None = None
        self._naks = 0
        self._cycle: list[BccRecord] = []

    def open_session(self, now: float) -> None:
        self._buffer.clear()
        self._associate(now)

    def next_due(self) -> float | None:
        # A poll falls due only between answers: a rack of 24 pumps at 9600 baud takes
        # some 27 s to answer, far longer than the poll period, and must not be cut off.
        poll_at = self._poll_at if self.step is Step.IDLE else None
        due = [t for t in (self._answer_by, self._ack_at, poll_at) if t is not None]
        return min(due) if due else None

    def on_time(self, now: float) -> None:
        if self._answered:
            self._answered = False
            self._answer_by = now + self._answer_timeout_s if self.step is Step.POLLING else None
        if self._ack_wanted:
            self._ack_wanted, self._ack_at = False, now + ACK_DELAY_S
        if self._poll_wanted:
            self._poll_wanted, self._poll_at = False, now
        if self._ack_at is not None and now >= self._ack_at:
            self._ack_at = None
            self._send(ACK)
        if self._answer_by is not None and now >= self._answer_by:
            self._problem(
                "no_answer", f"no answer to {self.step.value} in {self._answer_timeout_s:g} s"
            )
            self._associate(now)
        elif self._poll_at is not None and now >= self._poll_at and self.step is Step.IDLE:
            self._poll(now)  # late, if the last answer took longer than the period

    def _associate(self, now: float) -> None:
        self.step, self.bed_id = Step.ASSOCIATING, DEFAULT_BED_ID
        self._poll_at = self._ack_at = None
        self._answered = self._ack_wanted = self._poll_wanted = False
        self._send(request(DEFAULT_BED_ID, "ADMIN:ALIVE"))
        self._answer_by = now + self._answer_timeout_s

    def _poll(self, now: float) -> None:
        self.step, self._cycle, self._naks = Step.POLLING, [], 0
        self._send(request(self.bed_id, "MEM:GET"))
        self._poll_at = now + self._poll_s
        self._answer_by = now + self._answer_timeout_s

    def _decode(self, data: bytes) -> list[list[BccRecord]]:
        self._buffer += data
        self._bytes_seen += len(data)
        cycles: list[list[BccRecord]] = []
        while True:
            start = self._buffer.find(SOH)
            self._garbage(len(self._buffer) if start < 0 else start)
            if start < 0:
                return cycles
            # the buffer now starts with a frame's SOH
            end = self._buffer.find(EOT)
            restart = self._buffer.find(SOH, 1, end if end >= 0 else len(self._buffer))
            if restart >= 0:  # a frame cut short by the next one
                self._problem("truncated", f"frame at byte {self._offset}: cut short by an SOH")
                del self._buffer[:restart]
                continue
            if end < 0:
                if len(self._buffer) > MAX_FRAME_BYTES:
                    self._garbage(len(self._buffer))
                return cycles
            offset = self._offset
            wire = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            try:
                frame = parse_frame(wire)
                records = parse_records(frame.information)
            except FrameError as exc:
                self._problem(exc.kind, f"frame at byte {offset}: {exc}")
                if self.step is Step.POLLING and self._naks < NAKS_BEFORE_RESTART:
                    self._naks += 1
                    self._send(NAK)  # the ComDevice sends the block again
                continue
            self.counts["frames"] += 1
            cycle = self._take(frame.bed_id, frame.more_follow, records)
            if cycle is not None:
                cycles.append(cycle)

    def _take(
        self, bed_id: str, more_follow: bool, records: list[BccRecord]
    ) -> list[BccRecord] | None:
        """Move the session on with one checked frame; a complete cycle when it ends one."""
        errors = [r.value or "" for r in records if r.parameter == "GNERR"]
        pump_data = any(r.address != RACK_ADDRESS for r in records)
        if self.step is Step.ASSOCIATING:
            if any(r.parameter == "GNACK" for r in records):
                self.bed_id, self.step = bed_id, Step.IDLE
                self._answer_by, self._poll_wanted = None, True
                return None
            if errors:
                self._problem("device_error", f"ADMIN:ALIVE answered GNERR {errors[0]}")
                return None
            if not pump_data:
                return None
            # The rack is answering a poll this session did not send (a host restarted
            # mid-answer, a capture replayed on its own timing): it is associated, and its
            # pumps are its pumps whoever asked; the session polls from here on.
            self.bed_id, self._poll_wanted = bed_id, True
        if self.step is not Step.POLLING and pump_data:
            self.step, self._cycle = Step.POLLING, []
        if self.step is not Step.POLLING:
            self._problem("unasked", f"a frame while waiting for {self.step.value}")
            return None
        if errors and errors[0] != NO_PUMPS and not pump_data:
            self._problem("device_error", f"MEM:GET answered GNERR {errors[0]}")
        self._cycle += records
        self._answered = self._ack_wanted = True
        if more_follow:
            return None
        self.step = Step.IDLE
        cycle, self._cycle = self._cycle, []
        return cycle

    def _garbage(self, n: int) -> None:
        if n:
            self._problem("garbage_bytes", f"{n} bytes outside any frame", n)
            del self._buffer[:n]

    @property
    def _offset(self) -> int:
        """Where the buffer starts in all the port gave this session's decoder."""
        return self._bytes_seen - len(self._buffer)
