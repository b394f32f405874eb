"""Where the project is and what the bench needs of it: ROOT, the CLI, BenchError, say, the one CPU to pin to."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
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


def measure_in(name: str, workdir: Path | None, keep: bool, measure: Callable[[Path], dict]) -> dict | None:
    """A measuring script's run: ``measure(folder)`` in ``workdir`` (a temporary folder when None, removed after
    unless ``keep``), with the project checked first and the workers on this interpreter; a ``BenchError`` is
    printed as one line under the script's ``name`` and gives None."""
    folder = workdir or Path(tempfile.mkdtemp(prefix=f"pricecurate-{name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        require_project()
        return measure(folder)
    except BenchError as exc:  # carries the tail of the failed run's stderr
        print(f"{name}: error: {exc}", file=sys.stderr)
        return None
    finally:
        if workdir is None and not keep:
            shutil.rmtree(folder, ignore_errors=True)
