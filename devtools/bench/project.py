"""Where the project is and what the bench needs of it: ROOT, the CLI, BenchError, say, the one CPU to pin to."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "pricecurate"


class BenchError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""


def require_project() -> None:
    """Fail early and clearly when the venv lacks the package or its CLI."""
    if not CLI.exists():
        raise BenchError(f"{CLI} not found: create the venv and `pip install -e .[test]` in {ROOT}")
    try:
        import psutil  # noqa: F401

        import pricecurate  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"{exc.name} is not importable by {sys.executable}; run this script with "
                         f"{ROOT / '.venv/bin/python'} after `pip install -e .[test]`") from exc


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def one_cpu() -> set[int]:
    return {min(os.sched_getaffinity(0))}
