"""Fine-tune on a pricecurate dataset with TRL, from its prompt-completion export.

``pricecurate export OUT --format prompt-completion --dest EXPORT`` writes one
Parquet file per split, ``EXPORT/<split>.parquet``, with the columns ``prompt``
(the text up to and including the last ``Price is $``), ``completion`` (the price
as the train text has it, "123.00"), ``price``, ``category`` and
``parent_asin``. In train, prompt + completion is the dataset's text; in test the
completion is the true price written the same way, so generated replies can be
scored (``pricecurate evaluate``). The export module does the splitting and
checks every row; this example only loads the files.

The model should learn to write the price, not to reproduce the product text,
so the loss goes on the completion only:

* ``trl.SFTTrainer`` does that by itself on a prompt-completion dataset (see
  ``trl_training_sketch``).
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

Run it (no torch or trl needed) on an export, or on a dataset, which it then
exports to a temporary folder first::

    python examples/prepare_sft.py EXPORT_OR_OUTPUT [--model ID_OR_DIR] [--rows 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pricecurate.export.build import export_dataset
from pricecurate.export.formats import PROMPT_COMPLETION

IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and so transformers/TRL) skips
SPLITS = ("train", "validation", "test")


def export_prompt_completion(output_dir, dest) -> Path:
    """Export a pricecurate dataset to ``dest/<split>.parquet`` in prompt-completion form."""
    export_dataset(str(output_dir), PROMPT_COMPLETION, str(dest), count_tokens=False, overwrite=True)
    return Path(dest)


def load_splits(export_dir, cache_dir=None):
    """Load the exported splits (``<split>.parquet``) as a ``datasets.DatasetDict``."""
    import datasets

    root = Path(export_dir)
    files = {split: str(root / f"{split}.parquet") for split in SPLITS if (root / f"{split}.parquet").is_file()}
    if not files:
        raise FileNotFoundError(f"no <split>.parquet in {root}; run pricecurate export --format prompt-completion")
    return datasets.load_dataset("parquet", data_files=files, cache_dir=cache_dir)


def completion_mask(tokenizer, prompts, completions, max_length=None, eos=False):
    """Tokenize prompt + completion and put the loss on the completion tokens only.

    Returns ``(input_ids, attention_mask, labels)``, each a list of equally long
    lists (right-padded to the longest row, or to ``max_length``). ``labels``
    is ``input_ids`` with -100 on BOS, on every prompt token and on padding.

    A token carries loss when its start offset is at or after the end of the
    prompt. With Llama 3's pre-tokenizer "$" is never merged with a digit, so
    the boundary falls between tokens. For a tokenizer where a token straddles
    it, that token gets no loss.

    ``tokenizer`` must be a fast (Rust) tokenizer: slow ones have no offsets.
    Rows longer than ``max_length`` raise ``ValueError`` because truncating
    on the right would cut off the very price the row exists to teach.
    """
    prompts, completions = list(prompts), list(completions)
    texts = [prompt + completion for prompt, completion in zip(prompts, completions)]
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    rows = []
    for prompt, ids, offsets in zip(prompts, encoded["input_ids"], encoded["offset_mapping"]):
        start = len(prompt)
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

    from pricecurate.tokenizer.spec import load_spec

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(load_spec().json),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|finetune_right_pad_id|>",
    )


def trl_training_sketch(export_dir, model="meta-llama/Llama-3.1-8B"):  # pragma: no cover
    """How the prompt-completion export plugs into TRL. NOT run by the tests or by ``main``.

    Needs ``pip install torch trl`` (and peft for LoRA), a GPU, and the model
    weights; sizes below are placeholders, not tuned values.
    """
    from trl import SFTConfig, SFTTrainer

    splits = load_splits(export_dir)
    # Keep only prompt/completion: TRL picks the prompt-completion path when it
    # sees a "prompt" column, and the other columns are not model inputs.
    train = splits["train"].select_columns(["prompt", "completion"])

    config = SFTConfig(
        output_dir="sft-price",
        completion_only_loss=True,  # loss on the completion ("123.00" + EOS) only
        max_length=256,  # pricecurate rows are about 180 tokens; keep room so no price is cut
        per_device_train_batch_size=8,
        num_train_epochs=1,
        learning_rate=1e-4,
    )
    # SFTTrainer tokenizes prompt and prompt+completion, appends EOS to the
    # completion, and masks the prompt tokens -- what completion_mask(eos=True)
    # reproduces. The test split is for generating prices afterwards: write
    # parent_asin and each reply to a CSV (columns parent_asin, completion) and
    # score it with `pricecurate evaluate OUT replies.csv`.
    trainer = SFTTrainer(model=model, args=config, train_dataset=train)
    trainer.train()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", metavar="EXPORT_OR_OUTPUT",
                        help="a prompt-completion export, or a pricecurate output folder to export first")
    parser.add_argument("--model", help="tokenizer: HF id or directory (default: offline Llama 3.1 from pricecurate)")
    parser.add_argument("--rows", type=int, default=3, help="how many rows to show the loss tokens of")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="prepare-sft-") as scratch:
        folder = Path(args.folder)
        if (folder / "manifest.json").is_file():  # a dataset, not an export
            folder = export_prompt_completion(folder, Path(scratch) / "export")
        splits = load_splits(folder, cache_dir=str(Path(scratch) / "hf-cache"))
        for name, split in splits.items():
            print(f"{name}: {split.num_rows} rows")

        first = splits["train"][0]
        print("\n--- prompt ---")
        print(first["prompt"])
        print("--- completion ---")
        print(repr(first["completion"]))

        tokenizer = load_tokenizer(args.model)
        rows = splits["train"][: args.rows]
        _input_ids, _attention_mask, labels = completion_mask(tokenizer, rows["prompt"], rows["completion"])
        print("\n--- tokens that carry loss ---")
        for completion, row in zip(rows["completion"], labels):
            loss_ids = [token for token in row if token != IGNORE_INDEX]
            pieces = [tokenizer.decode([token]) for token in loss_ids]
            print(f"{completion!r}: {pieces} -> {tokenizer.decode(loss_ids)!r}")


if __name__ == "__main__":
    main()
