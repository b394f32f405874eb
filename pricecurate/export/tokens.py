"""Counting an export's tokens with the tokenizer the dataset was built with, since hosted services bill by them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from pricecurate.export import formats
from pricecurate.export.formats import ExportError


@dataclass
class TokenStats:
    """Tokens per exported record of one split, kept as running figures."""

    count: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None

    def add(self, counts: Iterable[int]) -> None:
        for count in counts:
            self.count += 1
            self.total += count
            self.low = count if self.low is None else min(self.low, count)
            self.high = count if self.high is None else max(self.high, count)

    def as_dict(self) -> dict:
        mean = round(self.total / self.count, 2) if self.count else None
        return {"min": self.low, "mean": mean, "max": self.high, "total": self.total}


def dataset_codec(manifest: dict):
    """The tokenizer the dataset was built with, checked against the manifest's sha256."""
    from pricecurate.tokenizer.engine import build_codec
    from pricecurate.tokenizer.spec import load_spec

    identity = manifest.get("tokenizer") or {}
    name = identity.get("name")
    hint = "pass --no-token-count to export without token counts"
    if not name:
        raise ExportError(f"the manifest names no tokenizer; {hint}")
    try:
        spec = load_spec(name)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the same fix for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(f"cannot load the dataset's tokenizer {name!r} ({first}); {hint}") from None
    if identity.get("sha256") and spec.sha256 != identity["sha256"]:
        raise ExportError(f"tokenizer {name!r} here has sha256 {spec.sha256[:12]}, the dataset was built with "
                          f"{identity['sha256'][:12]}; counts would not be the dataset's; {hint}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    engine = identity.get("engine") if identity.get("engine") in ("tiktoken", "tokenizers") else "auto"
    return build_codec(spec.json, engine, bool(identity.get("clean_up_spaces", spec.clean_up_spaces)))


def record_token_counts(codec, records: list[dict]) -> list[int]:
    """Tokens of each record's texts (a chat's three contents, or prompt and completion), no special tokens."""
    texts = [formats.token_texts(record) for record in records]
    ids = codec.encode([text for group in texts for text in group])
    counts, at = [], 0
    for group in texts:
        counts.append(sum(len(ids[at + i]) for i in range(len(group))))
        at += len(group)
    return counts
