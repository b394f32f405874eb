"""Small tokenizers trained in a test, for checking tokenizers other than Llama 3.1 offline.

    from tokenizer_fixtures import train_byte_level_bpe, derive_tiktoken_merges, train_wordpiece

Each takes texts (or a tokenizer, or merges) and returns a ``tokenizers.Tokenizer``;
``tokenizer.save(folder / "tokenizer.json")`` makes it loadable with ``--set tokenizer=FOLDER``.
"""

from __future__ import annotations

import json

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from pricecurate.tokenizer.spec import LLAMA3_PATTERN

END_OF_TEXT = "<|endoftext|>"


def _llama_shaped(model: models.Model) -> Tokenizer:
    """The Llama 3 pipeline around a BPE model: its split regex, then bytes as characters."""
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_byte_level_bpe(texts: list[str], vocab_size: int) -> Tokenizer:
    """A Llama-3-shaped byte-level BPE: the Llama 3 split regex, all 256 bytes, one special token.

    Its merges are the trainer's (one per learned token, in learning order), so
    they generally do not follow tiktoken's ranks.
    """
    tokenizer = _llama_shaped(models.BPE(ignore_merges=True))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def byte_level_bpe(merges: list[tuple[str, str]]) -> Tokenizer:
    """A hand-made Llama-3-shaped BPE: the 256 bytes (ids 0-255, in byte order), then what each merge makes.

    Merges are of ASCII letters, which stand for themselves in the byte-level alphabet.
    """
    char_of = {b: c for c, b in _byte_of_char().items()}
    vocab = {char_of[b]: b for b in range(256)}
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return _llama_shaped(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))


def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet, char -> byte: bytes that print as themselves keep their character,
    the other 68 take 256, 257, ... in byte order."""
    keeps_own_char = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    moved = [b for b in range(256) if b not in keeps_own_char]
    mapping = {chr(b): b for b in keeps_own_char}
    mapping.update({chr(256 + n): b for n, b in enumerate(moved)})
    return mapping


def derive_tiktoken_merges(tokenizer: Tokenizer) -> Tokenizer:
    """The same vocab with the merges that tiktoken's ranks imply, worked out on bytes.

    Written apart from ``pricecurate.tokenizer.tiktoken_codec`` so that each checks the other:
    every token that splits into two vocab tokens gives one merge per such split;
    merges are ordered by the rank of what they make, then by the ranks of the two pieces.
    """
    data = json.loads(tokenizer.to_str())
    byte_of = _byte_of_char()
    char_of = {b: c for c, b in byte_of.items()}
    ranks = {bytes(byte_of[c] for c in token): rank for token, rank in data["model"]["vocab"].items()}
    found = []
    for whole, rank in ranks.items():
        for cut in range(1, len(whole)):
            left, right = whole[:cut], whole[cut:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right], left, right))
    found.sort()

    def spell(piece: bytes) -> str:
        return "".join(char_of[b] for b in piece)

    data["model"]["merges"] = [[spell(left), spell(right)] for *_, left, right in found]
    return Tokenizer.from_str(json.dumps(data))


def train_wordpiece(texts: list[str], vocab_size: int) -> Tokenizer:
    """A BERT-shaped tokenizer: lower-casing normalizer, BertPreTokenizer, WordPiece."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer
