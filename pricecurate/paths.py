"""Where pricecurate keeps files of its own on this machine, and how a URI names a local path."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where pricecurate keeps what it computed once: the converted tokenizer, the last bench's figures."""
    base = os.environ.get("PRICECURATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pricecurate"
    )
    return Path(base)
