"""A faster encoder for byte-level BPE tokenizers such as Llama 3: tiktoken on the same ranks.

The ranks and split pattern are read from the fast-tokenizer JSON that the
driver broadcasts, so both engines see one tokenizer. ``tiktoken_mismatch``
says whether tiktoken reproduces that tokenizer exactly; only then is this
engine used. Texts that contain an added token's spelling, and ids of added
tokens, go to the Hugging Face engine, which treats them as added tokens;
everything else gets identical ids and text from tiktoken (tests/test_engines.py
and tests/test_tokenizer_any.py check this).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

from pricecurate.rules.recipe import Quote, clean_up_decoded
from pricecurate.tokenizer import tables
from pricecurate.tokenizer.counting import SPACE_SPLIT_PATTERNS, known_middle


class UnsupportedTokenizer(ValueError):
    """The tokenizer is not a byte-level BPE that tiktoken reproduces exactly."""


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


def _kind(component: dict | None) -> str:
    """A component's type for a reason, e.g. ``Sequence[Split, ByteLevel]``."""
    if not component:
        return "none"
    parts = component.get("pretokenizers") or component.get("normalizers") or component.get("decoders")
    inner = f"[{', '.join(_kind(part) for part in parts)}]" if parts else ""
    return f"{component.get('type')}{inner}"


def _pipeline_mismatch(data: dict) -> str | None:
    """Around the model: tiktoken only splits with one regex and maps bytes."""
    if data.get("normalizer") is not None:
        return f"has a normalizer ({_kind(data['normalizer'])})"
    pre = data.get("pre_tokenizer") or {}
    steps = (pre.get("pretokenizers") or []) if pre.get("type") == "Sequence" else []
    if [step.get("type") for step in steps] != ["Split", "ByteLevel"]:
        return f"pre-tokenizer is {_kind(pre)}, not Sequence[Split, ByteLevel]"
    split, byte_level = steps
    if split.get("behavior") != "Isolated" or split.get("invert") or "Regex" not in (split.get("pattern") or {}):
        return "its Split pre-tokenizer is not an isolated, non-inverted regex"
    if byte_level.get("use_regex") is not False or byte_level.get("add_prefix_space"):
        return "its ByteLevel pre-tokenizer splits again or adds a prefix space"
    if (data.get("decoder") or {}).get("type") != "ByteLevel":
        return f"decoder is {_kind(data.get('decoder'))}, not ByteLevel"
    return None


def _model_mismatch(model: dict) -> str | None:
    if model.get("type") != "BPE":
        return f"model is {model.get('type')}, not BPE"
    if model.get("ignore_merges") is not True:
        # tiktoken takes a piece that is a whole token as is, before any merge.
        return "BPE without ignore_merges"
    if model.get("dropout"):
        return "BPE with dropout"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "BPE with a subword prefix or word suffix"
    if model.get("byte_fallback"):
        return "BPE with byte fallback"
    return None


def _vocab_mismatch(vocab: dict[str, int]) -> str | None:
    alphabet = _unicode_to_byte()
    if not set("".join(vocab)) <= alphabet.keys():
        return "vocab has tokens outside the byte-level alphabet"
    missing = len(alphabet.keys() - vocab.keys())
    if missing:
        return f"vocab lacks {missing} of the 256 single-byte tokens"
    return None


def _tokens_in_id_order(vocab: dict[str, int]) -> list[str] | None:
    """The vocab as a list indexed by id, or None unless its ids are exactly 0..n-1."""
    tokens: list[str | None] = [None] * len(vocab)
    for token, token_id in vocab.items():
        if not 0 <= token_id < len(tokens) or tokens[token_id] is not None:
            return None
        tokens[token_id] = token
    return tokens  # n distinct ids in 0..n-1: every slot is filled


def rank_derived_merges(tokens: list[str], vocab: dict[str, int]) -> list[list[str]]:
    """The merges tiktoken's ranks imply (as transformers' TikTokenConverter derives them).

    tiktoken merges whichever adjacent pair joins into the lowest-ranked token,
    so for each token in rank (id) order, every split into two vocab pieces is
    a merge, those splits ordered by the ids of their pieces.
    """
    merges: list[list[str]] = []
    append, lookup = merges.append, vocab.get
    for token in tokens:
        splits = []
        for cut in range(1, len(token)):
            left_id = lookup(token[:cut])
            if left_id is not None and token[cut:] in vocab:
                splits.append((left_id, cut))  # cuts differ in their left piece, so its id orders them
        if len(splits) > 1:
            splits.sort()
        for _, cut in splits:
            append([token[:cut], token[cut:]])
    return merges


def _as_pairs(merges: list) -> list:
    """tokenizer.json writes a merge as ``"a b"`` (older) or ``["a", "b"]``; byte-level tokens hold no space.

    Lists are compared as they are: copying Llama's 280k would add a third to the check's time.
    """
    if merges and isinstance(merges[0], str):
        return [merge.split(" ") if isinstance(merge, str) else merge for merge in merges]
    return merges


def _spell(merge) -> str:
    return " ".join(map(str, merge)) if isinstance(merge, (list, tuple)) else str(merge)


def _merges_mismatch(tokens: list[str], vocab: dict[str, int], merges: list) -> str | None:
    derived, stored = rank_derived_merges(tokens, vocab), _as_pairs(merges)
    if derived == stored:
        return None
    for index, (ours, theirs) in enumerate(zip(derived, stored)):
        if ours != theirs:
            return (f"its merges do not follow its ranks "
                    f"(merge {index} is {_spell(theirs)!r}, the ranks give {_spell(ours)!r})")
    return f"its merges do not follow its ranks ({len(stored)} merges, the ranks give {len(derived)})"


def tiktoken_mismatch(data: dict) -> str | None:
    """None when tiktoken reproduces this tokenizer (parsed tokenizer.json) exactly, else why not."""
    model = data.get("model") or {}
    reason = _pipeline_mismatch(data) or _model_mismatch(model)
    if reason:
        return reason
    vocab = model.get("vocab") or {}
    reason = _vocab_mismatch(vocab)
    if reason:
        return reason
    tokens = _tokens_in_id_order(vocab)
    if tokens is None:
        return "vocab ids are not 0..n-1"
    return _merges_mismatch(tokens, vocab, model.get("merges") or [])


class TiktokenCodec:
    def __init__(self, spec_json: str, clean_up_spaces: bool = True, verified: bool = False):
        """``verified``: the driver's ``choose_engine`` already found the tokenizer exact (the check takes ~0.6 s
        on Llama 3.1, which every Python worker would otherwise repeat)."""
        import tiktoken

        if verified:  # the tables kept in the cache folder, or built from the JSON once and kept
            found = tables.load(spec_json, lambda: tables.from_json(json.loads(spec_json), _unicode_to_byte()))
        else:
            data = json.loads(spec_json)
            reason = tiktoken_mismatch(data)
            if reason:
                raise UnsupportedTokenizer(reason)
            found = tables.from_json(data, _unicode_to_byte())
        ranks, added = found.ranks, found.added
        self._vocab_size = len(ranks)
        self._added_ids = frozenset(added.values())
        self._added_re = re.compile("|".join(map(re.escape, added))) if added else None
        # A cheap substring test first: Llama's added tokens all start with "<|".
        self._added_prefix = os.path.commonprefix(list(added))
        self._encoding = tiktoken.Encoding("pricecurate", pat_str=found.pattern, mergeable_ranks=ranks,
                                           special_tokens={})
        # Added tokens with ids among the ranks' need a set lookup on decode; Llama's all come after them.
        self._added_among_ranks = any(token_id < len(ranks) for token_id in self._added_ids)
        self._token_bytes = [len(token) for token in found.tokens]
        self._splits_at_spaces = found.pattern in SPACE_SPLIT_PATTERNS
        self._clean_up_spaces = clean_up_spaces
        self._spec_json = spec_json
        self._hf = None

    def _hugging_face(self):
        if self._hf is None:
            from pricecurate.tokenizer.codec import Codec, hugging_face_tokenizer

            self._hf = Codec(hugging_face_tokenizer(self._spec_json), self._clean_up_spaces)
        return self._hf

    def _has_added_token(self, text: str) -> bool:
        return self._added_re is not None and self._added_prefix in text and self._added_re.search(text) is not None

    def _needs_hugging_face(self, ids: list[int]) -> bool:
        return bool(ids) and (max(ids) >= self._vocab_size
                              or (self._added_among_ranks and not self._added_ids.isdisjoint(ids)))

    def encode(self, texts: list[str]) -> list[list[int]]:
        encode = self._encoding.encode_ordinary
        return [self._hugging_face().encode([t])[0] if self._has_added_token(t) else encode(t) for t in texts]

    def count_prompts(self, prompts: list[str], quotes: list[Quote]) -> list[int]:
        """How many tokens each prompt encodes to: where the prompt quotes a text whose tokens are known
        (``quotes``), only its two ends are encoded (``pricecurate.tokenizer.counting``)."""
        if not self._splits_at_spaces:
            return [len(ids) for ids in self.encode(prompts)]
        encode = self._encoding.encode_ordinary
        counts = []
        for prompt, quote in zip(prompts, quotes):
            known = None if self._has_added_token(prompt) else known_middle(prompt, quote, self._token_bytes)
            if known is None:
                counts.append(len(self.encode([prompt])[0]))
            else:
                counts.append(len(encode(prompt[: known.head_end])) + known.middle
                              + len(encode(prompt[known.tail_start:])))
        return counts

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        decoded = []
        for ids in token_ids:
            if self._needs_hugging_face(ids):
                decoded.append(self._hugging_face().decode([ids])[0])
                continue
            # Like the byte-level decoder: bytes joined, invalid UTF-8 replaced by U+FFFD.
            text = self._encoding.decode_bytes(ids).decode("utf-8", "replace")
            decoded.append(clean_up_decoded(text) if self._clean_up_spaces else text)
        return decoded
