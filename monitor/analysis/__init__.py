"""Analysis of recordings: reading them, ``monitor analyze``, scoring beats, the virtual bench.

Offline and as fast as the machine allows, through the same pipeline as a
live bedside (the virtual bench runs the bedside's chain without ports).
May import the bedside and below; only the command line, the tests and the
benchmarks import it.
"""
