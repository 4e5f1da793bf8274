"""End to end over real pty pairs: simulated devices -> device files -> readers -> beat core."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from devices.capture_file import read_capture
from devices.protocols.bcc_frames import ACK
from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.protocols.transducer import (
    AsciiTransducerDecoder,
    BinaryTransducerDecoder,
    encode_frame,
)
from devices.readings import PumpReport, SampleBlock
from devices.simulation.replay import ReplayPlayer, replay_front_end
from devices.simulation.simulator import play
from devices.simulation.virtual_ports import VirtualPort
from monitor import core
from monitor.configuration.drug_table import load_drug_table
from monitor.core.beat_stream import BeatStream
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import DeviceEvent, DeviceEventKind
from monitor.edge.serial_link import PortReader, PortSettings, Received

from conftest import reference_record

RECORD = "cliffordlab_TestICUdata"
SPEED = 100.0


def wire_rounded(samples: np.ndarray, fs: int) -> np.ndarray:
    """What the binary wire delivers for these samples: 0.01 mmHg fixed point."""
    decoder = BinaryTransducerDecoder()
    wire = b"".join(
        encode_frame(samples[k : k + 250], sequence=k, sample_rate=fs)
        for k in range(0, len(samples), 250)
    )
    return np.concatenate([frame.samples for frame in decoder.feed(wire)])


def receive_replay(samples: np.ndarray, fs: int, protocol: str) -> tuple[list, DeviceInput]:
    """Replay ``samples`` into a pty and collect what a monitor reading it receives."""
    decoder = BinaryTransducerDecoder() if protocol == "binary" else AsciiTransducerDecoder(fs)
    player = ReplayPlayer(replay_front_end(samples, fs, protocol=protocol), len(samples))
    with VirtualPort("transducer") as port:
        device_input = DeviceInput(
            (PortSettings("transducer", port.path), decoder),
            [],
            sample_rate=fs,
            drug_table=load_drug_table(),
        )
        device_input.start()
        items: list = []
        try:
            while not any(
                isinstance(i, DeviceEvent) and i.kind == DeviceEventKind.CONNECTED for i in items
            ):
                items += device_input.poll(0.1)
            player_thread = threading.Thread(
                target=play, args=(player, {"transducer": port}), kwargs={"speed": SPEED}
            )
            player_thread.start()
            deadline = time.monotonic() + 60.0
            while device_input.stream_clock.samples < len(samples) and time.monotonic() < deadline:
                items += device_input.poll(0.1)
            player_thread.join()
        finally:
            device_input.stop()
    return items, device_input


def test_a_replayed_real_record_gives_the_same_beats_as_the_core_run_on_the_file() -> None:
    record = reference_record(RECORD)
    fs = int(record.fs)
    samples = record.samples[: 120 * fs]
    items, _ = receive_replay(samples, fs, "binary")
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert not any(b.missing for b in blocks)  # nothing lost on the way
    stream = BeatStream(fs)
    received = [stream.push(b).beats for b in blocks] + [stream.finish().beats]
    direct = core.BeatDetector(fs)
    expected = wire_rounded(samples, fs)
    reference = [direct.push(expected).beats, direct.finish().beats]
    got, want = np.concatenate(received), np.concatenate(reference)
    assert len(want) > 100
    assert np.array_equal(got, want)


def test_an_ascii_front_end_delivers_its_readings_through_a_pty() -> None:
    trace = np.round(80.0 + 20.0 * np.sin(np.arange(1000) / 20.0), 1)
    items, device_input = receive_replay(trace, 250, "ascii")
    received = np.concatenate([i.samples for i in items if isinstance(i, SampleBlock)])
    assert np.array_equal(received[: len(trace)], trace)
    assert device_input.decoder_counts()["transducer"]["bad_line"] == 0


MINI_NO_PULSE = """
[scenario]
name = "mini-no-pulse"
title = "the pulse stops for a minute"
description = "test"
duration = 240
seed = 2
weight_kg = 70

[transducer]
sample_rate_hz = 250

[physiology]
heart_rate_bpm = 90
map_mmhg = 70
pulse_pressure_mmhg = [[0, 40], [100, 40], [100, 0], [160, 0], [160, 40]]
respiratory_rate_bpm = 12
respiratory_swing_mmhg = 2
hr_variability = 0.01
noise_mmhg = 0.3

[[pump]]
id = "P1"

[[infusion]]
pump = "P1"
channel = 1
drug = "NORAD"
concentration = 64
concentration_unit = "ug/mL"
dose_unit = "ug/kg/min"
steps = [{ at = 0, dose = 0.1 }]
"""


def monitor_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


@contextmanager
def simulated_rack(tmp_path: Path, links: Path) -> Iterator[Path]:
    """``monitor sim`` playing MINI_NO_PULSE's pump as a B. Braun rack at 1x: the rack's path,
    once it exists; the simulator ends with the block."""
    scenario = tmp_path / "mini-no-pulse.toml"
    scenario.write_text(MINI_NO_PULSE)
    sim = subprocess.Popen(
        monitor_command(
            "sim", "--scenario", str(scenario), "--speed", "1", "--pump-protocol", "bcc",
            "--link-dir", str(links), "--quiet",
        ),
        cwd=Path(__file__).parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30.0
        while not (links / "rack").exists():
            assert time.monotonic() < deadline and sim.poll() is None, sim.stderr
            time.sleep(0.05)
        yield links / "rack"
    finally:
        sim.terminate()
        sim.communicate(timeout=30)


def test_monitor_sim_and_monitor_listen_talk_through_device_files(tmp_path: Path) -> None:
    scenario = tmp_path / "mini-no-pulse.toml"
    scenario.write_text(MINI_NO_PULSE)
    links = tmp_path / "ports"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    listen = subprocess.Popen(
        monitor_command(
            "listen",
            "--transducer",
            str(links / "transducer"),
            "--pump",
            str(links / "P1"),
            "--rate",
            "250",
            "--duration",
            "200",
            "--every",
            "0.5",
        ),
        cwd=Path(__file__).parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(0.5)  # the monitor is up before the devices, as at a real bedside
    sim = subprocess.run(
        monitor_command(
            "sim", "--scenario", str(scenario), "--speed", "40", "--link-dir", str(links), "--quiet"
        ),
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    out, err = listen.communicate(timeout=60)
    assert sim.returncode == 0, sim.stderr
    assert f"transducer   {links / 'transducer'} -> /dev/pts/" in sim.stdout
    assert listen.returncode == 0, err
    assert "pump_heard: pump P1" in out
    assert "core: no_pulse began" in out
    assert "P1/1 NORAD" in out
    # Clean beats around 70 mmHg before and after. The scenario's MAP is 70
    # exactly, so a 10 s median lands on either side of it (69.9 or 70.1).
    maps = [float(m) for m in re.findall(r"MAP +(\d+\.\d)", out)]
    assert maps and all(abs(m - 70.0) <= 1.0 for m in maps), maps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--transducer", "/dev/ttyUSB0", "--rate", "250", "--baud", "12345"],
            "not a standard rate",
        ),
        (["--transducer", "/dev/ttyUSB0", "--rate", "20"], "--rate 20"),
    ],
)
def test_listen_refuses_impossible_settings_in_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        monitor_command("listen", *args),
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_sim_names_a_scenario_it_cannot_find(tmp_path: Path) -> None:
    result = subprocess.run(
        monitor_command("sim", "--scenario", "no-such-scenario"),
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no-such-scenario" in result.stderr and "Traceback" not in result.stderr


def test_monitor_sim_plays_the_pumps_as_a_bcc_rack_that_a_reader_polls(tmp_path: Path) -> None:
    """The rack answers only when asked: the reader's session gets the scenario's pump from it."""
    inbox: queue.Queue = queue.Queue()
    with simulated_rack(tmp_path, tmp_path / "ports") as rack:
        adapter = BccPumpAdapter()
        reader = PortReader(PortSettings("pump1", str(rack), 9600), adapter, inbox.put)
        reader.start()
        try:
            reports: list = []
            while not reports:
                item = inbox.get(timeout=20.0)
                if isinstance(item, Received):
                    reports += [f for f in item.frames if isinstance(f, PumpReport)]
        finally:
            reader.stop()
    assert (reports[0].pump_id, reports[0].drug_code, reports[0].concentration) == (
        "1-1", "NORAD", 64.0,
    )  # fmt: skip
    assert adapter.counts["no_answer"] == 0


def test_monitor_listen_takes_each_device_as_a_ports_device_table_names_it(tmp_path: Path) -> None:
    """A transducer of our frames and a B. Braun rack on one bench, each with its protocol."""
    links = tmp_path / "ports"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with simulated_rack(tmp_path, links):
        listen = subprocess.run(
            monitor_command(
                "listen",
                "--device", f"role=transducer,path={links / 'transducer'},protocol=binary",
                "--device", f"role=pumps,path={links / 'rack'},protocol=bcc,baud=9600,name=rack",
                "--rate", "250", "--duration", "8", "--every", "1",
            ),
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert listen.returncode == 0, listen.stderr
    assert f"rack         {links / 'rack'} at 9600 baud" in listen.stdout
    assert "pump_heard: pump 1-1" in listen.stdout
    assert "1-1/1 NORAD" in listen.stdout
    assert "rack: " in listen.stdout and "no_answer" not in listen.stdout


@pytest.mark.parametrize(
    ("device", "named"),
    [
        ("role=pumps,path=/dev/ttyUSB3,protocol=spacecom",
         "the command line: ports.device[1].protocol: 'spacecom' is not a protocol"),
        ("role=pumps,path=/dev/ttyUSB3,protocol=bcc,baud=4800",
         "ports.device[1].baud: 4800 is not a rate bcc runs at"),
        ("role=pumps,/dev/ttyUSB3", "'/dev/ttyUSB3' is not FIELD=VALUE"),
    ],
)  # fmt: skip
def test_listen_refuses_a_device_it_cannot_read_naming_the_field(device: str, named: str) -> None:
    result = subprocess.run(
        monitor_command("listen", "--transducer", "/dev/null", "--device", device),
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr


def test_a_capture_recorded_beside_a_rack_replays_at_a_desk_to_the_same_reports(
    tmp_path: Path,
) -> None:
    """monitor record runs the rack's session and keeps both directions; monitor sim plays
    the rack's side back on its own timing, and a monitor reading it hears the same pump."""
    links, capture_path = tmp_path / "bed", tmp_path / "bed7.cap"
    with simulated_rack(tmp_path, links):
        recorded = subprocess.run(
            monitor_command(
                "record", "--port", f"{links / 'rack'}@9600", "--port", str(links / "transducer"),
                "--protocol", "bcc", "--protocol", "binary",
                "--out", str(capture_path), "--duration", "7",
            ),
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    assert re.search(
        r"pump1 \(bcc, .*\): \d+ bytes received, \d+ sent, [3-9] frames", recorded.stdout
    )
    capture = read_capture(capture_path)
    assert capture.ports["pump1"].protocol == "bcc" and capture.ports["pump1"].baud == 9600
    sent_to_rack = b"".join(
        r.data for r in capture.records if r.port == "pump1" and r.direction == "tx"
    )
    assert b"ADMIN:ALIVE" in sent_to_rack and b"MEM:GET" in sent_to_rack and ACK in sent_to_rack
    offline = BccPumpAdapter()
    offline.open_session(0.0)
    heard = [f for f in offline.feed(capture.received("pump1")) if isinstance(f, PumpReport)]
    assert heard and {(r.pump_id, r.drug_code) for r in heard} == {("1-1", "NORAD")}

    replay_links = tmp_path / "desk"
    replay = subprocess.Popen(
        monitor_command(
            "sim", "--replay-capture", str(capture_path), "--link-dir", str(replay_links),
            "--hold-s", "3",
        ),
        cwd=Path(__file__).parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30.0
        while not (replay_links / "pump1").exists():
            assert time.monotonic() < deadline and replay.poll() is None, replay.stderr
            time.sleep(0.02)
        listen = subprocess.run(
            monitor_command(
                "listen",
                "--device", f"role=transducer,path={replay_links / 'transducer'},protocol=binary",
                "--device", f"role=pumps,path={replay_links / 'pump1'},protocol=bcc",
                "--rate", "250", "--duration", "6", "--every", "1",
            ),
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        replayed, _ = replay.communicate(timeout=30)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait()
    assert listen.returncode == 0, listen.stderr
    assert f"Simulating capture {capture_path}" in replayed
    assert "pump_heard: pump 1-1" in listen.stdout and "1-1/1 NORAD" in listen.stdout
    assert re.search(r"transducer: [1-9]\d+ frames", listen.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "/dev/ttyUSB1", "--port", "/dev/ttyUSB2", "--protocol", "bcc",
          "--protocol", "binary", "--protocol", "ascii"],
         "3 --protocol for 2 --port: give one for all ports, or one per port"),
        (["--port", "/dev/ttyUSB1", "--protocol", "spacecom"],
         "--protocol spacecom: not a protocol this monitor reads; one of ascii, bcc"),
        (["--port", "/dev/ttyUSB1@230400", "--protocol", "bcc"],
         "--port /dev/ttyUSB1@230400: bcc runs at 9600, 19200"),
        (["--port", "/dev/ttyUSB1@12345"], "12345 is not a standard baud rate"),
    ],
)  # fmt: skip
def test_record_refuses_impossible_ports_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        monitor_command("record", *args, "--out", str(tmp_path / "x.cap")),
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.cap").exists()


def test_record_says_which_port_never_opened_and_keeps_what_the_others_carried(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        monitor_command(
            "record", "--port", str(tmp_path / "no-such-rack"), "--protocol", "bcc",
            "--out", str(tmp_path / "x.cap"), "--duration", "1",
        ),
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "open_failed: pump1 port" in result.stdout and "no such device" in result.stdout
    assert "monitor record: never opened: pump1" in result.stderr
    assert read_capture(tmp_path / "x.cap").records == []


def test_sim_names_the_line_of_a_damaged_capture(tmp_path: Path) -> None:
    damaged = tmp_path / "bed7.cap"
    damaged.write_text('# monitor-capture 1 {}\n# port {"name": "rack", "path": "/dev/x", '
                       '"baud": 9600}\n0.5 rack rx zz\n')  # fmt: skip
    result = subprocess.run(
        monitor_command("sim", "--replay-capture", str(damaged)),
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{damaged}: line 3: the bytes are not hexadecimal" in result.stderr
