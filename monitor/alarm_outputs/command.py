"""The command-hook output: an external program run for every alarm transition."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

from monitor.alarm_outputs.sink import AlarmSink, SinkError, stderr_tail, stop_process
from monitor.clinical.alarm_types import AlarmTransition, jsonable


def transition_json(transition: AlarmTransition) -> str:
    """The JSON object a command hook receives on stdin."""
    return json.dumps(
        {
            "t_s": jsonable(transition.t_s),
            "name": transition.name,
            "priority": transition.priority.label,
            "category": transition.category.value,
            "transition": transition.transition.value,
            "message": transition.message,
            "evidence": jsonable(transition.evidence),
        },
        allow_nan=False,
    )


class CommandSink(AlarmSink):
    """Runs an external program for every transition (paging, a ward system, a script).

    The transition goes to its stdin as one JSON object and into
    MONITOR_ALARM_NAME, MONITOR_ALARM_PRIORITY and MONITOR_ALARM_TRANSITION.
    The command is split with shlex and run without a shell, in its own
    process group, which is killed if it outlasts ``timeout_s``. A missing
    program, a non-zero exit or a timeout is a failure.
    """

    name = "command"

    def __init__(self, command: str, timeout_s: float = 5.0):
        self._argv = shlex.split(command)
        if not self._argv:
            raise ValueError("alarm command is empty")
        self._timeout_s = timeout_s
        self._program = self._argv[0]

    def unavailable(self) -> str | None:
        if shutil.which(self._program) is None:
            return f"alarm command '{self._program}' not found"
        return None

    def start_note(self) -> str | None:
        return self.unavailable() or (
            f"command hook: '{shlex.join(self._argv)}' runs on every alarm transition"
        )

    def deliver(self, transition: AlarmTransition) -> None:
        env = {
            **os.environ,
            "MONITOR_ALARM_NAME": transition.name,
            "MONITOR_ALARM_PRIORITY": transition.priority.label,
            "MONITOR_ALARM_TRANSITION": transition.transition.value,
        }
        try:
            proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise SinkError(f"alarm command '{self._program}' could not start: {exc}") from exc
        try:
            _, stderr = proc.communicate(transition_json(transition).encode(), self._timeout_s)
        except subprocess.TimeoutExpired:
            stop_process(proc, group=True)
            raise SinkError(
                f"alarm command '{self._program}' did not finish within {self._timeout_s:g} s"
            ) from None
        if proc.returncode != 0:
            raise SinkError(
                f"alarm command '{self._program}' exited with status {proc.returncode}"
                f"{stderr_tail(stderr)}"
            )
        self.report_ok()
