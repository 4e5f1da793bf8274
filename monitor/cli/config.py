"""``monitor config show`` and ``config check``: the settings in effect, and a file's validity.

Biomedical staff edit override files by hand: ``check`` lists everything
wrong with a file before it is installed, and ``show`` says, for every
effective value, which file it came from and what its bounds are.
"""

from __future__ import annotations

import argparse
from itertools import groupby
from typing import TYPE_CHECKING

from monitor.cli.args import UsageError
from monitor.configuration.config import read_config_file, toml_literal

if TYPE_CHECKING:
    from monitor.configuration.config import Config

#: Columns wider than this do not push every other row to the right.
MAX_VALUE_WIDTH = 10
MAX_ALLOWED_WIDTH = 26


def load_effective(config: str | None) -> Config:
    """The configuration in effect at this bed; a bad bedside file is the user's to fix."""
    from monitor.bedside.config_change import ChangeError, load_bedside_config

    try:
        return load_bedside_config(config)
    except ChangeError as exc:
        raise UsageError(str(exc)) from None


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = load_effective(args.config)
    print("Files read, highest precedence first: " + ", ".join(cfg.files))
    rows = [
        (setting.key, toml_literal(setting.value), f"[{setting.allowed}]", setting.source)
        for setting in cfg.settings()
    ]
    key_width = max(len(key) for key, *_ in rows)
    value_width = min(MAX_VALUE_WIDTH, max(len(value) for _, value, *_ in rows))
    allowed_width = min(MAX_ALLOWED_WIDTH, max(len(allowed) for *_, allowed, _ in rows))
    for section, group in groupby(rows, key=lambda row: row[0].rsplit(".", 1)[0]):
        print(f"\n[{section}]")
        for key, value, allowed, source in group:
            print(
                f"{key:<{key_width}} = {value:<{value_width}}  {allowed:<{allowed_width}}  {source}"
            )
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from monitor.bedside.config_change import ChangeError, with_bedside_adjustments
    from monitor.configuration.config import ConfigError, default_config
    from monitor.configuration.consistency import configuration_problems

    checked = read_config_file(args.file)
    problems: list[object] = list(checked.problems)
    if not problems:  # then the file as it would run: over the defaults, under the bed's
        merged = default_config().with_overrides(dict(checked.values), str(args.file))
        try:
            problems = list(configuration_problems(with_bedside_adjustments(merged)))
        except ConfigError as exc:  # the bed's file itself is not valid
            problems = list(exc.problems)
        except ChangeError as exc:  # it holds a setting the bed may not adjust
            problems = [exc]
    for problem in problems:
        print(problem)
    if problems:
        return 1
    count = len(checked.values)
    print(f"{args.file}: ok ({count} setting{'' if count == 1 else 's'} given)")
    return 0


def cmd_config_set(args: argparse.Namespace) -> int:
    from monitor.bedside.config_change import ChangeError, set_setting

    try:
        change = set_setting(args.key, args.value, args.by, unit=args.unit, explicit=args.config)
    except ChangeError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"{change.key}: {change.described_old} -> {toml_literal(change.new)} in "
        f"{change.file} (audited, by {args.by})"
    )
    if change.effective != change.new:
        print(
            f"note: {toml_literal(change.effective)} still applies at this bed, "
            f"from {change.effective_source}"
        )
    print("A running monitor applies it on reload: `systemctl reload monitor` (or SIGHUP).")
    return 0


def add_config_commands(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser(
        "config",
        help="show the settings in effect, or check a settings file",
        description="Settings come from, highest precedence first: --config FILE, "
        "$MONITOR_CONFIG, /etc/monitor/monitor.toml, ~/.config/monitor/monitor.toml, and the "
        "packaged defaults; each key from the first file that sets it. A value outside its "
        "bounds, an unknown key or a wrong type refuses the whole configuration.",
    )
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print every effective setting, its bounds and the file it came from",
        description="Print every effective setting, grouped by section, with its bounds and "
        "the file it came from; the first line lists the files read.",
    )
    show.add_argument(
        "--config", metavar="FILE", help="an override file above all others (must exist)"
    )
    show.set_defaults(run=cmd_config_show)
    check = actions.add_parser(
        "check",
        help="check one settings file; exit 1 and list every problem if it is not valid",
        description="Check FILE as an override of the packaged defaults: every value against "
        "its bounds, then the whole as it would run (with the bed's adjustments in the log "
        "directory it names): settings that contradict each other, a port listed twice, the "
        "drug table it names, the bed's names, MQTT and HL7. Print every problem (file, key, "
        "what is wrong, what is allowed) one per line and exit 1, or print 'FILE: ok' and "
        "exit 0. A file that cannot be read exits 2.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=cmd_config_check)
    change = actions.add_parser(
        "set",
        help="change one setting, within its bounds, audited in the log",
        description='Change KEY to VALUE (as TOML writes it: 70, 0.3, "text", ["a"]). '
        "Without --unit it is a bedside adjustment, kept in bedside.toml beside the log "
        "above the unit's files and cleared by `monitor patient new`; only settings whose "
        "bounds say bedside = true may be adjusted. With --unit it changes the unit's file "
        "(--config FILE, default /etc/monitor/monitor.toml if it exists: it is never created). "
        "VALUE is one literal on one line. The value is checked against its bounds, a change "
        "to what the file already holds is refused, the change (who, the OS user, the "
        "file's old value and the effective one, the new value, file and its hash) is "
        "recorded in the log's audit trail, and the file is replaced atomically.",
    )
    change.add_argument("key", metavar="KEY", help="a dotted setting name, as `config show` lists")
    change.add_argument("value", metavar="VALUE")
    change.add_argument("--by", required=True, metavar="NAME", help="who makes the change")
    change.add_argument(
        "--unit", action="store_true", help="change the unit's default (biomedical staff)"
    )
    change.add_argument(
        "--config", metavar="FILE", help="the unit's file (default /etc/monitor/monitor.toml)"
    )
    change.set_defaults(run=cmd_config_set)
