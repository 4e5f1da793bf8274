"""A command in a real terminal for the tests: a private tmux server, read with capture-pane."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

RUN_DIR = Path(__file__).resolve().parent  # not the checkout: the installed package
TMUX_TIMEOUT_S = 20  # one tmux command
SCREEN_TIMEOUT_S = 120  # the demo to reach a state; generous: the machine is shared


class TmuxPane:
    """A private tmux server (its own socket) running one command in a 120x40 pane."""

    def __init__(self, command: Sequence[str], workdir: Path):
        self.socket = f"monitor-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        config = workdir / "tmux.conf"
        config.write_text('set -g default-terminal "screen"\n')
        self.config = config
        shell = f'{shlex.join(command)}; echo "monitor exit status: $?"; sleep 600'
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-c", str(RUN_DIR), shell)

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=TMUX_TIMEOUT_S,
            env=self.env,
        )
        assert result.returncode == 0, f"tmux {args[0]} failed: {result.stderr}"
        return result.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-100")

    def wait_for(self, what: str, seen: Callable[[str], bool]) -> str:
        """The pane's text once ``seen`` holds; fails (never hangs) after SCREEN_TIMEOUT_S."""
        deadline = time.monotonic() + SCREEN_TIMEOUT_S
        while True:
            text = self.text()
            if seen(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the terminal never showed {what}; it shows:\n{text}")
            time.sleep(0.25)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=TMUX_TIMEOUT_S,
            env=self.env,
        )
