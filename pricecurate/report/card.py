"""The output's README.md: a Hugging Face dataset card built from the manifest."""

from __future__ import annotations

import json

from pricecurate.evaluate.baseline import COLUMNS as BASELINE_COLUMNS
from pricecurate.evaluate.baseline import cells as baseline_cells
from pricecurate.output import source
from pricecurate.output.layout import CARD_MARK, data_prefix
from pricecurate.report.sections import EXAMPLE_COLUMNS, checked_items, example_cells, how_known, terms_words
from pricecurate.rules import recipe


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M"


def _recipe_words(rules: recipe.Recipe) -> str:
    changed = rules.changes()
    origin = (f"`{rules.base}` with {', '.join(f'`{key}`' for key in changed)} changed" if changed
              else f"`{rules.base}` as the course set it")
    return "\n".join([f"Recipe {origin} (parameter hash `{rules.digest}`).", ""] +
                      [f"- {sentence}" for sentence in recipe.in_words(rules)])


def _dedup_words(manifest: dict) -> str:
    fields = manifest["config"]["dedup"]
    near = manifest.get("near_duplicates")
    exact = [f for f in fields if f != "near"]
    parts = [f"exact on {', '.join(exact)}"] if exact else []
    if near:
        parts.append(
            f"near-duplicates (MinHash of word {near['ngram']}-grams, {near['num_perm']} values, {near['bands']} bands "
            f"of {near['rows_per_band']}; Jaccard >= {near['threshold']:g}): {near['groups']:,} groups, "
            f"{near['dropped']:,} items dropped, largest group {near['largest_group']:,}"
        )
    return "; ".join(parts) or "off"


def _leakage_words(manifest: dict) -> str:
    leakage = manifest.get("leakage")
    if not leakage:
        return ""
    words = (f"\n## Leakage check\n\nOf the {checked_items(leakage)} items, {leakage['count']:,} have a near-duplicate "
             f"in train (word n-gram Jaccard >= {leakage['threshold']:g}; {how_known(leakage)}).")
    if leakage["examples"]:
        words += "\n\n| " + " | ".join(EXAMPLE_COLUMNS) + " |\n|" + "---|" * len(EXAMPLE_COLUMNS) + "\n"
        words += "\n".join(
            "| " + " | ".join(_cell(cell) for cell in example_cells(pair)) + " |" for pair in leakage["examples"]
        )
    return words + "\n"


def _baseline_words(manifest: dict) -> str:
    section = manifest.get("baselines")
    if not section or section.get("skipped"):
        return ""
    return (f"\n## Baselines\n\nTrained with Spark MLlib on the {section['train_items']:,} train items and scored on the "
            f"{section['test_items']:,} test items (a hit: error under $40 or under 20% of the price).\n\n| "
            + " | ".join(BASELINE_COLUMNS) + " |\n|" + "---|" * len(BASELINE_COLUMNS) + "\n"
            + "\n".join("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in baseline_cells(section))
            + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:80]


def _yaml_text(value: str) -> str:
    """A YAML scalar that reads back as ``value`` whatever it holds (JSON's strings are YAML's double-quoted)."""
    return json.dumps(value, ensure_ascii=False)


def _terms_metadata(terms: dict) -> str:
    """The source's licence keys as its card states them; nothing when the manifest has none (never a guess)."""
    lines = []
    for key in source.TERMS_KEYS:
        value = terms.get(key)
        if isinstance(value, list):
            lines += [f"{key}:"] + [f"- {_yaml_text(item)}" for item in value]
        elif value:
            lines.append(f"{key}: {_yaml_text(value)}")
    return "".join(f"{line}\n" for line in lines)


def _source_words(manifest: dict, terms: dict) -> str:
    return f"""
## Source data

The input is the product metadata of [{source.REPO}]({source.PAGE}), the `meta_<Category>.jsonl` files of its
`{source.RAW_FOLDER}` folder ({len(manifest['input']['files'])} of them in this run).

Terms: {terms_words(terms, source.PAGE)}.

## Citation

This dataset is made of the source's data: when you use it, cite the source's paper ({source.PAPER},
https://arxiv.org/abs/{source.ARXIV}):

```bibtex
{source.CITATION}
```
"""


def _loading_words(folder: str, names: list[str]) -> str:
    files = ", ".join(f'"{name}": "{folder}{name}/*/*.parquet"' for name in names)
    return f"""
## Loading

In this folder, before or without a push (the paths are relative to it):

```python
from datasets import load_dataset
data = load_dataset("parquet", data_files={{{files}}})
```

After `pricecurate push <this folder> <your-name>/<dataset>`, anywhere: this card's `configs` tell `datasets` where
the splits are, so the repository's id is all it needs (put yours in place of `<your-name>/<dataset>`):

```python
from datasets import load_dataset
data = load_dataset("<your-name>/<dataset>")
```
"""


def render(manifest: dict) -> str:
    splits = manifest["splits"]["sizes"]
    names = [name for name in ("train", "validation", "test") if splits.get(name)]
    folder = data_prefix(manifest)
    data_files = "\n".join(f"  - split: {name}\n    path: \"{folder}{name}/*/*.parquet\"" for name in names)
    accounting = manifest["accounting"]
    rows = sum(splits.values())
    config = manifest["config"]
    per_category = "\n".join(
        f"| {category} | {counts.get('kept', 0):,} | "
        + " | ".join(f"{counts.get(name, 0):,}" for name in names)
        + " |"
        for category, counts in sorted(manifest["categories"].items())
    )
    dropped = "\n".join(f"| {reason} | {count:,} |" for reason, count in accounting["dropped"].items()) or "| – | 0 |"
    quarantined = sum(accounting["quarantined"].values())
    scaled = (
        f"\nThere were fewer balanced items than requested, so every split was scaled down in proportion "
        f"(requested {manifest['splits']['requested']}).\n"
        if manifest["splits"]["scaled"]
        else ""
    )
    rules = recipe.from_manifest(manifest)
    low, high = rules.slots
    terms = manifest.get(source.MANIFEST_KEY) or {}
    title = f"Price prediction dataset (pricecurate, recipe {rules.label})"
    where_quarantined = f"; see `{folder}quarantine/` and `manifest.json`" if quarantined else ""
    return f"""---
configs:
- config_name: default
  data_files:
{data_files}
dataset_info:
  features:
  - name: text
    dtype: string
  - name: price
    dtype: float64
  - name: category
    dtype: string
  - name: parent_asin
    dtype: string
  - name: title
    dtype: string
  - name: token_count
    dtype: int32
task_categories:
- text-generation
language:
- en
size_categories:
- {_size_category(rows)}
tags:
- price-prediction
- amazon-reviews-2023
pretty_name: {_yaml_text(title)}
source_datasets:
- {source.REPO}
{_terms_metadata(terms)}---
{CARD_MARK}

# {title}

Built by pricecurate from Amazon Reviews 2023 product metadata ({len(manifest['input']['files'])} input files,
{accounting['lines']:,} records read). Each train row's `text` is a prompt that asks
"{rules.question}" about one product and ends with `{rules.price_prefix}<dollars>.00`; test rows end at
`{rules.price_prefix}` so a model completes the price. Token counts use the `{manifest['tokenizer']['name']}` tokenizer
(sha256 `{manifest['tokenizer']['sha256'][:16]}`).

## Recipe

{_recipe_words(rules)}

## Splits

| split | rows |
|---|---|
""" + "\n".join(f"| {name} | {splits[name]:,} |" for name in names) + f"""
{scaled}
Balancing: whole-dollar price slots ${low:,}–${high:,}; slots of ${config['balance']['keep_all_from']} and above keep every
item, smaller slots with more than {config['balance']['slot_cap']:,} items keep a weighted draw of
{config['balance']['slot_cap']:,} (category weights: default {config['balance']['default_weight']:g},
{', '.join(f'{k} {v:g}' for k, v in sorted(config['balance']['weights'].items())) or 'no overrides'}).
Deduplication: {_dedup_words(manifest)}. Seed: {config['seed']}.
{_leakage_words(manifest)}{_baseline_words(manifest)}
## Per category

| category | kept | {' | '.join(names)} |
|---|---|{'---|' * len(names)}
{per_category}

## Records dropped by the recipe

| reason | records |
|---|---|
{dropped}

Quarantined (unreadable) lines: {quarantined:,}{where_quarantined}.
{_source_words(manifest, terms)}{_loading_words(folder, names)}"""
