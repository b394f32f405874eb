"""Errors phrased for the user: the command prints their one line and exits 2.

Every such error derives from ``UserError``, which ``cli.main`` catches; each also keeps the built-in type it
has always had (``ValueError`` mostly), so code that catches that type still does.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix, said in one line."""


class OutputError(UserError, ValueError):
    """A problem with the output location, phrased for the user."""


class InputError(UserError, ValueError):
    """A problem with the input directory, phrased for the user."""
