"""The ``tokenizers`` engine: batch encode and truncate-decode with a Hugging Face fast tokenizer."""

from __future__ import annotations

from tokenizers import Tokenizer

from pricecurate.rules.recipe import Quote, clean_up_decoded


def hugging_face_tokenizer(spec_json: str) -> Tokenizer:
    tokenizer = Tokenizer.from_str(spec_json)
    # A saved tokenizer may carry truncation or padding; transformers ignores them unless asked, and the
    # recipe counts and cuts tokens itself.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Codec:
    """Batch encode and truncate-decode with a fast tokenizer, as the recipe needs them."""

    def __init__(self, tokenizer: Tokenizer, clean_up_spaces: bool = True):
        self._tokenizer = tokenizer
        self._clean_up_spaces = clean_up_spaces

    def encode(self, texts: list[str]) -> list[list[int]]:
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        """Decode like the Hugging Face tokenizer (special tokens kept), then its clean-up if the tokenizer has it."""
        decoded = self._tokenizer.decode_batch(token_ids, skip_special_tokens=False)
        return [clean_up_decoded(text) for text in decoded] if self._clean_up_spaces else decoded

    def count_prompts(self, prompts: list[str], quotes: list[Quote]) -> list[int]:
        """How many tokens each prompt encodes to (``quotes`` help engines that can count without encoding)."""
        return [len(ids) for ids in self.encode(prompts)]
