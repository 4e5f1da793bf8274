"""The audio output: IEC 60601-1-8 style bursts played with an external player, repeated."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.alarm_outputs.sink import BackgroundSink, stderr_tail, stop_process
from monitor.alarm_outputs.sounds import (
    DEFAULT_SAMPLE_RATE,
    burst,
    burst_duration_s,
    repeat_interval_s,
    write_wav,
)
from monitor.clinical.alarm_types import Annunciation, Priority

PLAYER_CANDIDATES = ("aplay -q", "paplay", "pw-play")
SOUNDING = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


def find_player(command: str | None) -> list[str] | None:
    """The player's argv (the WAV path goes last): ``command``, else the first one installed."""
    for candidate in [command] if command else PLAYER_CANDIDATES:
        argv = shlex.split(candidate)
        if argv and shutil.which(argv[0]):
            return argv
    return None


class AudioSink(BackgroundSink):
    """Plays the burst of ``annunciation.audible`` with an external player, repeated.

    The three bursts are written once as WAV files; a background thread plays
    the audible priority's burst, waits its interburst interval, and plays it
    again. A more urgent priority interrupts a burst at once, silence (None)
    stops it; a less urgent one takes over after the current burst. A player
    that cannot start, exits non-zero or hangs is a failure.
    """

    name = "audio"
    PLAYER_GRACE_S = 10.0  # beyond the burst's length before a player counts as hung

    def __init__(
        self,
        player_command: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        *,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        repeat_interval: Callable[[Priority], float] = repeat_interval_s,
        poll_s: float = 0.05,
    ):
        super().__init__()
        self._interval = repeat_interval
        self._poll_s = poll_s
        self._wanted: Priority | None = None
        self._idle = True
        self._own_dir: Path | None = None
        self._wavs: dict[Priority, Path] = {}
        self._problem: str | None = None
        player = find_player(player_command)
        self._argv: list[str] = player or []  # empty only when unavailable: nothing plays
        if player is None:
            tried = player_command or ", ".join(c.split()[0] for c in PLAYER_CANDIDATES)
            self._problem = f"audio output unavailable: no sound player found (tried {tried})"
            return
        try:
            if workdir is None:
                directory = self._own_dir = Path(tempfile.mkdtemp(prefix="monitor-alarm-sounds-"))
            else:
                directory = Path(workdir)
            directory.mkdir(parents=True, exist_ok=True)
            for priority in SOUNDING:
                path = directory / f"alarm-{priority.label}.wav"
                write_wav(path, burst(priority, sample_rate), sample_rate)
                self._wavs[priority] = path
        except OSError as exc:
            self._problem = f"audio output unavailable: cannot write the alarm sounds: {exc}"
            return
        self._start("alarm-audio")

    @property
    def wav_paths(self) -> Mapping[Priority, Path]:
        return dict(self._wavs)

    def unavailable(self) -> str | None:
        return self._problem

    def start_note(self) -> str | None:
        if self._problem is not None:
            return self._problem
        directory = self._wavs[Priority.HIGH].parent
        return f"audio: alarm sounds played with '{shlex.join(self._argv)}' from {directory}"

    def render(self, annunciation: Annunciation) -> None:
        audible = annunciation.audible
        with self._cond:
            self._wanted = audible if audible in SOUNDING else None
            self._cond.notify_all()

    def close(self) -> None:
        super().close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing plays or waits to play (for tests and shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._idle or self._closed, timeout_s)

    def _still_wanted(self, playing: Priority) -> Priority | None:
        """What is wanted now; None if that preempts ``playing`` (more urgent, silence, closing)."""
        wanted = self._wanted
        if self._closed or wanted is None or wanted > playing:
            return None
        return wanted

    def _run(self) -> None:
        while True:
            with self._cond:
                self._idle = self._wanted is None
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._wanted is not None or self._closed)
                if self._closed:
                    return
                self._idle = False
                priority = self._wanted
                assert priority is not None  # waited for above
            self._play(priority)
            finished = time.monotonic()
            with self._cond:
                while (wanted := self._still_wanted(priority)) is not None:
                    remaining = finished + self._interval(wanted) - time.monotonic()
                    if remaining <= 0.0:
                        break
                    self._cond.wait(remaining)

    def _play(self, priority: Priority) -> None:
        argv = [*self._argv, str(self._wavs[priority])]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            self.report_failure(f"audio player '{argv[0]}' could not start: {exc}")
            return
        deadline = time.monotonic() + burst_duration_s(priority) + self.PLAYER_GRACE_S
        while True:
            try:
                _, stderr = proc.communicate(timeout=self._poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            with self._cond:
                preempted = self._still_wanted(priority) is None
            if preempted:
                stop_process(proc)
                return
            if time.monotonic() > deadline:
                stop_process(proc)
                self.report_failure(
                    f"audio player '{argv[0]}' hung playing the {priority.label} burst"
                )
                return
        if proc.returncode != 0:
            self.report_failure(
                f"audio player '{argv[0]}' exited with status {proc.returncode}"
                f"{stderr_tail(stderr)}"
            )
        else:
            self.report_ok()
