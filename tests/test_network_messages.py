"""What a bed publishes and what the central station makes of it: payloads, ids, the board."""

from __future__ import annotations

import json

import pytest

from monitor.log.reader import LogRow, iso_utc
from monitor.network import bed_messages
from monitor.network.bed_messages import ActiveAlarms, BedIdentity
from monitor.network.central_board import Board
from monitor.screens.central_view import CentralView, board_cells, plain_lines, tile_lines

BED = BedIdentity("icu", "bed07", "log-uuid")
UTC = 1.8e9


def trend(rowid: int, map_mmhg: float | None = 63.24, nee: float | None = 0.31) -> LogRow:
    detail = {
        "map_mmhg": map_mmhg,
        "systolic_mmhg": 92.0,
        "diastolic_mmhg": 48.0,
        "pulse_rate_bpm": 104.0,
        "clean_coverage": 0.9,
        "artifact_coverage": 0.0,
        "nee": nee,
        "no_pulse": 0,
    }
    return LogRow(UTC + rowid, 1, 10.0 * rowid, "trend", "hypotensive", "", "", detail, rowid)


def alarm(
    rowid: int,
    name: str,
    transition: str,
    priority: str = "medium",
    boot: int = 1,
    alarm_id: str | None = None,
    evidence: dict | None = None,
):
    detail = {
        "transition": transition, "map_mmhg": 60.0, "nee": 0.3, "evidence": evidence or {},
        "alarm_id": alarm_id,
    }  # fmt: skip
    return LogRow(UTC + rowid, boot, float(rowid), "alarm", name, priority, "why", detail, rowid)


def published(message: bed_messages.Message) -> tuple[str, bytes]:
    return f"monitor/icu/bed07/{message.topic}", json.dumps(message.payload).encode()


def test_numerics_carry_units_and_ieee_11073_codes_and_null_when_unknown():
    message = bed_messages.numerics(BED, trend(12, map_mmhg=None))
    assert message.topic == "numerics" and message.retained
    observations = message.payload["observations"]
    assert observations["map"] == {
        "value": None,
        "unit": "mmHg",
        "unit_code": 266016,
        "code": 150035,
        "reference_id": "MDC_PRESS_BLD_ART_MEAN",
    }
    assert observations["systolic"]["code"] == 150033
    assert observations["diastolic"]["code"] == 150034
    assert observations["pulse_rate"]["code"] == 149522
    assert observations["nee"]["code"] is None  # no 11073 term: a local one
    assert observations["nee"]["unit_code"] == 265619


def test_a_message_id_is_the_rows_identity_in_its_log():
    first = bed_messages.alarm_event(BED, alarm(5, "hypotension", "raised"))
    again = bed_messages.alarm_event(BED, alarm(5, "hypotension", "raised"))
    other = bed_messages.alarm_event(BED, alarm(6, "hypotension", "cleared"))
    assert first.payload["id"] == again.payload["id"] == "log-uuid:alarms:5"
    assert other.payload["id"] != first.payload["id"]
    assert not first.retained  # transitions are events; the standing set is retained


def test_the_standing_alarms_follow_the_transitions_most_urgent_first():
    active = ActiveAlarms()
    for row in [
        alarm(1, "hypotension", "raised"),
        alarm(2, "abp_artifact", "raised", "low"),
        alarm(3, "refractory_hypotension", "raised", "high"),
        alarm(4, "hypotension", "acknowledged"),
        alarm(5, "abp_artifact", "cleared", "low"),
        alarm(6, "refractory_hypotension", "condition_ended", "high"),
    ]:
        active.apply(row)
    standing = active.message(BED, "x", UTC).payload["active"]
    assert [a["alarm"] for a in standing] == ["refractory_hypotension", "hypotension"]
    assert standing[0]["condition_active"] is False and standing[0]["category"] == "physiological"
    assert standing[1]["acknowledged"] is True


def test_an_alarm_from_a_log_before_alarm_ids_goes_at_a_restart():
    active = ActiveAlarms()
    active.apply(alarm(1, "hypotension", "raised"))
    active.apply(alarm(2, "pump_comm_lost", "raised", boot=2))
    assert list(active.standing) == ["pump_comm_lost"]


def test_an_alarm_resumed_after_a_restart_stands_as_the_same_alarm_since_its_raise():
    active = ActiveAlarms()
    active.apply(alarm(1, "refractory_hypotension", "raised", "high", alarm_id="a-1"))
    active.apply(alarm(2, "hypotension", "raised", alarm_id="a-2"))
    active.new_boot(2)  # the restart: both still stand, awaiting the new boot's verdict
    assert [a.alarm_id for a in active.standing.values()] == ["a-1", "a-2"]

    active.apply(alarm(3, "refractory_hypotension", "resumed", "high", boot=2, alarm_id="a-1",
                       evidence={"raised_utc": UTC + 1, "condition_active": True}))  # fmt: skip
    active.apply(alarm(4, "hypotension", "cleared", boot=2, alarm_id="a-2"))

    (standing,) = active.message(BED, "x", UTC + 5).payload["active"]
    assert standing["alarm_id"] == "a-1" and standing["alarm"] == "refractory_hypotension"
    assert standing["since"] == iso_utc(UTC + 1)  # the first raise, not the resume


def test_an_alarm_event_names_its_alarm():
    event = bed_messages.alarm_event(BED, alarm(7, "hypotension", "resumed", alarm_id="a-9"))
    assert event.payload["alarm_id"] == "a-9" and event.payload["transition"] == "resumed"


def test_the_board_builds_a_tile_per_bed_from_retained_messages():
    board = Board()
    board.receive(*published(bed_messages.status(BED, True, UTC, "test")), now=100.0)
    board.receive(*published(bed_messages.numerics(BED, trend(3))), now=101.0)
    active = ActiveAlarms()
    active.apply(alarm(4, "refractory_hypotension", "raised", "high"))
    board.receive(*published(active.message(BED, "x", UTC)), now=102.0)
    (tile,) = board.ordered(now=103.0)
    assert (tile.unit, tile.bed, tile.online) == ("icu", "bed07", True)
    assert tile.map_mmhg == pytest.approx(63.24) and tile.nee == pytest.approx(0.31)
    assert tile.highest_alarm()["alarm"] == "refractory_hypotension"
    assert tile.silent_s(103.0) == pytest.approx(1.0)


def test_beds_are_sorted_by_urgency_and_a_silent_bed_is_marked():
    board = Board()
    quiet, alarming, silent = (BedIdentity("icu", b, "l") for b in ("bed01", "bed02", "bed03"))
    for bed, t in ((quiet, 100.0), (alarming, 100.0), (silent, 10.0)):
        board.receive(*_at(bed, bed_messages.numerics(bed, trend(1))), now=t)
    active = ActiveAlarms()
    active.apply(alarm(2, "map_critically_low", "raised", "high"))
    board.receive(*_at(alarming, active.message(alarming, "x", UTC)), now=100.0)
    tiles = board.ordered(now=101.0)
    assert [t.bed for t in tiles] == ["bed02", "bed03", "bed01"]
    assert "SILENT" in tile_lines(tiles[1], 101.0)[0]
    assert "SILENT" in plain_lines(tiles, 101.0)[1]


def test_a_repeated_alarm_event_is_not_a_new_alarm():
    board = Board()
    message = published(bed_messages.alarm_event(BED, alarm(9, "hypotension", "raised")))
    assert board.receive(*message, now=1.0) is not None
    assert board.receive(*message, now=2.0) is None
    assert board.duplicates == 1


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        ("monitor/icu/bed07/numerics", b"{not json", "not JSON"),
        ("monitor/icu/bed07/numerics", b"[1, 2]", "not a JSON object"),
        ("monitor/icu/bed07/numerics", b'{"v": 99}', "unknown schema version"),
        ("monitor/icu/bed07/graffiti", b"{}", "unknown topic"),
        ("elsewhere/icu/bed07/numerics", b"{}", "topic outside the unit tree"),
        ("monitor/icu/bed+/numerics", b"{}", "topic outside the unit tree"),
        (
            "monitor/icu/bed07/numerics",
            b'{"v": 1, "unit": "icu", "bed": "bed08", "id": "x"}',
            "unit or bed differs from the topic",
        ),
        (
            "monitor/icu/bed07/numerics",
            b'{"v": 1, "unit": "icu", "bed": "bed07", "id": "x", "observations": '
            b'{"map": {"value": "low"}}}',
            "missing or mistyped field 'map'",
        ),
        (
            "monitor/icu/bed07/status",
            b'{"v": 1, "unit": "icu", "bed": "bed07", "id": "x", "online": 1}',
            "missing or mistyped field 'online'",
        ),
    ],
)
def test_malformed_messages_are_ignored_and_counted_by_reason(topic, raw, reason):
    board = Board()
    assert board.receive(topic, raw, now=1.0) is None
    assert board.rejected == {reason: 1}
    assert board.tiles == {}


def test_the_board_draws_tiles_in_a_grid_that_fits_the_terminal():
    board = Board()
    for n in range(1, 8):
        bed = BedIdentity("icu", f"bed{n:02d}", "l")
        board.receive(*_at(bed, bed_messages.numerics(bed, trend(1))), now=5.0)
    view = CentralView(board.ordered(6.0), 6.0, "central station: test; 7 beds")
    cells = board_cells(view, 24, 100)
    assert cells[0].text.startswith("central station")
    names = [c for c in cells if c.text.startswith("icu/bed")]
    assert len(names) == 7 and len({c.col for c in names}) == 3  # three tiles across 100 columns
    assert all(c.row < 24 and c.col + len(c.text) <= 100 for c in cells)
    assert cells[-1].row == 23 and "q quit" in cells[-1].text


def _at(bed: BedIdentity, message: bed_messages.Message) -> tuple[str, bytes]:
    return f"monitor/{bed.unit}/{bed.bed}/{message.topic}", json.dumps(message.payload).encode()
