"""The ``monitor`` command line: one subcommand per job, built into one parser.

Only this package prints; a user's mistake ends in one line on stderr that
names what was wrong, and a non-zero exit, never a traceback. Each command
module imports the stages it drives when its command runs, so ``--help``
and ``monitor beats`` never load the network, plotting or asyncio libraries.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from monitor.cli.analyze import add_analyze_command
from monitor.cli.args import LogfmtFormatter, UsageError
from monitor.cli.beats import add_beats_command
from monitor.cli.central import add_central_command
from monitor.cli.config import add_config_commands
from monitor.cli.log import add_log_commands
from monitor.cli.patient import add_patient_commands
from monitor.cli.run import add_run_commands
from monitor.cli.serial_tools import add_serial_commands

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Bedside monitor for refractory hypotension "
        "(decision-support research software, not a medical device).",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_beats_command(sub)
    add_run_commands(sub)
    add_serial_commands(sub)
    add_config_commands(sub)
    add_analyze_command(sub)
    add_log_commands(sub)
    add_patient_commands(sub)
    add_central_command(sub)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """What the stages raise for a user's mistake (a bad file, setting or scenario).

    Imported only once something was raised: a command that never loaded a
    stage cannot have raised its error, and start-up stays light.
    """
    from devices.simulation.scenario import ScenarioError
    from monitor.analysis.records import RecordError
    from monitor.configuration.config import ConfigError
    from monitor.configuration.drug_table import DrugTableError
    from monitor.core import CoreUnavailableError

    return (
        RecordError,
        UsageError,
        ScenarioError,
        DrugTableError,
        ConfigError,
        CoreUnavailableError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    if args.verbose:
        from monitor import core

        log.info("beat core: %s", core.IMPLEMENTATION)
    try:
        return args.run(args)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
        return 0
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        print(f"monitor {args.command}: {exc}", file=sys.stderr)
        return 2
