"""Build the optional C speed-ups; everything else is in pyproject.toml.

``optional=True``: without a C compiler (or with ``TRIO_WS_NO_EXTENSIONS`` set) the build
skips the extensions and trio_ws uses its pure-Python code, with the same results.
"""

import os

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("TRIO_WS_NO_EXTENSIONS"):
    ext_modules.append(
        Extension(
            "trio_ws._speedups",
            sources=["trio_ws/_speedups.c"],
            depends=["trio_ws/_inflate.h"],
            optional=True,
        )
    )
    # permessage-deflate's inflate on zlib itself: built where zlib's header is (every system
    # that builds CPython's own zlib module has it); without it, the zlib module is used.
    ext_modules.append(
        Extension(
            "trio_ws._inflate",
            sources=["trio_ws/_inflate.c"],
            depends=["trio_ws/_inflate.h"],
            libraries=["z"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
