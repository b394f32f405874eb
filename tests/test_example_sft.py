"""The examples/prepare_sft.py example on a prompt-completion export: loading, the split, the loss mask (no Spark)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import prepare_sft  # noqa: E402

from pricecurate.rules.recipe import PRICE_PREFIX, QUESTION  # noqa: E402

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
    (output / "manifest.json").write_text(json.dumps({"data": root.name,
                                                      "splits": {"sizes": {"train": len(TRAIN_TEXTS), "test": 1}}}))

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
def export_dir(output_dir, tmp_path_factory):
    return prepare_sft.export_prompt_completion(output_dir, tmp_path_factory.mktemp("export") / "pc")


@pytest.fixture(scope="module")
def splits(export_dir, tmp_path_factory):
    return prepare_sft.load_splits(export_dir, cache_dir=str(tmp_path_factory.mktemp("hf-cache")))


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


def test_load_exported_splits(splits):
    assert splits["train"].num_rows == len(TRAIN_TEXTS)
    assert splits["test"].num_rows == 1
    assert set(splits["train"].column_names) == {"prompt", "completion", "price", "category", "parent_asin"}
    assert set(splits["train"]["category"]) == {"Tools"}


def test_prompt_completion_splits_at_last_prefix(splits):
    pairs = {row["prompt"] + row["completion"]: row for row in splits["train"]}
    assert sorted(pairs) == sorted(TRAIN_TEXTS)  # prompt + completion is the train text
    for text, price in zip(TRAIN_TEXTS, PRODUCTS):
        row = pairs[text]
        assert row["prompt"].endswith("\n\n" + PRICE_PREFIX)
        assert row["completion"] == price
        assert row["price"] == float(price)
    # The product text with "Price is $5 off" in it keeps it in the prompt.
    assert "Price is $5 off" in pairs[TRAIN_TEXTS[3]]["prompt"]
    # A test row's completion is the true price in the same form, so replies can be scored.
    test = splits["test"][0]
    assert test["prompt"].endswith(PRICE_PREFIX) and test["completion"] == "12.00"


def test_main_exports_a_dataset_first(output_dir, capsys):
    prepare_sft.main([str(output_dir), "--rows", "1"])
    printed = capsys.readouterr().out
    assert "train: 4 rows" in printed and "'7.00': ['7', '.', '00'] -> '7.00'" in printed


def test_loss_tokens_are_exactly_the_price(tokenizer, splits):
    train = splits["train"]  # one file: rows in the order they were written, TRAIN_TEXTS's
    assert [p + c for p, c in zip(train["prompt"], train["completion"])] == TRAIN_TEXTS
    input_ids, attention_mask, labels = prepare_sft.completion_mask(tokenizer, train["prompt"], train["completion"])
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
        prompt = text[: text.rfind(PRICE_PREFIX) + len(PRICE_PREFIX)]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids
        assert len(loss_positions) == len(full_ids) - len(prompt_ids)
        assert ids[:real] == [tokenizer.bos_token_id] + full_ids


def test_price_token_split(tokenizer, splits):
    """Llama 3 splits digits in runs of up to three: "123.00" is "123", ".", "00"."""
    row = splits["train"][1]
    _ids, _mask, labels = prepare_sft.completion_mask(tokenizer, [row["prompt"]], [row["completion"]])
    pieces = [tokenizer.decode([label]) for label in labels[0] if label != -100]
    assert pieces == ["123", ".", "00"]


def test_eos_and_max_length(tokenizer, splits):
    prompt, completion = splits["train"][0]["prompt"], splits["train"][0]["completion"]
    ids, mask, labels = prepare_sft.completion_mask(tokenizer, [prompt], [completion], max_length=200, eos=True)
    assert len(ids[0]) == len(mask[0]) == len(labels[0]) == 200
    loss = [label for label in labels[0] if label != -100]
    assert loss[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(loss) == "7.00<|end_of_text|>"
    with pytest.raises(ValueError):
        prepare_sft.completion_mask(tokenizer, [prompt], [completion], max_length=5)
