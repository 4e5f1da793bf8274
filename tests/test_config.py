"""The configuration: packaged defaults within their bounds, override precedence, strict checks.

No test reads the real /etc or home directory: every test passes its own
directories, and the module-wide fixture points the defaults at tmp_path.
"""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.configuration import config
from monitor.configuration.config import (
    PACKAGED,
    Config,
    ConfigError,
    ConfigProblem,
    check_config_file,
    default_config,
    load_config,
)

DEFAULTS = resources.files("monitor.defaults")


pytestmark = pytest.mark.usefixtures("packaged_config_only")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, explicit: Path | None = None, env: dict | None = None) -> Config:
    return load_config(
        explicit, env=env or {}, etc_dir=tmp_path / "etc", user_dir=tmp_path / "user"
    )


def problems_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    return check_config_file(write(tmp_path / "site.toml", text))


def leaves(table: dict, prefix: str = "", whole: frozenset[str] = frozenset()) -> list[str]:
    """Dotted keys of a nested table; a key in ``whole`` (a table setting) is one key."""
    keys = []
    for name, value in table.items():
        if isinstance(value, dict) and prefix + name not in whole:
            keys += leaves(value, f"{prefix}{name}.", whole)
        else:
            keys.append(prefix + name)
    return keys


# The packaged files


def test_every_packaged_setting_has_exactly_one_bound_and_every_bound_a_setting():
    bounds = tomllib.loads((DEFAULTS / "bounds.toml").read_text(encoding="utf-8"))
    tables = frozenset(key for key, bound in bounds.items() if bound["type"] == "table")
    defaults = tomllib.loads((DEFAULTS / "monitor.toml").read_text(encoding="utf-8"))
    settings = leaves(defaults, whole=tables)
    assert len(settings) == len(set(settings))
    assert set(settings) == set(bounds)
    assert list(default_config()) == settings  # the loader keeps the defaults file's order


def test_every_default_sits_within_its_bounds():
    for setting in default_config().settings():
        bound = setting.allowed
        assert bound.parse(setting.value) == setting.value, setting.key
        if bound.min is not None:
            assert bound.min <= setting.value <= bound.max, setting.key
        if bound.choices is not None:
            assert setting.value in bound.choices, setting.key
        assert setting.source == PACKAGED


def test_every_default_has_a_comment_giving_its_reason():
    lines = (DEFAULTS / "monitor.toml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\w+ = ", line):
            assert lines[i - 1].startswith("# ") or " # " in line, line


def test_packaged_defaults_carry_the_clinical_choices():
    cfg = default_config()
    assert cfg["detector.map_target_mmhg"] == 65.0  # Surviving Sepsis Campaign 2021
    assert cfg["detector.nee_threshold_ug_kg_min"] == 0.25  # seed definition
    assert cfg["detector.hydrocortisone_advisory_h"] == 4.0  # SSC 2021
    assert cfg["alarms.audio_pause_s"] == 120.0  # IEC 60601-1-8 typical 2 min
    assert cfg["alarms.serial_error_limit_per_min"] == 20
    assert isinstance(cfg["alarms.serial_error_limit_per_min"], int)
    assert cfg["ports.pumps"] == ()
    assert cfg.files == (PACKAGED,)


def test_a_packaged_setting_without_bounds_or_a_bound_without_setting_is_refused():
    defaults = b"[detector]\nmap_target_mmhg = 65.0\nextra = 1.0\n"
    bounds = (
        b'"detector.map_target_mmhg" = { type = "float", min = 55, max = 80 }\n'
        b'"detector.orphan" = { type = "float", min = 0, max = 1 }\n'
    )
    with pytest.raises(ConfigError) as caught:
        config._build_schema("monitor.toml", defaults, "bounds.toml", bounds)
    assert {(p.file, p.key) for p in caught.value.problems} == {
        ("monitor.toml", "detector.extra"),
        ("bounds.toml", "detector.orphan"),
    }


def test_a_packaged_default_outside_its_bounds_is_refused():
    with pytest.raises(ConfigError, match=r"monitor.toml: a.b: 90 is out of bounds"):
        config._build_schema(
            "monitor.toml",
            b"[a]\nb = 90.0\n",
            "bounds.toml",
            b'"a.b" = { type = "float", min = 55, max = 80 }\n',
        )


@pytest.mark.parametrize(
    "entry",
    [
        '{ type = "float", min = 1 }',  # no max
        '{ type = "float", min = 2, max = 1 }',
        '{ type = "int", min = 0.5, max = 2 }',
        '{ type = "number", min = 0, max = 1 }',
        '{ type = "float", min = 0, max = 1, step = 0.1 }',
        '{ type = "choice", choices = [] }',
        '{ type = "text" }',  # free text must say free = true
        "{ min = 0, max = 1 }",
    ],
)
def test_a_malformed_bounds_entry_is_refused(entry: str):
    with pytest.raises(ConfigError, match=r"bounds.toml: a.b: "):
        config._build_schema(
            "monitor.toml", b"[a]\nb = 1\n", "bounds.toml", f'"a.b" = {entry}'.encode()
        )


# Where settings come from


def test_each_key_comes_from_the_highest_precedence_file_that_sets_it(tmp_path: Path):
    keys = ["map_target_mmhg", "map_window_s", "refractory_sustain_min", "episode_end_min"]
    files = {
        "explicit": (tmp_path / "given.toml", [60.0]),
        "env": (tmp_path / "env.toml", [61.0, 90.0]),
        "etc": (tmp_path / "etc" / "monitor.toml", [62.0, 91.0, 40.0]),
        "user": (tmp_path / "user" / "monitor.toml", [63.0, 92.0, 41.0, 20.0]),
    }
    for path, values in files.values():
        body = "".join(f"{key} = {value}\n" for key, value in zip(keys, values, strict=False))
        write(path, "[detector]\n" + body)
    explicit, env = files["explicit"][0], files["env"][0]

    cfg = load(tmp_path, explicit, env={"MONITOR_CONFIG": str(env)})

    assert [cfg[f"detector.{key}"] for key in keys] == [60.0, 90.0, 40.0, 20.0]
    assert cfg.source("detector.map_target_mmhg") == f"{explicit} (--config)"
    assert cfg.source("detector.map_window_s") == f"{env} (via $MONITOR_CONFIG)"
    assert cfg.source("detector.refractory_sustain_min") == str(files["etc"][0])
    assert cfg.source("detector.episode_end_min") == str(files["user"][0])
    assert cfg.source("detector.nee_threshold_ug_kg_min") == PACKAGED
    assert cfg.files == (
        f"{explicit} (--config)",
        f"{env} (via $MONITOR_CONFIG)",
        str(files["etc"][0]),
        str(files["user"][0]),
        PACKAGED,
    )


def test_without_override_files_the_packaged_defaults_apply(tmp_path: Path):
    cfg = load(tmp_path)
    assert cfg == default_config()
    assert cfg.files == (PACKAGED,)


def test_the_user_file_is_found_under_xdg_config_home_else_home(tmp_path: Path):
    write(tmp_path / "xdg" / "monitor" / "monitor.toml", "[alarms]\naudio = 'off'\n")
    write(
        tmp_path / "home" / ".config" / "monitor" / "monitor.toml", "[nee]\npaused_hold_min = 2\n"
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}

    with_xdg = load_config(env=env, etc_dir=tmp_path / "etc")
    without_xdg = load_config(env={"HOME": env["HOME"]}, etc_dir=tmp_path / "etc")

    assert (with_xdg["alarms.audio"], with_xdg["nee.paused_hold_min"]) == ("off", 5.0)
    assert (without_xdg["alarms.audio"], without_xdg["nee.paused_hold_min"]) == ("auto", 2.0)


def test_a_missing_explicit_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, tmp_path / "nope.toml")
    assert caught.value.problems == [
        ConfigProblem(str(tmp_path / "nope.toml"), "", "no such file (--config)")
    ]


def test_a_missing_monitor_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope.toml: no such file \(via \$MONITOR_CONFIG\)"):
        load(tmp_path, env={"MONITOR_CONFIG": str(tmp_path / "nope.toml")})


def test_an_unreadable_system_file_is_an_error_not_skipped(tmp_path: Path):
    (tmp_path / "etc" / "monitor.toml").mkdir(parents=True)  # a directory, not a file
    with pytest.raises(ConfigError, match=r"etc/monitor.toml: cannot read"):
        load(tmp_path)


# What a file may contain


def test_a_file_may_set_any_subset_of_keys(tmp_path: Path):
    assert problems_of(tmp_path, "") == []
    assert problems_of(tmp_path, "[alarms.priority]\nhypotension = 'high'\n") == []


def test_an_unknown_key_is_refused_with_the_closest_known_one(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detector]\nmap_target = 60\n")
    assert problem.key == "detector.map_target"
    assert problem.message == "unknown setting (did you mean detector.map_target_mmhg?)"


def test_a_setting_in_the_wrong_section_points_to_the_right_one(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detector]\naudio_pause_s = 60\n")
    assert "did you mean alarms.audio_pause_s?" in problem.message


def test_an_unknown_section_is_refused_with_the_closest_known_one(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detecter]\nmap_target_mmhg = 60\n")
    assert (problem.key, problem.message) == (
        "detecter",
        "unknown section (did you mean detector?)",
    )


def test_a_value_of_the_wrong_type_is_refused(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detector]\nmap_target_mmhg = '65'\n")
    assert problem.message == 'must be a number, got text "65" (allowed 55-80 mmHg)'
    [problem] = problems_of(tmp_path, "[ports]\npumps = '/dev/ttyUSB1'\n")
    assert problem.message.startswith("must be a list of text")
    [problem] = problems_of(tmp_path, "[ports]\npumps = ['/dev/ttyUSB1', 3]\n")
    assert problem.message.startswith("entry 2 must be non-empty text")
    [problem] = problems_of(tmp_path, "[alarms]\npriority = 'high'\n")
    assert (problem.key, problem.message) == (
        "alarms.priority",
        "is a section: write [alarms.priority]",
    )


def test_a_float_setting_takes_an_integer_and_an_int_setting_refuses_a_fraction(tmp_path: Path):
    path = write(tmp_path / "site.toml", "[detector]\nmap_target_mmhg = 60\n")
    cfg = load(tmp_path, path)
    assert cfg["detector.map_target_mmhg"] == 60.0
    assert isinstance(cfg["detector.map_target_mmhg"], float)
    [problem] = problems_of(tmp_path, "[alarms]\nserial_error_limit_per_min = 3.5\n")
    assert problem.message == "must be a whole number, got 3.5 (allowed 1-10000 per minute)"


@pytest.mark.parametrize("key", ["alarms.audio_pause_s", "alarms.gpio_line"])
def test_a_boolean_is_never_a_number(tmp_path: Path, key: str):
    section, name = key.rsplit(".", 1)
    [problem] = problems_of(tmp_path, f"[{section}]\n{name} = true\n")
    assert "got the boolean true" in problem.message


def test_a_value_out_of_bounds_names_the_range_and_unit(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detector]\nmap_target_mmhg = 90\n")
    assert str(problem) == (
        f"{tmp_path / 'site.toml'}: detector.map_target_mmhg: 90 is out of bounds "
        "(allowed 55-80 mmHg)"
    )


def test_infinity_and_nan_are_refused(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[alarms]\naudio_pause_s = inf\n")
    assert problem.message.startswith("must be a finite number")
    [problem] = problems_of(tmp_path, "[alarms]\naudio_pause_s = nan\n")
    assert problem.message.startswith("must be a finite number")


def test_a_bad_choice_lists_the_choices(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[alarms]\naudio = 'loud'\n")
    assert problem.message == '"loud" is not a choice (allowed one of auto, off)'
    [problem] = problems_of(tmp_path, "[ports]\ntransducer_baudrate = 100000\n")
    assert "100000 is not a choice (allowed one of 9600, 19200" in problem.message


def test_a_life_threatening_alarm_cannot_be_lowered(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[alarms.priority]\nrefractory_hypotension = 'medium'\n")
    assert problem.message == '"medium" is not a choice (allowed only high)'
    [problem] = problems_of(tmp_path, "[alarms.priority]\nhypotension = 'low'\n")
    assert problem.message == '"low" is not a choice (allowed one of medium, high)'


def test_invalid_toml_names_the_file_and_line(tmp_path: Path):
    [problem] = problems_of(tmp_path, "[detector]\n\nmap_target_mmhg = = 60\n")
    assert problem.file == str(tmp_path / "site.toml")
    assert problem.message.startswith("not valid TOML")
    assert "line 3" in problem.message


def test_text_that_is_not_utf8_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[log]\n# Réanimation\ndirectory = ''\n".encode("latin-1"))
    [problem] = check_config_file(path)
    assert str(problem) == f"{path}: not UTF-8 text: byte 0xe9 on line 2"


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path):
    given = write(tmp_path / "given.toml", "[detector]\nmap_target_mmhg = 90\nmap_window = 60\n")
    write(tmp_path / "etc" / "monitor.toml", "[alarms]\naudio = 'loud'\n")
    write(tmp_path / "user" / "monitor.toml", "[ports\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, given)
    problems = caught.value.problems
    assert [(Path(p.file).parent.name, Path(p.file).name, p.key) for p in problems] == [
        (tmp_path.name, "given.toml", "detector.map_target_mmhg"),
        (tmp_path.name, "given.toml", "detector.map_window"),
        ("etc", "monitor.toml", "alarms.audio"),
        ("user", "monitor.toml", ""),
    ]
    message = str(caught.value)
    assert message.startswith("configuration refused, 4 problems:\n")
    assert all(str(problem) in message.splitlines() for problem in problems)


def test_a_wrong_setting_never_falls_back_to_its_default(tmp_path: Path):
    given = write(tmp_path / "given.toml", "[alarms]\naudio_pause_s = 600\nescalation_min = 5\n")
    with pytest.raises(ConfigError):
        load(tmp_path, given)


# The Config object


def test_with_overrides_checks_like_a_file_and_leaves_the_original_alone():
    cfg = default_config()
    adjusted = cfg.with_overrides({"detector.map_target_mmhg": 60}, "bedside")
    nested = cfg.with_overrides({"alarms": {"priority": {"hypotension": "high"}}}, "bedside")

    assert adjusted["detector.map_target_mmhg"] == 60.0
    assert adjusted.source("detector.map_target_mmhg") == "bedside"
    assert cfg["detector.map_target_mmhg"] == 65.0
    assert nested.section("alarms.priority")["hypotension"] == "high"
    with pytest.raises(ConfigError) as caught:
        cfg.with_overrides({"detector.map_target_mmhg": 40, "alarms.loudness": 3}, "bedside")
    assert [(p.file, p.key) for p in caught.value.problems] == [
        ("bedside", "detector.map_target_mmhg"),
        ("bedside", "alarms.loudness"),
    ]


def test_a_config_is_immutable():
    cfg = default_config()
    with pytest.raises(AttributeError):
        cfg.files = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg["detector.map_target_mmhg"] = 50.0  # type: ignore[index]


def test_a_section_holds_only_its_direct_settings():
    cfg = default_config()
    alarms = cfg.section("alarms")
    assert "audio_pause_s" in alarms and "hypotension" not in alarms
    assert not any("." in key for key in alarms)
    assert cfg.section("alarms.priority")["no_pulse"] == "high"
    assert set(cfg.section("ports")) == {
        key[len("ports.") :] for key in cfg if key.startswith("ports.")
    }


def test_an_unknown_key_in_code_is_a_key_error_with_a_suggestion():
    with pytest.raises(KeyError, match="did you mean detector.map_target_mmhg"):
        default_config()["detector.map_targt_mmhg"]
    with pytest.raises(KeyError, match="no section"):
        default_config().section("detectors")


def test_settings_come_in_file_order_with_source_and_bounds():
    first = next(default_config().settings())
    assert (first.key, first.value, first.source) == ("detector.map_target_mmhg", 65.0, PACKAGED)
    assert str(first.allowed) == "55-80 mmHg"
    assert math.isclose(first.allowed.min, 55) and math.isclose(first.allowed.max, 80)


# The command line


def test_config_check_of_a_valid_file_says_ok_and_exits_0(tmp_path: Path, capsys):
    path = write(
        tmp_path / "site.toml", "[detector]\nmap_target_mmhg = 70\n[ports]\npumps = ['a']\n"
    )
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (2 settings given)\n"


def test_config_check_lists_every_problem_and_exits_1(tmp_path: Path, capsys):
    path = write(tmp_path / "site.toml", "[detector]\nmap_target_mmhg = 90\n[alarms]\naudio = 1\n")
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{path}: detector.map_target_mmhg: 90 is out of bounds (allowed 55-80 mmHg)",
        f"{path}: alarms.audio: must be text, got 1 (allowed one of auto, off)",
    ]


def test_config_check_of_invalid_toml_exits_1(tmp_path: Path, capsys):
    path = write(tmp_path / "site.toml", "[detector\n")
    assert main(["config", "check", str(path)]) == 1
    assert "not valid TOML" in capsys.readouterr().out


def test_config_check_of_a_missing_file_is_a_one_line_error(tmp_path: Path, capsys):
    assert main(["config", "check", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"monitor config: {tmp_path / 'nope.toml'}: cannot read")


def test_config_show_lists_every_setting_with_its_source(tmp_path: Path, monkeypatch, capsys):
    env_file = write(tmp_path / "env.toml", "[alarms]\naudio = 'off'\n")
    etc_file = write(tmp_path / "etc" / "monitor.toml", "[ports]\nsample_rate_hz = 500\n")
    user_file = write(tmp_path / "xdg" / "monitor" / "monitor.toml", "[log]\ndirectory = '/x'\n")
    given = write(tmp_path / "given.toml", "[detector]\nmap_target_mmhg = 70\n")
    monkeypatch.setenv("MONITOR_CONFIG", str(env_file))

    assert main(["config", "show", "--config", str(given)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"Files read, highest precedence first: {given} (--config), "
        f"{env_file} (via $MONITOR_CONFIG), {etc_file}, {user_file}, {PACKAGED}"
    )
    rows = {line.split()[0]: line for line in lines[1:] if " = " in line}
    assert list(rows) == list(default_config())
    assert re.search(
        r"= 70\.0 +\[55-80 mmHg\] +\S*given.toml \(--config\)$", rows["detector.map_target_mmhg"]
    )
    assert rows["alarms.audio"].endswith(f"{env_file} (via $MONITOR_CONFIG)")
    assert rows["ports.sample_rate_hz"].endswith(str(etc_file))
    assert rows["log.directory"].endswith(str(user_file))
    assert rows["nee.paused_hold_min"].endswith(PACKAGED)
    assert "[alarms.priority]" in lines


def test_config_show_refuses_an_invalid_configuration_without_a_traceback(tmp_path, capsys):
    given = write(tmp_path / "given.toml", "[detector]\nmap_target_mmhg = 90\nwindow = 3\n")
    assert main(["config", "show", "--config", str(given)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("monitor config: configuration refused, 2 problems:\n")
    assert "Traceback" not in captured.err


def test_config_show_with_a_missing_monitor_config_file_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MONITOR_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["config", "show"]) == 2
    assert "no such file (via $MONITOR_CONFIG)" in capsys.readouterr().err
