"""The ``monitor`` command line: one module per command family, built into one parser.

Only this package prints; a user's mistake ends in one line on stderr and
exit 2, never a traceback. It sits on top and may import every stage, but
only when a command runs (``import monitor.cli`` loads no network, plotting
or asyncio library); nothing imports it but ``monitor.__main__``.
"""

from monitor.cli.app import main

__all__ = ["main"]
