"""Bedside monitor for refractory hypotension: the application, one package per stage.

Data flows one way, and the packages follow it (each may import only those
below it; ``lint-imports`` checks the contracts in ``pyproject.toml``)::

    cli            the ``monitor`` command line
    screens        terminal screens (bedside, central station)  | analysis  recordings
    bedside        the running bedside: live loop, demo, changes, systemd
    network        MQTT, HL7 and the central station's connection, from the log
    log            the SQLite log | alarm_outputs  sound, GPIO, command hook
    clinical       NEE, MAP window, refractory detector, alarms, engine
    core           the beat core   | edge  serial ports, stream clock, device input
    configuration  settings with their bounds, the drug table

``devices`` (the other side of the wire) never imports this package.
"""
