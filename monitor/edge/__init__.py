"""The hardware edge: serial ports, the stream clock, and the input stamped on it.

A reader thread per port decodes bytes with a ``devices.protocols`` decoder;
``DeviceInput`` puts samples, pump observations and device events on the one
stream clock. May import ``devices`` (protocols and readings) and
``monitor.configuration``; never the beat core, the clinical logic or
anything above them, which consume what it produces.
"""
