"""Errors phrased for the user: the command prints their one line and exits 2."""

from __future__ import annotations


class OutputError(ValueError):
    """A problem with the output location, phrased for the user."""
