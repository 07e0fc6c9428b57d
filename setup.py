"""Build the optional C speed-up; everything else is in pyproject.toml.

``optional=True``: without a C compiler (or with ``TRIO_WS_NO_EXTENSIONS`` set) the build
skips the extension and trio_ws uses its pure-Python mask, with the same results.
"""

import os

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("TRIO_WS_NO_EXTENSIONS"):
    ext_modules.append(
        Extension("trio_ws._speedups", sources=["trio_ws/_speedups.c"], optional=True)
    )

setup(ext_modules=ext_modules)
