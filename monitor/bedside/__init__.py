"""The running bedside: the chain (pipeline, then log, then outputs), the live loop, the demo.

Also what its screen shows as plain data (``view``), configuration and
patient changes, systemd notifications and the engineer's bench view.
May import every stage below (network, log, outputs, clinical, core, edge,
configuration) and ``devices`` for the demo's simulators; only screens,
analysis and the command line may import it.
"""
