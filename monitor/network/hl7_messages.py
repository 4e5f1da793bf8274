"""HL7 v2.6 messages of the IHE PCD profiles, built from log rows with hl7apy (never by hand).

- A trend row becomes a PCD-01 observation report, ``ORU^R01``: MAP,
  systolic, diastolic and pulse rate under the arterial-pressure channel,
  NEE under a second (derived) device; OBX-3 the IEEE 11073 code, OBX-4 the
  containment path MDS.VMD.Channel.Metric, OBX-6 the unit, OBX-18 the
  monitor's EUI-64.
- An alarm row becomes a PCD-04 alarm report, ``ORU^R40`` (ACM profile):
  the event (196616 MDC_EVT_ALARM, our alarm named in a local code, the
  priority in OBX-8), its
  source (for a physiological alarm the MAP that caused it), event phase,
  alarm state, inactivation state, priority and alert type, each an OBX.

Every message is validated against the v2.6 structure before it is sent;
MSH-10, the message control id, is the log row's identity, so the interface
engine can tell a repeat from a new message. docs/network.md lists the fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hl7apy.core import Message

from monitor.log.reader import LogRow
from monitor.network.bed_messages import OBSERVATIONS, category

VERSION = "2.6"
LOCAL_CODING = "99MON"  # HL7's convention for a locally defined coding system
PCD01_PROFILE = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
PCD04_PROFILE = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4^ISO"

# The channel each observation belongs to: MDS 1, VMD 1 (arterial pressure) channel 1,
# VMD 2 (vasopressor dose, derived from the pumps) channel 1.
CONTAINMENT = {
    "map": "1.1.1.150035",
    "systolic": "1.1.1.150033",
    "diastolic": "1.1.1.150034",
    "pulse_rate": "1.1.1.149522",
    "nee": "1.2.1.1",
}
UNIT_NAMES = {
    266016: "MDC_DIM_MMHG",
    264864: "MDC_DIM_BEAT_PER_MIN",
    265619: "MDC_DIM_MICRO_G_PER_KG_PER_MIN",
}

ALARM_PRIORITY = {"high": "PH", "medium": "PM", "low": "PL", "info": "PN"}
# transition -> (event phase, alarm state, inactivation state); None: not reported
ALARM_PHASES: dict[str, tuple[str, str, str] | None] = {
    "raised": ("start", "active", "enabled"),
    "resumed": ("continue", "active", "enabled"),  # the same alarm, after a restart
    "acknowledged": ("continue", "active", "acknowledged"),
    "audio_paused": ("continue", "active", "audio-paused"),
    "audio_resumed": ("continue", "active", "enabled"),
    "escalated": ("continue", "active", "enabled"),
    "condition_ended": ("continue", "latched", "enabled"),
    "cleared": ("end", "inactive", "enabled"),
    "annunciated": None,  # the same moment as "raised", for the bedside's outputs
    "suppressed": None,  # never raised: an artifact, not an alarm
}


@dataclass(frozen=True)
class Sender:
    """Who sends: MSH-3/4, the bed's location (PV1-3) and the device's EUI-64 (OBX-18)."""

    application: str
    facility: str
    unit: str
    bed: str
    eui64: str
    log_id: str

    def control_id(self, row: LogRow) -> str:
        """MSH-10: the row's identity in this log (short, stable across resends)."""
        table = {"trend": "T", "alarm": "A"}[row.kind]
        return f"{self.log_id.replace('-', '')[:12]}{table}{row.rowid}"


def device_eui64(node: int | None = None) -> str:
    """The monitor's EUI-64 from its network interface's MAC (FFFE inserted, IEEE rule)."""
    mac = uuid.getnode() if node is None else node
    octets = mac.to_bytes(6, "big")
    return (octets[:3] + b"\xff\xfe" + octets[3:]).hex().upper()


def hl7_time(utc: float) -> str:
    return datetime.fromtimestamp(utc, UTC).strftime("%Y%m%d%H%M%S.%f")[:-3] + "+0000"


def observation_report(sender: Sender, row: LogRow, admission: int | None) -> Message | None:
    """PCD-01 ORU^R01 for a trend row; None when it knows no value at all."""
    values = [
        (name, row.detail[column], code)
        for name, (column, code) in OBSERVATIONS.items()
        if row.detail[column] is not None
    ]
    if not values:
        return None
    message = _message(sender, row, "ORU^R01^ORU_R01", PCD01_PROFILE, admission)
    order = message.oru_r01_patient_result.add_group("ORU_R01_ORDER_OBSERVATION")
    _obr(order, sender, row, "182777000^monitoring of patient^SCT")
    for n, (name, value, code) in enumerate(values, start=1):
        identifier = (
            f"{code.code}^{code.reference_id}^MDC"
            if code.code is not None
            else f"NEE^Norepinephrine-equivalent dose^{LOCAL_CODING}"
        )
        _obx(
            order, n, "NM", identifier, CONTAINMENT[name], f"{value:.3g}" if name == "nee"
            else f"{value:.1f}", sender, row,
            unit=f"{code.unit_code}^{UNIT_NAMES[code.unit_code]}^MDC",
        )  # fmt: skip
    return message


def alarm_report(sender: Sender, row: LogRow, admission: int | None) -> Message | None:
    """PCD-04 ORU^R40 for an alarm transition; None for one the profile has no phase for."""
    phases = ALARM_PHASES.get(row.detail["transition"])
    if phases is None:
        return None
    phase, state, inactivation = phases
    message = _message(sender, row, "ORU^R40^ORU_R01", PCD04_PROFILE, admission)
    order = message.oru_r01_patient_result.add_group("ORU_R01_ORDER_OBSERVATION")
    _obr(order, sender, row, "196616^MDC_EVT_ALARM^MDC", alarm_identity(sender, row))
    kind = "SP" if category(row.name) == "physiological" else "ST"
    priority = ALARM_PRIORITY.get(row.priority, "PN")
    event = f"{row.name}^{_text(row.message)}^{LOCAL_CODING}"
    _obx(order, 1, "CWE", "196616^MDC_EVT_ALARM^MDC", "1.1.1.0.1", event, sender, row,
         flags=priority)  # fmt: skip
    map_mmhg = row.detail.get("map_mmhg")
    if kind == "SP" and map_mmhg is not None:
        _obx(order, 2, "NM", "150035^MDC_PRESS_BLD_ART_MEAN^MDC", "1.1.1.150035.2",
             f"{map_mmhg:.1f}", sender, row, unit="266016^MDC_DIM_MMHG^MDC")  # fmt: skip
    else:
        _obx(order, 2, "ST", "68480^MDC_ATTR_ALERT_SOURCE^MDC", "1.1.1.0.2",
             "monitor" if kind == "SP" else _source(row.name), sender, row)  # fmt: skip
    for n, (code, value) in enumerate(
        (
            ("68481^MDC_ATTR_EVENT_PHASE^MDC", phase),
            ("68482^MDC_ATTR_ALARM_STATE^MDC", state),
            ("68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC", inactivation),
            ("68484^MDC_ATTR_ALARM_PRIORITY^MDC", priority),
            ("68485^MDC_ATTR_ALERT_TYPE^MDC", kind),
        ),
        start=3,
    ):
        _obx(order, n, "ST", code, f"1.1.1.0.{n}", value, sender, row)
    return message


def _source(alarm: str) -> str:
    """What a technical alarm is about: the device or part of the monitor."""
    for prefix in ("transducer", "pump", "log", "alarm_output", "serial"):
        if alarm.startswith(prefix):
            return prefix
    return "monitor"


def _text(message: str) -> str:
    """Free text inside a field: no HL7 delimiters, no line breaks."""
    for ch in "|^~\\&\r\n":
        message = message.replace(ch, " ")
    return message[:199]


def _message(
    sender: Sender, row: LogRow, kind: str, profile: str, admission: int | None
) -> Message:
    message = Message("ORU_R01", version=VERSION)
    message.msh.msh_3 = sender.application
    message.msh.msh_4 = sender.facility or sender.unit
    message.msh.msh_7 = hl7_time(row.utc)
    message.msh.msh_9 = kind
    message.msh.msh_10 = sender.control_id(row)
    message.msh.msh_11 = "P"
    message.msh.msh_12 = VERSION
    message.msh.msh_15 = "AL"  # accept acknowledgements, always
    message.msh.msh_16 = "NE"  # no application acknowledgements
    message.msh.msh_21 = profile
    patient = message.add_group("ORU_R01_PATIENT_RESULT").add_group("ORU_R01_PATIENT")
    # No hospital identifier reaches a bedside without ADT: the admission, local to this
    # bed, and the bed's location (PV1-3) are what the engine can bind on.
    patient.pid.pid_3 = f"{sender.unit}-{sender.bed}-A{admission or 0}^^^{sender.application}^PI"
    patient.pid.pid_5 = "^^^^^^U"
    visit = patient.add_group("ORU_R01_VISIT")
    visit.pv1.pv1_2 = "I"
    visit.pv1.pv1_3 = f"{sender.unit}^^{sender.bed}"
    return message


def alarm_identity(sender: Sender, row: LogRow) -> str:
    """OBR-3 of an alarm report: one alarm's identity, on every report from start to end.

    A row written before alarms had ids has only its own identity.
    """
    alarm_id = row.detail.get("alarm_id")
    return sender.control_id(row) if alarm_id is None else str(alarm_id)


def _obr(order, sender: Sender, row: LogRow, service: str, filler: str | None = None) -> None:
    order.obr.obr_1 = "1"
    order.obr.obr_3 = f"{filler or sender.control_id(row)}^{sender.application}"
    order.obr.obr_4 = service
    order.obr.obr_7 = hl7_time(row.utc)


def _obx(order, n: int, value_type: str, identifier: str, sub_id: str, value: str,
         sender: Sender, row: LogRow, *, unit: str = "", flags: str = "") -> None:  # fmt: skip
    obx = order.add_group("ORU_R01_OBSERVATION").obx
    obx.obx_1 = str(n)
    obx.obx_2 = value_type
    obx.obx_3 = identifier
    obx.obx_4 = sub_id
    obx.obx_5 = value
    if unit:
        obx.obx_6 = unit
    if flags:
        obx.obx_8 = flags
    obx.obx_11 = "F"
    obx.obx_14 = hl7_time(row.utc)
    obx.obx_18 = f"{sender.eui64}^EUI-64"
