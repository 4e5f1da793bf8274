"""A pump that goes quiet is one alarm under one name, however its loss was noticed.

The port can fall silent (no valid frame) or only its pump can (the port
delivers, the pump's reports stop); both name the pump by its port and its
id, so the alarm a nurse sees raised is the one she sees cleared.
"""

from __future__ import annotations

from monitor.clinical.engine import ClinicalEngine, TimelineEntry
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import default_config
from monitor.edge.input_items import DeviceEvent, DeviceEventKind

SETTINGS = ClinicalSettings.from_config(default_config())
FS = 125.0
WEIGHT_KG = 80.0


def event(t_s: float, kind: DeviceEventKind, role: str = "pump1", **detail: str) -> DeviceEvent:
    return DeviceEvent(t_s, role, kind, f"{kind.value} on {role}", detail)


def pump_alarm(entries: list[TimelineEntry]) -> list[tuple[str, str]]:
    return [(e.kind, e.message) for e in entries if e.name == "pump_comm_lost"]


def test_a_lost_port_and_its_silent_pump_name_the_pump_one_way_from_raise_to_clear() -> None:
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    timeline = engine.device_event(event(1.0, DeviceEventKind.PUMP_HEARD, pump="P1"))
    timeline += engine.device_event(event(20.0, DeviceEventKind.COMM_LOST))
    timeline += engine.device_event(event(21.0, DeviceEventKind.PUMP_SILENT, pump="P1"))
    timeline += engine.advance(60.0)
    timeline += engine.device_event(event(61.0, DeviceEventKind.COMM_RESTORED))
    timeline += engine.advance(62.0)
    timeline += engine.device_event(event(63.0, DeviceEventKind.PUMP_HEARD, pump="P1"))
    seen = pump_alarm(timeline)
    assert [kind for kind, _ in seen][0] == "raised" and seen[-1][0] == "cleared"
    assert all("No report from pump1 (P1):" in message for _, message in seen), seen


def test_a_second_pump_on_a_delivering_port_is_named_alone() -> None:
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    timeline = engine.device_event(event(1.0, DeviceEventKind.PUMP_HEARD, pump="P1"))
    timeline += engine.device_event(event(1.0, DeviceEventKind.PUMP_HEARD, pump="P2"))
    timeline += engine.device_event(event(30.0, DeviceEventKind.PUMP_SILENT, pump="P2"))
    timeline += engine.advance(60.0)
    [(kind, message)] = pump_alarm(timeline)[:1]
    assert kind == "raised" and "No report from pump1 (P2):" in message


def test_a_port_lost_before_any_pump_was_heard_is_named_by_its_port() -> None:
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    timeline = engine.device_event(event(20.0, DeviceEventKind.COMM_LOST, role="pump2"))
    timeline += engine.advance(60.0)
    [(kind, message)] = pump_alarm(timeline)[:1]
    assert kind == "raised" and "No report from pump2:" in message


def test_a_rack_that_never_answers_is_named_with_the_step_it_ignores() -> None:
    """A device that must be asked: the alarm says which request goes unanswered."""
    engine = ClinicalEngine(SETTINGS, FS, WEIGHT_KG)
    timeline = engine.device_event(
        event(11.0, DeviceEventKind.COMM_LOST, role="rack",
              unanswered="no answer to ADMIN:ALIVE in 5 s")
    )  # fmt: skip
    timeline += engine.advance(60.0)
    [(kind, message)] = pump_alarm(timeline)[:1]
    assert kind == "raised" and "No report from rack:" in message
    assert message.endswith("; rack: no answer to ADMIN:ALIVE in 5 s")
