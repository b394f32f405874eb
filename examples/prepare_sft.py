"""Prepare a pricecurate output for supervised fine-tuning, following TRL's conventions.

A pricecurate run writes ``OUT/train/category=<C>/*.parquet`` and
``OUT/test/category=<C>/*.parquet``. A train row's ``text`` is the whole
training text::

    How much does this cost to the nearest dollar?\\n\\n<product text>\\n\\nPrice is $123.00

and a test row's ``text`` stops right after ``Price is $``. The model should
learn to write the price, not to reproduce the product text, so the loss goes
on the completion after the last ``Price is $`` only. Two ways to get there:

* ``to_prompt_completion`` turns each train row into TRL's prompt-completion
  format; ``trl.SFTTrainer`` then computes the loss on the completion only
  (see ``trl_training_sketch``).
* ``completion_mask`` does the masking itself and returns ``input_ids``,
  ``attention_mask`` and ``labels`` (-100 where no loss) as plain lists, for a
  hand-written training loop or to check what TRL will do.

Special tokens: ``completion_mask`` starts every row with the tokenizer's BOS
token (when it has one), because Llama 3.1 was trained with
``<|begin_of_text|>`` first and ``SFTTrainer`` adds it too when it tokenizes
with the Hugging Face Llama tokenizer. BOS is added explicitly, with
``add_special_tokens=False``, so the result does not depend on whether a given
tokenizer's post-processor adds BOS itself. No EOS by default, so the loss
tokens are exactly the price ("123.00"); pass ``eos=True`` to also train the
model to stop after the price, which is what ``SFTTrainer`` does (it appends
EOS to every completion).

Run it (no torch or trl needed)::

    python examples/prepare_sft.py OUT [--model ID_OR_DIR] [--rows 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pricecurate.recipe import PRICE_PREFIX

IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and so transformers/TRL) skips


def load_splits(output_dir, cache_dir=None):
    """Load the train and test splits of a pricecurate output as a ``datasets.DatasetDict``."""
    import datasets

    # The output's manifest names its data folder; one glob per split over the
    # ``category=<C>`` directories (the files themselves carry the category column too).
    root = Path(output_dir) / json.loads((Path(output_dir) / "manifest.json").read_text())["data"]
    files = {split: str(root / split / "*" / "*.parquet") for split in ("train", "test")}
    return datasets.load_dataset("parquet", data_files=files, cache_dir=cache_dir)


def _completion_start(text: str) -> int:
    """The character index right after the LAST price prefix (the product text may contain one too)."""
    index = text.rfind(PRICE_PREFIX)
    if index < 0:
        raise ValueError(f"no {PRICE_PREFIX!r} in text: {text[:80]!r}...")
    return index + len(PRICE_PREFIX)


def to_prompt_completion(example: dict) -> dict:
    """Split a train row's ``text`` into TRL's ``{"prompt", "completion"}`` pair.

    The prompt ends with ``Price is $``; the completion is the rest ("123.00").
    On a test row the completion is empty.
    """
    text = example["text"]
    start = _completion_start(text)
    return {"prompt": text[:start], "completion": text[start:]}


def completion_mask(tokenizer, texts, max_length=None, eos=False):
    """Tokenize full texts and put the loss on the completion tokens only.

    Returns ``(input_ids, attention_mask, labels)``, each a list of equally long
    lists (right-padded to the longest row, or to ``max_length``). ``labels``
    is ``input_ids`` with -100 on BOS, on every prompt token and on padding.

    A token carries loss when its start offset is at or after the character
    right after the last ``Price is $``. With Llama 3's pre-tokenizer "$" is
    never merged with a digit, so the boundary falls between tokens. For a
    tokenizer where a token straddles it, that token gets no loss.

    ``tokenizer`` must be a fast (Rust) tokenizer: slow ones have no offsets.
    Rows longer than ``max_length`` raise ``ValueError`` because truncating
    on the right would cut off the very price the row exists to teach.
    """
    texts = list(texts)
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    rows = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        start = _completion_start(text)
        labels = [token if begin >= start else IGNORE_INDEX for token, (begin, _end) in zip(ids, offsets)]
        ids, labels = bos + ids, [IGNORE_INDEX] * len(bos) + labels
        if eos:
            ids, labels = ids + [tokenizer.eos_token_id], labels + [tokenizer.eos_token_id]
        rows.append((ids, labels))

    longest = max((len(ids) for ids, _ in rows), default=0)
    width = longest if max_length is None else max_length
    if longest > width:
        raise ValueError(f"a row has {longest} tokens, more than max_length={max_length}")

    input_ids, attention_mask, all_labels = [], [], []
    for ids, labels in rows:
        padding = width - len(ids)
        input_ids.append(ids + [pad_id] * padding)
        attention_mask.append([1] * len(ids) + [0] * padding)
        all_labels.append(labels + [IGNORE_INDEX] * padding)
    return input_ids, attention_mask, all_labels


def load_tokenizer(model=None):
    """The offline Llama 3.1 tokenizer from pricecurate by default, else any HF id or directory."""
    if model:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model)

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from pricecurate.tokenizer import load_spec

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(load_spec().json),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|finetune_right_pad_id|>",
    )


def trl_training_sketch(output_dir, model="meta-llama/Llama-3.1-8B"):  # pragma: no cover
    """How the prompt-completion dataset plugs into TRL. NOT run by the tests or by ``main``.

    Needs ``pip install torch trl`` (and peft for LoRA), a GPU, and the model
    weights; sizes below are placeholders, not tuned values.
    """
    from trl import SFTConfig, SFTTrainer

    splits = load_splits(output_dir)
    # Keep only prompt/completion: TRL picks the prompt-completion path when
    # it sees a "prompt" column, and the other columns are not model inputs.
    train = splits["train"].map(to_prompt_completion, remove_columns=splits["train"].column_names)

    config = SFTConfig(
        output_dir="sft-price",
        completion_only_loss=True,  # loss on the completion ("123.00" + EOS) only
        max_length=256,  # pricecurate rows are about 160 tokens; keep room so no price is cut
        per_device_train_batch_size=8,
        num_train_epochs=1,
        learning_rate=1e-4,
    )
    # SFTTrainer tokenizes prompt and prompt+completion, appends EOS to the
    # completion, and masks the prompt tokens -- what completion_mask(eos=True)
    # reproduces. The test split (text ending in "Price is $", plus the price
    # column) is for generating prices afterwards, not for this loss.
    trainer = SFTTrainer(model=model, args=config, train_dataset=train)
    trainer.train()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="a pricecurate output directory")
    parser.add_argument("--model", help="tokenizer: HF id or directory (default: offline Llama 3.1 from pricecurate)")
    parser.add_argument("--rows", type=int, default=3, help="how many rows to show the loss tokens of")
    args = parser.parse_args(argv)

    splits = load_splits(args.output_dir)
    for name, split in splits.items():
        print(f"{name}: {split.num_rows} rows")

    pair = to_prompt_completion(splits["train"][0])
    print("\n--- prompt ---")
    print(pair["prompt"])
    print("--- completion ---")
    print(repr(pair["completion"]))

    tokenizer = load_tokenizer(args.model)
    texts = splits["train"][: args.rows]["text"]
    _input_ids, _attention_mask, labels = completion_mask(tokenizer, texts)
    print("\n--- tokens that carry loss ---")
    for text, row in zip(texts, labels):
        loss_ids = [token for token in row if token != IGNORE_INDEX]
        pieces = [tokenizer.decode([token]) for token in loss_ids]
        print(f"{to_prompt_completion({'text': text})['completion']!r}: {pieces} -> {tokenizer.decode(loss_ids)!r}")


if __name__ == "__main__":
    main()
