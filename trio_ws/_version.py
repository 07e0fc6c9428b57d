"""The version of trio_ws (read by setuptools and by the default ``User-Agent``)."""

__version__ = "0.1.0.dev0"
