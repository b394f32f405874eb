"""The data card a Hub user meets, read with huggingface_hub's own parser, and the terminal of a quiet run.

One small run of the command, in a subprocess while another program holds Spark's UI port (4040): what it
prints, and the card it writes. The other tests render cards from that run's manifest, without Spark.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys

import pytest
from conftest import REPO

from pricecurate.output import source
from pricecurate.output.layout import CARD_MARK
from pricecurate.output.source import CITATION, PAGE, source_terms
from pricecurate.report.card import render
from pricecurate.sample import write_sample

huggingface_hub = pytest.importorskip("huggingface_hub")

# A made-up source card: the terms are whatever the source's card says; pricecurate only repeats them.
SOURCE_CARD_TEXT = """---
license: other
license_name: example-terms
license_link: https://example.org/terms
language:
- en
pretty_name: A source dataset
---
# A source dataset

Terms below.
"""


@contextlib.contextmanager
def ui_port_taken():
    """A port held by this process for the duration, given to the run as its UI port: as when another Spark holds
    4040 (the default), Spark cannot bind it and says so. Held here, it cannot be released mid-run by another."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """(output folder, the finished process, the run's log) of `pricecurate run --quiet` on 5 records a category."""
    root = tmp_path_factory.mktemp("quiet")
    write_sample(root / "in", records_per_category=5)
    (root / "in" / source.SOURCE_CARD).write_text(SOURCE_CARD_TEXT, encoding="utf-8")  # as `download` saves it
    with ui_port_taken() as port:
        done = subprocess.run([sys.executable, "-m", "pricecurate.cli.main", "run", "--quiet", "--input",
                               str(root / "in"), "--output", str(root / "out"), "--log", str(root / "run.log"),
                               "--set", f"spark.ui.port={port}"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "out", done, (root / "run.log").read_text(encoding="utf-8"), port


def test_a_quiet_run_prints_only_its_own_lines_when_the_ui_port_is_taken(quiet_run):
    _, done, log, port = quiet_run
    ui = re.search(r"Spark UI: http://127\.0\.0\.1:(\d+)", log)
    assert ui and int(ui.group(1)) != port, log  # the port was taken: Spark moved, and the log says where
    out, err = done.stdout.splitlines(), done.stderr.splitlines()
    assert out[0] == "summary" and all(line.startswith("  ") for line in out[1:]), done.stdout
    assert all(line.startswith(("[pricecurate ", "pricecurate: ")) for line in err), done.stderr
    assert "WARN" not in done.stdout + done.stderr and "Utils:" not in done.stdout + done.stderr


def card_of(text: str):
    """The card as the Hub reads it: its metadata through DatasetCardData, which checks the known keys' types."""
    card = huggingface_hub.DatasetCard(text)
    assert isinstance(card.data, huggingface_hub.DatasetCardData)
    return card


def bibtex_of(text: str) -> str:
    [block] = re.findall(r"```bibtex\n(.*?)\n```", text, re.DOTALL)
    return block


def test_the_card_of_a_run_names_its_source_terms_and_citation(quiet_run):
    output, *_ = quiet_run
    text = (output / "README.md").read_text(encoding="utf-8")
    card = card_of(text)
    assert card.data.pretty_name == "Price prediction dataset (pricecurate, recipe course-2024)"
    assert card.data.source_datasets == [source.REPO]
    # The terms the input folder's copy of the source card states, and nothing else.
    assert (card.data.license, card.data.license_name, card.data.license_link) == (
        "other", "example-terms", "https://example.org/terms")
    body = card.text
    section = body[body.index("## Source data"):body.index("## Citation")]
    assert f"[{source.REPO}]({PAGE})" in section and "`raw/meta_categories`" in section
    # Without a source card beside the input, no licence is named and none guessed.
    info = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    assert info["source"] == source_terms(SOURCE_CARD_TEXT)
    bare = card_of(render({**info, "source": {}}))
    assert bare.data.license is None and "no licence was recorded" in bare.text
    assert f"the source's terms apply to it: read them on the source's dataset page, {PAGE}" in bare.text
    citation = bibtex_of(body)
    assert citation == CITATION and "{Bridging Language and Items for Retrieval and Recommendation}" in citation
    assert ("Hou, Yupeng and Li, Jiacheng and He, Zhankui and Yan, An and Chen, Xiusi and McAuley, Julian"
            in citation and "2403.03952" in citation)
    # Everything it said before stays: the mark, the splits' paths, the recipe.
    assert CARD_MARK in text and "## Recipe" in body and "## Splits" in body and "## Per category" in body


def test_the_card_shows_both_ways_to_load_and_no_quarantine_folder_when_none_was_written(quiet_run):
    output, *_ = quiet_run
    info = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    assert sum(info["accounting"]["quarantined"].values()) == 0
    assert not (output / info["data"] / "quarantine").exists()
    text = render(info)
    assert text == (output / "README.md").read_text(encoding="utf-8")
    assert "quarantine/" not in text and "Quarantined (unreadable) lines: 0." in text
    loading = text[text.index("## Loading"):]
    assert (f'load_dataset("parquet", data_files={{"train": "{info["data"]}/train/*/*.parquet", '
            f'"test": "{info["data"]}/test/*/*.parquet"}})') in loading
    assert 'load_dataset("<your-name>/<dataset>")' in loading and "pricecurate push" in loading

    info["accounting"]["quarantined"] = {"invalid_json": 2}  # a run that did write some
    assert f"Quarantined (unreadable) lines: 2; see `{info['data']}/quarantine/`" in render(info)


def test_terms_from_the_source_card_go_into_the_metadata_as_stated(quiet_run):
    """What a run records from the input's SOURCE_CARD.md: the card states it, the Hub's parser reads it back."""
    output, *_ = quiet_run
    info = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    info["source"] = source_terms(SOURCE_CARD_TEXT)
    card = card_of(render(info))
    assert (card.data.license, card.data.license_name, card.data.license_link) == (
        "other", "example-terms", "https://example.org/terms")
    assert card.data.pretty_name.startswith("Price prediction dataset")  # the source's own name is not taken
    assert ('states its licence as "other" (example-terms), terms at https://example.org/terms; this dataset is '
            "derived from the source" in card.text) and "no licence was recorded" not in card.text


@pytest.mark.parametrize("text, expected", [
    (SOURCE_CARD_TEXT, {"license": "other", "license_name": "example-terms", "license_link": "https://example.org/terms"}),
    (SOURCE_CARD_TEXT.replace("\n", "\r\n"), {"license": "other", "license_name": "example-terms",
                                               "license_link": "https://example.org/terms"}),
    ("\ufeff---\nlicense:\n- mit\n- cc-by-4.0\n---\n", {"license": ["mit", "cc-by-4.0"]}),
    ("---\nlanguage: en\n---\n# no licence stated\n", {}),
    ("# no front matter\nlicense: mit\n", {}),
    ("---\nlicense: [unclosed\n---\n", {}),  # YAML that does not parse
    ("---\n- a list\n---\n", {}),
    ("---\nlicense: 3\nlicense_name: ''\n---\n", {}),  # not texts
    ("", {}),
    ("---\nlicense_name: >\n  terms folded\n  over lines\n---\n", {"license_name": "terms folded over lines"}),
])
def test_source_terms_are_the_cards_licence_keys_or_nothing(text, expected):
    assert source_terms(text) == expected
