"""The MAP the clinical layer decides on, and which implementation of its window runs.

The window (clean-beat medians over a rolling window, see
:mod:`monitor.clinical.map_window_py`) is asked for an estimate at every
beat and every second, which made it the largest share of ``monitor
analyze``; the compiled twin (``monitor._map_window``, from ``ext/``) runs
unless the environment selects the pure-Python reference, by the same
switch as the beat core (``MONITOR_PUREPYTHON=1``).
"""

from __future__ import annotations

from monitor.clinical.map_window_py import MapEstimate
from monitor.clinical.map_window_py import MapWindow as ReferenceMapWindow
from monitor.core import pure_python_requested

__all__ = ["IMPLEMENTATION", "MapEstimate", "MapWindow", "ReferenceMapWindow"]

try:
    from monitor._map_window import MapWindow as _compiled
except ImportError:
    _compiled = None

if _compiled is not None and not pure_python_requested():
    MapWindow: type[ReferenceMapWindow] = _compiled
    IMPLEMENTATION = "compiled"
else:
    MapWindow = ReferenceMapWindow
    IMPLEMENTATION = "pure-python"
