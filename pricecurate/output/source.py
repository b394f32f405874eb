"""The source dataset: where its files and its card are, how to cite it, and the terms its own card states.

``pricecurate download`` saves the source's dataset card beside the raw files as ``SOURCE_CARD``
(``output.hub``). A run that finds it in its input folder records ``read_terms`` of it in the manifest under
``MANIFEST_KEY``, and the data card repeats those terms. Nothing here names a licence of its own: a manifest
without them gets a card that says the source's terms apply and where to read them.
"""

from __future__ import annotations

import re

import yaml

from pricecurate.output.layout import FileSystem, read_text

REPO = "McAuley-Lab/Amazon-Reviews-2023"
RAW_FOLDER = "raw/meta_categories"  # the folder of the repository that holds meta_<Category>.jsonl
PAGE = f"https://huggingface.co/datasets/{REPO}"
SOURCE_CARD = "SOURCE_CARD.md"  # the source's README.md, as download saves it beside the raw files
MANIFEST_KEY = "source"
TERMS_KEYS = ("license", "license_name", "license_link")  # the Hub's card metadata for a licence

PAPER = "Hou et al., 2024, \"Bridging Language and Items for Retrieval and Recommendation\", arXiv:2403.03952"
ARXIV = "2403.03952"
# No url field: the report shows this block and links nowhere (it is read offline).
CITATION = """@misc{hou2024bridging,
  title         = {Bridging Language and Items for Retrieval and Recommendation},
  author        = {Hou, Yupeng and Li, Jiacheng and He, Zhankui and Yan, An and Chen, Xiusi and McAuley, Julian},
  year          = {2024},
  eprint        = {2403.03952},
  archivePrefix = {arXiv}
}"""

# The Hub's own rule for a card's metadata: a YAML block between two "---" lines at the very top.
_FRONT_MATTER = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def source_terms(card_text: str) -> dict:
    """The licence keys a dataset card's YAML front matter states (``license``, ``license_name``,
    ``license_link``), as stated; {} when it has none, or no readable front matter."""
    match = _FRONT_MATTER.match(card_text or "")
    if not match:
        return {}
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    if not isinstance(metadata, dict):
        return {}
    terms = {}
    for key in TERMS_KEYS:
        value = metadata.get(key)
        if key == "license" and isinstance(value, list):  # the Hub allows a list of licences
            names = [_one_line(item) for item in value if isinstance(item, str) and item.strip()]
            if names:
                terms[key] = names
        elif isinstance(value, str) and value.strip():
            terms[key] = _one_line(value)
    return terms


def _one_line(text: str) -> str:
    """The text with its whitespace runs as single spaces: a folded YAML string stays one line in the data card."""
    return " ".join(text.split())


def read_terms(fs: FileSystem, input_uri: str) -> dict:
    """``source_terms`` of the input folder's ``SOURCE_CARD``; {} when the folder has none."""
    return source_terms(read_text(fs, f"{input_uri.rstrip('/')}/{SOURCE_CARD}") or "")
