"""Simulated devices: synthetic ABP with known truth, artifacts, emulators, scenarios, replay.

A scenario (TOML in ``scenarios/``) scripts the patient, the transducer and
the pumps; one scenario clock paces them all into virtual serial ports.
May import ``devices.protocols`` and below; never ``monitor``.
"""
