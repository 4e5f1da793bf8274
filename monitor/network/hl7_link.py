"""HL7 v2 to the hospital's interface engine over MLLP (python-hl7's asyncio streams).

One message at a time, each waiting for its accept acknowledgement: a row
is confirmed only by an ``AA`` (or ``CA``) whose MSA-2 names its message
control id. A negative answer (AE, AR), a wrong id, silence past
``hl7.ack_timeout_s`` or a dropped connection leaves the row unconfirmed: the
``Forwarder`` sends it again from the log, with the same control id, after a
pause, and nothing after it goes first. A message the engine keeps refusing
therefore holds the queue, visibly (the reason is logged), rather than being
dropped from the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import hl7
from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, open_hl7_connection

from monitor.configuration.network_settings import Hl7Settings
from monitor.log.reader import LogReader, LogRow
from monitor.network.hl7_messages import Sender, alarm_report, observation_report

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
ACCEPTED = ("AA", "CA")


class Hl7Link:
    """Observations (PCD-01) and alarm transitions (PCD-04) to one MLLP listener."""

    name = "hl7"

    def __init__(self, settings: Hl7Settings, sender: Sender, reader: LogReader) -> None:
        self.settings = settings
        self.sender = sender
        self.failure: str | None = None  # why the last rows were not confirmed
        self._reader = reader
        self._admissions: dict[int | None, int | None] = {}
        self._last_observation_utc = float("-inf")
        self._loop = asyncio.new_event_loop()
        self._streams: tuple[HL7StreamReader, HL7StreamWriter] | None = None

    @property
    def where(self) -> str:
        return f"hl7 interface engine {self.settings.host}:{self.settings.port}"

    # ------------------------------------------------------------- Link
    def ready(self) -> bool:
        if self._streams is not None:
            return True
        try:
            self._streams = self._loop.run_until_complete(
                asyncio.wait_for(
                    open_hl7_connection(self.settings.host, self.settings.port),
                    CONNECT_TIMEOUT_S,
                )
            )
        except (OSError, TimeoutError) as exc:
            self.failure = f"{self.where}: cannot connect ({exc or type(exc).__name__})"
            return False
        log.info("%s: connected", self.where)
        return True

    def send(self, rows: Sequence[LogRow]) -> int:
        """Rows confirmed, from the first; rows with nothing to report count as confirmed."""
        for n, row in enumerate(rows):
            message = self._message(row)
            if message is None:
                continue
            try:
                answer = self._loop.run_until_complete(self._exchange(message.to_er7()))
            except (OSError, TimeoutError, EOFError, InvalidBlockError, ValueError) as exc:
                self.failure = f"{self.where}: no acknowledgement ({exc or type(exc).__name__})"
                self._drop_connection()
                return n
            code, acknowledged_id, text = answer
            expected = self.sender.control_id(row)
            if code not in ACCEPTED or acknowledged_id != expected:
                self.failure = (
                    f"{self.where} answered {code or 'nothing'} to {expected}"
                    + (f" (for {acknowledged_id})" if acknowledged_id != expected else "")
                    + (f": {text}" if text else "")
                )
                return n
            if row.kind == "trend":
                self._last_observation_utc = row.utc
        return len(rows)

    def idle(self) -> None:
        pass  # nothing to tidy: the connection stays open for the next rows

    def close(self) -> None:
        self._drop_connection()
        self._loop.close()

    # ---------------------------------------------------------- internals
    def _message(self, row: LogRow):
        admission = self._admission(row.boot)
        if row.kind == "alarm":
            return alarm_report(self.sender, row, admission)
        if row.utc - self._last_observation_utc < self.settings.observation_interval_s:
            return None  # the engine takes one observation report per interval
        return observation_report(self.sender, row, admission)

    def _admission(self, boot: int | None) -> int | None:
        if boot not in self._admissions:
            self._admissions[boot] = self._reader.admission_of(boot)
        return self._admissions[boot]

    async def _exchange(self, er7: str) -> tuple[str, str, str]:
        assert self._streams is not None
        reader, writer = self._streams
        writer.writemessage(er7)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readmessage(), self.settings.ack_timeout_s)
        return _acknowledgement(answer)

    def _drop_connection(self) -> None:
        if self._streams is not None:
            _, writer = self._streams
            writer.close()
            self._streams = None


def _acknowledgement(answer: hl7.Message) -> tuple[str, str, str]:
    """MSA-1 (the code), MSA-2 (the control id acknowledged) and MSA-3 or ERR's text."""
    try:
        msa = answer.segment("MSA")
    except KeyError:
        return "", "", "the answer has no MSA segment"
    code = str(msa[1]) if len(msa) > 1 else ""
    acknowledged = str(msa[2]) if len(msa) > 2 else ""
    text = str(msa[3]) if len(msa) > 3 else ""
    return code, acknowledged, text
