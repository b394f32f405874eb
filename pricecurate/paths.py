"""Where pricecurate keeps files of its own on this machine, and how a URI names a local path."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit


def cache_dir() -> Path:
    """Where pricecurate keeps what it computed once: the converted tokenizer, the last bench's figures."""
    base = os.environ.get("PRICECURATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pricecurate"
    )
    return Path(base)


def local_path(uri: str) -> str | None:
    """The local path a ``file:`` URI or a plain path names; None for any other scheme (``hdfs://``, ``s3a://``)."""
    text = str(uri)
    if text.startswith("file:"):
        return urlsplit(text).path or None
    return None if "://" in text else text
