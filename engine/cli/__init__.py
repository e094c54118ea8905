"""The ``homepage`` command line (``engine.cli.parser.main``)."""

from engine.cli.parser import main

__all__ = ["main"]
