"""Changing a setting: the unit's file or the bed's adjustments, checked, atomic and audited.

Biomedical staff set unit defaults (``/etc/monitor/monitor.toml``, or the
file given with ``--config``); at the bed, only settings whose bounds say
``bedside = true`` may be adjusted, and only within those bounds. Bedside
adjustments live in ``bedside.toml`` beside the log, above every unit file,
and a new admission clears them. A change is edited into the file line by
line (the file's comments stay), checked as a whole, recorded in the log's
audit trail, and only then put in place by an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from monitor.configuration import config as config_module
from monitor.configuration.config import (
    CONFIG_NAME,
    Config,
    ConfigError,
    Value,
    check_config_file,
    load_config,
    read_config_file,
    toml_literal,
)
from monitor.configuration.consistency import configuration_problems
from monitor.log.outside import record_audit_outside
from monitor.log.store import configured_log_directory

BEDSIDE_FILE = "bedside.toml"
_SECTION = re.compile(r"^\s*\[([A-Za-z0-9_.]+)\]\s*(#.*)?$")


class ChangeError(Exception):
    """A change that cannot be made; the message names the key or file and what to do."""


def bedside_file(config: Config) -> Path:
    return configured_log_directory(config) / BEDSIDE_FILE


def load_bedside_config(explicit: str | Path | None = None, *, whole: bool = True) -> Config:
    """The unit's configuration with this bed's adjustments on top; ConfigError if invalid.

    ``whole`` also checks the merged result as it would run (contradictions,
    ports, the drug table, the network; ``consistency.py``): what a start and
    a reload need. ``config set`` loads without it, so that a change can
    repair a configuration that is not whole.
    """
    config = with_bedside_adjustments(load_config(explicit))
    if whole:
        problems = configuration_problems(config)
        if problems:
            raise ConfigError(problems)
    return config


def with_bedside_adjustments(unit: Config) -> Config:
    """``unit`` with the adjustments in the bedside file of the log it names, if any."""
    path = bedside_file(unit)
    if not path.exists():
        return unit
    checked = read_config_file(path)
    if checked.problems:
        raise ConfigError(checked.problems)
    not_adjustable = [key for key in checked.values if not unit.allowed(key).bedside]
    if not_adjustable:
        raise ChangeError(
            f"{path}: {', '.join(not_adjustable)} cannot be adjusted at the bedside; "
            "remove it from that file (unit settings belong in the unit's file)"
        )
    return unit.with_overrides(dict(checked.values), f"{path} (bedside adjustment)")


def parse_value(text: str) -> object:
    """A value from the command line as TOML reads it (70, 70.5, "x", [..]); else plain text.

    Exactly one literal: a line break, a control character or a comment
    would let TOML read a prefix of ``text`` and silently drop the rest
    (``65\n[foo]\nbar = 1`` read as 65), so they are refused, not trimmed.
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(
            "VALUE must be one literal on one line (it holds a line break or a control character)"
        )
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    if "#" in text:
        try:
            before_hash = tomllib.loads(f"value = {text.split('#', 1)[0]}")["value"]
        except tomllib.TOMLDecodeError:
            before_hash = None
        if before_hash == value:
            raise ValueError("VALUE must be one literal with nothing after it (it holds a comment)")
    return value


def with_setting(text: str, key: str, value: Value) -> str:
    """``text`` (a TOML file) with ``key`` set to ``value``; every other line kept."""
    section, name = key.rsplit(".", 1)
    line = f"{name} = {toml_literal(value)}"
    lines = text.splitlines()
    current, section_end = None, None
    assignment = re.compile(rf"^\s*{re.escape(name)}\s*=")
    for i, existing in enumerate(lines):
        header = _SECTION.match(existing)
        if header:
            current = header[1]
            continue
        if current == section:
            if assignment.match(existing):
                lines[i] = line
                return "\n".join(lines) + "\n"
            if existing.strip():
                section_end = i
    if section_end is not None:
        lines.insert(section_end + 1, line)
    elif current == section or any(_is_header(x, section) for x in lines):
        lines.append(line)  # the section exists but is empty
    else:
        lines += ([""] if lines else []) + [f"[{section}]", line]
    return "\n".join(lines) + "\n"


def _is_header(line: str, section: str) -> bool:
    header = _SECTION.match(line)
    return header is not None and header[1] == section


@dataclass(frozen=True)
class Change:
    """What ``set_setting`` did: the file and what it held, the value in effect before and after."""

    key: str
    file: Path
    file_old: Value | None  # None: the file did not set the key
    old: Value
    old_source: str
    new: Value
    effective: Value
    effective_source: str

    @property
    def described_old(self) -> str:
        """The file's own old value, with the effective one where that differed."""
        return described_old(self.file_old, self.old)


def described_old(file_old: Value | None, effective: Value) -> str:
    """``unset (effective 0.25)``, ``0.3 (effective 0.35)`` or ``0.3``: what the audit records."""
    if file_old is None:
        return f"unset (effective {toml_literal(effective)})"
    if file_old != effective:
        return f"{toml_literal(file_old)} (effective {toml_literal(effective)})"
    return toml_literal(file_old)


def set_setting(
    key: str, text: str, by: str, *, unit: bool, explicit: str | Path | None = None
) -> Change:
    """Set ``key`` to ``text`` in the unit's file or the bed's; audited before it applies."""
    if not by.strip():
        raise ChangeError("--by must name who makes the change")
    before = load_bedside_config(explicit, whole=False)
    try:
        bound = before.allowed(key)
    except KeyError as exc:
        raise ChangeError(str(exc.args[0])) from None
    if bound.type in ("table", "table_list"):
        raise ChangeError(
            f"{key} is {bound}: edit it in the unit's file and check that file with "
            "'monitor config check FILE'"
        )
    if not unit and not bound.bedside:
        raise ChangeError(
            f"{key} is a unit setting: biomedical staff change it with --unit "
            "(bedside adjustments: the settings marked bedside = true in the bounds)"
        )
    try:
        literal = parse_value(text)
    except ValueError as exc:
        raise ChangeError(f"{key}: {exc}") from None
    try:
        value = bound.parse(literal)
    except ValueError as exc:
        raise ChangeError(f"{key}: {exc} (allowed {bound})") from None
    target = _unit_file(explicit) if unit else bedside_file(before)
    try:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
    except OSError as exc:
        raise ChangeError(f"cannot read {target}: {exc.strerror}") from None
    file_old = read_config_file(target).values.get(key) if current else None
    if file_old == value:
        raise ChangeError(f"{key} is already {toml_literal(value)} in {target}; nothing to change")
    _refuse_contradictions(before, key, value, target)
    new_text = with_setting(current, key, value)
    staged = _stage(target, new_text)
    try:
        problems = [str(p).replace(str(staged), str(target)) for p in check_config_file(staged)]
        if problems:
            raise ChangeError("the edited file would not be valid: " + "; ".join(problems))
        digest = hashlib.sha256(new_text.encode()).hexdigest()
        action = "config set" if unit else "bedside adjustment"
        log_dir = configured_log_directory(before)
        old, new = described_old(file_old, before[key]), toml_literal(value)
        if not record_audit_outside(log_dir, by, action, key, old, new, str(target), digest):
            raise ChangeError(
                f"the change could not be recorded in the log at {log_dir}; nothing was changed"
            )
        os.replace(staged, target)
        _sync_directory(target.parent)
    finally:
        staged.unlink(missing_ok=True)
    after = load_bedside_config(explicit, whole=False)
    return Change(
        key, target, file_old, before[key], before.source(key), value, after[key],
        after.source(key),
    )  # fmt: skip


def _refuse_contradictions(before: Config, key: str, value: Value, target: Path) -> None:
    """Refuse a change that makes the configuration in effect contradict itself.

    Checked on the merged result (a bedside target can contradict a unit's
    critical limit); only problems the change would add are refused, so a
    configuration that is already broken can still be repaired one key at a time.
    """
    files = [label.split(" (", 1)[0] for label in before.files]  # highest first
    source = before.source(key).split(" (", 1)[0]
    if source != str(target):
        # The bed's adjustments sit above every file (they are not among them).
        above_all = source not in files
        if above_all or files.index(source) < (
            files.index(str(target)) if str(target) in files else 0
        ):
            return  # a layer above the target sets this key: the change does not apply yet
    after = before.with_overrides({key: value}, str(target))
    known = {str(problem) for problem in configuration_problems(before)}
    added = [p for p in configuration_problems(after) if str(p) not in known]
    if added:
        raise ChangeError(
            f"{key} = {toml_literal(value)} would contradict the configuration in effect: "
            + "; ".join(p.message if p.key == key else str(p) for p in added)
        )


def _unit_file(explicit: str | Path | None) -> Path:
    """The unit's file a ``--unit`` change edits: named, or the one at /etc that exists.

    A file nobody named is never created: it would be read by every later
    command (root-owned, above the user's own) without anyone choosing it.
    """
    if explicit is not None:
        return Path(explicit)
    default = config_module.ETC_DIR / CONFIG_NAME
    if not default.exists():
        raise ChangeError(
            f"--unit without --config changes {default}, which does not exist; nothing was "
            f"changed. To create the unit's file, copy deploy/monitor.toml there (for example "
            f"`sudo install -D -m 0644 deploy/monitor.toml {default}`), then name it: "
            f"--config {default}"
        )
    return default


def clear_bedside(config: Config, by: str) -> list[str]:
    """Remove the bed's adjustments (a new patient); each removal is audited. Returns the keys."""
    path = bedside_file(config)
    if not path.exists():
        return []
    keys = list(read_config_file(path).values)
    for key in keys:
        record_audit_outside(
            configured_log_directory(config), by, "bedside adjustment cleared", key,
            toml_literal(config[key]), None, str(path), None,
        )  # fmt: skip
    path.unlink()
    _sync_directory(path.parent)
    return keys


def _stage(target: Path, text: str) -> Path:
    """``text`` written and synced to a new file beside ``target``, with its permissions."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise ChangeError(f"cannot write beside {target}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if target.exists():
        os.chmod(name, target.stat().st_mode & 0o777)
    return Path(name)


def _sync_directory(directory: Path) -> None:
    """The rename itself on the disk, not only in the page cache."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
