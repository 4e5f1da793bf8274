"""Build the compiled beat core from ext/ into the monitor package.

Everything else about the package is declared in pyproject.toml.
"""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "monitor._beat_detector",
        ["ext/beat_detector.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # No fused multiply-add: the compiled core must round exactly like the
        # pure-Python reference (aarch64 compilers contract by default).
        extra_compile_args=["-O3", "-ffp-contract=off"],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
