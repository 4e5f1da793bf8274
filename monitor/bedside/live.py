"""The running bedside: configured ports, core, detector, alarms, log and screen, in one loop.

``LiveMonitor`` is what ``monitor run`` and ``monitor demo`` run. One thread
(the caller's) owns the clinical engine: it polls the device readers, feeds
the bedside in arrival order, advances stream time while the transducer is
silent, shows the screen, pings the systemd watchdog, and applies what
other threads only ask for (stop, reload, an alarm output's failure).
Every configured port must open at start-up; after that a lost port is a
technical alarm, never the end of monitoring. So is a log that cannot be
opened: monitoring goes on, the record is kept in memory, and the log is
tried again (``LogOpener``) until it opens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import serial

from devices.capture_file import CapturedPort
from devices.protocols.decoding import Decoder
from devices.protocols.registry import make_adapter
from devices.readings import SampleBlock
from monitor.alarm_outputs.configured import TextStream, build_sinks
from monitor.alarm_outputs.fanout import SinkFanout
from monitor.bedside.chain import Bedside
from monitor.bedside.config_change import ChangeError, toml_literal
from monitor.bedside.log_opening import FIRST_RETRY_S, LogOpener, unavailable_message
from monitor.bedside.reload_plan import ReloadPlan
from monitor.bedside.sd_notify import Watchdog, notify
from monitor.bedside.view import BedsideView, WaveformTail, snapshot
from monitor.clinical.engine import TimelineEntry
from monitor.clinical.pipeline import MonitorPipeline
from monitor.clinical.settings import ClinicalSettings
from monitor.configuration.config import Config, ConfigError
from monitor.configuration.device_ports import DevicePort, configured_ports, port_identity
from monitor.configuration.drug_names import configured_drug_names
from monitor.configuration.drug_table import DrugTableError, load_drug_table
from monitor.configuration.network_settings import NetworkConfigError
from monitor.edge.capture import CaptureWriter
from monitor.edge.device_input import DeviceInput
from monitor.edge.input_items import DeviceEvent, DeviceEventKind
from monitor.edge.serial_link import (
    BEDSIDE_SESSIONS,
    DEFAULT_GATHER_S,
    Deliver,
    PortReader,
    PortSettings,
    SessionClock,
    describe_port_error,
)
from monitor.log.admission_file import read_admission
from monitor.log.record import RecordBacklog
from monitor.log.store import LogError, configured_log_directory
from monitor.log.writer import SYSTEM_CLOCKS, BedsideLog, LogSettings

if TYPE_CHECKING:  # the network stack (paho, hl7apy, asyncio) is loaded by a running bedside
    from monitor.network.forwarder import Forwarder
    from monitor.network.publishing import NetworkPlan

log = logging.getLogger(__name__)

TRANSDUCER = "transducer"
POLL_S = 0.05  # the longest the loop waits for input before it looks at the clock
# A turn of the loop longer than this was a stall of the host (the process not scheduled,
# stopped): it cannot have heard a silence then, so that span is not the transducer's.
AWAY_S = 0.25


class StartupError(Exception):
    """The monitor cannot run safely as configured; the message says what to change."""


class Screen(Protocol):
    """Where the bedside is shown: called on the loop's thread, often; returns key commands.

    ``view`` builds what is shown; a screen calls it only on the turns it draws (a few
    a second at most), because building it on every turn of the loop cost more CPU than
    the drawing itself.
    """

    def show(self, view: Callable[[], BedsideView], now: float) -> list[str]: ...


@dataclass(frozen=True)
class Ports:
    """The devices the configuration names (``device_ports.py``), as the serial edge opens them."""

    transducer_port: DevicePort
    pump_ports: tuple[DevicePort, ...]
    sample_rate_hz: float
    comm_loss_s: float
    max_gap_s: float

    @classmethod
    def from_config(cls, config: Config) -> Ports:
        configured = configured_ports(config)
        if configured.problems:
            raise StartupError("; ".join(str(problem) for problem in configured.problems))
        if configured.transducer is None:
            raise StartupError(
                f"no transducer is configured: ports.transducer is empty in "
                f"{config.source('ports.transducer')} and no [[ports.device]] has "
                'role = "transducer"; name its port (e.g. /dev/ttyUSB0), or try '
                "`monitor demo` without hardware"
            )
        return cls(
            configured.transducer,
            configured.pumps,
            config.number("ports.sample_rate_hz"),
            config.number("ports.comm_loss_s"),
            config.number("ports.max_gap_s"),
        )

    @property
    def transducer(self) -> PortSettings:
        return _settings(self.transducer_port)

    @property
    def pumps(self) -> tuple[PortSettings, ...]:
        return tuple(_settings(port) for port in self.pump_ports)

    def all(self) -> tuple[PortSettings, ...]:
        return (self.transducer, *self.pumps)

    def transducer_decoder(self) -> Decoder:
        return make_adapter(self.transducer_port.protocol, "transducer", self.sample_rate_hz)

    def pump_decoder(self, port: DevicePort) -> Decoder:
        """A pump port reads its configured protocol: any other is a decode error."""
        return make_adapter(
            port.protocol, "pumps", self.sample_rate_hz, pump_id_prefix=port.pump_id_prefix
        )

    def pump_readers(self) -> list[tuple[PortSettings, Decoder]]:
        return [(_settings(port), self.pump_decoder(port)) for port in self.pump_ports]

    def warnings(self) -> list[str]:
        """What the configuration allows but a careful operator should be told at every start."""
        return [
            f"{_protocol_key(port)} is v1 (in {port.source}): {port.name}'s sentences are "
            "checked by an 8-bit XOR that lets some corrupted reports through as valid "
            "(docs/protocols.md); set v2 once the pumps speak it"
            for port in self.pump_ports
            if port.protocol == "pump-nmea-v1"
        ]


def _reader_factory(
    gather_s: float, session_clock: SessionClock, capture: CaptureWriter | None
) -> Callable[[PortSettings, Decoder, Deliver], PortReader]:
    """Readers for the serial edge; with a capture, each port's bytes are recorded too."""

    def make(settings: PortSettings, decoder: Decoder, deliver: Deliver) -> PortReader:
        tap = None
        if capture is not None:
            role = "transducer" if settings.role == TRANSDUCER else "pumps"
            port = CapturedPort(
                settings.role, settings.url, settings.baudrate, decoder.protocol, role
            )
            tap = capture.tap(port)
        return PortReader(
            settings, decoder, deliver, gather_s=gather_s, session_clock=session_clock, tap=tap
        )

    return make


def _settings(port: DevicePort) -> PortSettings:
    return PortSettings(port.name, port.path, port.baud)


def _protocol_key(port: DevicePort) -> str:
    return "ports.pump_protocol" if port.key == "ports.pumps" else f"{port.key}.protocol"


def check_ports(
    ports: Iterable[DevicePort], open_port: Callable[..., serial.SerialBase] = serial.serial_for_url
) -> None:
    """Open and close every port once, so a wrong path or a busy port stops the start-up.

    StartupError names each port that cannot be opened, with the key that configured it.
    """
    problems = []
    for port in ports:
        settings = _settings(port)
        try:
            opened = open_port(settings.url, baudrate=settings.baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            problems.append(f"{port.key}: {describe_port_error(settings, exc)}")
            continue
        opened.close()
    if problems:
        raise StartupError("; ".join(problems))


def _change_text(key: str, old: object, new: object) -> str:
    shown = [
        toml_literal(v) if isinstance(v, float | int | str | tuple) else str(v) for v in (old, new)
    ]
    return f"{key} {shown[0]} -> {shown[1]}"


def config_hash(config: Config) -> str:
    """A short fingerprint of the effective settings, stored with every boot."""
    values = json.dumps({key: config[key] for key in sorted(config)}, sort_keys=True, default=str)
    return hashlib.sha256(values.encode()).hexdigest()[:16]


def network_plan(config: Config) -> NetworkPlan:
    """The configured MQTT and HL7 links; StartupError names a setting that cannot work."""
    from monitor.network.publishing import NetworkPlan

    try:
        return NetworkPlan.from_config(config)
    except NetworkConfigError as exc:
        raise StartupError(str(exc)) from None


def software_version() -> str:
    try:
        return f"monitor {version('monitor')}"
    except PackageNotFoundError:
        return "monitor (not installed)"


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the stream time reached, where the log is, and why it ended.

    The timeline itself is not kept (a bedside runs for weeks): it is in the
    log, and ``on_entries`` sees it as it happens.
    """

    stream_s: float
    log_path: Path | None
    reason: str  # "stopped", "finished", or "reload" (then next_config is the new one)
    next_config: Config | None = None


class LiveMonitor:
    """One bedside on real (or virtual) ports. Build it, then ``run`` it on one thread.

    ``read_gather_s``: how long a port's reader rests after a read that took
    all that waited (``serial_link.DEFAULT_GATHER_S``). ``session_clock``:
    what the devices' sessions (polls, answer timeouts) run on: the
    monotonic clock beside a bed, a simulation's scenario clock in a demo.
    ``capture``: every port's bytes, both ways, are written to it too.
    """

    def __init__(
        self,
        config: Config,
        *,
        alarm_stream: TextStream,
        log_dir: Path | None = None,
        by: str = "monitor",
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
        reload: threading.Event | None = None,
        read_gather_s: float = DEFAULT_GATHER_S,
        session_clock: SessionClock = BEDSIDE_SESSIONS,
        capture: CaptureWriter | None = None,
    ) -> None:
        self.config = config
        self.ports = Ports.from_config(config)
        self._clock = clock
        self._by = by
        self._alarm_stream = alarm_stream
        settings = ClinicalSettings.from_config(config)
        self._settings = settings
        drugs = load_drug_table(config.text("drugs.table").strip() or None)
        self._drugs = drugs
        self._drug_names = configured_drug_names(config, drugs)
        network = network_plan(config)
        check_ports((self.ports.transducer_port, *self.ports.pump_ports))
        self.input = DeviceInput(
            (self.ports.transducer, self.ports.transducer_decoder()),
            self.ports.pump_readers(),
            sample_rate=self.ports.sample_rate_hz,
            drug_table=drugs,
            drug_names=self._drug_names,
            comm_loss_s=self.ports.comm_loss_s,
            max_gap_s=self.ports.max_gap_s,
            away_after_s=AWAY_S,
            clock=clock,
            reader_factory=_reader_factory(read_gather_s, session_clock, capture),
        )
        self._started = clock()
        self._network = network
        open_log = self._log_opening(config, log_dir or configured_log_directory(config), by)
        self.log, log_problem = self._open_log(open_log)
        self._opener: LogOpener | None = None
        pending = None
        if self.log is None:  # the admission file keeps the weight; the log is tried again
            kept, kept_problem = read_admission(log_dir or configured_log_directory(config))
            if kept_problem is not None:
                log.warning(kept_problem)
            weight = None if kept is None else kept.weight_kg
            pending = RecordBacklog(SYSTEM_CLOCKS.utc)
            self._opener = LogOpener(
                open_log,
                lambda message: self._requests.put(lambda: self.bedside.log_unavailable(message)),
                lambda opened: self._requests.put(lambda: self._attach_log(opened)),
            )
        else:
            weight = self.log.boot.weight_kg
        pipeline = MonitorPipeline(settings, self.ports.sample_rate_hz, weight, TRANSDUCER)
        pipeline.engine.nee.await_ports(p.role for p in self.ports.pumps)
        self._requests: queue.SimpleQueue[Callable[[], list[TimelineEntry]]] = queue.SimpleQueue()
        self.bedside = Bedside(
            pipeline, self.log, None, log_unavailable=log_problem, pending=pending
        )
        self.bedside.outputs = self._outputs(config)
        self.waveform = WaveformTail(self.ports.sample_rate_hz)
        self.forwarders = self._forwarders_for(network)
        self._forwarding: dict[str, str | None] = {}  # each destination's last problem
        self.stop_requested = stop or threading.Event()
        self.reload_requested = reload or threading.Event()

    def _outputs(self, config: Config) -> SinkFanout:
        sinks = build_sinks(
            config, self._alarm_stream, None if self.log is None else self.log.path.parent
        )
        return SinkFanout(sinks, self._output_failed, self._output_recovered)

    def _forwarders_for(self, network: NetworkPlan) -> list[Forwarder]:
        """Forwarding reads the log: without one there is nothing to send."""
        if self.log is None:
            return []
        return network.forwarders(self.log.path.parent, software_version())

    def _log_opening(self, config: Config, directory: Path, by: str) -> Callable[[], BedsideLog]:
        """How to open this bedside's log, now or (from the opener's thread) later."""
        settings = LogSettings.from_config(config, directory)

        def open_log() -> BedsideLog:
            return BedsideLog(
                settings,
                software=software_version(),
                config_hash=config_hash(config),
                by=by,
                late_by_s=max(0.0, self._clock() - self._started),
            )

        return open_log

    @staticmethod
    def _open_log(open_log: Callable[[], BedsideLog]) -> tuple[BedsideLog | None, str | None]:
        """The log, or why there is none: monitoring goes on without it, with log_failed."""
        try:
            return open_log(), None
        except (LogError, OSError, sqlite3.Error) as exc:
            return None, unavailable_message(exc, FIRST_RETRY_S)

    def _attach_log(self, opened: BedsideLog) -> list[TimelineEntry]:
        """The log opened on a retry: it takes the record kept meanwhile, then everything."""
        self.log = opened
        entries = self.bedside.attach_log(opened)
        if not self.forwarders:
            self.forwarders = self._forwarders_for(self._network)
            for forwarder in self.forwarders:
                forwarder.start()
        return entries

    # ----------------------------------------------------- other threads' requests
    def _output_failed(self, name: str, message: str) -> None:
        self._requests.put(lambda: self.bedside.output_failed(name, message))

    def _output_recovered(self, name: str) -> None:
        self._requests.put(lambda: self.bedside.output_recovered(name))

    def acknowledge(self) -> None:
        self._requests.put(self.bedside.acknowledge)

    def pause_audio(self) -> None:
        self._requests.put(self.bedside.pause_audio)

    # ------------------------------------------------------------------- the loop
    def run(
        self,
        screen: Screen | None,
        *,
        until_s: float | None = None,
        on_entries: Callable[[list[TimelineEntry]], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        reload_config: Callable[[], Config] | None = None,
    ) -> RunResult:
        """Monitor until ``stop_requested`` (or stream time ``until_s``); then shut down cleanly.

        ``on_entries`` sees each batch of timeline entries once logged and
        shown; ``on_connected`` is called once, when every port has opened.
        When ``reload_requested`` is set, ``reload_config`` reads the
        configuration again. A valid one is applied in place
        (``reload_plan.py``): stream time, beats, alarms and the episode go
        on, and only what changed is reopened or rebuilt. A new admission
        (``monitor patient new``) is the one reload that ends the run, with
        reason "reload" and the new configuration: the caller starts again
        for the new patient, in a new boot of the log. An invalid
        configuration, or one that needs a restart, leaves the running one
        in place and the log says why.
        """
        waiting = {p.role for p in self.ports.all()}

        def publish(entries: list[TimelineEntry]) -> None:
            if not entries:
                return
            for forwarder in self.forwarders:
                forwarder.wake()  # the entries are in the log: send them now
            if on_entries is not None:
                on_entries(entries)

        watchdog = Watchdog.from_env()
        publish(self.bedside.start())
        for warning in self.ports.warnings():
            log.warning(warning)
            if self.log is not None:
                self.log.add_event(self.bedside.engine.now_s, "monitor", "warning", warning, {})
        for forwarder in self.forwarders:
            forwarder.start()
        if self._opener is not None:
            self._opener.start()
        self.input.start()
        notify("READY=1", "STATUS=monitoring")
        reason, next_config = "stopped", None

        def view() -> BedsideView:
            return snapshot(self.bedside, self.waveform)

        try:
            while not self.stop_requested.is_set():
                for item in self.input.poll(POLL_S):
                    if isinstance(item, SampleBlock) and screen is not None:
                        self.waveform.add(item)
                    elif (
                        waiting
                        and isinstance(item, DeviceEvent)
                        and item.kind is DeviceEventKind.CONNECTED
                    ):
                        waiting.discard(item.role)
                        if not waiting and on_connected is not None:
                            on_connected()
                    publish(self.bedside.take(item))
                now = self._clock()
                publish(self.bedside.advance(self.input.now(now)))
                while not self._requests.empty():
                    publish(self._requests.get()())
                if screen is not None:
                    for command in screen.show(view, now):
                        self._command(command)
                if watchdog is not None:
                    watchdog.maybe_ping(now)
                self._note_forwarding()
                if until_s is not None and self.bedside.engine.now_s >= until_s:
                    reason = "finished"
                    break
                if self.reload_requested.is_set() and reload_config is not None:
                    self.reload_requested.clear()
                    next_config = self._reload(reload_config, publish)
                    if next_config is not None:
                        publish(self._end_of_admission())
                        reason = "reload"
                        break
        finally:
            notify("STOPPING=1")
            self.input.stop()
            if self._opener is not None:  # a log that opened just now still takes the record
                self._opener.stop()
                while not self._requests.empty():
                    publish(self._requests.get()())
            stream_s = self.bedside.engine.now_s
            self.bedside.close(reason)
            for forwarder in self.forwarders:
                forwarder.stop()  # after the log's last rows, which it may still send
        log_path = None if self.log is None else self.log.path
        return RunResult(stream_s, log_path, reason, next_config)

    def _note_forwarding(self) -> None:
        """A destination falling behind, and catching up, goes in the log's events: when the
        central station or the record missed this bed is part of the record too."""
        for forwarder in self.forwarders:
            problem = forwarder.problem
            if problem == self._forwarding.get(forwarder.link.name):
                continue
            self._forwarding[forwarder.link.name] = problem
            assert self.log is not None  # forwarders read the log: none without one
            message = problem or f"{forwarder.link.name}: caught up"
            self.log.add_event(
                self.bedside.engine.now_s, "network", forwarder.link.name, message, {}
            )

    def _end_of_admission(self) -> list[TimelineEntry]:
        """On a new admission (``monitor patient new``), the old patient's episode ends here."""
        if self.log is None or self.log.latest_admission() == self.log.boot.admission:
            return []
        return self.bedside.end_episode("a new admission started: this patient's episode ends")

    def _reload(
        self,
        reload_config: Callable[[], Config],
        publish: Callable[[list[TimelineEntry]], None],
    ) -> Config | None:
        """Apply a reload in place; the new configuration only when a new admission needs a new run.

        None keeps this run going: on the new configuration, or (refused,
        the reason in the log) on the running one.
        """
        try:
            config = reload_config()
        except (ConfigError, ChangeError, OSError) as exc:
            self._refuse(str(exc))
            return None
        if self.log is not None and self.log.latest_admission() != self.log.boot.admission:
            log.info("configuration reloaded for a new admission (%s)", config_hash(config))
            return config
        plan = ReloadPlan.between(self.config, config)
        restart = plan.needs_restart
        if restart:
            changes = "; ".join(_change_text(k, a, b) for k, a, b in plan.changes if k in restart)
            self._refuse(f"{changes}: needs a restart (systemctl restart monitor)")
            return None
        try:
            self._apply(config, plan, publish)
        except (StartupError, DrugTableError) as exc:
            self._refuse(str(exc))
        return None

    def _refuse(self, why: str) -> None:
        message = f"configuration not reloaded, the running one stays: {why}"
        log.warning(message)
        if self.log is not None:
            self.log.add_event(self.bedside.engine.now_s, "monitor", "reload", message, {})

    def _apply(
        self, config: Config, plan: ReloadPlan, publish: Callable[[list[TimelineEntry]], None]
    ) -> None:
        """Everything that can fail is prepared first; then only what changed is replaced."""
        ports = Ports.from_config(config)
        settings = ClinicalSettings.from_config(config)
        drugs = load_drug_table(config.text("drugs.table").strip() or None)
        drug_names = configured_drug_names(config, drugs)
        network = network_plan(config) if plan.network else None
        if ports.transducer_port != self.ports.transducer_port:
            raise StartupError(
                f"the transducer's port changed ({self.ports.transducer_port.path} "
                f"{self.ports.transducer_port.protocol} -> {ports.transducer_port.path} "
                f"{ports.transducer_port.protocol}): it makes stream time; restart the monitor"
            )
        running = {p.name: p for p in self.ports.pump_ports}
        moved = [p for p in ports.pump_ports if running.get(p.name) != p]
        # A port this monitor holds cannot be opened a second time (it is opened exclusive):
        # it is known to be there, and only its settings change.
        held = {port_identity(p.path) for p in self.ports.pump_ports}
        check_ports(p for p in moved if port_identity(p.path) not in held)
        old_hash, new_hash = config_hash(self.config), config_hash(config)
        now_s = self.bedside.engine.now_s
        changed = list(plan.changes)
        if drugs != self._drugs:
            changed.append(("drugs (the table's content)", self._drugs.version, drugs.version))
        if self.log is not None:
            for key, old, new in plan.changes:
                self.log.record_audit(
                    now_s, self._by, "reload", key, toml_literal(old), toml_literal(new),
                    config.source(key), new_hash,
                )  # fmt: skip
        summary = "; ".join(_change_text(k, a, b) for k, a, b in changed) or "nothing changed"
        message = f"configuration reloaded in place ({old_hash} -> {new_hash}): {summary}"
        log.info(message)
        if self.log is not None:
            detail = {"from": old_hash, "to": new_hash, "changed": [k for k, _, _ in changed]}
            self.log.add_event(now_s, "monitor", "reloaded", message, detail)
        if plan.pump_ports or drugs != self._drugs:
            change = self.input.replace_pumps(
                ports.pump_readers(),
                comm_loss_s=ports.comm_loss_s,
                max_gap_s=ports.max_gap_s,
                drug_table=drugs,
                drug_names=drug_names,
                reopen={p.name for p in moved},
            )
            publish(
                self.bedside.pump_ports_changed(change.opened, change.removed, change.pumps_gone)
            )
        if settings != self._settings:
            publish(self.bedside.apply_settings(settings))
        if plan.outputs:
            self._rebuild_outputs(config)
        if network is not None:
            for forwarder in self.forwarders:
                forwarder.stop()
            self.forwarders, self._forwarding = self._forwarders_for(network), {}
            for forwarder in self.forwarders:
                forwarder.start()
        self.config, self.ports, self._settings, self._drugs = config, ports, settings, drugs
        self._drug_names = drug_names

    def _rebuild_outputs(self, config: Config) -> None:
        """New outputs, shown the standing alarms at once; the old ones' failures end with them."""
        old = self.bedside.outputs
        self.bedside.outputs = self._outputs(config)
        if old is not None:
            failing = old.failing()
            old.close()
            for name in failing:
                self.bedside.output_recovered(name)
        engine = self.bedside.engine
        self.bedside.outputs.render(engine.alarms.annunciation(engine.now_s))

    def _command(self, command: str) -> None:
        if command == "acknowledge":
            self.acknowledge()
        elif command == "pause_audio":
            self.pause_audio()
        elif command == "quit":
            self.stop_requested.set()
