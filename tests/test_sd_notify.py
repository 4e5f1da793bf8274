"""Specification of systemd notifications: exact datagrams on real sockets, and never a crash."""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid

import pytest

from monitor.bedside import sd_notify
from monitor.bedside.sd_notify import WATCHDOG_RETRY_S, Watchdog, notify, watchdog_interval_s


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test starts with no socket already warned about."""
    monkeypatch.setattr(sd_notify, "_warned", set())


@pytest.fixture
def listener(tmp_path):
    """A real AF_UNIX datagram socket in tmp_path, as systemd binds it, and its name."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)  # a datagram is queued by the time sendto returns
        yield sock, str(path)


def received(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on ``sock``."""
    datagrams = []
    while True:
        try:
            datagrams.append(sock.recv(4096))
        except BlockingIOError:
            return datagrams


# notify


def test_ready_is_one_datagram_to_the_named_socket(listener):
    sock, name = listener
    assert notify("READY=1", env={"NOTIFY_SOCKET": name}) is True
    assert received(sock) == [b"READY=1"]


def test_several_assignments_go_in_one_datagram_joined_by_newlines(listener):
    sock, name = listener
    assert notify("READY=1", "STATUS=Monitoring: MAP 63 mmHg", env={"NOTIFY_SOCKET": name})
    assert received(sock) == [b"READY=1\nSTATUS=Monitoring: MAP 63 mmHg"]


def test_a_newline_inside_an_assignment_cannot_start_another(listener):
    sock, name = listener
    assert notify("STATUS=line one\nREADY=1", env={"NOTIFY_SOCKET": name})
    assert received(sock) == [b"STATUS=line one READY=1"]


def test_the_socket_is_taken_from_the_process_environment_by_default(listener, monkeypatch):
    sock, name = listener
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    assert notify("STOPPING=1") is True
    assert received(sock) == [b"STOPPING=1"]


@pytest.mark.skipif(sys.platform != "linux", reason="the abstract namespace is Linux only")
def test_a_name_starting_with_at_is_in_the_abstract_namespace():
    abstract = f"monitor-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + abstract.encode())
        sock.setblocking(False)
        assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + abstract}) is True
        assert received(sock) == [b"WATCHDOG=1"]


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}], ids=["unset", "empty"])
def test_without_a_notify_socket_nothing_is_sent_and_nothing_logged(env, caplog):
    assert notify("READY=1", env=env) is False
    assert caplog.records == []


def test_no_assignments_send_nothing(listener):
    sock, name = listener
    assert notify(env={"NOTIFY_SOCKET": name}) is False
    assert received(sock) == []


def _closed_socket(tmp_path):
    path = tmp_path / "gone.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    return str(path)  # the file stays, nobody listens: connection refused


def _regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("")
    return str(path)


@pytest.mark.parametrize(
    "make_name",
    [
        lambda tmp_path: str(tmp_path / "absent.sock"),
        _closed_socket,
        _regular_file,
        lambda tmp_path: "/" + "x" * 200,  # longer than an AF_UNIX address holds
        lambda tmp_path: "notify.sock",  # relative: systemd never sends one
        lambda tmp_path: "vsock:2:1234",  # not AF_UNIX
    ],
    ids=["absent", "nobody-listening", "regular-file", "too-long", "relative", "vsock"],
)
def test_an_unreachable_socket_gives_false_without_raising(make_name, tmp_path):
    assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": make_name(tmp_path)}) is False


def test_failures_are_logged_once_per_socket(tmp_path, caplog):
    env = {"NOTIFY_SOCKET": str(tmp_path / "absent.sock")}
    with caplog.at_level(logging.WARNING, logger="monitor.bedside.sd_notify"):
        for _ in range(3):
            assert notify("WATCHDOG=1", env=env) is False
    assert len(caplog.records) == 1
    assert "absent.sock" in caplog.records[0].getMessage()


# watchdog_interval_s


def test_the_watchdog_interval_is_half_the_configured_timeout():
    assert watchdog_interval_s({"WATCHDOG_USEC": "20000000"}) == 10.0


def test_a_watchdog_pid_equal_to_ours_keeps_the_watchdog():
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval_s(env, pid=4242) == 15.0
    env_for_us = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval_s(env_for_us) == 15.0


def test_a_watchdog_meant_for_another_process_is_not_ours():
    env = {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval_s(env, pid=4243) is None


@pytest.mark.parametrize("env", [{}, {"WATCHDOG_USEC": ""}], ids=["unset", "empty"])
def test_no_watchdog_configured_gives_none(env):
    assert watchdog_interval_s(env) is None


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "twenty seconds"},
        {"WATCHDOG_USEC": "-20000000"},
        {"WATCHDOG_USEC": "2e7"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "\uff12\uff10"},  # full-width digits: isdigit() but not a number here
        {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "my pid"},
    ],
    ids=["text", "negative", "exponent", "zero", "full-width", "pid-text"],
)
def test_malformed_watchdog_values_give_none(env):
    assert watchdog_interval_s(env, pid=4242) is None


# Watchdog


class SpySend:
    """A send function that records what it was given and answers as told."""

    def __init__(self, succeeds: bool = True):
        self.sent: list[str] = []
        self.succeeds = succeeds

    def __call__(self, assignment: str) -> bool:
        self.sent.append(assignment)
        return self.succeeds


def test_the_first_call_pings_at_once():
    send = SpySend()
    assert Watchdog(10.0, send).maybe_ping(500.0) is True
    assert send.sent == ["WATCHDOG=1"]


def test_a_ping_is_sent_each_time_the_interval_has_elapsed_since_the_last():
    send = SpySend()
    watchdog = Watchdog(10.0, send)
    pinged = [
        t
        for t in (100.0, 101.0, 109.99, 110.0, 115.0, 123.5, 130.0, 133.5)
        if watchdog.maybe_ping(t)
    ]
    # Measured from the last ping (110 -> 123.5), not a fixed schedule: a late
    # iteration never leads to two pings in quick succession.
    assert pinged == [100.0, 110.0, 123.5, 133.5]
    assert send.sent == ["WATCHDOG=1"] * 4
    assert watchdog.last_ping_s == 133.5


def test_a_failed_ping_is_retried_soon_but_not_on_every_call():
    send = SpySend(succeeds=False)
    watchdog = Watchdog(10.0, send)
    assert watchdog.maybe_ping(0.0) is False
    assert watchdog.maybe_ping(WATCHDOG_RETRY_S / 2) is False
    assert len(send.sent) == 1
    send.succeeds = True
    assert watchdog.maybe_ping(WATCHDOG_RETRY_S) is True
    assert len(send.sent) == 2
    assert watchdog.last_ping_s == WATCHDOG_RETRY_S


def test_the_interval_must_be_positive():
    with pytest.raises(ValueError):
        Watchdog(0.0)


def test_a_watchdog_from_the_environment_pings_the_real_socket(listener):
    sock, name = listener
    env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}
    watchdog = Watchdog.from_env(env, pid=4242)
    assert watchdog is not None and watchdog.interval_s == 15.0
    assert watchdog.maybe_ping(0.0) is True
    assert watchdog.maybe_ping(14.0) is False
    assert watchdog.maybe_ping(15.0) is True
    assert received(sock) == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_no_watchdog_from_an_environment_without_one():
    assert Watchdog.from_env({"NOTIFY_SOCKET": "/run/systemd/notify"}) is None
