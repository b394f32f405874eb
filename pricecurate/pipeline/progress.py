"""Progress lines: stage by stage, and while a stage runs, what it has done so far.

On a terminal the running stage's status is one line rewritten in place; on a
pipe or in a log file it is a plain line every ``log_every`` seconds. ``quiet``
keeps only warnings (the caller prints the summary and errors itself).
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

from pricecurate.pipeline.live import Totals, status_line

TERMINAL_EVERY = 1.0  # seconds between rewrites of the status line on a terminal
LOG_EVERY = 30.0  # seconds between status lines in a log file or a pipe


class Progress:
    def __init__(self, stream=None, log_path: str | None = None, quiet: bool = False,
                 interactive: bool | None = None, log_every: float = LOG_EVERY):
        self._stream = stream or sys.stderr
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self._quiet = quiet
        isatty = getattr(self._stream, "isatty", lambda: False)
        self._interactive = isatty() if interactive is None else interactive
        self._log_every = log_every
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._status_shown = False  # a status line is on the terminal, not yet ended by a newline
        self._source = None
        self._totals = Totals()
        self.stage_seconds: dict[str, float] = {}

    def _stamp(self, message: str) -> str:
        return f"[pricecurate {time.monotonic() - self._start:7.1f}s] {message}"

    def _clear_status(self) -> None:
        if self._status_shown:
            self._stream.write("\r\x1b[K")
            self._status_shown = False

    def say(self, message: str) -> None:
        line = self._stamp(message)
        with self._lock:
            if not self._quiet:
                self._clear_status()
                print(line, file=self._stream, flush=True)
            if self._log:
                print(line, file=self._log, flush=True)

    def warn(self, message: str) -> None:
        """Shown even with ``quiet``."""
        line = self._stamp(f"warning: {message}")
        with self._lock:
            self._clear_status()
            print(line, file=self._stream, flush=True)
            if self._log:
                print(line, file=self._log, flush=True)

    def watch(self, source) -> None:
        """Report ``source.snapshot()`` while stages run (a ``live.SparkStatus`` or anything shaped like it)."""
        self._source = source

    def expect(self, totals: Totals) -> None:
        """What the next stage will read in all, for its share done and its ETA."""
        self._totals = totals

    def status(self, stage: str, elapsed: float) -> str | None:
        """The running stage's status line now, or None when nothing is running or nothing is known."""
        snapshot = self._source.snapshot() if self._source is not None else None
        return None if snapshot is None else status_line(stage, snapshot, self._totals, elapsed)

    def _show_status(self, line: str, to_log: bool) -> None:
        with self._lock:
            if self._interactive and not self._quiet:
                self._stream.write("\r\x1b[K" + line)
                self._stream.flush()
                self._status_shown = True
            elif to_log and not self._quiet:
                print(self._stamp(line), file=self._stream, flush=True)
            if to_log and self._log:
                print(self._stamp(line), file=self._log, flush=True)

    def _report_while(self, stage: str, began: float, done: threading.Event) -> None:
        every = TERMINAL_EVERY if self._interactive else self._log_every
        last_logged = time.monotonic()
        while not done.wait(min(every, self._log_every)):
            try:
                line = self.status(stage, time.monotonic() - began)
            except Exception:  # noqa: BLE001 - a status read must never break the run
                continue
            if line is None:
                continue
            now = time.monotonic()
            to_log = now - last_logged >= self._log_every - 1e-3
            if to_log:
                last_logged = now
            self._show_status(line, to_log)

    @contextmanager
    def stage(self, name: str):
        self.say(f"{name}: started")
        began = time.monotonic()
        done = threading.Event()
        reporter = None
        if self._source is not None:
            if hasattr(self._source, "begin"):
                self._source.begin()
            reporter = threading.Thread(target=self._report_while, args=(name, began, done), daemon=True)
            reporter.start()
        try:
            yield
        finally:
            done.set()
            if reporter is not None:
                reporter.join()
            self._totals = Totals()
        elapsed = time.monotonic() - began
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + elapsed
        self.say(f"{name}: done in {elapsed:.1f}s")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def close(self) -> None:
        with self._lock:
            self._clear_status()
        if self._log:
            self._log.close()
