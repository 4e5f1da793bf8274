"""Clinical logic: NEE, the clean-beat MAP window, the refractory detector, alarms, the engine.

Everything here runs on stream time and is pure of I/O: no ports, no
SQLite, no network, no screen, so ``monitor analyze`` and a live bedside
give the same timeline. May import the beat core, the edge's input types,
``monitor.configuration`` and ``devices.readings``/``devices.infusion``;
never the log, outputs, network, screens or command line.
"""
