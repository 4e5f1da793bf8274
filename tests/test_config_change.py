"""Changing settings and patients: checked against the bounds, atomic, audited, or refused.

Unit defaults (biomedical staff, ``--unit``) and bedside adjustments (only
settings marked ``bedside = true``, kept in ``bedside.toml`` beside the log)
are kept apart; a new admission clears the bedside ones.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.bedside.config_change import (
    BEDSIDE_FILE,
    ChangeError,
    load_bedside_config,
    set_setting,
    with_setting,
)
from monitor.log.store import DATABASE_NAME

pytestmark = pytest.mark.usefixtures("packaged_config_only")
UNIT_FILE = """\
# The unit's settings, reviewed by biomedical staff.
[detector]
# SSC 2021
map_target_mmhg = 65.0

[log]
directory = "{log}"
"""


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    path = tmp_path / "unit.toml"
    path.write_text(UNIT_FILE.format(log=tmp_path / "log"))
    return path


def audit(tmp_path: Path) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "log" / DATABASE_NAME)
    try:
        return conn.execute(
            "SELECT by, os_user, action, key, old, new, file, file_hash FROM audit ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


# ------------------------------------------------------------- editing a file
def test_an_edit_keeps_every_comment_and_replaces_the_value_in_its_section():
    text = UNIT_FILE.format(log="/var/lib/monitor")
    edited = with_setting(text, "detector.map_target_mmhg", 70.0)
    assert edited == text.replace("map_target_mmhg = 65.0", "map_target_mmhg = 70.0")


def test_a_new_key_joins_its_section_and_a_new_section_is_appended():
    text = UNIT_FILE.format(log="/var/lib/monitor")
    edited = with_setting(text, "detector.sustain_min", 20.0)
    edited = with_setting(edited, "alarms.priority.hypotension", "high")
    edited = with_setting(edited, "ports.pumps", ("/dev/a", "/dev/b"))
    parsed = tomllib.loads(edited)
    assert parsed["detector"] == {"map_target_mmhg": 65.0, "sustain_min": 20.0}
    assert parsed["alarms"]["priority"] == {"hypotension": "high"}
    assert parsed["ports"]["pumps"] == ["/dev/a", "/dev/b"]
    assert "# SSC 2021" in edited


# --------------------------------------------------------- bedside adjustments
def test_a_bedside_adjustment_is_audited_then_applies_above_the_unit_file(tmp_path, unit):
    change = set_setting("detector.map_target_mmhg", "70", "Dr A", unit=False, explicit=unit)

    bedside = tmp_path / "log" / BEDSIDE_FILE
    assert change.file == bedside and change.old == 65.0 and change.effective == 70.0
    assert unit.read_text() == UNIT_FILE.format(log=tmp_path / "log")  # the unit's untouched
    config = load_bedside_config(unit)
    assert config["detector.map_target_mmhg"] == 70.0
    assert config.source("detector.map_target_mmhg") == f"{bedside} (bedside adjustment)"
    ((by, os_user, action, key, old, new, file, digest),) = audit(tmp_path)
    assert (by, action, key, old, new, file) == (
        "Dr A", "bedside adjustment", "detector.map_target_mmhg", "unset (effective 65.0)", "70.0",
        str(bedside),
    )  # fmt: skip
    assert os_user and digest == hashlib.sha256(bedside.read_bytes()).hexdigest()
    assert sorted(p.name for p in bedside.parent.iterdir()) == [BEDSIDE_FILE, DATABASE_NAME]


@pytest.mark.parametrize(
    ("key", "value", "unit_change", "named"),
    [
        ("detector.map_target_mmhg", "90", False, "90 is out of bounds (allowed 55-80 mmHg)"),
        ("detector.map_target_mmhg", "low", False, "must be a number"),
        ("detector.nee_threshold_ug_kg_min", "0.3", False, "is a unit setting"),
        ("detector.map_target", "70", False, "map_target_mmhg"),
        ("alarms.priority.hypotension", "loud", True, "is not a choice"),
    ],
    ids=["out of bounds", "wrong type", "unit only", "unknown key", "not a choice"],
)
def test_a_refused_change_names_the_problem_and_changes_nothing(
    tmp_path, unit, key, value, unit_change, named
):
    before = unit.read_text()
    with pytest.raises(ChangeError, match=named.replace("(", r"\(").replace(")", r"\)")):
        set_setting(key, value, "Dr A", unit=unit_change, explicit=unit)
    assert unit.read_text() == before
    assert not (tmp_path / "log" / BEDSIDE_FILE).exists()
    assert not (tmp_path / "log").exists() or audit(tmp_path) == []


def test_a_change_that_cannot_be_audited_is_not_made(tmp_path, unit):
    (tmp_path / "log").write_text("a file where the log directory should be")
    with pytest.raises(ChangeError, match="could not be recorded in the log.*nothing was changed"):
        set_setting("detector.nee_threshold_ug_kg_min", "0.3", "B", unit=True, explicit=unit)
    assert "nee_threshold" not in unit.read_text()


def test_who_must_be_named():
    with pytest.raises(ChangeError, match="--by"):
        set_setting("detector.map_target_mmhg", "70", " ", unit=False)


def test_a_bedside_file_with_a_unit_setting_is_refused_at_load(tmp_path, unit):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / BEDSIDE_FILE).write_text("[ports]\ntransducer = '/dev/x'\n")
    with pytest.raises(ChangeError, match="ports.transducer cannot be adjusted at the bedside"):
        load_bedside_config(unit)


# ------------------------------------------------------------------ unit changes
def test_a_unit_change_is_atomic_keeps_permissions_and_says_a_bedside_value_still_applies(
    tmp_path, unit
):
    unit.chmod(0o640)
    set_setting("detector.map_target_mmhg", "70", "Dr A", unit=False, explicit=unit)
    change = set_setting("detector.map_target_mmhg", "60", "Eng B", unit=True, explicit=unit)

    assert "map_target_mmhg = 60.0" in unit.read_text() and "# SSC 2021" in unit.read_text()
    assert unit.stat().st_mode & 0o777 == 0o640
    assert change.effective == 70.0 and "bedside" in change.effective_source
    assert [row[2] for row in audit(tmp_path)] == ["bedside adjustment", "config set"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".unit.toml")]


# ---------------------------------------------------------------- the commands
def monitor(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent,
        env={**os.environ, "HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"},
    )  # fmt: skip


def test_a_new_patient_clears_bedside_adjustments_and_every_step_is_audited(tmp_path, unit):
    assert monitor("config", "set", "detector.map_target_mmhg", 70, "--by", "Dr A",
                   "--config", unit).returncode == 0  # fmt: skip
    new = monitor("patient", "new", "--weight", 72.5, "--by", "Nurse C", "--config", unit)
    assert new.returncode == 0, new.stderr
    assert "Admission 1 started by Nurse C (72.5 kg)" in new.stdout
    assert "Bedside adjustments cleared: detector.map_target_mmhg" in new.stdout
    fixed = monitor("patient", "set", "--weight", 74, "--by", "Nurse C", "--config", unit)
    assert "weight 72.5 kg -> 74 kg" in fixed.stdout

    assert load_bedside_config(unit)["detector.map_target_mmhg"] == 65.0
    assert [(row[2], row[4], row[5]) for row in audit(tmp_path)] == [
        ("bedside adjustment", "unset (effective 65.0)", "70.0"),
        ("admission", None, "admission 1, 72.5 kg"),
        ("bedside adjustment cleared", "70.0", None),
        ("weight", "72.5 kg", "74 kg"),
    ]


@pytest.mark.parametrize("weight", ["0", "1000", "heavy"])
def test_an_impossible_weight_is_refused_without_a_traceback(unit, weight):
    result = monitor("patient", "new", "--weight", weight, "--by", "C", "--config", unit)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--weight" in result.stderr


def test_config_set_refusal_is_one_line_with_exit_2(unit):
    result = monitor("config", "set", "detector.map_target_mmhg", 90, "--by", "A", "--config", unit)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "monitor config: detector.map_target_mmhg: 90 is out of bounds (allowed 55-80 mmHg)"
    )


# --------------------------------------------- values, no-ops and the unit file
@pytest.mark.parametrize(
    "value",
    ["65\n[foo]\nbar = 1", "65\r\nx = 1", "65 # looks harmless", "70\t\x00"],
    ids=["a section after it", "a second key", "a comment", "a control character"],
)
def test_a_value_carrying_more_than_one_literal_is_refused(tmp_path, unit, value):
    with pytest.raises(ChangeError, match="detector.map_target_mmhg: VALUE must be one"):
        set_setting("detector.map_target_mmhg", value, "Dr A", unit=False, explicit=unit)
    assert not (tmp_path / "log" / BEDSIDE_FILE).exists()


def test_the_audit_keeps_the_target_files_own_old_value_beside_the_effective_one(tmp_path, unit):
    key = "detector.nee_threshold_ug_kg_min"
    first = set_setting(key, "0.3", "Eng B", unit=True, explicit=unit)
    second = set_setting(key, "0.35", "Eng B", unit=True, explicit=unit)

    assert first.file_old is None and first.old == 0.25
    assert second.file_old == 0.3
    assert [(row[4], row[5]) for row in audit(tmp_path)] == [
        ("unset (effective 0.25)", "0.3"),
        ("0.3", "0.35"),
    ]


def test_a_change_to_the_value_the_file_already_holds_is_refused(tmp_path, unit):
    with pytest.raises(ChangeError, match=r"already 65.0 in .*unit.toml; nothing to change"):
        set_setting("detector.map_target_mmhg", "65", "Eng B", unit=True, explicit=unit)
    assert not (tmp_path / "log").exists() or audit(tmp_path) == []


def test_a_unit_change_without_config_never_creates_the_unit_file(tmp_path):
    etc_file = tmp_path / "etc" / "monitor.toml"  # where packaged_config_only puts /etc/monitor
    with pytest.raises(ChangeError) as refused:
        set_setting("detector.nee_threshold_ug_kg_min", "0.3", "Eng B", unit=True)
    message = str(refused.value)
    assert str(etc_file) in message and "does not exist" in message
    assert "deploy/monitor.toml" in message and "--config" in message
    assert not etc_file.exists() and not etc_file.parent.exists()


def test_a_unit_change_without_config_edits_the_unit_file_that_exists(tmp_path):
    etc_file = tmp_path / "etc" / "monitor.toml"
    etc_file.parent.mkdir()
    etc_file.write_text(UNIT_FILE.format(log=tmp_path / "log"))
    change = set_setting("detector.nee_threshold_ug_kg_min", "0.3", "Eng B", unit=True)
    assert change.file == etc_file and "nee_threshold_ug_kg_min = 0.3" in etc_file.read_text()


def test_config_set_says_what_the_target_file_held_and_what_applied(unit):
    result = monitor("config", "set", "detector.map_target_mmhg", 70, "--by", "Dr A",
                     "--config", unit)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("detector.map_target_mmhg: unset (effective 65.0) -> 70.0 in ")
