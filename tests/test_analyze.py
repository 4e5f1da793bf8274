"""``monitor analyze`` as a user calls it: files in, a timeline CSV out, one-line errors.

The recordings are synthetic (``synthesize_abp``, 125 Hz, MAP known by
construction) so each test can say exactly when MAP crosses the target; the
worked example of ``docs/analyze.md`` runs on a real ICU fixture. The
command is called through ``monitor.cli.main`` with the configuration search
pointed into ``tmp_path``, so nothing on this machine changes the defaults.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from devices.simulation.abp_waveform import synthesize_abp
from devices.simulation.scenario import STATE_NAMES
from monitor import cli
from monitor.analysis.analyze import PUMP_COLUMNS, TIMELINE_COLUMNS

from conftest import DATA

FS = 125.0
PUMP_HEADER = "time_s,pump,channel,drug,concentration,concentration_unit,rate_ml_h,state"
TIMELINE_HEADER = "time_s,kind,name,priority,map_mmhg,nee_ug_kg_min,message"
#: Norepinephrine 42 ug/mL at 30 mL/h for 70 kg: 30 x 42 / 60 / 70 = 0.3 ug/kg/min.
NE_0_3 = "0,P1,1,NORAD,42,ug/mL,30,running"
ALARM_KINDS = {"raised", "condition_ended", "cleared", "escalated", "suppressed"}
STATES = set(STATE_NAMES)
EPISODES = {"opened", "confirmed", "ended", "discarded"}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "analyze.md"
EXAMPLE_ABP = DATA / "cliffordlab_TestICUdata" / "abp.csv.gz"
EXAMPLE_PUMPS = DATA / "analyze" / "example_pumps.csv"


pytestmark = pytest.mark.usefixtures("packaged_config_only")


def write_abp(path: Path, seconds: float, map_mmhg: Callable[[float], float]) -> Path:
    """A ``time_s,abp_mmHg`` CSV of synthetic arterial pressure at 125 Hz."""
    abp = synthesize_abp(seconds, FS, map_mmhg=map_mmhg, seed=4)
    time = np.arange(len(abp.samples)) / FS
    with path.open("w") as f:
        f.write("time_s,abp_mmHg\n")
        np.savetxt(f, np.column_stack((time, abp.samples)), fmt="%.4f,%.2f")
    return path


@pytest.fixture(scope="module")
def step_abp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 min: MAP 58 mmHg until 150 s, then 75 mmHg."""
    path = tmp_path_factory.mktemp("abp") / "step.csv"
    return write_abp(path, 420.0, lambda t: 58.0 if t < 150.0 else 75.0)


@pytest.fixture(scope="module")
def ramp_abp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 min: MAP falling steadily from 75 mmHg at 0 s to 55 mmHg at 240 s, then held."""
    path = tmp_path_factory.mktemp("abp") / "ramp.csv"
    return write_abp(path, 300.0, lambda t: float(np.interp(t, [0.0, 240.0], [75.0, 55.0])))


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.out)))


def analyze(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    capsys.readouterr()
    code = cli.main(["analyze", *map(str, args)])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def write_pumps(path: Path, *lines: str, header: str = PUMP_HEADER) -> Path:
    path.write_text("\n".join((header, *lines)) + "\n", encoding="utf-8")
    return path


def first(rows: list[dict[str, str]], kind: str, name: str) -> dict[str, str] | None:
    return next((r for r in rows if r["kind"] == kind and r["name"] == name), None)


def assert_usage_error(result: Result, *named: object) -> None:
    """Exit 2, nothing on stdout, one message that starts with the command and names the cause."""
    assert result.code == 2, result
    assert result.out == ""
    assert "Traceback" not in result.err
    assert result.err.startswith("monitor analyze: "), result.err
    for text in named:
        assert str(text) in result.err, f"{text!r} not in {result.err!r}"


# --- the timeline -----------------------------------------------------------------------------


def test_the_timeline_has_the_documented_header_and_rows(capsys, step_abp):
    result = analyze(capsys, "--abp", step_abp)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == TIMELINE_HEADER == ",".join(TIMELINE_COLUMNS)
    rows = result.rows
    assert rows and all(len(r) == 7 and None not in r.values() for r in rows)
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times), "rows come in time order"
    for r in rows:
        assert re.fullmatch(r"\d+\.\d{3}", r["time_s"])
        if r["kind"] == "state":
            assert r["name"] in STATES and r["priority"] == ""
        elif r["kind"] == "episode":
            assert r["name"] in EPISODES and r["priority"] == ""
        else:
            assert r["kind"] in ALARM_KINDS and r["priority"] in {"high", "medium", "low", "info"}
        assert r["map_mmhg"] == "" or re.fullmatch(r"-?\d+\.\d", r["map_mmhg"])
        assert r["message"]
    # No pump file: no vasopressor, NEE known to be 0; MAP unknown until the window fills.
    assert all(r["nee_ug_kg_min"] == "0.000" for r in rows)
    assert rows[0]["kind"] == "state" and rows[0]["name"] == "insufficient_signal"
    assert rows[0]["map_mmhg"] == ""
    assert [(r["kind"], r["name"]) for r in rows[1:]] == [
        ("state", "hypotensive"),
        ("raised", "hypotension"),
        ("state", "normotensive"),
        ("cleared", "hypotension"),
    ]


def test_the_summary_goes_to_stderr(capsys, step_abp):
    result = analyze(capsys, "--abp", step_abp)
    err = result.err.splitlines()
    assert err[0].startswith(f"analyzed {step_abp}: 7.0 min at 125 Hz, ")
    assert "0 pump rows, weight not given; configuration: packaged defaults" in err[0]
    assert "alarms raised: hypotension 1" in err
    assert "physiological alarms suppressed as artifact: none" in err
    assert f"timeline: {len(result.rows)} rows -> stdout" in err


def test_out_writes_the_timeline_to_a_file_and_nothing_to_stdout(capsys, step_abp, tmp_path):
    to_stdout = analyze(capsys, "--abp", step_abp)
    out = tmp_path / "timeline.csv"
    to_file = analyze(capsys, "--abp", step_abp, "--out", out)
    assert to_file.code == 0 and to_file.out == ""
    assert out.read_text(encoding="utf-8") == to_stdout.out
    assert f"-> {out}" in to_file.err


def test_hypotension_is_raised_the_configured_delay_after_map_falls_below_target(capsys, step_abp):
    rows = analyze(capsys, "--abp", step_abp).rows
    below = first(rows, "state", "hypotensive")
    raised = first(rows, "raised", "hypotension")
    cleared = first(rows, "cleared", "hypotension")
    assert below and raised and cleared
    assert float(raised["time_s"]) == pytest.approx(float(below["time_s"]) + 60.0, abs=1e-3)
    assert raised["priority"] == "medium"
    assert float(raised["map_mmhg"]) < 65.0
    # MAP is back to 75 from 150 s: the 60 s median crosses the target within the minute.
    assert 150.0 < float(cleared["time_s"]) < 210.0
    assert float(cleared["map_mmhg"]) >= 65.0


# --- pump rows and NEE ------------------------------------------------------------------------


@pytest.mark.parametrize("drug", ["NORAD", "ne", "norepinephrine", "Norepinephrine"])
def test_norepinephrine_by_code_and_by_name_give_the_same_timeline(
    capsys, step_abp, tmp_path, drug
):
    by_code = write_pumps(tmp_path / "code.csv", NE_0_3)
    other = write_pumps(tmp_path / "other.csv", NE_0_3.replace("NORAD", drug))
    expected = analyze(capsys, "--abp", step_abp, "--pumps", by_code, "--weight", 70)
    got = analyze(capsys, "--abp", step_abp, "--pumps", other, "--weight", 70)
    assert got.code == expected.code == 0
    assert got.out == expected.out
    assert {r["nee_ug_kg_min"] for r in got.rows} == {"0.300"}


def test_pump_rows_drive_nee_and_open_an_episode_with_map_below_target(capsys, step_abp, tmp_path):
    """MAP 58 with NEE 0.3 > 0.25: a refractory episode opens when MAP is first decided."""
    pumps = write_pumps(tmp_path / "pumps.csv", NE_0_3)
    rows = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70).rows
    opened = first(rows, "episode", "opened")
    assert opened is not None
    assert opened["time_s"] == first(rows, "state", "hypotensive")["time_s"]
    assert "norepinephrine 0.3" in opened["message"]
    # MAP back above target on norepinephrine: vasopressor-dependent, not normotensive.
    assert first(rows, "state", "vasopressor_dependent") is not None
    assert first(rows, "state", "normotensive") is None


def test_each_row_holds_until_the_channels_next_row_and_a_pause_holds_the_dose_5_min(
    capsys, step_abp, tmp_path
):
    """Paused at 100 s: the 0.3 dose is held (marked) until 400 s, then counts 0."""
    pumps = write_pumps(
        tmp_path / "pumps.csv",
        "0,P1,1,NORAD,42,ug/mL,10,running",  # 0.1
        "50,P1,1,NORAD,42,ug/mL,30,running",  # 0.3 from 50 s
        "100,P1,1,NORAD,42,ug/mL,30,paused",
    )
    rows = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70).rows
    assert rows[0]["nee_ug_kg_min"] == "0.100"
    dependent = first(rows, "state", "vasopressor_dependent")
    assert dependent is not None and dependent["nee_ug_kg_min"] == "0.300"
    assert "(held)" in dependent["message"]
    normotensive = first(rows, "state", "normotensive")
    assert normotensive is not None
    assert float(normotensive["time_s"]) == pytest.approx(400.0)
    assert normotensive["nee_ug_kg_min"] == "0.000"


@pytest.mark.parametrize(
    ("concentration", "unit"),
    [("42000", "ng/mL"), ("42", "ug/mL"), ("0.042", "mg/mL")],
)
def test_every_accepted_mass_unit_gives_the_same_dose(
    capsys, step_abp, tmp_path, concentration, unit
):
    pumps = write_pumps(tmp_path / "p.csv", f"0,P1,1,norepinephrine,{concentration},{unit},30,")
    rows = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70).rows
    assert {r["nee_ug_kg_min"] for r in rows} == {"0.300"}


def test_vasopressin_in_units_counts_2_5_times_its_u_per_min(capsys, step_abp, tmp_path):
    """0.4 U/mL at 6 mL/h = 0.04 U/min = NEE 0.1; with norepinephrine 0.3: 0.4."""
    pumps = write_pumps(tmp_path / "p.csv", NE_0_3, "0,P2,1,VASO,0.4,U/mL,6,running")
    rows = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70).rows
    # Rows at one time apply in file order: the first row at 0 s saw norepinephrine alone.
    assert rows[0]["time_s"] == "0.000" and rows[0]["nee_ug_kg_min"] == "0.300"
    assert {r["nee_ug_kg_min"] for r in rows[1:]} == {"0.400"}


def test_an_unknown_drug_raises_unknown_drug_and_nee_still_counts_the_others(
    capsys, step_abp, tmp_path
):
    pumps = write_pumps(tmp_path / "p.csv", NE_0_3, "0,P2,1,ELIXIR,1,mg/mL,5,running")
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70)
    rows = result.rows
    alarm = first(rows, "raised", "unknown_drug")
    assert alarm is not None and alarm["priority"] == "medium"
    assert "ELIXIR" in alarm["message"] and "not counted in NEE" in alarm["message"]
    assert {r["nee_ug_kg_min"] for r in rows} == {"0.300"}
    assert first(rows, "episode", "opened") is not None


@pytest.mark.parametrize("unit", ["mcg/mL", "ug/ml", "mg/L", "U/mL"])
def test_a_concentration_unit_it_cannot_convert_raises_unknown_unit(
    capsys, step_abp, tmp_path, unit
):
    """Any spelling but the four accepted ones, or units for a drug dosed by mass."""
    pumps = write_pumps(tmp_path / "p.csv", NE_0_3.replace("ug/mL", unit))
    rows = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70).rows
    alarm = first(rows, "raised", "unknown_unit")
    assert alarm is not None and alarm["priority"] == "medium"
    assert "NEE unknown" in alarm["message"]
    assert all(r["nee_ug_kg_min"] == "" for r in rows)
    assert first(rows, "episode", "opened") is None, "an unknown NEE cannot open an episode"


def test_monitor_analyze_gives_the_issues_case_unknown_nee_and_the_alarm_then_recovers(
    capsys, tmp_path
):
    abp = write_abp(tmp_path / "abp.csv", 240.0, lambda t: 58.0)
    pumps = write_pumps(
        tmp_path / "p.csv",
        "0,P1,1,NORAD,80,ug/mL,18,running",  # 0.3 ug/kg/min for 80 kg
        "60,P1,1,NORAD,1000000,ug/mL,1200,running",  # the issue's report
        "120,P1,1,NORAD,80,ug/mL,18,running",
    )
    result = analyze(capsys, "--abp", abp, "--pumps", pumps, "--weight", 80)
    assert result.code == 0, result.err
    rows = result.rows
    alarm = first(rows, "raised", "implausible_dose")
    assert alarm is not None and alarm["priority"] == "medium"
    assert float(alarm["time_s"]) == pytest.approx(60.0, abs=0.01)
    assert "pump P1/1 norepinephrine" in alarm["message"] and "NEE unknown" in alarm["message"]
    assert alarm["nee_ug_kg_min"] == ""
    cleared = first(rows, "cleared", "implausible_dose")
    assert cleared is not None and float(cleared["time_s"]) == pytest.approx(120.0, abs=0.01)
    nee = {r["nee_ug_kg_min"] for r in rows if 60.0 <= float(r["time_s"]) < 120.0}
    assert nee == {""}, "unknown while implausible, never 250000 and never 0"
    assert all(r["nee_ug_kg_min"] in ("", "0.300") for r in rows)


def test_without_weight_nee_is_unknown_and_pressure_is_still_monitored(capsys, step_abp, tmp_path):
    pumps = write_pumps(tmp_path / "p.csv", NE_0_3)
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps)
    assert result.code == 0
    rows = result.rows
    alarm = first(rows, "raised", "weight_missing")
    assert alarm is not None and alarm["time_s"] == "0.000"
    assert "needs the weight" in alarm["message"]
    assert all(r["nee_ug_kg_min"] == "" for r in rows)
    hypotension = first(rows, "raised", "hypotension")
    assert hypotension is not None and float(hypotension["map_mmhg"]) < 65.0
    assert first(rows, "episode", "opened") is None
    assert "weight not given" in result.err


# --- configuration ----------------------------------------------------------------------------


def test_config_map_target_changes_when_hypotension_is_raised(capsys, ramp_abp, tmp_path):
    """MAP falls 1 mmHg per 12 s: a target 5 mmHg lower is crossed about 60 s later."""
    at_65 = first(analyze(capsys, "--abp", ramp_abp).rows, "raised", "hypotension")
    low = tmp_path / "low.toml"
    low.write_text("[detector]\nmap_target_mmhg = 60.0\n", encoding="utf-8")
    result = analyze(capsys, "--abp", ramp_abp, "--config", low)
    at_60 = first(result.rows, "raised", "hypotension")
    assert at_65 is not None and at_60 is not None
    assert float(at_60["time_s"]) - float(at_65["time_s"]) == pytest.approx(60.0, abs=10.0)
    assert "below 60" in at_60["message"]
    assert f"configuration: {low}" in result.err


def test_config_hypotension_delay_is_the_time_from_state_to_alarm(capsys, step_abp, tmp_path):
    short = tmp_path / "short.toml"
    short.write_text("[alarms]\nhypotension_delay_s = 20.0\n", encoding="utf-8")
    rows = analyze(capsys, "--abp", step_abp, "--config", short).rows
    below = float(first(rows, "state", "hypotensive")["time_s"])
    assert float(first(rows, "raised", "hypotension")["time_s"]) == pytest.approx(below + 20.0)


def test_an_invalid_config_file_is_refused_with_every_problem(capsys, step_abp, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[detector]\nmap_target_mmhg = 90.0\ncolour = 1\n", encoding="utf-8")
    result = analyze(capsys, "--abp", step_abp, "--config", bad)
    assert_usage_error(
        result, "2 problems", f"{bad}: detector.map_target_mmhg", f"{bad}: detector.colour"
    )


def test_a_config_file_that_does_not_exist_is_refused(capsys, step_abp, tmp_path):
    result = analyze(capsys, "--abp", step_abp, "--config", tmp_path / "nope.toml")
    assert_usage_error(result, "nope.toml", "no such file")


# --- files that cannot be trusted -------------------------------------------------------------

GOOD = "0,P1,1,NORAD,42,ug/mL,30,running"

BAD_PUMP_FILES = {
    "missing column": (
        PUMP_HEADER.replace(",concentration_unit", ""),
        ["0,P1,1,NORAD,42,30,running"],
        ["line 1", "missing ['concentration_unit']"],
    ),
    "unknown column": (
        PUMP_HEADER + ",colour",
        [GOOD + ",blue"],
        ["line 1", "unknown ['colour']"],
    ),
    "not a number": (
        PUMP_HEADER,
        [GOOD, "10,P1,1,NORAD,42,ug/mL,fast,running"],
        ["line 3", "rate_ml_h 'fast' is not a number"],
    ),
    "negative rate": (
        PUMP_HEADER,
        [GOOD, "10,P1,1,NORAD,42,ug/mL,-5,running"],
        ["line 3", "rate_ml_h '-5'", ">= 0"],
    ),
    "unknown state": (
        PUMP_HEADER,
        [GOOD, "10,P1,1,NORAD,42,ug/mL,30,stopped"],
        ["line 3", "state 'stopped' is not one of running, paused"],
    ),
    "out of time order": (
        PUMP_HEADER,
        [GOOD.replace("0,", "20,", 1), "10,P1,1,NORAD,42,ug/mL,30,running"],
        ["line 3", "time_s 10 is before the previous row's 20", "time order"],
    ),
    "wrong field count": (
        PUMP_HEADER,
        [GOOD, "10,P1,1,NORAD,42,ug/mL,30"],
        ["line 3", "7 fields, the header has 8"],
    ),
    "not a whole channel": (
        PUMP_HEADER,
        [GOOD, "10,P1,1.5,NORAD,42,ug/mL,30,running"],
        ["line 3", "channel '1.5' is not a whole number"],
    ),
    "empty drug": (
        PUMP_HEADER,
        [GOOD, "10,P1,1,,42,ug/mL,30,running"],
        ["line 3", "drug is empty"],
    ),
    "negative time": (
        PUMP_HEADER,
        ["-1,P1,1,NORAD,42,ug/mL,30,running"],
        ["line 2", "time_s '-1'"],
    ),
}


@pytest.mark.parametrize("case", BAD_PUMP_FILES, ids=list(BAD_PUMP_FILES))
def test_a_bad_pump_file_is_refused_naming_the_file_and_line(capsys, step_abp, tmp_path, case):
    header, lines, named = BAD_PUMP_FILES[case]
    pumps = write_pumps(tmp_path / "pumps.csv", *lines, header=header)
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70)
    assert_usage_error(result, f"monitor analyze: {pumps}: ", *named)


def test_every_bad_row_is_listed_not_only_the_first(capsys, step_abp, tmp_path):
    pumps = write_pumps(
        tmp_path / "pumps.csv",
        GOOD,
        "10,P1,1,NORAD,42,ug/mL,fast,running",
        "20,P1,1,NORAD,42,ug/mL,30,running",
        "",  # blank lines are skipped but still counted
        "30,P1,1,NORAD,42,ug/mL,-1,running",
        "40,P1,1,NORAD,42,ug/mL,30,stopped",
        "5,P1,1,NORAD,42,ug/mL,30,running",
        "50,P1,1,NORAD,42,ug/mL",
    )
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70)
    assert_usage_error(result, f"{pumps}: 5 bad rows")
    listed = re.findall(r"^  line (\d+): ", result.err, flags=re.MULTILINE)
    assert listed == ["3", "6", "7", "8", "9"]


def test_an_empty_pump_file_is_refused(capsys, step_abp, tmp_path):
    pumps = tmp_path / "pumps.csv"
    pumps.write_text("", encoding="utf-8")
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps)
    assert_usage_error(result, str(pumps), "empty file", PUMP_HEADER)


def test_a_missing_pump_file_is_refused(capsys, step_abp, tmp_path):
    result = analyze(capsys, "--abp", step_abp, "--pumps", tmp_path / "nope.csv")
    assert_usage_error(result, "nope.csv", "cannot read the pump file")


def test_a_missing_abp_file_is_refused(capsys, tmp_path):
    result = analyze(capsys, "--abp", tmp_path / "nope.csv", "--weight", 70)
    assert_usage_error(result, "nope.csv", "cannot read")
    assert len(result.err.splitlines()) == 1


def test_a_header_only_pump_file_means_no_vasopressor(capsys, step_abp, tmp_path):
    pumps = write_pumps(tmp_path / "pumps.csv")
    with_file = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70)
    without = analyze(capsys, "--abp", step_abp, "--weight", 70)
    assert with_file.code == 0 and with_file.out == without.out


def test_pump_columns_may_come_in_any_order(capsys, step_abp, tmp_path):
    order = list(reversed(PUMP_COLUMNS))
    values = dict(zip(PUMP_COLUMNS, GOOD.split(","), strict=True))
    shuffled = write_pumps(
        tmp_path / "shuffled.csv", ",".join(values[c] for c in order), header=",".join(order)
    )
    usual = write_pumps(tmp_path / "usual.csv", GOOD)
    a = analyze(capsys, "--abp", step_abp, "--pumps", shuffled, "--weight", 70)
    b = analyze(capsys, "--abp", step_abp, "--pumps", usual, "--weight", 70)
    assert a.code == 0 and a.out == b.out


def test_an_out_file_that_cannot_be_written_is_a_one_line_error(capsys, step_abp, tmp_path):
    result = analyze(capsys, "--abp", step_abp, "--out", tmp_path / "no" / "such" / "dir.csv")
    assert_usage_error(result, "cannot write the timeline", "dir.csv")
    assert len(result.err.splitlines()) == 1


# --- a bug found while writing these tests (monitor/ is being edited elsewhere) ----------------


def test_a_pump_header_that_names_a_column_twice_is_refused(capsys, step_abp, tmp_path):
    """BUG monitor/analyze.py:73-82: a repeated column passes the header check, the last wins.

    Here the row is read as paused (the second ``state``), so NEE reads 0, not 0.3.
    """
    pumps = write_pumps(tmp_path / "p.csv", GOOD + ",paused", header=PUMP_HEADER + ",state")
    result = analyze(capsys, "--abp", step_abp, "--pumps", pumps, "--weight", 70)
    assert_usage_error(result, str(pumps), "line 1", "state")


# --- the worked example in docs/analyze.md ----------------------------------------------------


def doc_block(marker: str) -> str:
    """The fenced block that follows ``<!-- marker -->`` in docs/analyze.md."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", text, flags=re.DOTALL)
    assert found, f"no block after <!-- {marker} --> in {DOCS}"
    return found.group(1)


def test_the_worked_example_in_the_docs_is_what_the_command_prints(capsys):
    assert doc_block("example-pumps") == EXAMPLE_PUMPS.read_text(encoding="utf-8")
    with_weight = analyze(capsys, "--abp", EXAMPLE_ABP, "--pumps", EXAMPLE_PUMPS, "--weight", 70)
    without = analyze(capsys, "--abp", EXAMPLE_ABP, "--pumps", EXAMPLE_PUMPS)
    assert with_weight.code == without.code == 0
    assert doc_block("example-timeline") == with_weight.out
    assert doc_block("example-timeline-no-weight") == without.out
    summary = doc_block("example-summary")
    assert summary.splitlines()[1:] == with_weight.err.splitlines()[1:]


def test_a_record_streamed_in_chunks_gives_the_timeline_of_the_whole_array():
    from monitor.analysis.analyze import analyze, read_pump_rows
    from monitor.analysis.records import read_recording
    from monitor.clinical.settings import ClinicalSettings
    from monitor.configuration.config import load_config
    from monitor.configuration.drug_table import load_drug_table

    config = load_config(None)
    settings, drugs = ClinicalSettings.from_config(config), load_drug_table(None)
    recording = read_recording(EXAMPLE_ABP)
    rows = read_pump_rows(EXAMPLE_PUMPS)
    whole, _ = analyze(
        recording.samples, recording.fs, rows, settings=settings, drugs=drugs, weight_kg=70.0
    )
    # chunk edges that fall inside the 1 s blocks and between pump rows
    edges = list(range(0, len(recording.samples), 977)) + [len(recording.samples)]
    chunks = (recording.samples[a:b] for a, b in zip(edges, edges[1:], strict=False))
    streamed, _ = analyze(
        chunks, recording.fs, rows, settings=settings, drugs=drugs, weight_kg=70.0,
        total=len(recording.samples),
    )  # fmt: skip
    assert len(whole) > 3
    assert streamed == whole
