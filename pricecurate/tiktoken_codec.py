"""A faster encoder for byte-level BPE tokenizers such as Llama 3: tiktoken on the same ranks.

The ranks, special tokens and split pattern are read from the fast-tokenizer
JSON that the driver broadcasts, so both engines see one tokenizer. Texts that
contain a special token's spelling go to the Hugging Face engine, which treats
them as special tokens; everything else gets identical ids from tiktoken
(tests/test_engines.py checks this on every shared record and a generated corpus).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from tokenizers import Tokenizer

from pricecurate.recipe import clean_up_decoded


class UnsupportedTokenizer(ValueError):
    """The tokenizer is not a plain byte-level BPE that tiktoken can reproduce."""


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    # The byte-level alphabet: printable bytes stand for themselves, the rest
    # are shifted past 255 so every byte has a visible character.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + shift)] = byte
            shift += 1
    return chars


def _split_pattern(data: dict) -> str:
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if (
        data.get("normalizer") is None
        and (data.get("model") or {}).get("type") == "BPE"
        and (data.get("model") or {}).get("ignore_merges") is True
        and len(steps) == 2
        and steps[0].get("type") == "Split"
        and steps[0].get("behavior") == "Isolated"
        and "Regex" in (steps[0].get("pattern") or {})
        and steps[1].get("type") == "ByteLevel"
        and steps[1].get("use_regex") is False
        and not steps[1].get("add_prefix_space")
    ):
        return steps[0]["pattern"]["Regex"]
    raise UnsupportedTokenizer("tokenizer is not a Split+ByteLevel BPE with ignore_merges")


class TiktokenCodec:
    def __init__(self, spec_json: str):
        import tiktoken

        data = json.loads(spec_json)
        pattern = _split_pattern(data)
        to_byte = _unicode_to_byte()
        ranks = {bytes(to_byte[ch] for ch in token): rank for token, rank in data["model"]["vocab"].items()}
        self._base_size = len(ranks)
        self._specials = [t["content"] for t in data.get("added_tokens", [])]
        self._special_re = re.compile("|".join(re.escape(s) for s in self._specials)) if self._specials else None
        self._encoding = tiktoken.Encoding(
            "pricecurate", pat_str=pattern, mergeable_ranks=ranks,
            special_tokens={t["content"]: t["id"] for t in data.get("added_tokens", [])},
        )
        self._spec_json = spec_json
        self._hf = None

    def _hugging_face(self):
        if self._hf is None:
            from pricecurate.tokenizer import Codec

            self._hf = Codec(Tokenizer.from_str(self._spec_json))
        return self._hf

    def _has_special(self, text: str) -> bool:
        return self._special_re is not None and "<|" in text and self._special_re.search(text) is not None

    def encode(self, texts: list[str]) -> list[list[int]]:
        encode = self._encoding.encode_ordinary
        return [self._hugging_face().encode([t])[0] if self._has_special(t) else encode(t) for t in texts]

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        decoded = []
        for ids in token_ids:
            if ids and max(ids) >= self._base_size:
                decoded.append(self._hugging_face().decode([ids])[0])
            else:
                # Like the byte-level decoder: bytes joined, invalid UTF-8 replaced by U+FFFD.
                decoded.append(clean_up_decoded(self._encoding.decode_bytes(ids).decode("utf-8", "replace")))
        return decoded
