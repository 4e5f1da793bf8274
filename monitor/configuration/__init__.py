"""Configuration: the settings in effect with their safe bounds, and the vasopressor table.

Both are data biomedical staff review (``config/monitor.toml``,
``config/bounds.toml``, ``config/drugs.toml``, installed as
``monitor.defaults``); this package reads and validates them. It is the
bottom layer: it imports nothing of ``monitor`` (only ``devices.infusion``
for dose units), and every other stage may import it.
"""
