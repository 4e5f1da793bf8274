"""``monitor patient new`` and ``patient set``: admissions, which bound what a restart resumes.

A new admission starts a new patient: the detector never resumes history
from before it, the bed's adjustments are cleared, and the weight (for the
per-kg doses) is the new patient's. Each change is audited in the log.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.cli.args import positive_number
from monitor.cli.config import load_effective

WEIGHT_RANGE_KG = (0.5, 400.0)  # a premature neonate to the heaviest adults: a typo is refused
RELOAD_HINT = "A running monitor takes it on reload: `systemctl reload monitor` (or SIGHUP)."


def weight_kg(text: str) -> float:
    """argparse type: a body weight in kg, within ``WEIGHT_RANGE_KG``."""
    value = positive_number(text)
    low, high = WEIGHT_RANGE_KG
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} kg is outside {low:g}-{high:g} kg")
    return value


def cmd_patient_new(args: argparse.Namespace) -> int:
    from monitor.bedside.config_change import clear_bedside
    from monitor.log.outside import start_admission
    from monitor.log.store import configured_log_directory

    config = load_effective(args.config)
    directory = args.log_dir or configured_log_directory(config)
    admission = start_admission(directory, args.weight, args.by)
    cleared = clear_bedside(config, args.by)
    weight = "no weight: NEE stays unknown until `monitor patient set --weight`"
    if args.weight is not None:
        weight = f"{args.weight:g} kg"
    print(f"Admission {admission} started by {args.by} ({weight}).")
    if cleared:
        print(f"Bedside adjustments cleared: {', '.join(cleared)}.")
    print(RELOAD_HINT)
    return 0


def cmd_patient_set(args: argparse.Namespace) -> int:
    from monitor.log.outside import set_admission_weight
    from monitor.log.store import configured_log_directory

    config = load_effective(args.config)
    directory = args.log_dir or configured_log_directory(config)
    admission, old = set_admission_weight(directory, args.weight, args.by)
    before = "no weight" if old is None else f"{old:g} kg"
    print(f"Admission {admission}: weight {before} -> {args.weight:g} kg (audited, by {args.by}).")
    print(RELOAD_HINT)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", required=True, metavar="NAME", help="who makes the change")
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: search)")
    parser.add_argument("--log-dir", type=Path, help="the log directory (default: log.directory)")


def add_patient_commands(sub: argparse._SubParsersAction) -> None:
    patient = sub.add_parser("patient", help="start a new admission, or correct the weight")
    actions = patient.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new",
        help="a new patient: new admission, bedside adjustments cleared",
        description="Start a new admission: no restart resumes history from before it, the "
        "bed's adjustments are cleared, and the weight is the new patient's (without one the "
        "monitor runs, NEE is unknown and a technical alarm says why). Audited.",
    )
    new.add_argument("--weight", type=weight_kg, metavar="KG", help="body weight in kg")
    _common(new)
    new.set_defaults(run=cmd_patient_new)
    change = actions.add_parser("set", help="correct the current admission's weight (audited)")
    change.add_argument(
        "--weight", type=weight_kg, required=True, metavar="KG", help="body weight in kg"
    )
    _common(change)
    change.set_defaults(run=cmd_patient_set)
