"""The tokenizer: built once on the driver, shipped as JSON, rebuilt once per Python worker.

The default is Llama 3.1 8B, converted offline from the tiktoken ranks that the
``llama-models`` package ships. The conversion yields a ``tokenizers`` fast
tokenizer that encodes exactly like the Hugging Face one; it is cached on disk
because computing the merges takes a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from pricecurate.recipe import clean_up_decoded

LLAMA31 = "llama-3.1-8b"

# The Llama 3 pre-tokenizer pattern (llama_models/llama3/tokenizer.py).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Ids 128000-128255 of Llama 3.1, named as in its Hugging Face tokenizer.json.
_LLAMA31_NAMED = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    4: "<|finetune_right_pad_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
}


def llama31_special_tokens() -> list[str]:
    names, reserved = [], 0
    for offset in range(256):
        if offset in _LLAMA31_NAMED:
            names.append(_LLAMA31_NAMED[offset])
        else:
            names.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return names


def _cache_dir() -> Path:
    base = os.environ.get("PRICECURATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pricecurate"
    )
    return Path(base)


def _llama31_ranks_file() -> Path:
    try:
        import llama_models
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the default tokenizer needs the 'llama-models' package: pip install llama-models"
        ) from exc
    path = Path(llama_models.__file__).parent / "llama3" / "tokenizer.model"
    if not path.exists():
        raise RuntimeError(f"llama-models is installed but has no {path}")
    return path


def build_llama31_json() -> str:
    """Convert the tiktoken ranks to a fast-tokenizer JSON (slow: computes the merges)."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(
        vocab_file=str(_llama31_ranks_file()),
        pattern=LLAMA3_PATTERN,
        extra_special_tokens=llama31_special_tokens(),
    )
    return converter.converted().to_str()


def _load_llama31_json() -> str:
    ranks = _llama31_ranks_file()
    ranks_digest = hashlib.sha256(ranks.read_bytes()).hexdigest()[:16]
    cached = _cache_dir() / f"{LLAMA31}-{ranks_digest}.json"
    if cached.exists():
        return cached.read_text(encoding="utf-8")
    text = build_llama31_json()
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, cached)  # concurrent builders never see a half-written cache
    return text


def _load_hub_json(name: str) -> str:
    """Any Hugging Face model id or local directory, for users with Hub access."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(name)
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise RuntimeError(f"tokenizer {name!r} has no fast (tokenizers) backend")
    return backend.to_str()


@dataclass(frozen=True)
class TokenizerSpec:
    """What the driver broadcasts: a name, and the fast tokenizer as JSON."""

    name: str
    json: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.json.encode("utf-8")).hexdigest()

    def identity(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}


def load_spec(name: str = LLAMA31) -> TokenizerSpec:
    """Resolve a tokenizer name on the driver."""
    if name == LLAMA31:
        return TokenizerSpec(LLAMA31, _load_llama31_json())
    if os.path.isfile(name) and name.endswith(".json"):
        return TokenizerSpec(os.path.basename(name), Path(name).read_text(encoding="utf-8"))
    return TokenizerSpec(name, _load_hub_json(name))


class Codec:
    """Batch encode and truncate-decode with a fast tokenizer, as the recipe needs them."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer

    def encode(self, texts: list[str]) -> list[list[int]]:
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        """Decode like the Hugging Face tokenizer (special tokens kept), then its clean-up."""
        decoded = self._tokenizer.decode_batch(token_ids, skip_special_tokens=False)
        return [clean_up_decoded(text) for text in decoded]


ENGINES = ("auto", "tokenizers", "tiktoken")

_worker_codecs: dict[tuple[str, str], Codec] = {}
_worker_lock = threading.Lock()
BUILD_COUNT = 0  # how many tokenizers this Python process built; reported by the job


def build_codec(spec_json: str, engine: str = "auto"):
    """``tiktoken`` (faster, byte-level BPE only), ``tokenizers``, or ``auto``: the first that fits."""
    if engine not in ENGINES:
        raise ValueError(f"unknown tokenizer engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine != "tokenizers":
        from pricecurate.tiktoken_codec import TiktokenCodec, UnsupportedTokenizer

        try:
            return TiktokenCodec(spec_json)
        except UnsupportedTokenizer:
            if engine == "tiktoken":
                raise
    return Codec(Tokenizer.from_str(spec_json))


def codec_for(spec_json: str, sha256: str, engine: str = "auto"):
    """The worker's codec for this tokenizer, built on first use and then reused."""
    global BUILD_COUNT
    key = (sha256, engine)
    codec = _worker_codecs.get(key)
    if codec is None:
        with _worker_lock:
            codec = _worker_codecs.get(key)
            if codec is None:
                # Spark runs one task per core already; tokenizer threads would oversubscribe them.
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                codec = build_codec(spec_json, engine)
                _worker_codecs[key] = codec
                BUILD_COUNT += 1
    return codec
