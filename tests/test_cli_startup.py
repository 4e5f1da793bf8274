"""Start-up stays light: the command line loads a stage's libraries only when its command runs.

``monitor --help`` and ``monitor beats`` are what an engineer types most; on
a Pi every library imported for nothing costs a second of start-up. Each
check runs in a fresh interpreter, so nothing imported by the test session
hides what the command line itself loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA

#: Network, plotting and event-loop libraries: only ``run``, ``demo``, ``central``
#: and ``report`` need them. Later web and device-adapter libraries join this list.
HEAVY = ("paho", "hl7apy", "hl7", "asyncio", "matplotlib")
RUN_DIR = Path(__file__).resolve().parent  # not the source tree: the installed package
RECORD = DATA / "cliffordlab_TestICUdata" / "abp.csv.gz"


def loaded_after(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``code`` ran in a new interpreter."""
    probe = (
        "import contextlib, io, json, sys\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    {code}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=RUN_DIR, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_command_line_loads_no_network_plotting_or_event_loop_library():
    loaded = loaded_after("import monitor.cli")
    assert "monitor" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_monitor_help_loads_no_network_plotting_or_event_loop_library():
    code = "from monitor.cli import main\n    with contextlib.suppress(SystemExit): main(['-h'])"
    loaded = loaded_after(code)
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_monitor_beats_loads_the_beat_core_but_no_network_or_plotting_library():
    loaded = loaded_after(f"from monitor.cli import main; main(['beats', {str(RECORD)!r}])")
    assert "numpy" in loaded  # the command really ran the beat core
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


@pytest.mark.parametrize("command", ["run", "demo", "central", "sim", "listen", "analyze", "log"])
def test_every_command_help_loads_no_network_plotting_or_event_loop_library(command):
    code = (
        "from monitor.cli import main\n"
        f"    with contextlib.suppress(SystemExit): main([{command!r}, '--help'])"
    )
    loaded = loaded_after(code)
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))
