"""A simulated B. Braun SpaceCom: a rack of Space pumps answering a host over BCC.

It plays the ComDevice's side of every exchange the host's session
(``devices.protocols.bcc_session``) has with it, from the facts in
docs/protocols.md:

* ``ADMIN:ALIVE``, under any bed id, is answered ``GNACK`` under the rack's
  own bed id; every later request must carry that id, or it is answered
  ``GNERR 68`` (wrong syntax), as is a frame that fails its checks;
* ``MEM:GET`` is answered one block per pump, bottom slot first, the rack's
  own records (address 50100) in the first; each block but the last ends in
  ETB and the next comes only after the host's ACK; a NAK has the last block
  sent again; a new request instead of an ACK starts the answer afresh;
  with no pump in the rack the answer is ``GNERR 11``;
* before a request was answered, and after an answer is complete, it says
  nothing: the ComDevice talks only when asked.

The pumps follow a scenario's titration schedules: each of the scenario's
infusions is one pump, in slots 1, 2, ... of the first pillar, in the
scenario's order. A pump whose scenario pump is silent is left out of the
answer, as an unreachable pump is. What it answers is a pure function of
the scenario time it is asked at.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from devices.protocols.bcc_frames import (
    ACK,
    EOT,
    NAK,
    SOH,
    FrameError,
    encode_frame,
    parse_frame,
    stuff,
)
from devices.protocols.bcc_pumps import CONCENTRATION_UNITS, SLOTS
from devices.readings import PumpState
from devices.simulation.scenario import InfusionSpec, InfusionStep, PumpSpec

BED_ID = "ComSystem"
RS = "\x1e"
_UNIT_CODES = {unit: code for code, unit in CONCENTRATION_UNITS.items()}
_STATE_FLAGS = {  # (INM3 pumping, INM2 bolus, the alarm flag set)
    PumpState.RUNNING: ("1", "0", None),
    PumpState.BOLUS: ("1", "1", None),
    PumpState.PAUSED: ("0", "0", None),
    PumpState.OCCLUDED: ("0", "0", "INA3"),
    PumpState.END_OF_INFUSION: ("0", "0", "INA2"),
    PumpState.ALARM: ("0", "0", "INA15"),
}
ALARM_FLAGS = ("INA2", "INA3", "INA15")


class _Slot:
    """One Space pump: its address, the infusion it runs, and when it cannot be reached."""

    def __init__(self, address: str, infusion: InfusionSpec, pump: PumpSpec | None) -> None:
        self.address = address
        self.infusion = infusion
        self.times = [step.t_s for step in infusion.steps]
        self.silent = () if pump is None else pump.silent

    def step_at(self, t_s: float) -> InfusionStep | None:
        i = bisect_right(self.times, t_s)
        return self.infusion.steps[i - 1] if i else None

    def reachable(self, t_s: float) -> bool:
        return not any(start <= t_s < end for start, end in self.silent)

    def records(self, t_s: float) -> list[str]:
        step = self.step_at(t_s)
        time = f"{int(t_s)},{self.address}"
        if step is None:  # no syringe programmed yet
            fields = {"INSOL": "_NV", "INRT": "0", "INDCON": "0", "INM3": "0", "INM2": "0"}
        else:
            pumping, bolus, alarm = _STATE_FLAGS[step.state]
            infusion = self.infusion
            fields = {
                "INSOL": infusion.drug_code,
                "INRT": f"{step.rate_ml_h:.2f}",
                "INDCON": f"{infusion.concentration:g}",
                "INDCONU": _UNIT_CODES.get(infusion.concentration_unit, "0"),
                "INM3": pumping,
                "INM2": bolus,
                **{flag: "1" if flag == alarm else "0" for flag in ALARM_FLAGS},
            }
        fields["DSSTATUS"] = "00051"
        return [f"{time},{name},{value}" for name, value in fields.items()]


class BccRack:
    """The ComDevice's side of a BCC port; ``hear`` takes the host's bytes, returns the answer."""

    def __init__(
        self,
        infusions: Sequence[InfusionSpec],
        pumps: Sequence[PumpSpec] = (),
        *,
        bed_id: str = BED_ID,
        stuffing: bool = False,
    ) -> None:
        if len(infusions) > len(SLOTS):
            raise ValueError(f"a pillar holds {len(SLOTS)} pumps, not {len(infusions)}")
        by_id = {pump.pump_id: pump for pump in pumps}
        self.slots = [
            _Slot(f"5011{slot}", infusion, by_id.get(infusion.pump_id))
            for slot, infusion in zip(SLOTS, infusions, strict=False)
        ]
        self.bed_id = bed_id
        self._stuffing = stuffing
        self._buffer = bytearray()
        self._blocks: list[bytes] = []  # the answer's blocks not yet released by an ACK
        self._last: bytes | None = None  # the block sent last, for a NAK
        self.requests: list[str] = []  # every request heard, for tests and the record

    def hear(self, t_s: float, data: bytes) -> bytes:
        """What the rack sends back at scenario time ``t_s`` to what the host sent."""
        self._buffer += data
        out = bytearray()
        while self._buffer:
            first = self._buffer[0]
            if bytes((first,)) == ACK:
                del self._buffer[:1]
                out += self._next_block()
            elif bytes((first,)) == NAK:
                del self._buffer[:1]
                out += self._send(self._last) if self._last is not None else b""
            elif first == SOH:
                end = self._buffer.find(EOT)
                if end < 0:
                    break  # the rest of the request has not come yet
                wire = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                out += self._request(t_s, wire)
            else:
                del self._buffer[:1]  # noise between requests: a ComDevice ignores it
        return bytes(out)

    def _request(self, t_s: float, wire: bytes) -> bytes:
        self._blocks, self._last = [], None  # a new request ends any answer under way
        try:
            frame = parse_frame(wire)
        except FrameError:
            return self._send(self._frame(t_s, "GNERR,68"))
        self.requests.append(frame.information)
        if frame.information == "ADMIN:ALIVE":
            return self._send(self._frame(t_s, "GNACK,0"))
        if frame.bed_id != self.bed_id or frame.information != "MEM:GET":
            return self._send(self._frame(t_s, "GNERR,68"))
        slots = [slot for slot in self.slots if slot.reachable(t_s)]
        if not slots:
            return self._send(self._frame(t_s, "GNERR,11"))
        rack = [f"{int(t_s)},50100,FMNOR,1", f"{int(t_s)},50100,FMSTAT,00051"]
        informations = [RS.join(rack + slots[0].records(t_s))]
        informations += [RS.join(slot.records(t_s)) for slot in slots[1:]]
        self._blocks = [
            encode_frame(self.bed_id, info, more_follow=i < len(informations) - 1)
            for i, info in enumerate(informations)
        ]
        return self._next_block()

    def _frame(self, t_s: float, rack_record: str) -> bytes:
        return encode_frame(self.bed_id, f"{int(t_s)},50100,{rack_record}")

    def _next_block(self) -> bytes:
        if not self._blocks:
            return b""  # an ACK after the last block: nothing more to say
        return self._send(self._blocks.pop(0))

    def _send(self, plain: bytes) -> bytes:
        self._last = plain
        return stuff(plain) if self._stuffing else plain
