"""Alarm outputs: each sink against real processes or a fake line, and the fanout's isolation.

No test asserts a duration: waits are on events with generous timeouts, so a
slow machine makes the tests slower, never wrong.
"""

from __future__ import annotations

import io
import json
import shlex
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from monitor.alarm_outputs.audio import AudioSink
from monitor.alarm_outputs.command import CommandSink, transition_json
from monitor.alarm_outputs.configured import TerminalSink, build_sinks, format_transition
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.alarm_outputs.gpio import GpioSink, gpio_mode
from monitor.alarm_outputs.sink import AlarmSink, SinkError
from monitor.clinical.alarm_types import (
    ActiveAlarm,
    AlarmTransition,
    Annunciation,
    Category,
    Priority,
    Transition,
)

WAIT_S = 10.0  # generous: only ever reached when a test is about to fail


def wait_until(predicate, timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def transition(i: int = 0, **changes) -> AlarmTransition:
    fields = dict(
        t_s=7512.0 + i,
        name="refractory_hypotension",
        priority=Priority.HIGH,
        category=Category.PHYSIOLOGICAL,
        transition=Transition.RAISED,
        message=f"MAP 58 mmHg on NEE 0.31 ug/kg/min for 30 min (#{i})",
        evidence={"map_mmhg": 58.0, "nee": 0.31},
    )
    fields.update(changes)
    return AlarmTransition(**fields)


def alarm(priority: Priority, acknowledged: bool = False, name: str = "a") -> ActiveAlarm:
    return ActiveAlarm(
        name=name,
        priority=priority,
        category=Category.PHYSIOLOGICAL,
        message="m",
        since_s=0.0,
        condition_active=True,
        acknowledged=acknowledged,
        audio_paused=False,
    )


def annunciation(*alarms: ActiveAlarm, audible: Priority | None = None) -> Annunciation:
    ordered = tuple(sorted(alarms, key=lambda a: -a.priority))
    return Annunciation(t_s=0.0, alarms=ordered, audible=audible)


class Reports:
    """on_failure / on_recovery that record, and let a test wait for a count."""

    def __init__(self):
        self.failures: list[tuple[str, str]] = []
        self.recoveries: list[str] = []

    def on_failure(self, name: str, message: str) -> None:
        self.failures.append((name, message))

    def on_recovery(self, name: str) -> None:
        self.recoveries.append(name)

    def failed(self, name: str) -> list[str]:
        return [m for n, m in self.failures if n == name]


def fanout(sinks, reports: Reports, **kwargs) -> SinkFanout:
    return SinkFanout(sinks, reports.on_failure, reports.on_recovery, **kwargs)


class RecordingSink(AlarmSink):
    name = "recording"

    def __init__(self, name: str = "recording"):
        self.name = name
        self.transitions: list[AlarmTransition] = []
        self.annunciations: list[Annunciation] = []
        self.closed = False

    def deliver(self, transition):
        self.transitions.append(transition)

    def render(self, annunciation):
        self.annunciations.append(annunciation)

    def close(self):
        self.closed = True


class RaisingSink(AlarmSink):
    name = "raising"

    def __init__(self, failures: int | None = None):
        self.failures_left = failures  # None: always
        self.delivered = 0

    def deliver(self, transition):
        if self.failures_left is None or self.failures_left > 0:
            if self.failures_left is not None:
                self.failures_left -= 1
            raise RuntimeError("display unplugged")
        self.delivered += 1


class HangingSink(AlarmSink):
    """Blocks in every call until released (a stuck output)."""

    name = "hanging"

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.annunciations: list[Annunciation] = []

    def deliver(self, transition):
        self.entered.set()
        self.release.wait()

    def render(self, annunciation):
        self.entered.set()
        self.release.wait()
        self.annunciations.append(annunciation)


# --- terminal ---------------------------------------------------------------------------------


def test_terminal_prints_one_flushed_line_per_transition():
    class CountingStream(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1
            super().flush()

    stream = CountingStream()
    sink = TerminalSink(stream)
    sink.deliver(transition(message="MAP 58 mmHg\non NEE 0.31"))
    assert stream.getvalue() == (
        "  7512.0s  HIGH    physiological  refractory_hypotension raised: MAP 58 mmHg on NEE 0.31\n"
    )
    assert stream.flushes == 1
    sink.deliver(
        transition(
            t_s=12.25,
            name="transducer_comm_lost",
            priority=Priority.MEDIUM,
            category=Category.TECHNICAL,
            transition=Transition.CONDITION_ENDED,
            message="link back",
        )
    )
    assert stream.getvalue().splitlines()[1] == (
        "    12.2s  MEDIUM  technical      transducer_comm_lost condition ended: link back"
    )
    assert stream.flushes == 2


def test_format_transition_names_every_transition_kind():
    for kind in Transition:
        assert kind.value.replace("_", " ") in format_transition(transition(transition=kind))


# --- fanout -----------------------------------------------------------------------------------


def test_a_raising_and_a_hanging_sink_do_not_stop_a_healthy_one():
    reports = Reports()
    healthy, raising, hanging = RecordingSink(), RaisingSink(), HangingSink()
    out = fanout([raising, hanging, healthy], reports, stall_timeout_s=0.2)
    try:
        sent = [transition(i) for i in range(50)]
        for t in sent:
            out.deliver(t)  # returns although one sink is stuck: the test would hang otherwise
        assert wait_until(lambda: len(healthy.transitions) == 50)
        assert healthy.transitions == sent
        assert wait_until(lambda: reports.failed("raising") and reports.failed("hanging"))
    finally:
        hanging.release.set()
        assert out.close(timeout_s=WAIT_S)
    assert reports.failed("raising") == ["display unplugged"]
    assert len(reports.failed("hanging")) == 1
    assert "stuck" in reports.failed("hanging")[0]
    assert [n for n, _ in reports.failures].count("recording") == 0
    assert healthy.closed


def test_a_sink_that_recovers_is_reported_failed_once_and_recovered_once():
    reports = Reports()
    sink = RaisingSink(failures=3)
    out = fanout([sink], reports)
    for i in range(6):
        out.deliver(transition(i))
    assert out.close(timeout_s=WAIT_S)
    assert sink.delivered == 3
    assert reports.failures == [("raising", "display unplugged")]
    assert reports.recoveries == ["raising"]


def test_renders_that_succeed_do_not_hide_a_failing_deliver():
    reports = Reports()
    out = fanout([RaisingSink()], reports)  # deliver raises, render is the no-op default
    for i in range(5):
        out.deliver(transition(i))
        out.render(annunciation())
    assert out.close(timeout_s=WAIT_S)
    assert reports.failures == [("raising", "display unplugged")]
    assert reports.recoveries == []


def test_a_full_queue_is_reported_once_and_deliver_does_not_block():
    reports = Reports()
    stuck = HangingSink()
    out = fanout([stuck], reports, queue_size=2, stall_timeout_s=600.0)
    try:
        for i in range(20):
            out.deliver(transition(i))
        assert wait_until(lambda: reports.failures)
        assert reports.failures[0][0] == "hanging"
        assert "not keeping up" in reports.failures[0][1]
        assert out.failing().keys() == {"hanging"}
        stuck.release.set()
        assert wait_until(lambda: reports.recoveries == ["hanging"])
    finally:
        stuck.release.set()
        assert out.close(timeout_s=WAIT_S)
    assert len(reports.failures) == 1
    assert out.failing() == {}


def test_a_call_that_never_returns_is_reported_as_stuck_without_filling_the_queue():
    reports = Reports()
    stuck = HangingSink()
    out = fanout([stuck], reports, stall_timeout_s=0.2)
    try:
        out.deliver(transition())
        assert wait_until(lambda: reports.failures)
        assert reports.failures == [("hanging", reports.failures[0][1])]
        assert "has not returned" in reports.failures[0][1]
        stuck.release.set()
        assert wait_until(lambda: reports.recoveries == ["hanging"])
    finally:
        stuck.release.set()
        assert out.close(timeout_s=WAIT_S)
    assert len(reports.failures) == 1


def test_renders_to_a_busy_sink_coalesce_to_the_latest_state():
    reports = Reports()
    stuck = HangingSink()
    out = fanout([stuck], reports, queue_size=2, stall_timeout_s=600.0)
    try:
        out.render(annunciation(audible=None))
        assert stuck.entered.wait(WAIT_S)
        states = [annunciation(alarm(Priority.LOW, name=f"a{i}")) for i in range(1000)]
        for state in states:
            out.render(state)
        stuck.release.set()
        assert wait_until(lambda: len(stuck.annunciations) == 2)
    finally:
        stuck.release.set()
        assert out.close(timeout_s=WAIT_S)
    assert stuck.annunciations[-1] is states[-1]
    assert reports.failures == []


def test_close_drains_every_queue_and_closes_every_sink():
    reports = Reports()
    sinks = [RecordingSink("one"), RecordingSink("two")]
    out = fanout(sinks, reports)
    for i in range(100):
        out.deliver(transition(i))
    out.render(annunciation(audible=None))
    assert out.close(timeout_s=WAIT_S)
    for sink in sinks:
        assert len(sink.transitions) == 100 and len(sink.annunciations) == 1 and sink.closed
    out.deliver(transition())  # after close: ignored, not raised
    out.render(annunciation())


def test_close_gives_up_on_a_hung_sink_and_says_so():
    reports = Reports()
    stuck, healthy = HangingSink(), RecordingSink()
    out = fanout([stuck, healthy], reports, stall_timeout_s=600.0)
    try:
        out.deliver(transition())
        assert stuck.entered.wait(WAIT_S)
        assert out.close(timeout_s=0.2) is False
        assert healthy.closed
    finally:
        stuck.release.set()


def test_a_sink_unavailable_at_start_is_reported_at_start():
    class NoDevice(RecordingSink):
        def unavailable(self):
            return "no device"

        def start_note(self):
            return "device: none found"

    reports = Reports()
    out = fanout([NoDevice("dev"), RecordingSink()], reports)
    assert out.start_notes() == ["device: none found"]
    out.deliver(transition())
    assert out.close(timeout_s=WAIT_S)
    assert reports.failures == [("dev", "no device")]
    assert reports.recoveries == []


def test_a_failing_callback_does_not_stop_the_fanout():
    healthy = RecordingSink()

    def on_failure(name, message):
        raise RuntimeError("manager bug")

    out = SinkFanout([RaisingSink(), healthy], on_failure)
    for i in range(3):
        out.deliver(transition(i))
    assert out.close(timeout_s=WAIT_S)
    assert len(healthy.transitions) == 3


def test_sink_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        SinkFanout([RecordingSink(), RecordingSink()], lambda n, m: None)


# --- command hook -----------------------------------------------------------------------------


def python_command(tmp_path: Path, source: str, *args: str) -> str:
    script = tmp_path / "hook.py"
    script.write_text(source)
    return shlex.join([sys.executable, str(script), *args])


APPEND_STDIN = """
import os, sys
with open(sys.argv[1], "a") as f:
    f.write(sys.stdin.read() + "\\n")
    f.write(" ".join(os.environ[k] for k in (
        "MONITOR_ALARM_NAME", "MONITOR_ALARM_PRIORITY", "MONITOR_ALARM_TRANSITION")) + "\\n")
"""


def test_command_receives_the_transition_as_json_and_environment(tmp_path):
    received = tmp_path / "received.txt"
    sink = CommandSink(python_command(tmp_path, APPEND_STDIN, str(received)))
    assert sink.unavailable() is None
    sink.deliver(transition(evidence={"map_mmhg": 58.0, "missing": float("nan")}))
    body, env = received.read_text().splitlines()
    assert json.loads(body) == {
        "t_s": 7512.0,
        "name": "refractory_hypotension",
        "priority": "high",
        "category": "physiological",
        "transition": "raised",
        "message": "MAP 58 mmHg on NEE 0.31 ug/kg/min for 30 min (#0)",
        "evidence": {"map_mmhg": 58.0, "missing": None},
    }
    assert env == "refractory_hypotension high raised"


def test_transition_json_is_strict_json_for_numpy_evidence():
    np = pytest.importorskip("numpy")
    text = transition_json(
        transition(evidence={"map": np.float32(58.5), "beats": np.arange(3), "n": np.int64(7)})
    )
    assert json.loads(text)["evidence"] == {"map": 58.5, "beats": [0, 1, 2], "n": 7}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("false", "exited with status 1"),
        ("definitely-not-a-monitor-hook --flag", "could not start"),
    ],
)
def test_command_failures_raise(command, expected):
    with pytest.raises(SinkError, match=expected):
        CommandSink(command).deliver(transition())


def test_a_missing_command_is_unavailable_from_the_start():
    sink = CommandSink("definitely-not-a-monitor-hook")
    assert "not found" in sink.unavailable()
    assert "not found" in sink.start_note()


def test_a_command_that_outlasts_its_timeout_is_killed_and_fails(tmp_path):
    marker = tmp_path / "survived"
    source = f"import time\ntime.sleep(5)\nopen({str(marker)!r}, 'w').close()\n"
    sink = CommandSink(python_command(tmp_path, source), timeout_s=0.3)
    with pytest.raises(SinkError, match="did not finish within 0.3 s"):
        sink.deliver(transition())
    assert not marker.exists()


def test_a_failing_command_is_reported_once_through_the_fanout(tmp_path):
    reports = Reports()
    out = fanout([CommandSink("false"), RecordingSink()], reports)
    for i in range(3):
        out.deliver(transition(i))
    assert out.close(timeout_s=WAIT_S)
    assert [n for n, _ in reports.failures] == ["command"]
    assert "status 1" in reports.failures[0][1]


# --- audio ------------------------------------------------------------------------------------

FAKE_PLAYER = """
import sys, time
log, mode, wav = sys.argv[1], sys.argv[2], sys.argv[-1]
with open(log, "a") as f:
    f.write(wav + "\\n")
if mode == "fail":
    sys.stderr.write("no such audio device\\n")
    sys.exit(3)
if mode == "slow-medium" and "medium" in wav:
    time.sleep(60)
"""


def fake_player(tmp_path: Path, mode: str = "ok") -> tuple[str, Path]:
    played = tmp_path / "played.txt"
    played.touch()
    script = tmp_path / "player.py"
    script.write_text(FAKE_PLAYER)
    return shlex.join([sys.executable, str(script), str(played), mode]), played


def plays(played: Path) -> list[str]:
    return [Path(line).name for line in played.read_text().splitlines()]


def quick(priority: Priority) -> float:
    return 0.05


def test_audio_repeats_the_audible_burst_and_stops_on_silence(tmp_path):
    command, played = fake_player(tmp_path)
    sink = AudioSink(command, tmp_path / "sounds", repeat_interval=quick)
    try:
        assert sink.unavailable() is None
        assert set(sink.wav_paths) == {Priority.HIGH, Priority.MEDIUM, Priority.LOW}
        assert all(p.stat().st_size > 1000 for p in sink.wav_paths.values())
        sink.render(annunciation(alarm(Priority.HIGH), audible=Priority.HIGH))
        assert wait_until(lambda: len(plays(played)) >= 3)
        assert set(plays(played)) == {"alarm-high.wav"}
        sink.render(annunciation(alarm(Priority.HIGH, acknowledged=True), audible=None))
        assert sink.wait_idle(WAIT_S)
        count = len(plays(played))
        time.sleep(0.3)  # six repeat intervals: nothing more may play
        assert len(plays(played)) == count
    finally:
        sink.close()


def test_a_higher_priority_interrupts_a_playing_burst(tmp_path):
    command, played = fake_player(tmp_path, "slow-medium")  # a medium burst "plays" for 60 s
    sink = AudioSink(command, tmp_path, repeat_interval=quick)
    try:
        sink.render(annunciation(alarm(Priority.MEDIUM), audible=Priority.MEDIUM))
        assert wait_until(lambda: plays(played) == ["alarm-medium.wav"])
        sink.render(
            annunciation(alarm(Priority.MEDIUM), alarm(Priority.HIGH), audible=Priority.HIGH)
        )
        assert wait_until(lambda: "alarm-high.wav" in plays(played))
        assert plays(played)[:2] == ["alarm-medium.wav", "alarm-high.wav"]
        # Back to medium only: it sounds again after the high burst, and silence stops it.
        sink.render(annunciation(alarm(Priority.MEDIUM), audible=Priority.MEDIUM))
        assert wait_until(lambda: plays(played)[-1] == "alarm-medium.wav")
        sink.render(annunciation(audible=None))
        assert sink.wait_idle(WAIT_S)  # the 60 s medium player was stopped
    finally:
        sink.close()


def test_information_priority_makes_no_sound(tmp_path):
    command, played = fake_player(tmp_path)
    sink = AudioSink(command, tmp_path, repeat_interval=quick)
    try:
        sink.render(annunciation(audible=Priority.INFO))
        assert sink.wait_idle(WAIT_S)
        assert plays(played) == []
    finally:
        sink.close()


def test_a_failing_player_is_reported_once(tmp_path):
    command, played = fake_player(tmp_path, "fail")
    reports = Reports()
    sink = AudioSink(command, tmp_path, repeat_interval=quick)
    out = fanout([sink], reports)
    out.render(annunciation(alarm(Priority.LOW), audible=Priority.LOW))
    assert wait_until(lambda: len(plays(played)) >= 3)
    assert out.close(timeout_s=WAIT_S)
    assert len(reports.failures) == 1
    name, message = reports.failures[0]
    assert name == "audio"
    assert "exited with status 3: no such audio device" in message


def test_no_player_means_audio_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no aplay, paplay or pw-play here
    reports = Reports()
    sink = AudioSink(None, tmp_path)
    assert "no sound player found" in sink.start_note()
    out = fanout([sink, RecordingSink()], reports)
    out.render(annunciation(alarm(Priority.HIGH), audible=Priority.HIGH))
    assert out.close(timeout_s=WAIT_S)
    assert reports.failures == [("audio", sink.unavailable())]
    assert "aplay" in sink.unavailable()


def test_a_configured_player_that_is_missing_means_audio_unavailable(tmp_path):
    sink = AudioSink("no-such-player -q", tmp_path)
    assert "no-such-player" in sink.unavailable()
    sink.close()


# --- GPIO -------------------------------------------------------------------------------------


class FakeLine:
    def __init__(self):
        self.values: list[bool] = []
        self.closed = False

    def set(self, on: bool) -> None:
        self.values.append(on)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("alarms", "mode"),
    [
        ((alarm(Priority.HIGH),), "flash"),
        ((alarm(Priority.HIGH), alarm(Priority.MEDIUM)), "flash"),
        ((alarm(Priority.HIGH, acknowledged=True), alarm(Priority.MEDIUM)), "on"),
        ((alarm(Priority.MEDIUM),), "on"),
        ((alarm(Priority.MEDIUM, acknowledged=True),), "off"),
        ((alarm(Priority.LOW), alarm(Priority.INFO)), "off"),
        ((), "off"),
    ],
)
def test_gpio_mode(alarms, mode):
    assert gpio_mode(annunciation(*alarms)) == mode


def test_gpio_line_flashes_for_high_is_steady_for_medium_and_off_otherwise():
    line = FakeLine()
    half_period_s = 0.5 / 20.0
    sink = GpioSink("gpiochip0", 17, driver=line, flash_hz=20.0)
    assert sink.unavailable() is None
    try:
        assert wait_until(lambda: line.values == [False])
        sink.render(annunciation(alarm(Priority.HIGH)))
        assert wait_until(lambda: line.values[1:5] == [True, False, True, False])
        sink.render(annunciation(alarm(Priority.HIGH, acknowledged=True), alarm(Priority.MEDIUM)))
        assert wait_until(lambda: line.values[-1] is True)
        time.sleep(2 * half_period_s)  # lets a toggle already under way land
        steady = len(line.values)
        time.sleep(5 * half_period_s)  # would hold two more toggles if it still flashed
        assert len(line.values) == steady
        sink.render(annunciation(alarm(Priority.MEDIUM, acknowledged=True)))
        assert wait_until(lambda: line.values[-1] is False)
        sink.render(annunciation())
        time.sleep(5 * half_period_s)
        assert line.values[-1] is False
    finally:
        sink.close()
    assert line.closed and line.values[-1] is False


def test_gpio_without_bindings_notes_it_and_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod -> ImportError
    sink = GpioSink("/dev/gpiochip0", 17)
    note = sink.start_note()
    assert note == "GPIO output off: python gpiod bindings not installed (pip install gpiod)"
    assert sink.unavailable() == note
    sink.render(annunciation(alarm(Priority.HIGH)))
    sink.close()


def fake_gpiod_v2(requests: list) -> types.ModuleType:
    """Enough of libgpiod 2.x's Python API to check how the sink calls it."""
    gpiod = types.ModuleType("gpiod")
    line = types.ModuleType("gpiod.line")
    line.Direction = types.SimpleNamespace(OUTPUT="output")
    line.Value = types.SimpleNamespace(ACTIVE="active", INACTIVE="inactive")
    gpiod.line = line

    class Request:
        def __init__(self, path, consumer, config):
            self.args = (path, consumer, config)
            self.values: list = []
            self.released = threading.Event()
            requests.append(self)

        def set_value(self, offset, value):
            self.values.append((offset, value))

        def release(self):
            self.released.set()

    gpiod.LineSettings = lambda **kw: kw
    gpiod.request_lines = lambda path, consumer, config: Request(path, consumer, config)
    return gpiod


def test_gpio_without_the_chip_notes_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", fake_gpiod_v2([]))
    sink = GpioSink("gpiochip99", 17)
    assert sink.start_note() == "GPIO output off: no /dev/gpiochip99"
    sink.close()


def test_gpio_drives_the_line_through_gpiod_v2(tmp_path, monkeypatch):
    requests: list = []
    gpiod = fake_gpiod_v2(requests)
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", gpiod.line)
    chip = tmp_path / "gpiochip0"  # stands in for /dev/gpiochip0
    chip.touch()
    sink = GpioSink(str(chip), 17)
    assert sink.unavailable() is None
    (request,) = requests
    assert request.args == (
        str(chip),
        "monitor-alarm",
        {17: {"direction": "output", "output_value": "inactive"}},
    )
    sink.render(annunciation(alarm(Priority.MEDIUM)))
    assert wait_until(lambda: (17, "active") in request.values)
    sink.close()
    assert request.released.is_set()
    assert request.values[-1] == (17, "inactive")


def test_gpio_drives_the_line_through_gpiod_v1(tmp_path, monkeypatch):
    calls: list = []

    class Line:
        def request(self, **kwargs):
            calls.append(("request", kwargs))

        def set_value(self, value):
            calls.append(("set", value))

        def release(self):
            calls.append(("release",))

    class Chip:
        def __init__(self, path):
            calls.append(("chip", path))

        def get_line(self, offset):
            calls.append(("line", offset))
            return Line()

        def close(self):
            calls.append(("close",))

    gpiod = types.ModuleType("gpiod")
    gpiod.Chip, gpiod.LINE_REQ_DIR_OUT = Chip, "out"
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    chip = tmp_path / "gpiochip0"
    chip.touch()
    sink = GpioSink(str(chip), 4)
    sink.render(annunciation(alarm(Priority.MEDIUM)))
    assert wait_until(lambda: ("set", 1) in calls)
    sink.close()
    assert calls[:3] == [
        ("chip", str(chip)),
        ("line", 4),
        ("request", {"consumer": "monitor-alarm", "type": "out", "default_val": 0}),
    ]
    assert calls[-3:] == [("set", 0), ("release",), ("close",)]


def test_a_failing_gpio_line_is_reported():
    class BrokenLine(FakeLine):
        def set(self, on):
            raise OSError("Device or resource busy")

    reports = Reports()
    out = fanout([GpioSink("gpiochip0", 17, driver=BrokenLine())], reports)
    assert wait_until(lambda: reports.failures)
    assert out.close(timeout_s=WAIT_S)
    assert reports.failures[0][0] == "gpio"
    assert "Device or resource busy" in reports.failures[0][1]
    assert len(reports.failures) == 1


# --- configuration ----------------------------------------------------------------------------

SETTINGS = {
    "alarms.audio": "off",
    "alarms.audio_player": "",
    "alarms.gpio_chip": "",
    "alarms.gpio_line": 17,
    "alarms.command": "",
}


def test_build_sinks_reads_the_packaged_defaults(tmp_path, monkeypatch):
    from monitor.configuration.config import default_config

    monkeypatch.setenv("PATH", str(tmp_path))  # no player: the test machine stays quiet
    sinks = build_sinks(default_config(), io.StringIO(), tmp_path)
    assert [s.name for s in sinks] == ["terminal", "audio"]
    for sink in sinks:
        sink.close()


def test_build_sinks_always_has_the_terminal(tmp_path):
    sinks = build_sinks(SETTINGS, io.StringIO(), tmp_path)
    assert [s.name for s in sinks] == ["terminal"]


def test_build_sinks_builds_every_configured_output(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", None)
    command, _ = fake_player(tmp_path)
    settings = {
        **SETTINGS,
        "alarms.audio": "auto",
        "alarms.audio_player": command,
        "alarms.gpio_chip": "/dev/gpiochip0",
        "alarms.command": "true",
    }
    sinks = build_sinks(settings, io.StringIO(), tmp_path / "sounds")
    try:
        assert [s.name for s in sinks] == ["terminal", "audio", "gpio", "command"]
        assert (tmp_path / "sounds" / "alarm-high.wav").exists()
    finally:
        for sink in sinks:
            sink.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alarms.audio", "loud"),
        ("alarms.gpio_line", "17"),
        ("alarms.gpio_line", -1),
        ("alarms.command", None),
    ],
)
def test_build_sinks_refuses_bad_settings(tmp_path, key, value):
    settings = {**SETTINGS, "alarms.gpio_chip": "gpiochip0", key: value}
    with pytest.raises(ValueError, match=key):
        build_sinks(settings, io.StringIO(), tmp_path)


def test_build_sinks_refuses_missing_settings(tmp_path):
    settings = dict(SETTINGS)
    del settings["alarms.command"]
    with pytest.raises(ValueError, match="alarms.command"):
        build_sinks(settings, io.StringIO(), tmp_path)
