"""The tiktoken engine's tables of a tokenizer (ranks, added tokens, split pattern), kept in the cache folder.

Building them from tokenizer.json (9 MB for Llama 3.1) costs every Python
worker about 0.65 s of its start: parsing the JSON, then mapping 128k tokens
from the byte-level alphabet back to bytes. Kept once per tokenizer under the
SHA-256 of its JSON, in a plain binary file (a JSON header line, each token's
length, then the tokens' bytes in rank order, so no unpickling), they load in
about 50 ms. A file that does not read back whole is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pricecurate.paths import cache_dir

FOLDER = "tiktoken-tables"
VERSION = 1  # bump when what the tables hold, or how, changes


@dataclass(frozen=True)
class Tables:
    tokens: list[bytes]  # the byte string of each rank, in rank order (ranks are 0..n-1)
    added: dict[str, int]  # added tokens' spelling -> id
    pattern: str  # the pre-tokenizer's split pattern

    @property
    def ranks(self) -> dict[bytes, int]:
        return {token: rank for rank, token in enumerate(self.tokens)}


def from_json(data: dict, to_byte: dict[str, int]) -> Tables:
    """The tables of a parsed tokenizer.json that ``tiktoken_mismatch`` accepted (ids 0..n-1)."""
    vocab = data["model"]["vocab"]
    tokens: list[bytes] = [b""] * len(vocab)
    for token, rank in vocab.items():
        tokens[rank] = bytes(to_byte[ch] for ch in token)
    added = {token["content"]: token["id"] for token in data.get("added_tokens", [])}
    return Tables(tokens, added, data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])


def path_for(spec_json: str, folder: Path | None = None) -> Path:
    digest = hashlib.sha256(spec_json.encode("utf-8")).hexdigest()
    return (folder or cache_dir()) / FOLDER / f"{digest}.bin"


def read(path: Path) -> Tables | None:
    """The tables kept at ``path``, or None when there are none, or they do not read back whole."""
    try:
        content = path.read_bytes()
        head_end = content.index(b"\n")
        head = json.loads(content[:head_end])
        count, total = int(head["count"]), int(head["bytes"])
        lengths = np.frombuffer(content, dtype="<u2", count=count, offset=head_end + 1)
        start = head_end + 1 + 2 * count
        if head["version"] != VERSION or int(lengths.sum()) != total or len(content) != start + total:
            return None
        ends = (start + np.cumsum(lengths, dtype=np.int64)).tolist()
        tokens = [content[begin:end] for begin, end in zip([start, *ends[:-1]], ends)]
        return Tables(tokens, {str(k): int(v) for k, v in head["added"].items()}, str(head["pattern"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(path: Path, tables: Tables) -> None:
    """Keep the tables at ``path`` (written under a temporary name, then moved: never seen half-written)."""
    lengths = np.array([len(token) for token in tables.tokens], dtype="<u2")
    head = {"version": VERSION, "count": len(tables.tokens), "bytes": int(lengths.sum()), "added": tables.added,
            "pattern": tables.pattern}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(json.dumps(head).encode() + b"\n" + lengths.tobytes() + b"".join(tables.tokens))
        os.replace(partial, path)
    except OSError:
        pass  # a read-only cache folder: the next worker builds them again


def load(spec_json: str, build) -> Tables:
    """This tokenizer's tables from the cache folder, or ``build()`` them (and keep them there)."""
    path = path_for(spec_json)
    tables = read(path)
    if tables is None:
        tables = build()
        write(path, tables)
    return tables
