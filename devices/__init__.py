"""The device side of the wire: what devices report, their wire formats, and simulated devices.

``readings`` (the types both sides share) and ``infusion`` (rate <-> dose)
at the bottom; ``protocols`` (encoders and incremental decoders) above
them; ``simulation`` (waveforms, artifacts, emulators, scenarios, replay,
virtual ports) on top. Nothing here imports ``monitor``.
"""
