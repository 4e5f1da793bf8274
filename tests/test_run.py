"""The bedside application end to end: `monitor demo`, and `monitor run` on simulator ports.

Both run as subprocesses on real pty pairs, as a user would run them. The
scenario is ``loss-of-pulse`` (20 min): its truth says ``no_pulse`` is raised
between 00:10:05 and 00:10:40.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from log_rows import rows

from devices.capture_file import read_capture
from devices.simulation.scenario_file import load_scenario
from monitor import core
from monitor.log.store import DATABASE_NAME

PURE_PYTHON = os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0")
pytestmark = pytest.mark.skipif(
    PURE_PYTHON, reason=f"{core.PURE_PYTHON_SWITCH} is set: the live monitor refuses"
)
RUN_DIR = Path(__file__).resolve().parent  # not the checkout: the installed package
SCENARIO = load_scenario("loss-of-pulse")
PUMP = SCENARIO.pumps[0].pump_id
FS = float(SCENARIO.transducer.sample_rate_hz)


def monitor(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=RUN_DIR,
    )  # fmt: skip


def stream_seconds(text: str) -> float:
    hours, minutes, seconds = map(int, text.split(":"))
    return 3600.0 * hours + 60.0 * minutes + seconds


def test_the_demo_finds_the_scenarios_alarms_logs_them_and_exits_cleanly(tmp_path):
    result = monitor(
        "demo", "--scenario", "loss-of-pulse", "--speed", 60, "--log-dir", tmp_path, "--no-report"
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "Demo finished at stream time 00:20:00." in out
    verdict = re.search(r"no_pulse: raised at (\d\d:\d\d:\d\d), as expected", out)
    assert verdict, out
    assert "NOT raised" not in out and "OUTSIDE" not in out and "never should be" not in out
    status_lines = [line for line in out.splitlines() if re.match(r"\d\d:\d\d:\d\d  MAP ", line)]
    assert len(status_lines) >= 10  # the plain display: a line a second for 20 s

    db = tmp_path / DATABASE_NAME
    assert f"Log: {db}" in out
    raised = rows(
        db, "SELECT stream_s FROM alarms WHERE name = 'no_pulse' AND transition = 'raised'"
    )
    assert raised and raised[0][0] == pytest.approx(stream_seconds(verdict[1]), abs=1.0)
    assert rows(db, "SELECT weight_kg, by FROM admissions") == [
        (SCENARIO.weight_kg, "monitor demo")
    ]
    assert rows(db, "SELECT end_reason FROM boots") == [("finished",)]
    assert rows(db, "SELECT count(*) > 100 FROM trends") == [(1,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@dataclass(frozen=True)
class SimulatedRun:
    """What ``monitor run`` on a simulated bedside printed, and where its log is."""

    lines: list[str]  # stdout up to the first MAP line
    out: str  # the rest of stdout, to the end
    err: str
    db: Path


def kill_leftovers(*processes: subprocess.Popen | None) -> None:
    """Whatever of ``processes`` still runs is killed and reaped."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def run_on_simulator(
    tmp_path: Path, sim_protocol: str = "v2", config_lines: str = ""
) -> SimulatedRun:
    """``monitor run`` on a simulated bedside until it shows a MAP, then SIGTERM."""
    links = tmp_path / "ports"
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sim", "--scenario", "loss-of-pulse", "--speed", "30",
         "--link-dir", str(links), "--quiet", "--pump-protocol", sim_protocol],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
    )  # fmt: skip
    run = None
    try:
        deadline = time.monotonic() + 30
        while not (links / PUMP).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config = tmp_path / "bed.toml"
        config.write_text(
            "[ports]\n"
            f'transducer = "{links / "transducer"}"\n'
            f'pumps = ["{links / PUMP}"]\n'
            f"sample_rate_hz = {SCENARIO.transducer.sample_rate_hz}\n"
            f"{config_lines}\n"
            "[alarms]\n"
            'audio = "off"\n'
            "[log]\n"
            f'directory = "{tmp_path / "log"}"\n'
        )
        run = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
        )  # fmt: skip
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = run.stdout.readline()
            lines.append(line)
            if re.match(r"\d\d:\d\d:\d\d  MAP \d+", line):
                break  # it measures a pressure from the ports
        time.sleep(1.0)  # a few heartbeats more at 30x
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=30)
    finally:  # a failing test leaves no monitor or simulator behind
        kill_leftovers(run, sim)
    assert run.returncode == 0, err
    return SimulatedRun(lines, out, err, tmp_path / "log" / DATABASE_NAME)


def test_monitor_run_reads_the_configured_ports_and_stops_cleanly_on_sigterm(tmp_path):
    run = run_on_simulator(tmp_path)
    assert any(re.match(r"\d\d:\d\d:\d\d  MAP \d+", line) for line in run.lines), run.lines
    assert "Monitor stopped at stream time" in run.out
    assert rows(run.db, "SELECT end_reason FROM boots") == [("stopped",)]
    events = rows(run.db, "SELECT source, kind FROM events WHERE kind = 'connected'")
    assert sorted(events) == [("pump1", "connected"), ("transducer", "connected")]


def test_monitor_run_reads_v1_pumps_only_when_configured_and_warns_at_start(tmp_path):
    run = run_on_simulator(tmp_path, "v1", 'pump_protocol = "v1"')
    err, db = run.err, run.db
    assert "ports.pump_protocol is v1" in err and str(tmp_path / "bed.toml") in err
    [(message,)] = rows(
        db, "SELECT message FROM events WHERE source = 'monitor' AND kind = 'warning'"
    )
    assert "ports.pump_protocol is v1" in message and "8-bit XOR" in message
    assert rows(db, "SELECT count(*) > 0 FROM pump_events") == [(1,)]  # its reports were read


def test_a_v1_pump_on_a_monitor_reading_v2_is_a_wrong_version_error_never_a_report(tmp_path):
    run = run_on_simulator(tmp_path, "v1")
    err, db = run.err, run.db
    assert "pump_protocol" not in err  # v2, the default: nothing to warn about
    assert rows(db, "SELECT count(*) FROM pump_events") == [(0,)]
    messages = [m for (m,) in rows(db, "SELECT message FROM events WHERE source = 'pump1'")]
    assert any("wrong protocol version" in m for m in messages), messages
    # No valid sentence: the port is lost (NEE unknown), never read as another report.
    assert rows(db, "SELECT count(*) > 0 FROM alarms WHERE name = 'pump_comm_lost'") == [(1,)]


@pytest.mark.parametrize(
    ("ports", "named"),
    [
        ('transducer = ""', ["ports.transducer is empty", "monitor demo"]),
        ('transducer = "/dev/no-such-transducer"', ["ports.transducer", "no-such-transducer",
                                                    "no such device"]),
        ('transducer = "/dev/null"\npumps = ["/dev/no-such-pump"]',
         ["ports.pumps", "pump1", "no-such-pump", "no such device"]),
    ],
    ids=["unset", "missing transducer", "missing pump"],
)  # fmt: skip
def test_monitor_run_refuses_ports_it_cannot_open_naming_the_key_and_the_port(
    tmp_path, ports, named
):
    config = tmp_path / "bed.toml"
    config.write_text(f'[ports]\n{ports}\n[log]\ndirectory = "{tmp_path / "log"}"\n')
    result = monitor("run", "--config", config, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("monitor run: ")
    for text in named:
        assert text in line
    assert not (tmp_path / "log").exists()  # refused before anything was written


def test_monitor_run_refuses_a_port_another_program_holds(tmp_path):
    master, slave = os.openpty()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, serial; p = serial.Serial(sys.argv[1], exclusive=True); "
         "print('held', flush=True); sys.stdin.read()", os.ttyname(slave)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        config = tmp_path / "bed.toml"
        config.write_text(f'[ports]\ntransducer = "{os.ttyname(slave)}"\n')
        result = monitor("run", "--config", config, timeout=60)
    finally:
        holder.kill()
        holder.wait()
        os.close(master)
        os.close(slave)
    assert result.returncode == 2
    assert "ports.transducer" in result.stderr and "busy" in result.stderr


def wait_for(db: Path, run: subprocess.Popen, sql: str, want: object) -> None:
    """Until the running monitor's log answers ``sql`` with ``want`` (generous: a loaded host)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        try:
            if db.exists() and rows(db, sql) == want:
                return
        except sqlite3.OperationalError:
            pass  # the file exists a moment before its schema does
        time.sleep(0.2)
    raise AssertionError(f"{sql} never gave {want}: {rows(db, sql) if db.exists() else ''}")


def bed_config(
    path: Path, links: Path, log_dir: Path, pumps: list[str], rate: float | None = None
) -> None:
    quoted = ", ".join(f'"{p}"' for p in pumps)
    path.write_text(
        f'[ports]\ntransducer = "{links / "transducer"}"\npumps = [{quoted}]\n'
        f"sample_rate_hz = {rate or SCENARIO.transducer.sample_rate_hz}\n"
        f'[alarms]\naudio = "off"\nmap_critical_mmhg = 60.0\n[log]\ndirectory = "{log_dir}"\n'
    )


@dataclass
class RunningBed:
    """``monitor run --display off`` on a simulated bedside, and its log."""

    links: Path
    config: Path
    log_dir: Path
    db: Path
    run: subprocess.Popen | None = None

    def wait_for(self, sql: str, want: object) -> None:
        assert self.run is not None
        wait_for(self.db, self.run, sql, want)


def simulated_bed(tmp_path: Path):
    """A context: the simulator (10x) and ``monitor run`` on its ports; nothing left behind."""
    from contextlib import contextmanager

    @contextmanager
    def running():
        links = tmp_path / "ports"
        sim = subprocess.Popen(
            [sys.executable, "-m", "monitor", "sim", "--scenario", "loss-of-pulse", "--speed",
             "10", "--link-dir", str(links), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=RUN_DIR,
        )  # fmt: skip
        log_dir = tmp_path / "log"
        bed = RunningBed(links, tmp_path / "bed.toml", log_dir, log_dir / DATABASE_NAME)
        try:
            deadline = time.monotonic() + 30
            while not (links / PUMP).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            bed_config(bed.config, links, log_dir, [str(links / PUMP)])
            bed.run = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(bed.config),
                 "--display", "off"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
            )  # fmt: skip
            yield bed
        finally:  # a failing test leaves no monitor or simulator behind
            kill_leftovers(bed.run, sim)

    return running()


def test_sighup_applies_a_new_threshold_in_place_and_reopens_only_a_changed_pump_port(tmp_path):
    from devices.simulation.virtual_ports import VirtualPort

    with simulated_bed(tmp_path) as bed, VirtualPort("spare") as spare:
        run, db = bed.run, bed.db
        assert run is not None
        bed.wait_for("SELECT count(*) > 0 FROM trends WHERE map_mmhg > 0", [(1,)])
        assert rows(db, "SELECT count(*) FROM states WHERE name = 'hypotensive'") == [(0,)]
        # The scenario's MAP is 68 mmHg: above 65, below a target of 75.
        changed = monitor("config", "set", "detector.map_target_mmhg", 75, "--by", "Dr A",
                          "--config", bed.config)  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reloaded'", [(1,)])
        (reloaded_s,) = rows(db, "SELECT stream_s FROM events WHERE kind = 'reloaded'")[0]
        bed.wait_for(
            f"SELECT count(*) > 0 FROM states WHERE name = 'hypotensive' AND stream_s >= "
            f"{reloaded_s}", [(1,)],
        )  # fmt: skip
        bed.wait_for(f"SELECT count(*) > 0 FROM trends WHERE stream_s > {reloaded_s + 20}", [(1,)])

        # A second pump port: opened alone; the transducer and pump1 are not touched.
        bed_config(bed.config, bed.links, bed.log_dir, [str(bed.links / PUMP), spare.path])
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reloaded'", [(2,)])
        bed.wait_for(
            "SELECT count(*) FROM events WHERE source = 'pump2' AND kind = 'connected'", [(1,)]
        )
        # A new sampling rate would restart stream time: refused, the running one stays.
        pumps = [str(bed.links / PUMP), spare.path]
        bed_config(bed.config, bed.links, bed.log_dir, pumps, rate=2 * FS)
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reload'", [(1,)])
        assert run.poll() is None
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert rows(db, "SELECT id, end_reason FROM boots") == [(1, "stopped")]  # one boot
    connected = rows(db, "SELECT source, count(*) FROM events WHERE kind = 'connected' "
                         "GROUP BY source ORDER BY source")  # fmt: skip
    assert connected == [("pump1", 1), ("pump2", 1), ("transducer", 1)]
    assert rows(db, "SELECT count(*) FROM events WHERE kind = 'disconnected'") == [(0,)]
    lost = rows(db, "SELECT message FROM alarms WHERE name = 'pump_comm_lost'")
    assert not [m for (m,) in lost if "pump1" in m or PUMP in m], lost
    # Stream time went on through both reloads: never back, never a jump.
    times = [t for (t,) in rows(db, "SELECT stream_s FROM trends ORDER BY rowid")]
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 15.0
    assert times[-1] > reloaded_s + 20
    (audit,) = rows(db, "SELECT action, key, old, new FROM audit WHERE action = 'reload'"
                        " AND key = 'detector.map_target_mmhg'")  # fmt: skip
    assert audit == ("reload", "detector.map_target_mmhg", "65.0", "75.0")
    first, second = [m for (m,) in rows(db, "SELECT message FROM events "
                                             "WHERE kind = 'reloaded' ORDER BY rowid")]  # fmt: skip
    assert "detector.map_target_mmhg 65.0 -> 75.0" in first
    assert "ports.pumps" in second and spare.path in second
    (refused,) = rows(db, "SELECT message FROM events WHERE kind = 'reload'")[0]
    assert (
        f"ports.sample_rate_hz {FS:.1f} -> {2 * FS:.1f}" in refused and "needs a restart" in refused
    )


def test_sighup_for_a_new_admission_starts_again_and_an_invalid_reload_keeps_the_running_one(
    tmp_path,
):
    with simulated_bed(tmp_path) as bed:
        run, db, log_dir = bed.run, bed.db, bed.log_dir
        assert run is not None
        bed.wait_for("SELECT count(*) > 0 FROM trends WHERE boot = 1 AND map_mmhg > 0", [(1,)])
        changed = monitor("config", "set", "detector.map_target_mmhg", 70, "--by", "Dr A",
                          "--config", bed.config)  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        admitted = monitor(
            "patient", "new", "--weight", 70, "--by", "Nurse C", "--config", bed.config
        )
        assert admitted.returncode == 0, admitted.stderr
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM boots", [(2,)])  # the monitor started again on it
        # ... for the new patient, with the new weight and without the cleared adjustment
        admissions = "SELECT b.admission, a.weight_kg FROM boots b JOIN admissions a " \
            "ON a.id = b.admission ORDER BY b.id"  # fmt: skip
        assert rows(db, admissions) == [(1, None), (2, 70.0)]

        (log_dir / "bedside.toml").write_text("[detector]\nmap_target_mmhg = 90.0\n")
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reload'", [(1,)])
        assert run.poll() is None  # still monitoring, on the configuration it had
        # Within bounds, but below the unit's critical limit: the whole is refused.
        (log_dir / "bedside.toml").write_text("[detector]\nmap_target_mmhg = 58.0\n")
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reload'", [(2,)])
        assert run.poll() is None
        # A unit setting in the bed's file is refused too, and the bedside keeps running.
        (log_dir / "bedside.toml").write_text("[ports]\ncomm_loss_s = 20.0\n")
        run.send_signal(signal.SIGHUP)
        bed.wait_for("SELECT count(*) FROM events WHERE kind = 'reload'", [(3,)])
        assert run.poll() is None
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert rows(db, "SELECT end_reason FROM boots ORDER BY id") == [("reload",), ("stopped",)]
    first, second = rows(db, "SELECT config_hash FROM boots ORDER BY id")
    assert first == second  # the new admission cleared the bed's adjustment
    assert rows(db, "SELECT count(*) FROM events WHERE kind = 'reloaded'") == [(0,)]
    (out_of_bounds,), (contradiction,), (misplaced,) = rows(
        db, "SELECT message FROM events WHERE kind = 'reload' ORDER BY rowid"
    )
    assert "not reloaded" in misplaced and "cannot be adjusted at the bedside" in misplaced
    assert "not reloaded" in out_of_bounds and "map_target_mmhg" in out_of_bounds
    assert "90" in out_of_bounds
    assert "not reloaded" in contradiction
    assert "alarms.map_critical_mmhg = 60.0 must be below detector.map_target_mmhg = 58.0" in (
        contradiction
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (None, ["no such file"]),
        ("[detector]\nmap_target_mmhg = 95\n", ["detector.map_target_mmhg", "out of bounds"]),
        ("[detector]\nmap_target = 65\n", ["map_target", "map_target_mmhg"]),
        ("[ports]\nsample_rate_hz = 'fast'\n", ["ports.sample_rate_hz", "must be a number"]),
    ],
    ids=["missing", "out of bounds", "unknown key", "wrong type"],
)
def test_monitor_run_refuses_a_bad_configuration_naming_the_file_and_key(tmp_path, text, named):
    config = tmp_path / "bed.toml"
    if text is not None:
        config.write_text(text)
    result = monitor("run", "--config", config, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(config) in result.stderr
    for part in named:
        assert part in result.stderr


def rack_bed(path: Path, links: Path, log_dir: Path, baud: int) -> None:
    """A transducer by the [ports] keys beside a B. Braun rack by a [[ports.device]] table."""
    path.write_text(
        f'[ports]\ntransducer = "{links / "transducer"}"\nsample_rate_hz = {FS}\n'
        f'[[ports.device]]\nrole = "pumps"\npath = "{links / "rack"}"\nprotocol = "bcc"\n'
        f'baud = {baud}\nname = "rack"\n'
        f'[alarms]\naudio = "off"\n[log]\ndirectory = "{log_dir}"\n'
    )


def test_monitor_run_reads_a_rack_its_ports_device_table_names_and_reopens_it_alone(tmp_path):
    links, log_dir = tmp_path / "ports", tmp_path / "log"
    config, db = tmp_path / "bed.toml", log_dir / DATABASE_NAME
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sim", "--scenario", "loss-of-pulse", "--speed", "1",
         "--link-dir", str(links), "--quiet", "--pump-protocol", "bcc"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=RUN_DIR,
    )  # fmt: skip
    run = None
    try:
        deadline = time.monotonic() + 30
        while not (links / "rack").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        rack_bed(config, links, log_dir, 9600)
        run = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), "--display", "off",
             "--capture", str(tmp_path / "bed.cap")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RUN_DIR,
        )  # fmt: skip
        wait_for(db, run, "SELECT DISTINCT pump, drug FROM pump_events", [("1-1", "NORAD")])
        # Another baud rate for the rack: its port alone is closed and opened again.
        rack_bed(config, links, log_dir, 19200)
        run.send_signal(signal.SIGHUP)
        wait_for(db, run, "SELECT count(*) FROM events WHERE kind = 'reloaded'", [(1,)])
        wait_for(
            db, run, "SELECT count(*) FROM events WHERE source = 'rack' AND kind = 'connected'",
            [(2,)],
        )  # fmt: skip
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=30)
    finally:  # a failing test leaves no monitor or simulator behind
        kill_leftovers(run, sim)
    assert run.returncode == 0, err
    connected = rows(db, "SELECT source, count(*) FROM events WHERE kind = 'connected' "
                         "GROUP BY source ORDER BY source")  # fmt: skip
    assert connected == [("rack", 2), ("transducer", 1)]
    (reloaded,) = rows(db, "SELECT message FROM events WHERE kind = 'reloaded'")[0]
    assert "ports.device" in reloaded and "19200" in reloaded
    # --capture kept both directions of every port, across the reopening.
    capture = read_capture(tmp_path / "bed.cap")
    assert capture.ports["rack"].protocol == "bcc" and capture.ports["rack"].baud == 9600
    carried = {(r.port, r.direction) for r in capture.records}
    assert carried == {("rack", "tx"), ("rack", "rx"), ("transducer", "rx")}
    assert f"Capture: {len(capture.records)} records in {tmp_path / 'bed.cap'}." in out
