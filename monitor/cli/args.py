"""What every subcommand of the command line shares: the user-mistake error and argument types."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time


class UsageError(Exception):
    """A mistake in what the user asked for; the message says which."""


def positive_number(text: str) -> float:
    """argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a number above zero")
    return value


def positive_integer(text: str) -> int:
    """argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above zero")
    return value


def on_signals(stop: threading.Event, reload: threading.Event | None = None) -> None:
    """SIGTERM and SIGINT end the run at the next loop turn, so the log closes cleanly;
    SIGHUP (``systemctl reload``) asks for the configuration to be read again."""

    def handler(signum: int, frame: object) -> None:
        (reload if signum == signal.SIGHUP and reload is not None else stop).set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if reload is not None:
        signal.signal(signal.SIGHUP, handler)


class LogfmtFormatter(logging.Formatter):
    """One ``key=value`` line per record (logfmt), so journald, grep and scripts can pick
    the fields apart: ``time=... level=warning logger=monitor.bedside.live msg="..."``."""

    @staticmethod
    def converter(seconds: float | None) -> time.struct_time:
        return time.gmtime(seconds)  # UTC, as the log's rows are

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


def _logfmt_value(value: str) -> str:
    plain = value and not any(c in value for c in ' "=\n\\')
    return value if plain else json.dumps(value)
