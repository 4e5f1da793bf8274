"""The headless bedside: one line a second on a text stream, for a service log or a pipe."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from monitor.bedside.view import BedsideView, plain_line


class PlainScreen:
    """Writes ``plain_line`` every ``every_s`` seconds of the monotonic clock; takes no keys."""

    def __init__(self, stream: TextIO, every_s: float = 1.0) -> None:
        self._stream = stream
        self._every_s = every_s
        self._next: float | None = None

    def show(self, view: Callable[[], BedsideView], now: float) -> list[str]:
        """Builds the view (``view()``) only when a line is due."""
        if self._next is None or now >= self._next:
            self._next = now + self._every_s
            self._stream.write(plain_line(view()) + "\n")
            self._stream.flush()
        return []
