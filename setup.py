"""Build the compiled kernels (the beat core, the MAP window) from ext/ into the monitor package.

Everything else about the package is declared in pyproject.toml.
"""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# No fused multiply-add: each compiled kernel must round exactly like its
# pure-Python reference (aarch64 compilers contract by default).
STRICT_FLOATS = ["-O3", "-ffp-contract=off"]

extensions = [
    Extension(
        "monitor._beat_detector",
        ["ext/beat_detector.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=STRICT_FLOATS,
    ),
    Extension("monitor._map_window", ["ext/map_window.pyx"], extra_compile_args=STRICT_FLOATS),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
