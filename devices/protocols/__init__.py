"""Wire formats: encoders and incremental decoders, one module per protocol.

Each decoder takes whatever bytes a read returned and gives back
``devices.readings`` types, counting what it had to drop (``decoding``).
May import ``devices.readings``; never ``devices.simulation`` or ``monitor``.
"""
