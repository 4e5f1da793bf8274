"""The beat core: samples in, beats out; and which implementation runs.

The compiled kernel (``monitor._beat_detector``, from ``ext/``) and its
pure-Python twin (``beat_detector_py``) share ``beat_types``; this module
picks one. The reference is for tests and understanding; it is chosen only
when the environment says ``MONITOR_PUREPYTHON=1``. Whichever runs is
logged, and commands that watch a patient call :func:`require_compiled` so
they never pretend to be compiled when they are not. ``beat_stream`` adds
what the transducer itself said. May import ``devices.readings`` and
``monitor.configuration``; never the edge, the clinical logic or above.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np

from monitor.core.beat_detector_py import BeatDetector as ReferenceBeatDetector
from monitor.core.beat_types import DetectorOutput

log = logging.getLogger(__name__)

PURE_PYTHON_SWITCH = "MONITOR_PUREPYTHON"


class CoreUnavailableError(RuntimeError):
    """The compiled core is needed but not built or not selected."""


def _load_compiled() -> tuple[type | None, str | None]:
    try:
        from monitor._beat_detector import BeatDetector as compiled
    except ImportError as exc:
        return None, str(exc)
    return compiled, None


def pure_python_requested() -> bool:
    """Whether the environment asks for the pure-Python references instead of compiled kernels."""
    return os.environ.get(PURE_PYTHON_SWITCH, "") not in ("", "0")


_compiled, _compiled_error = _load_compiled()
_pure_requested = pure_python_requested()

if _compiled is not None and not _pure_requested:
    BeatDetector = _compiled
    IMPLEMENTATION = "compiled"
else:
    BeatDetector = ReferenceBeatDetector
    IMPLEMENTATION = "pure-python"

log.info("beat core: %s", IMPLEMENTATION)

HOW_TO_BUILD = (
    "build it with `pip install .` (needs a C compiler and the Python headers: "
    "Debian packages build-essential and python3-dev)"
)


def require_compiled() -> None:
    """Raise CoreUnavailableError unless the compiled core is the one running."""
    if IMPLEMENTATION == "compiled":
        return
    if _pure_requested:
        raise CoreUnavailableError(
            f"{PURE_PYTHON_SWITCH} is set: the pure-Python reference is for tests only; "
            f"unset it to monitor a patient"
        )
    raise CoreUnavailableError(
        f"the compiled beat core is not built ({_compiled_error}); {HOW_TO_BUILD}"
    )


def push_in_chunks(detector, samples: np.ndarray, chunk_len: int) -> Iterator[DetectorOutput]:
    """Feed a recording to a detector as a serial reader would; yield each output, then finish()."""
    for start in range(0, len(samples), chunk_len):
        yield detector.push(samples[start : start + chunk_len])
    yield detector.finish()
