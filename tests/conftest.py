"""Shared fixtures: both beat cores, and the real recordings in tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.simulation.scenario_file import load_scenario
from monitor._beat_detector import BeatDetector as CompiledBeatDetector
from monitor.analysis.validation import ReferenceRecord, load_reference_record
from monitor.analysis.virtual_bench import ScenarioClock, run_scenario
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration import config
from monitor.configuration.drug_table import load_drug_table
from monitor.core.beat_detector_py import BeatDetector as ReferenceBeatDetector
from monitor.log.writer import BedsideLog, LogSettings

DATA = Path(__file__).parent / "data"

#: Records with real pulses, scored against wabp's onsets.
PULSATILE_RECORDS = (
    "cliffordlab_TestICUdata",
    "mimic2_s00001_3975656_0013",
    "mimic2_s00001_3975656_0015",
    "mimicdb_03700181",
    "wfdbpy_mixedsignals",
    "wfdbsw_xform_mimicdb237",
)
#: Records that are mostly a flat or disconnected line: no real beat.
FLAT_LINE_RECORDS = (
    "mimic2_s00001_3975656_0012",
    "mimic3_s25047_3234460_0017",
    "mimic3_s25047_3234460_0018",
)
ALL_RECORDS = PULSATILE_RECORDS + FLAT_LINE_RECORDS

_records: dict[str, ReferenceRecord] = {}


def reference_record(name: str) -> ReferenceRecord:
    """A record from tests/data, read once per test session."""
    if name not in _records:
        _records[name] = load_reference_record(DATA / name)
    return _records[name]


def play_into_log(directory: Path, scenario: str, clock: ScenarioClock, until_s: float) -> None:
    """A packaged scenario played through the monitor, to ``until_s``, into a real log in
    ``directory`` (a second call on the same directory is a restart), with default settings."""
    defaults = config.default_config()
    log = BedsideLog(
        LogSettings.from_config(defaults, directory), software="test", config_hash="x",
        clocks=clock.log_clocks(),
    )  # fmt: skip
    run_scenario(
        load_scenario(scenario), ClinicalSettings.from_config(defaults), load_drug_table(),
        clock=clock, log=log, until_s=until_s,
    )  # fmt: skip
    log.close()


#: Both cores, for tests that cannot take a fixture (hypothesis properties).
BOTH_CORES = pytest.mark.parametrize(
    "detector_class", [CompiledBeatDetector, ReferenceBeatDetector], ids=["compiled", "reference"]
)


@pytest.fixture(params=[CompiledBeatDetector, ReferenceBeatDetector], ids=["compiled", "reference"])
def detector_class(request):
    """Each behaviour test runs against the compiled core and its pure-Python twin."""
    return request.param


@pytest.fixture
def packaged_config_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing outside tmp_path: no /etc/monitor, no real home, no $MONITOR_CONFIG."""
    monkeypatch.setattr(config, "ETC_DIR", tmp_path / "etc")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
