"""The GPIO output: one line (a light or buzzer) flashing for HIGH alarms, steady for MEDIUM."""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Protocol

from monitor.alarm_outputs.sink import BackgroundSink, SinkError
from monitor.clinical.alarm_types import Annunciation, Priority

log = logging.getLogger(__name__)


class LineDriver(Protocol):
    """One output line: on (active) or off."""

    def set(self, on: bool) -> None: ...

    def close(self) -> None: ...


class _GpiodV2Line:
    """libgpiod 2.x bindings (``pip install gpiod``, >= 2.0)."""

    def __init__(self, gpiod: Any, chip_path: str, line: int, consumer: str):
        from gpiod.line import Direction, Value

        self._line, self._value = line, Value
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
        self._request = gpiod.request_lines(chip_path, consumer=consumer, config={line: settings})

    def set(self, on: bool) -> None:
        self._request.set_value(self._line, self._value.ACTIVE if on else self._value.INACTIVE)

    def close(self) -> None:
        self._request.release()


class _GpiodV1Line:
    """libgpiod 1.x bindings (Debian/Raspberry Pi OS ``python3-libgpiod``)."""

    def __init__(self, gpiod: Any, chip_path: str, line: int, consumer: str):
        self._chip = gpiod.Chip(chip_path)
        self._line = self._chip.get_line(line)
        self._line.request(consumer=consumer, type=gpiod.LINE_REQ_DIR_OUT, default_val=0)

    def set(self, on: bool) -> None:
        self._line.set_value(1 if on else 0)

    def close(self) -> None:
        self._line.release()
        self._chip.close()


def open_gpio_line(chip: str, line: int, consumer: str = "monitor-alarm") -> LineDriver:
    """Request ``line`` of ``chip`` ("/dev/gpiochip0" or "gpiochip0") as an output, off.

    Raises SinkError with a start-up note when the bindings, the chip or the
    line are not there.
    """
    chip_path = chip if "/" in chip else f"/dev/{chip}"
    try:
        import gpiod
    except ImportError:
        raise SinkError(
            "GPIO output off: python gpiod bindings not installed (pip install gpiod)"
        ) from None
    if not os.path.exists(chip_path):
        raise SinkError(f"GPIO output off: no {chip_path}")
    if hasattr(gpiod, "request_lines"):
        driver_class: type = _GpiodV2Line
    elif hasattr(gpiod, "LINE_REQ_DIR_OUT"):
        driver_class = _GpiodV1Line
    else:
        raise SinkError("GPIO output off: unknown gpiod bindings (libgpiod's gpiod 1.x or 2.x)")
    try:
        return driver_class(gpiod, chip_path, line, consumer)
    except Exception as exc:
        raise SinkError(f"GPIO output off: cannot drive line {line} of {chip_path}: {exc}") from exc


def gpio_mode(annunciation: Annunciation) -> str:
    """The line's pattern: "flash" for an unacknowledged HIGH alarm, "on" for MEDIUM, else "off".

    Acknowledging stops the pattern; pausing the audio does not (a light
    keeps showing an alarm whose sound is paused).
    """
    unacknowledged = {a.priority for a in annunciation.alarms if not a.acknowledged}
    if Priority.HIGH in unacknowledged:
        return "flash"
    if Priority.MEDIUM in unacknowledged:
        return "on"
    return "off"


class GpioSink(BackgroundSink):
    """Drives one output line (a light or buzzer): flashing for HIGH, steady for MEDIUM.

    An alarm counts while it is shown and not acknowledged, latched ones
    included. ``driver`` replaces the kernel line (tests, other hardware).
    """

    name = "gpio"

    def __init__(
        self, chip: str, line: int, *, driver: LineDriver | None = None, flash_hz: float = 2.0
    ):
        super().__init__()
        self._label = f"line {line} of {chip}"
        self._problem: str | None = None
        if driver is None:
            try:
                driver = open_gpio_line(chip, line)
            except SinkError as exc:
                self._problem = str(exc)
        self._driver = driver
        self._half_period_s = 0.5 / flash_hz
        self._mode = "off"
        if driver is not None:
            self._start("alarm-gpio")

    def unavailable(self) -> str | None:
        return self._problem

    def start_note(self) -> str | None:
        return self._problem or f"GPIO: alarm light/buzzer on {self._label}"

    def render(self, annunciation: Annunciation) -> None:
        mode = gpio_mode(annunciation)
        with self._cond:
            if mode != self._mode:
                self._mode = mode
                self._cond.notify_all()

    def _run(self) -> None:
        driver = self._driver
        assert driver is not None  # the thread is started only with a line to drive
        level: bool | None = None
        previous = "off"
        while True:
            with self._cond:
                if self._closed:
                    break
                mode = self._mode
            if mode == "flash":
                lit = not level if previous == "flash" else True
            else:
                lit = mode == "on"
            if lit != level and self._set(driver, lit):
                level = lit
            previous = mode
            # Flashing toggles every half period; a failed write is retried as often.
            retry = mode == "flash" or level != lit
            with self._cond:
                self._cond.wait_for(
                    partial(self._changed_from, mode), self._half_period_s if retry else None
                )
        self._set(driver, False)
        try:
            driver.close()
        except Exception as exc:
            log.warning("GPIO %s: release failed: %s", self._label, exc)

    def _changed_from(self, mode: str) -> bool:
        return self._closed or self._mode != mode

    def _set(self, driver: LineDriver, on: bool) -> bool:
        try:
            driver.set(on)
        except Exception as exc:
            self.report_failure(f"GPIO {self._label}: cannot set the line: {exc}")
            return False
        self.report_ok()
        return True
