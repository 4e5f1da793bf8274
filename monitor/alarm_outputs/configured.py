"""The configured alarm outputs: always the terminal, then audio, GPIO and a command hook.

Each output lives in its own module (``alarm_audio.py``, ``alarm_gpio.py``,
``alarm_command.py``) behind the contract in ``alarm_output.py``;
docs/alarm-outputs.md has the configuration keys and the sound patterns.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any, Protocol

from monitor.alarm_outputs.audio import AudioSink
from monitor.alarm_outputs.command import CommandSink
from monitor.alarm_outputs.gpio import GpioSink
from monitor.alarm_outputs.sink import AlarmSink
from monitor.clinical.alarm_types import AlarmTransition


def format_transition(transition: AlarmTransition) -> str:
    """``  7512.0s  HIGH    physiological  refractory_hypotension raised: <message>``."""
    message = " ".join(transition.message.split())
    return (
        f"{transition.t_s:8.1f}s  {transition.priority.name:<6}  "
        f"{transition.category.value:<13}  {transition.name} "
        f"{transition.transition.value.replace('_', ' ')}: {message}"
    )


class TextStream(Protocol):
    """Where the terminal output writes: stdout, or the curses screen's recent-events tail."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class TerminalSink(AlarmSink):
    """One line per transition on a text stream, flushed at once."""

    name = "terminal"

    def __init__(self, stream: TextStream):
        self._stream = stream

    def deliver(self, transition: AlarmTransition) -> None:
        self._stream.write(format_transition(transition) + "\n")
        self._stream.flush()


def _setting(settings: Mapping[str, object], key: str, kind: type) -> Any:
    dotted = f"alarms.{key}"
    if dotted not in settings:
        raise ValueError(f"missing setting {dotted}")
    value = settings[dotted]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"setting {dotted} must be {kind.__name__}, got {value!r}")
    return value


def build_sinks(
    settings: Mapping[str, object], stream: TextStream, workdir: str | os.PathLike[str] | None
) -> list[AlarmSink]:
    """The configured outputs: always the terminal, then audio, GPIO and the command hook.

    Reads ``alarms.audio`` ("auto" | "off"), ``alarms.audio_player`` ("" =
    find one), ``alarms.gpio_chip`` ("" = none), ``alarms.gpio_line`` and
    ``alarms.command`` ("" = none); defaults live in config/monitor.toml.
    """
    audio = _setting(settings, "audio", str)
    if audio not in ("auto", "off"):
        raise ValueError(f'setting alarms.audio must be "auto" or "off", got {audio!r}')
    player = _setting(settings, "audio_player", str)
    chip = _setting(settings, "gpio_chip", str)
    line = _setting(settings, "gpio_line", int)
    if line < 0:
        raise ValueError(f"setting alarms.gpio_line must be a line offset >= 0, got {line}")
    command = _setting(settings, "command", str)
    if command and not shlex.split(command):
        raise ValueError(f"setting alarms.command has no program: {command!r}")
    # Everything is checked before anything starts a thread or requests a line.
    sinks: list[AlarmSink] = [TerminalSink(stream)]
    if audio == "auto":
        sinks.append(AudioSink(player or None, workdir))
    if chip:
        sinks.append(GpioSink(chip, line))
    if command:
        sinks.append(CommandSink(command))
    return sinks
