"""The examples/prepare_sft.py example: loading, prompt-completion split and loss mask (no Spark)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import prepare_sft  # noqa: E402

from pricecurate.recipe import PRICE_PREFIX, QUESTION  # noqa: E402

PRODUCTS = {
    "7.00": "Steel Tape Measure\nA 25 foot tape with a magnetic hook and a belt clip.",
    "123.00": "Cordless Drill Kit\nTwo batteries, a charger and 30 bits in a hard case.",
    "999.00": "Table Saw\nTen inch blade, rip fence and a folding stand with wheels.",
    # The product text itself contains the prefix: only the LAST one starts the completion.
    "45.00": "Garden Hose Reel\nSpring sale! Price is $5 off with code REEL5. Holds 150 feet.",
}


def _train_text(product: str, price: str) -> str:
    return f"{QUESTION}\n\n{product}\n\n{PRICE_PREFIX}{price}"


TRAIN_TEXTS = [_train_text(product, price) for price, product in PRODUCTS.items()]


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    """A tiny output laid out like a pricecurate run (which also keeps category in the files)."""
    output = tmp_path_factory.mktemp("out")
    root = output / "data-20261127T000000-abc"
    (output / "manifest.json").write_text(json.dumps({"data": root.name}))

    def write(split, texts, prices):
        table = pa.table(
            {
                "text": texts,
                "price": prices,
                "category": ["Tools"] * len(texts),
                "parent_asin": [f"B{i:09d}" for i in range(len(texts))],
                "title": [text.split("\n\n")[1].split("\n")[0] for text in texts],
                "token_count": pa.array([len(text) // 4 for text in texts], pa.int32()),
            }
        )
        directory = root / split / "category=Tools"
        directory.mkdir(parents=True)
        pq.write_table(table, directory / "part-00000.parquet")

    write("train", TRAIN_TEXTS, [float(price) for price in PRODUCTS])
    write("test", [_train_text("Claw Hammer\nSixteen ounces, fiberglass handle.", "")], [12.0])
    return output


@pytest.fixture(scope="module")
def tokenizer(tokenizer_spec):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer_spec.json),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|finetune_right_pad_id|>",
    )


def test_load_splits(output_dir, tmp_path):
    splits = prepare_sft.load_splits(output_dir, cache_dir=str(tmp_path / "hf-cache"))
    assert splits["train"].num_rows == len(TRAIN_TEXTS)
    assert splits["test"].num_rows == 1
    assert sorted(splits["train"]["text"]) == sorted(TRAIN_TEXTS)
    assert set(splits["train"]["category"]) == {"Tools"}
    assert splits["test"][0]["text"].endswith(PRICE_PREFIX)


def test_prompt_completion_splits_at_last_prefix():
    for text, price in zip(TRAIN_TEXTS, PRODUCTS):
        pair = prepare_sft.to_prompt_completion({"text": text})
        assert pair["prompt"] + pair["completion"] == text
        assert pair["prompt"].endswith("\n\n" + PRICE_PREFIX)
        assert pair["completion"] == price
    # A test row has nothing after the prefix.
    assert prepare_sft.to_prompt_completion({"text": "Q\n\nx\n\nPrice is $"})["completion"] == ""
    with pytest.raises(ValueError):
        prepare_sft.to_prompt_completion({"text": "no prefix here"})


def test_loss_tokens_are_exactly_the_price(tokenizer):
    input_ids, attention_mask, labels = prepare_sft.completion_mask(tokenizer, TRAIN_TEXTS)
    width = len(input_ids[0])
    assert all(len(row) == width for rows in (input_ids, attention_mask, labels) for row in rows)

    for text, price, ids, mask, row in zip(TRAIN_TEXTS, PRODUCTS, input_ids, attention_mask, labels):
        real = sum(mask)
        assert mask == [1] * real + [0] * (width - real)
        assert ids[0] == tokenizer.bos_token_id and row[0] == -100
        # Padding never carries loss and is the pad token.
        assert row[real:] == [-100] * (width - real)
        assert ids[real:] == [tokenizer.pad_token_id] * (width - real)
        # Loss tokens are one contiguous run at the end of the real tokens, equal to the inputs there.
        loss_positions = [i for i, label in enumerate(row) if label != -100]
        assert loss_positions == list(range(real - len(loss_positions), real))
        assert [row[i] for i in loss_positions] == [ids[i] for i in loss_positions]
        assert tokenizer.decode([row[i] for i in loss_positions]) == price

        # Same count as TRL's way: tokenize prompt and prompt+completion, the difference is the completion.
        prompt = prepare_sft.to_prompt_completion({"text": text})["prompt"]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids
        assert len(loss_positions) == len(full_ids) - len(prompt_ids)
        assert ids[:real] == [tokenizer.bos_token_id] + full_ids


def test_price_token_split(tokenizer):
    """Llama 3 splits digits in runs of up to three: "123.00" is "123", ".", "00"."""
    _ids, _mask, labels = prepare_sft.completion_mask(tokenizer, [TRAIN_TEXTS[1]])
    pieces = [tokenizer.decode([label]) for label in labels[0] if label != -100]
    assert pieces == ["123", ".", "00"]


def test_eos_and_max_length(tokenizer):
    text = TRAIN_TEXTS[0]
    ids, mask, labels = prepare_sft.completion_mask(tokenizer, [text], max_length=200, eos=True)
    assert len(ids[0]) == len(mask[0]) == len(labels[0]) == 200
    loss = [label for label in labels[0] if label != -100]
    assert loss[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(loss) == "7.00<|end_of_text|>"
    with pytest.raises(ValueError):
        prepare_sft.completion_mask(tokenizer, [text], max_length=5)
