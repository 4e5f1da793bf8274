"""B. Braun Space pumps over BCC: each pump of the rack as the monitor's pump reports.

The session (``bcc_session``) polls the rack; this adapter turns each
complete answer into one ``PumpReport`` per pump with a drug (a Space pump
has one channel), or a ``PumpHeartbeat`` for a pump that has none, so the
rest of the monitor reads a rack exactly as it reads this project's own
pump sentences. A pump is named by where it sits, ``<pillar>-<slot>``
(``1-3``: first pillar, third slot from the bottom; slots 10-24 are
``A``-``O`` as B. Braun writes them).

What is read, per pump (docs/protocols.md gives the sources):

* ``INSOL``, the drug's name in the pump's library: the drug code the
  drug table and ``[drug_names]`` look up;
* ``INDCON`` and ``INDCONU``: the concentration and its unit code. A pump
  programmed in mL/h sends 0: the concentration is then unknown, never 0;
* ``INRT``, the rate in mL/h;
* the state: ``RUNSTATE`` (BCC 3.3x: stop, run, alarm bits) where the rack
  sends it, else the flags ``INM2`` (bolus), ``INM3`` (pumping) and the
  alarms ``INAx``; ``DSSTATUS 00050`` is a pump switched off.

A pump whose rate cannot be read is left out of that cycle, as if it had
not answered: its last report must not stand for a rate nobody knows, and
after ``comm_loss_s`` of that the monitor says the pump is lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from devices.protocols.bcc_frames import BccRecord
from devices.protocols.bcc_session import RACK_ADDRESS, BccSession
from devices.protocols.decoding import Decoder, Problem
from devices.readings import PumpHeartbeat, PumpReport, PumpSentence, PumpState

DEFAULT_POLL_S = 2.0  # as often as this project's own pumps report, so comm_loss_s reads alike
MAX_RATE_ML_H = 1800.0  # INRT's range in the specification
SLOTS = "123456789ABCDEFGHIJKLMNO"  # bottom to top of a pillar
# INDCONU codes of the concentrations the dose arithmetic takes (B. Braun's unit table).
CONCENTRATION_UNITS = {"30": "ng/mL", "31": "mg/mL", "32": "ug/mL", "36": "U/mL"}
# Pump alarms (INAx = 1) and the state they put the pump in; INA11 and INA12 are
# pre-alarms, during which the pump still runs.
ALARM_STATES = {
    "INA3": PumpState.OCCLUDED,  # pressure
    "INA2": PumpState.END_OF_INFUSION,  # syringe empty
    "INA7": PumpState.END_OF_INFUSION,  # end of volume
    **{f"INA{n}": PumpState.ALARM for n in (1, 5, 6, 8, 9, 13, 14, 15, 16)},
}
SWITCHED_OFF = "00050"
RUNSTATE_RUN, RUNSTATE_ALARM = 1 << 1, 1 << 2
NO_DRUG_NAME = "(no drug name)"


def pump_name(address: str) -> str | None:
    """``50113`` -> ``1-3``; the 6-character form some racks send (``501110``) -> ``1-A``."""
    if not address.startswith("501") or len(address) not in (5, 6):
        return None
    pillar, slot = address[3], address[4:]
    if pillar not in "123":
        return None
    if len(slot) == 2:
        if not slot.isdigit() or not 1 <= int(slot) <= len(SLOTS):
            return None
        slot = SLOTS[int(slot) - 1]
    return f"{pillar}-{slot}" if slot in SLOTS else None


class BccPumpAdapter(Decoder[PumpSentence]):
    """A ComDevice's port: its session, and each poll's answer as pump reports."""

    protocol = "bcc"

    def __init__(
        self,
        *,
        poll_s: float = DEFAULT_POLL_S,
        answer_timeout_s: float = 5.0,
        pump_id_prefix: str = "",
    ) -> None:
        """``pump_id_prefix`` (``left:``) tells this rack's ``1-3`` from another rack's."""
        super().__init__()
        self.pump_id_prefix = pump_id_prefix
        self.session = BccSession(poll_s=poll_s, answer_timeout_s=answer_timeout_s)
        self.counts = self.session.counts  # one tally for the port
        self._sequences: dict[str, int] = {}

    def _decode(self, data: bytes) -> list[PumpSentence]:
        return [s for cycle in self.session.feed(data) for s in self._sentences(cycle)]

    def open_session(self, now: float) -> None:
        self.session.open_session(now)

    def next_due(self) -> float | None:
        return self.session.next_due()

    def on_time(self, now: float) -> None:
        self.session.on_time(now)

    def take_outgoing(self) -> bytes:
        return self.session.take_outgoing()

    def take_problems(self) -> list[Problem]:
        return self.session.take_problems() + super().take_problems()

    def _sentences(self, cycle: Iterable[BccRecord]) -> list[PumpSentence]:
        pumps: dict[str, dict[str, str | None]] = {}
        for record in cycle:
            if record.address == RACK_ADDRESS:
                continue
            name = pump_name(record.address)
            if name is None:
                self._problem("bad_address", f"record for address {record.address!r}")
                continue
            pumps.setdefault(self.pump_id_prefix + name, {})[record.parameter] = record.value
        sentences = []
        for name, fields in pumps.items():
            sentence = self._sentence(name, fields)
            if sentence is not None:
                sentences.append(sentence)
        return sentences

    def _sentence(self, pump: str, fields: dict[str, str | None]) -> PumpSentence | None:
        state = _state(fields)
        rate = _number(fields.get("INRT"))
        drug = (fields.get("INSOL") or "").strip()
        if not drug and state is not PumpState.RUNNING:
            return PumpHeartbeat(pump, self._next_sequence(pump))
        if rate is None or not 0.0 <= rate <= MAX_RATE_ML_H:
            self._problem(
                "bad_value",
                f"pump {pump}: rate {fields.get('INRT')!r} is not 0-{MAX_RATE_ML_H:g} mL/h; "
                "pump left out of this poll",
            )
            return None
        concentration = _number(fields.get("INDCON"))
        unit_code = fields.get("INDCONU") or ""
        return PumpReport(
            pump_id=pump,
            channel=1,
            sequence=self._next_sequence(pump),
            drug_code=drug or NO_DRUG_NAME,
            concentration=concentration if concentration and concentration > 0.0 else None,
            concentration_unit=CONCENTRATION_UNITS.get(unit_code, f"BCC unit {unit_code}"),
            rate_ml_h=rate,
            state=state,
        )

    def _next_sequence(self, pump: str) -> int:
        sequence = self._sequences.get(pump, -1) + 1
        self._sequences[pump] = sequence % (1 << 16)
        return self._sequences[pump]


def _state(fields: dict[str, str | None]) -> PumpState:
    """What the pump is doing, from the richest fields the rack sends."""
    if fields.get("DSSTATUS") == SWITCHED_OFF:
        return PumpState.PAUSED
    runstate = fields.get("RUNSTATE")
    if runstate is not None and runstate.isdigit():
        bits = int(runstate)
        if bits & RUNSTATE_ALARM:
            return PumpState.OCCLUDED if fields.get("INA3") == "1" else PumpState.ALARM
        return PumpState.RUNNING if bits & RUNSTATE_RUN else PumpState.PAUSED
    for flag, state in ALARM_STATES.items():
        if fields.get(flag) == "1":
            return state
    if fields.get("INM3") == "1":
        return PumpState.BOLUS if fields.get("INM2") == "1" else PumpState.RUNNING
    return PumpState.PAUSED


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None
