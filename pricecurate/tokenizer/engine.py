"""Which engine encodes for a tokenizer (tiktoken where it is exact, else ``tokenizers``), built once per worker."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading

from pricecurate.paths import cache_dir
from pricecurate.tokenizer import ENGINES
from pricecurate.tokenizer.codec import Codec, hugging_face_tokenizer

TIKTOKEN_FITS = "byte-level BPE whose merges follow its ranks"

_worker_codecs: dict[tuple[str, str, bool], object] = {}
_worker_lock = threading.Lock()
BUILD_COUNT = 0  # how many tokenizers this Python process built; reported by the job


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown tokenizer engine {engine!r}; use one of {', '.join(ENGINES)}")


def choose_engine(spec_json: str, requested: str = "auto") -> tuple[str, str]:
    """The concrete engine for this tokenizer and a one-line reason; run once, on the driver.

    tiktoken only where it gives exactly the ids and text of the Hugging Face
    ``tokenizers`` engine; ``requested="tiktoken"`` on any other tokenizer is an error.
    """
    from pricecurate.tokenizer.tiktoken_codec import UnsupportedTokenizer

    _check_engine(requested)
    if requested == "tokenizers":
        return "tokenizers", "tokenizers: requested"
    mismatch = _tiktoken_mismatch(spec_json)
    if mismatch is None:
        return "tiktoken", f"tiktoken: {TIKTOKEN_FITS}"
    if requested == "tiktoken":
        raise UnsupportedTokenizer(f"the tiktoken engine cannot reproduce this tokenizer: {mismatch}")
    return "tokenizers", f"tokenizers: {mismatch}"


# Bump when tiktoken_mismatch decides differently: answers kept under an older version are asked again.
CHECK_VERSION = 1
CHECKS = "engine-checks"


@functools.lru_cache(maxsize=4)
def _tiktoken_mismatch(spec_json: str) -> str | None:
    """``tiktoken_mismatch`` once per tokenizer on this machine (about a second for Llama 3's 128k merges, which
    every run paid): the answer is kept in the cache folder under the tokenizer's SHA-256."""
    from pricecurate.tokenizer.tiktoken_codec import tiktoken_mismatch

    path = cache_dir() / CHECKS / f"{hashlib.sha256(spec_json.encode('utf-8')).hexdigest()}.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept["version"] == CHECK_VERSION and (kept["mismatch"] is None or isinstance(kept["mismatch"], str)):
            return kept["mismatch"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not checked yet, or a file cut short: check again
    mismatch = tiktoken_mismatch(json.loads(spec_json))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"version": CHECK_VERSION, "mismatch": mismatch}), encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass  # a read-only cache folder: the next run checks again
    return mismatch


def build_codec(spec_json: str, engine: str = "auto", clean_up_spaces: bool = True, verified: bool = False):
    """``tiktoken`` (faster, exact on byte-level BPE with rank-ordered merges), ``tokenizers``, or ``auto``."""
    _check_engine(engine)
    if engine != "tokenizers":
        from pricecurate.tokenizer.tiktoken_codec import TiktokenCodec, UnsupportedTokenizer

        try:
            # Checks the fit, for auto too, unless the driver did (``verified`` with engine "tiktoken").
            return TiktokenCodec(spec_json, clean_up_spaces, verified and engine == "tiktoken")
        except UnsupportedTokenizer:
            if engine == "tiktoken":
                raise
    return Codec(hugging_face_tokenizer(spec_json), clean_up_spaces)


def codec_for(spec_json: str, sha256: str, engine: str = "auto", clean_up_spaces: bool = True,
              verified: bool = False):
    """The worker's codec for this tokenizer, built on first use and then reused."""
    global BUILD_COUNT
    key = (sha256, engine, clean_up_spaces)
    codec = _worker_codecs.get(key)
    if codec is None:
        with _worker_lock:
            codec = _worker_codecs.get(key)
            if codec is None:
                # Spark runs one task per core already; tokenizer threads would oversubscribe them.
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                codec = build_codec(spec_json, engine, clean_up_spaces, verified)
                _worker_codecs[key] = codec
                BUILD_COUNT += 1
    return codec
