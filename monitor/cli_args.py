"""What every subcommand of the command line shares: the user-mistake error and argument types."""

from __future__ import annotations

import argparse


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
