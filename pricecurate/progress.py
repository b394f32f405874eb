"""Stage-by-stage progress lines: plain text, fit for a terminal and a log file alike."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    def __init__(self, stream=None, log_path: str | None = None):
        self._stream = stream or sys.stderr
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self._start = time.monotonic()
        self.stage_seconds: dict[str, float] = {}

    def say(self, message: str) -> None:
        line = f"[pricecurate {time.monotonic() - self._start:7.1f}s] {message}"
        print(line, file=self._stream, flush=True)
        if self._log:
            print(line, file=self._log, flush=True)

    @contextmanager
    def stage(self, name: str):
        self.say(f"{name}: started")
        began = time.monotonic()
        yield
        elapsed = time.monotonic() - began
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + elapsed
        self.say(f"{name}: done in {elapsed:.1f}s")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def close(self) -> None:
        if self._log:
            self._log.close()
