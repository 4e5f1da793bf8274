"""The configuration as a whole: contradictions, ports read twice, the drug table, the network.

Each value's bounds are checked as it is read (test_config.py); these are
the broken files that passed those checks and still could not run: every
one is refused by ``monitor config check`` and by the start of ``monitor
run``, naming the file and the key (and, for the drug table, the drug file
and its entry).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from monitor.bedside.config_change import ChangeError, load_bedside_config, set_setting
from monitor.cli import main
from monitor.configuration.config import ConfigError, default_config
from monitor.configuration.consistency import RELATIONS, configuration_problems, relation_problems
from monitor.configuration.device_ports import port_problems

pytestmark = pytest.mark.usefixtures("packaged_config_only")
PACKAGED_DRUGS = (resources.files("monitor.defaults") / "drugs.toml").read_text()


def drug_table(tmp_path: Path, text: str | None) -> Path:
    path = tmp_path / "drugs.toml"
    if text is not None:
        path.write_text(text)
    return path


def factor(value: str) -> str:
    return PACKAGED_DRUGS.replace("nee_factor = 0.1\n", f"nee_factor = {value}\n", 1)


#: (id, the file's settings, what the refusal must name). ``{drugs}`` is the drug file,
#: ``{tmp}`` the test's directory.
DRUGS = '[drugs]\ntable = "{drugs}"'
PHENYLEPHRINE = "drug[2] (phenylephrine)"
BROKEN = [
    ("factor 0", factor("0"), DRUGS, ["{drugs}", PHENYLEPHRINE, "nee_factor"]),
    ("factor -1", factor("-1"), DRUGS, [PHENYLEPHRINE, "nee_factor"]),
    ("factor nan", factor("nan"), DRUGS, [PHENYLEPHRINE, "nan"]),
    ("factor 1e300", factor("1e300"), DRUGS, [PHENYLEPHRINE, "at most 10"]),
    ("duplicate code",
     PACKAGED_DRUGS.replace('codes = ["PHENYL", "PHE"]', 'codes = ["PHENYL", "NORAD"]'),
     DRUGS, ["{drugs}", "'NORAD' is already used by norepinephrine"]),
    ("syntax error", PACKAGED_DRUGS + "\n[[drug]\n", DRUGS, ["{drugs}", "not valid TOML"]),
    ("missing table", None, DRUGS, ["{drugs}", "cannot read the drug table"]),
    ("drug not a table", 'version = "x"\ndrug = ["norepinephrine"]\n', DRUGS,
     ["{drugs}", "every drug must be a [[drug]] table"]),
    ("salt not a table", PACKAGED_DRUGS.replace('codes = ["PHENYL", "PHE"]',
                                                'codes = ["PHENYL", "PHE"]\nsalt = 1'),
     DRUGS, ["{drugs}", "(phenylephrine): every salt must be a [[drug.salt]] table"]),
    ("pump port empty", None, '[ports]\npumps = ["/dev/ttyUSB1", " "]',
     ["ports.pumps", "pump2's port is empty"]),
    ("pump port twice", None, '[ports]\npumps = ["/dev/ttyUSB1", "/dev/ttyUSB1"]',
     ["ports.pumps", "pump2's port '/dev/ttyUSB1' is already pump1's"]),
    ("pump on the transducer", None,
     '[ports]\ntransducer = "/dev/ttyUSB0"\npumps = ["/dev/ttyUSB0"]',
     ["ports.pumps", "already the transducer"]),
    ("one port by two names", None, '[ports]\npumps = ["{tmp}/by-id/rack", "{tmp}/ttyUSB7"]',
     ["pump2's port", "already pump1's"]),
    ("mqtt broker", None, '[mqtt]\nbroker = "http://broker.icu"',
     ["mqtt.broker", "mqtts://host:8883"]),
    ("mqtt port", None, '[mqtt]\nbroker = "mqtts://broker.icu:tls"',
     ["mqtt.broker", "is not a broker"]),
    ("mqtt topic", None, '[mqtt]\nbroker = "mqtts://b"\ntopic_root = "icu/#"',
     ["mqtt.topic_root", "'#'"]),
    ("mqtt ca file", None, '[mqtt]\nbroker = "mqtts://b"\nca_file = "{tmp}/none.pem"',
     ["mqtt.ca_file", "no such file"]),
    ("mqtt tls", None, '[mqtt]\nbroker = "mqtt://b"\nca_file = "{tmp}/ttyUSB7"',
     ["mqtt.broker", "not mqtts://"]),
    ("bed name", None, '[network]\nbed = "bed/3"', ["network.bed", "'bed/3'"]),
    ("unit name", None, '[network]\nunit = "icu 3"', ["network.unit", "'icu 3'"]),
    ("hl7 address", None, '[hl7]\naddress = "engine.hospital"', ["hl7.address", "host:port"]),
    ("hl7 application", None, '[hl7]\naddress = "engine:2575"\nsending_application = "A|B"',
     ["hl7.sending_application", "| ^ ~"]),
    ("hl7 facility", None, '[hl7]\naddress = "engine:2575"\nsending_facility = "ICU^3"',
     ["hl7.sending_facility"]),
    ("critical above target", None,
     "[detector]\nmap_target_mmhg = 58\n[alarms]\nmap_critical_mmhg = 60",
     ["alarms.map_critical_mmhg = 60.0 must be below detector.map_target_mmhg = 58.0"]),
    ("critical at target", None,
     "[detector]\nmap_target_mmhg = 60\n[alarms]\nmap_critical_mmhg = 60",
     ["must be below detector.map_target_mmhg"]),
    ("critical waits longer", None,
     "[alarms]\nmap_critical_delay_s = 120\nhypotension_delay_s = 30",
     ["alarms.map_critical_delay_s", "never wait longer"]),
    ("drug name for no drug", None, '[drug_names]\n"Noradrenalin 0.1 mg/ml" = "noradrenaline"',
     ['drug_names."Noradrenalin 0.1 mg/ml"', "'noradrenaline' is not in the drug table"]),
    ("drug name concentration", None,
     '[drug_names]\n"Arterenol4mg/50" = {{ drug = "norepinephrine", concentration = 0, '
     'unit = "ug/mL" }}', ['drug_names."Arterenol4mg/50"', "above 0"]),
    ("drug name unit", None,
     '[drug_names]\n"Arterenol4mg/50" = {{ drug = "norepinephrine", concentration = 80, '
     'unit = "ug/ml" }}', ['drug_names."Arterenol4mg/50"', "unit must be one of"]),
    ("drug name unit kind", None,
     '[drug_names]\n"Pitressin" = {{ drug = "vasopressin", concentration = 1, unit = "ug/mL" }}',
     ['drug_names."Pitressin"', "vasopressin is dosed in U/min"]),
    ("drug name half stated", None,
     '[drug_names]\n"Arterenol4mg/50" = {{ drug = "norepinephrine", concentration = 80 }}',
     ['drug_names."Arterenol4mg/50"', "unit must be one of"]),
    ("drug name field", None,
     '[drug_names]\n"Arterenol4mg/50" = {{ drug = "norepinephrine", strength = 80 }}',
     ['drug_names."Arterenol4mg/50"', "unknown fields ['strength']"]),
    ("device protocol unknown", None,
     '[[ports.device]]\nrole = "pumps"\npath = "/dev/ttyUSB3"\nprotocol = "spacecom"',
     ["ports.device[1].protocol", "'spacecom' is not a protocol", "pumps: bcc, pump-nmea-v1"]),
    ("device protocol of the other role", None,
     '[[ports.device]]\nrole = "transducer"\npath = "/dev/ttyUSB3"\nprotocol = "bcc"',
     ["ports.device[1].protocol", "'bcc' is spoken by pumps, not transducer"]),
    ("device path across roles", None,
     '[ports]\ntransducer = "/dev/ttyUSB0"\n[[ports.device]]\nrole = "pumps"\n'
     'path = "/dev/ttyUSB0"\nprotocol = "bcc"',
     ["ports.device[1]", "pump1's port '/dev/ttyUSB0' is already the transducer's "
      "(ports.transducer)"]),
    ("device path twice by two names", None,
     '[[ports.device]]\nrole = "pumps"\npath = "{tmp}/by-id/rack"\nprotocol = "bcc"\n'
     '[[ports.device]]\nrole = "pumps"\npath = "{tmp}/ttyUSB7"\nprotocol = "pump-nmea-v2"',
     ["ports.device[2]", "already pump1's (ports.device[1])"]),
    ("device baud the protocol cannot use", None,
     '[[ports.device]]\nrole = "pumps"\npath = "/dev/ttyUSB3"\nprotocol = "bcc"\n'
     'baud = 230400', ["ports.device[1].baud", "230400 is not a rate bcc runs at",
                       "9600, 19200, 38400, 57600, 115200"]),
    ("device baud too slow for the samples", None,
     '[ports]\nsample_rate_hz = 1000\n[[ports.device]]\nrole = "transducer"\n'
     'path = "/dev/ttyUSB3"\nprotocol = "binary"\nbaud = 19200',
     ["ports.device[1].baud", "19200 baud cannot carry binary samples at 1000 Hz",
      "needs at least 38400"]),
    ("transducer baud too slow", None,
     '[ports]\ntransducer = "/dev/ttyUSB0"\ntransducer_protocol = "ascii"\n'
     "transducer_baudrate = 9600", ["ports.transducer_baudrate", "needs at least 38400"]),
    ("device missing its path", None,
     '[[ports.device]]\nrole = "pumps"\nprotocol = "bcc"',
     ["ports.device[1].path", "missing"]),
    ("device unknown field", None,
     '[[ports.device]]\nrole = "pumps"\npath = "/dev/ttyUSB3"\nprotocol = "bcc"\n'
     "parity = 1", ["ports.device[1]", "unknown fields ['parity']"]),
    ("device role", None,
     '[[ports.device]]\nrole = "pump"\npath = "/dev/ttyUSB3"\nprotocol = "bcc"',
     ["ports.device[1].role", "'pump' is not a role; one of transducer, pumps"]),
    ("two transducers", None,
     '[ports]\ntransducer = "/dev/ttyUSB0"\n[[ports.device]]\nrole = "transducer"\n'
     'path = "/dev/ttyUSB3"\nprotocol = "binary"',
     ["ports.device[1]", "a second transducer", "ports.transducer already names"]),
    ("device not a table", None, '[ports]\ndevice = ["/dev/ttyUSB3"]',
     ["ports.device", "entry 1 must be a table"]),
    ("sustain past advisory", None,
     "[detector]\nrefractory_sustain_min = 240\nhydrocortisone_advisory_h = 2",
     ["detector.refractory_sustain_min", "hydrocortisone"]),
]  # fmt: skip


def broken_file(tmp_path: Path, drugs: str | None, settings: str) -> Path:
    table = drug_table(tmp_path, drugs)
    (tmp_path / "by-id").mkdir()
    (tmp_path / "ttyUSB7").touch()
    (tmp_path / "by-id" / "rack").symlink_to(tmp_path / "ttyUSB7")
    path = tmp_path / "bed.toml"
    path.write_text(settings.format(drugs=table, tmp=tmp_path) + "\n")
    return path


@pytest.mark.parametrize(("drugs", "settings", "named"), [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])  # fmt: skip
def test_config_check_refuses_a_file_that_cannot_run_naming_file_and_key(
    tmp_path, capsys, drugs, settings, named
):
    path = broken_file(tmp_path, drugs, settings)
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: ") and "ok" not in out.split(": ", 1)[0]
    for part in named:
        assert part.format(drugs=tmp_path / "drugs.toml", tmp=tmp_path) in out


@pytest.mark.parametrize(("drugs", "settings", "named"), [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])  # fmt: skip
def test_a_start_or_a_reload_refuses_the_same_files(tmp_path, drugs, settings, named):
    path = broken_file(tmp_path, drugs, settings)
    with pytest.raises(ConfigError) as refused:
        load_bedside_config(path)  # what `monitor run` and SIGHUP load
    assert str(path) in str(refused.value)


def run_monitor(*args: object) -> subprocess.CompletedProcess:
    """The real command, with the compiled core a live monitor needs."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_PUREPYTHON"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("case", ["pump port twice", "factor 1e300", "critical above target"])
def test_monitor_run_does_not_start_on_a_file_that_cannot_run(tmp_path, case):
    _, drugs, settings, named = next(c for c in BROKEN if c[0] == case)
    path = broken_file(tmp_path, drugs, settings)
    result = run_monitor("run", "--config", path, "--display", "off")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("monitor run: ") and str(path) in result.stderr
    for part in named:
        assert part.format(drugs=tmp_path / "drugs.toml", tmp=tmp_path) in result.stderr


def test_the_packaged_defaults_are_whole():
    assert configuration_problems(default_config()) == []


# ------------------------------------------------------------------ relations
@pytest.mark.parametrize("relation", RELATIONS, ids=[r.lower for r in RELATIONS])
def test_each_relation_holds_at_the_defaults_and_is_refused_when_broken(relation):
    config = default_config()
    assert relation.holds(config)
    upper = config.allowed(relation.upper)
    lower = config.allowed(relation.lower)
    assert upper.min is not None and lower.max is not None
    broken = config.with_overrides({relation.upper: upper.min, relation.lower: lower.max}, "t")
    (problem,) = relation_problems(broken)
    assert problem.file == "t" and relation.why in problem.message


def test_equal_is_allowed_only_where_the_relation_says_so():
    equal_delays = {"alarms.map_critical_delay_s": 60, "alarms.hypotension_delay_s": 60}
    assert relation_problems(default_config().with_overrides(equal_delays, "t")) == []
    equal_pressures = {"alarms.map_critical_mmhg": 60, "detector.map_target_mmhg": 60}
    assert len(relation_problems(default_config().with_overrides(equal_pressures, "t"))) == 1


def test_a_contradiction_names_the_key_that_was_set_not_the_default():
    config = default_config().with_overrides({"detector.map_target_mmhg": 55}, "bedside.toml")
    config = config.with_overrides({"alarms.map_critical_mmhg": 55}, "unit.toml")
    (problem,) = relation_problems(config)
    assert (problem.file, problem.key) == ("unit.toml", "alarms.map_critical_mmhg")
    assert "(from bedside.toml)" in problem.message


def test_distinct_ports_and_socket_urls_are_not_duplicates():
    config = default_config().with_overrides(
        {"ports.transducer": "/dev/ttyUSB0",
         "ports.pumps": ["/dev/ttyUSB1", "socket://rack:4001", "SOCKET://rack:4002"]}, "t",
    )  # fmt: skip
    assert port_problems(config) == []


# ------------------------------------------------ bedside adjustments and config set
UNIT = """\
[alarms]
map_critical_mmhg = 58.0
[log]
directory = "{log}"
"""


def test_a_bedside_target_below_the_units_critical_limit_is_refused_naming_both(tmp_path):
    unit = tmp_path / "unit.toml"
    unit.write_text(UNIT.format(log=tmp_path / "log"))
    with pytest.raises(ChangeError) as refused:
        set_setting("detector.map_target_mmhg", "57", "Dr A", unit=False, explicit=unit)
    message = str(refused.value)
    assert "detector.map_target_mmhg = 57.0 would contradict" in message
    assert "alarms.map_critical_mmhg = 58.0" in message and str(unit) in message
    assert not (tmp_path / "log" / "bedside.toml").exists()


def test_config_check_sees_the_bedside_adjustments_the_file_would_run_with(tmp_path, capsys):
    unit = tmp_path / "unit.toml"
    unit.write_text(UNIT.format(log=tmp_path / "log"))
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "bedside.toml").write_text("[detector]\nmap_target_mmhg = 56.0\n")
    assert main(["config", "check", str(unit)]) == 1
    assert "bedside adjustment" in capsys.readouterr().out


def test_a_configuration_that_is_not_whole_can_be_repaired_one_key_at_a_time(tmp_path):
    unit = tmp_path / "unit.toml"
    unit.write_text(UNIT.format(log=tmp_path / "log") + "[detector]\nmap_target_mmhg = 56.0\n")
    with pytest.raises(ConfigError):
        load_bedside_config(unit)
    set_setting("detector.map_target_mmhg", "65", "Eng B", unit=True, explicit=unit)
    assert load_bedside_config(unit)["detector.map_target_mmhg"] == 65.0


def test_config_check_names_a_unit_setting_in_the_beds_file(tmp_path, capsys):
    unit = tmp_path / "unit.toml"
    unit.write_text(UNIT.format(log=tmp_path / "log"))
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "bedside.toml").write_text("[ports]\ncomm_loss_s = 20.0\n")
    assert main(["config", "check", str(unit)]) == 1
    assert "ports.comm_loss_s cannot be adjusted at the bedside" in capsys.readouterr().out
