"""The tokenizer: built once on the driver, shipped as JSON, rebuilt once per Python worker.

Any tokenizer works offline as a tokenizer.json file or a folder holding one
(as ``save_pretrained`` writes it); a Hugging Face model id needs the Hub. The
default is Llama 3.1 8B, converted offline from the tiktoken ranks that the
``llama-models`` package ships. The conversion yields a ``tokenizers`` fast
tokenizer that encodes exactly like the Hugging Face one; it is cached on disk
because computing the merges takes a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from pricecurate.paths import cache_dir
from pricecurate.tokenizer import LLAMA31

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
    cached = cache_dir() / f"{LLAMA31}-{ranks_digest}.json"
    if cached.exists():
        return cached.read_text(encoding="utf-8")
    text = build_llama31_json()
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, cached)  # concurrent builders never see a half-written cache
    return text


@dataclass(frozen=True)
class TokenizerSpec:
    """What the driver broadcasts: a name, the fast tokenizer as JSON, and whether decoding cleans up spaces.

    ``clean_up_spaces`` is transformers' ``clean_up_tokenization_spaces``: on,
    decoded text gets ``recipe.clean_up_decoded`` as transformers 4 applied it.
    """

    name: str
    json: str
    clean_up_spaces: bool = True

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.json.encode("utf-8")).hexdigest()

    def identity(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "clean_up_spaces": self.clean_up_spaces}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _transformers_json(name: str, local: bool) -> tuple[str, bool]:
    """A model id or folder through transformers' AutoTokenizer: the fast tokenizer JSON and its clean-up setting."""
    from transformers import AutoTokenizer

    # A local folder never needs the Hub; without this, transformers may retry it for most of a minute.
    hf = AutoTokenizer.from_pretrained(name, local_files_only=local)
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"tokenizer {name!r} has no fast (tokenizers) backend")
    return backend.to_str(), bool(getattr(hf, "clean_up_tokenization_spaces", False))


def _clean_up_setting(folder: Path) -> bool:
    """``clean_up_tokenization_spaces`` from the folder's tokenizer_config.json.

    False when the key or the file is absent: transformers' default.
    """
    config_path = folder / "tokenizer_config.json"
    if not config_path.is_file():
        return False
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{config_path} is not readable JSON: {_first_line(exc)}") from None
    return bool(config.get("clean_up_tokenization_spaces", False)) if isinstance(config, dict) else False


def _read_tokenizer_file(path: Path) -> str:
    """The file's text, after checking that the tokenizers library can build a tokenizer from it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read tokenizer file {path}: {_first_line(exc)}") from None
    try:
        text = raw.decode("utf-8")
        Tokenizer.from_str(text)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception on a bad file
        raise ValueError(f"{path} is not a tokenizer JSON file (as Tokenizer.save or save_pretrained write): "
                         f"{_first_line(exc)}") from None
    return text


def _looks_like_hub_id(name: str) -> bool:
    """``org/name`` or an old unprefixed id such as ``gpt2``; not a path to a missing file."""
    return (re.fullmatch(r"([A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*", name) is not None
            and ".." not in name and not name.endswith(".json"))


def _spec_from_folder_without_json(name: str) -> TokenizerSpec:
    try:
        text, clean_up = _transformers_json(name, local=True)
    except Exception as exc:  # noqa: BLE001 - transformers fails in many ways; the user needs one line
        raise ValueError(
            f"tokenizer folder {name!r} has no tokenizer.json and transformers could not build one "
            f"({_first_line(exc)}); on a machine with Hub access run "
            f"AutoTokenizer.from_pretrained(MODEL_ID).save_pretrained({name!r})"
        ) from None
    return TokenizerSpec(name, text, clean_up)


def _spec_from_hub(name: str) -> TokenizerSpec:
    try:
        text, clean_up = _transformers_json(name, local=False)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"tokenizer {name!r} is not a local file or folder, and loading it from the Hugging Face Hub failed "
            f"(the Hub may be unreachable: {_first_line(exc)}); download it where the Hub is reachable with "
            f"AutoTokenizer.from_pretrained({name!r}).save_pretrained(DIR) and pass DIR"
        ) from None
    return TokenizerSpec(name, text, clean_up)


def load_spec(name: str = LLAMA31) -> TokenizerSpec:
    """Resolve a tokenizer on the driver: the built-in name, a tokenizer JSON file or a folder holding
    tokenizer.json (both offline), or anything transformers' AutoTokenizer loads (a Hub id needs the Hub)."""
    if name == LLAMA31:
        return TokenizerSpec(LLAMA31, _load_llama31_json(), clean_up_spaces=True)
    path = Path(name)
    if path.is_file():
        return TokenizerSpec(name, _read_tokenizer_file(path), _clean_up_setting(path.parent))
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return TokenizerSpec(name, _read_tokenizer_file(path / "tokenizer.json"), _clean_up_setting(path))
        return _spec_from_folder_without_json(name)
    if not _looks_like_hub_id(name):
        raise ValueError(f"tokenizer {name!r}: no such file or folder, and not a Hugging Face model id (org/name)")
    return _spec_from_hub(name)
