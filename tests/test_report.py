"""The HTML report: numbers agree with the manifest and the parquet, and the page is self-contained.

The output directory is written by hand with pyarrow (no Spark), so these tests take seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pricecurate.report.build import write_report

QUESTION = "How much does this cost to the nearest dollar?"
PNGS = ("token_counts", "prices", "categories", "funnel", "price_vs_tokens")
SCHEMA = pa.schema([
    ("text", pa.string()), ("price", pa.float64()), ("category", pa.string()),
    ("parent_asin", pa.string()), ("title", pa.string()), ("token_count", pa.int32()),
])

# (category, asin, title, description, price, token_count)
ITEMS = [
    ("Toys_and_Games", "B000TOY001", "Wooden Train Set", "A 52-piece beech wood railway with a bridge.", 34.99, 171),
    ("Toys_and_Games", "B000TOY002", "Puzzle <b>1000</b> & more", "Landscape jigsaw puzzle, 1000 pieces.", 12.49, 165),
    ("Toys_and_Games", "B000TOY003", "Kite", "Delta kite with 30 m line and a carry bag.", 19.0, 160),
    ("Toys_and_Games", "B000TOY004", "Yo-yo", "Ball-bearing yo-yo for tricks.", 4.5, 150),
    ("Appliances", "B000APP001", "Toaster", "Two-slice toaster with defrost setting.", 29.95, 177),
    ("Appliances", "B000APP002", "Kettle", "1.7 l stainless steel kettle, auto shut-off.", 45.0, 176),
    ("Appliances", "B000APP003", "Blender", "Glass jug blender, 600 W, three speeds.", 44.6, 172),
]
SPLITS = {"train": ["B000TOY001", "B000TOY003", "B000APP001"], "test": ["B000TOY002", "B000APP002"]}
# What balancing kept, as today's manifest counts it: the split rows, the yo-yo in no split; the blender shares
# the kettle's $45 slot and was cut.
BALANCED = [*SPLITS["train"], *SPLITS["test"], "B000TOY004"]


def prompt(title: str, description: str, price: float | None) -> str:
    ending = f"Price is ${round(price):.2f}" if price is not None else "Price is $"
    return f"{QUESTION}\n\n{title}\n{description}\n\n{ending}"


def write_split(root: Path, split: str, rows: list[tuple], files_per_category: int = 1) -> None:
    for category in sorted({row[0] for row in rows}):
        mine = [row for row in rows if row[0] == category]
        directory = root / split / f"category={category}"
        directory.mkdir(parents=True)
        for part in range(files_per_category):  # several part files, as Spark writes them
            chunk = mine[part::files_per_category]
            table = pa.table({
                # Test prompts stop at "Price is $"; training prompts carry the rounded price.
                "text": [prompt(t, d, None if split == "test" else p) for _, _, t, d, p, _ in chunk],
                "price": [p for *_, p, _ in chunk],
                "category": [c for c, *_ in chunk],
                "parent_asin": [a for _, a, *_ in chunk],
                "title": [t for _, _, t, *_ in chunk],
                "token_count": [n for *_, n in chunk],
            }, schema=SCHEMA)
            pq.write_table(table, directory / f"part-{part:05d}.snappy.parquet")


def entry(lines: int, kept: int, dropped: dict, quarantined: dict | None = None) -> dict:
    return {"lines": lines, "kept": kept, "dropped": dropped, "quarantined": quarantined or {}}


def build_manifest(kept_by_category: dict[str, int], split_sizes: dict[str, dict[str, int]],
                   balanced: list[tuple] = ()) -> dict:
    """A manifest of today's meaning: ``balanced`` (rows of ITEMS) is every item balancing kept, in a split or not."""
    by_category = {
        "Appliances": entry(5 + kept_by_category.get("Appliances", 0), kept_by_category.get("Appliances", 0),
                            {"no_price": 3, "too_few_tokens": 2}),
        "Baby_Products": entry(4, 0, {"too_few_chars": 3}, {"bad_json": 1}),
        "Toys_and_Games": entry(7 + kept_by_category.get("Toys_and_Games", 0),
                                kept_by_category.get("Toys_and_Games", 0),
                                {"no_price": 5, "price_out_of_range": 1, "too_few_chars": 1}),
    }
    dropped: dict[str, int] = {}
    for counts in by_category.values():
        for reason, n in counts["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
    train = sum(s.get("train", 0) for s in split_sizes.values())
    test = sum(s.get("test", 0) for s in split_sizes.values())
    categories = {
        c: {"lines": v["lines"], "kept": v["kept"], "balanced": sum(row[0] == c for row in balanced),
            "train": split_sizes.get(c, {}).get("train", 0), "test": split_sizes.get(c, {}).get("test", 0),
            "validation": 0}
        for c, v in by_category.items()
    }
    slots = Counter(round(row[4]) for row in balanced)
    return {
        "recipe": "course-2024",
        "created": "2025-01-01T00:00:00+00:00",
        "config": {"recipe": "course-2024", "seed": 42},
        "tokenizer": {"name": "llama-3.1-8b", "sha256": "0" * 64},
        "accounting": {
            "lines": sum(v["lines"] for v in by_category.values()),
            "kept": sum(v["kept"] for v in by_category.values()),
            "dropped": dict(sorted(dropped.items())),
            "quarantined": {"bad_json": 1},
            "files": {f"meta_{c}.jsonl": v for c, v in by_category.items()},
            "categories": by_category,
        },
        "balanced": len(balanced),
        "balanced_by_price_slot": {str(slot): slots[slot] for slot in sorted(slots)},
        "splits": {"sizes": {"train": train, "test": test, "validation": 0},
                   "requested": {"train": train, "test": test, "validation": 0}, "available": train + test,
                   "scaled": False},
        "categories": categories,
    }


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "out"
    root.mkdir()
    write_split(root, "items", ITEMS, files_per_category=2)
    for split, asins in SPLITS.items():
        write_split(root, split, [row for row in ITEMS if row[1] in asins])
    kept = {c: sum(row[0] == c for row in ITEMS) for c in ("Toys_and_Games", "Appliances")}
    sizes = {c: {s: sum(row[0] == c and row[1] in a for row in ITEMS) for s, a in SPLITS.items()} for c in kept}
    balanced = [row for row in ITEMS if row[1] in BALANCED]
    (root / "manifest.json").write_text(json.dumps(build_manifest(kept, sizes, balanced)), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def report(output) -> Path:
    return write_report(output)


def read_rows(root: Path, split: str) -> list[dict]:
    return [row for path in sorted(root.glob(f"{split}/*/*.parquet")) for row in pq.read_table(path).to_pylist()]


class Tags(HTMLParser):
    """Every start tag with its attributes, and the cell texts of each table by id."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def assert_self_contained(tags: Tags) -> None:
    images = [attributes for tag, attributes in tags.tags if tag == "img"]
    assert len(images) == len(PNGS)
    assert all(image["src"].startswith("data:image/png;base64,") for image in images)
    links = [value for _, attributes in tags.tags for name, value in attributes.items() if name in ("src", "href")]
    assert all(link.startswith(("data:", "#")) for link in links), [link[:60] for link in links]
    assert not [tag for tag, _ in tags.tags if tag in ("script", "link", "iframe")]


def test_report_files_exist(report, output):
    assert report == output / "report" / "report.html"
    for name in PNGS:
        png = output / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (output / "report" / "report.json").is_file()


def test_numbers_agree_with_manifest_and_parquet(report, output):
    numbers = json.loads((output / "report" / "report.json").read_text())
    manifest = json.loads((output / "manifest.json").read_text())
    items = read_rows(output, "items")
    tokens = [row["token_count"] for row in items]

    assert numbers["items"] == len(items) == manifest["accounting"]["kept"]
    assert numbers["token_count_mean"] == pytest.approx(sum(tokens) / len(tokens))
    assert numbers["token_count_max"] == max(tokens)
    for split in ("train", "test"):
        assert numbers[split] == len(read_rows(output, split)) == manifest["splits"]["sizes"][split]
    assert numbers["validation"] == 0  # no validation/ directory: skipped, not an error
    # Every balanced item, the one in no split too; not the kept items, not only the split rows.
    assert numbers["after_balancing_rows"] == len(BALANCED) == manifest["balanced"]
    assert numbers["items"] > numbers["after_balancing_rows"] > numbers["train"] + numbers["test"]
    balanced_slots = [round(row[4]) for row in ITEMS if row[1] in BALANCED]  # $1 slots: Python's rounding
    assert numbers["price_mean_after"] == pytest.approx(sum(balanced_slots) / len(balanced_slots))
    assert numbers["price_mean_before"] == pytest.approx(sum(row[4] for row in ITEMS) / len(ITEMS))
    assert numbers["lines"] == manifest["accounting"]["lines"]
    assert numbers["dropped"] == manifest["accounting"]["dropped"]
    assert numbers["quarantined"] == manifest["accounting"]["quarantined"]
    assert numbers["balanced"] == manifest["balanced"]
    assert numbers["tokenizer"] == "llama-3.1-8b"
    for category, counts in manifest["categories"].items():
        shown = numbers["per_category"][category]
        assert {k: shown[k] for k in counts} == counts
        assert shown["dropped"] == manifest["accounting"]["categories"][category]["dropped"]
        assert numbers["rows_by_category"].get(category, {}).get("items", 0) == counts["kept"]
    assert numbers["per_category"]["Baby_Products"]["quarantined"] == 1


def test_samples_are_first_prompts_in_text_order(report, output):
    numbers = json.loads((output / "report" / "report.json").read_text())
    for split in ("train", "test"):
        expected = sorted(row["text"] for row in read_rows(output, split))[:3]
        assert numbers["samples"][split] == expected
    assert all(text.endswith("Price is $") for text in numbers["samples"]["test"])


def test_html_shows_tables_and_escaped_prompts(report, output):
    text = report.read_text(encoding="utf-8")
    tags = parse(text)
    manifest = json.loads((output / "manifest.json").read_text())

    funnel = tags.tables["funnel-table"]
    assert funnel[0] == ["category", "lines", "dropped", "quarantined", "kept", "balanced", "train", "test"]
    assert funnel[1] == ["no_price", "price_out_of_range", "too_few_chars", "too_few_tokens"]
    rows = {row[0]: row[1:] for row in funnel[2:]}
    toys = manifest["categories"]["Toys_and_Games"]
    assert rows["Toys_and_Games"] == [str(x) for x in (toys["lines"], 5, 1, 1, 0, 0, toys["kept"], toys["balanced"],
                                                       toys["train"], toys["test"])]
    assert rows["Baby_Products"] == ["4", "0", "0", "3", "0", "1", "0", "0", "0", "0"]
    assert rows["total"][0] == str(manifest["accounting"]["lines"])

    summary = dict(tags.tables["summary-table"])
    assert summary["Records read"] == str(manifest["accounting"]["lines"])
    assert summary["Kept"] == "7" and summary["After balancing"] == "6"
    assert summary["Train"] == "3" and summary["Test"] == "2"
    assert summary["Dropped: no_price"] == "8" and summary["Quarantined: bad_json"] == "1"
    assert summary["Tokenizer"] == "llama-3.1-8b"

    # The source, its terms (none recorded in this manifest: none named) and its citation.
    source = re.search(r"<p id='source-data'>(.*?)</p>", text).group(1)
    assert "McAuley-Lab/Amazon-Reviews-2023" in source and "raw/meta_categories" in source
    assert "no licence was recorded" in source and "terms apply" in source
    assert "@misc{hou2024bridging," in text and "eprint        = {2403.03952}" in text
    assert "Puzzle &lt;b&gt;1000&lt;/b&gt; &amp; more" in text  # prompts are escaped, not rendered
    assert "<b>1000</b>" not in text
    assert_self_contained(tags)
    assert "http://" not in text and "https://" not in text


def test_output_without_items(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    manifest = build_manifest({}, {})
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    page = write_report(root)

    numbers = json.loads((root / "report" / "report.json").read_text())
    assert numbers["items"] == numbers["train"] == numbers["test"] == 0
    assert numbers["token_count_mean"] is None and numbers["samples"] == {"train": [], "test": []}
    assert all((root / "report" / f"{name}.png").stat().st_size > 0 for name in PNGS)
    assert "no items" in page.read_text(encoding="utf-8")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri(), profile=tmp_path / "p1")
    assert shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50  # None: more colours than counted, certainly not blank
    assert pixels.size == (1200, 3000)

    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    tags = parse(dom.stdout)
    assert_self_contained(tags)
    assert not re.search(r"https?://", dom.stdout)
    # The source and its citation, as Chromium laid them out.
    assert re.search(r"id=\"source-data\">The product metadata of McAuley-Lab/Amazon-Reviews-2023 ", dom.stdout)
    assert "Hou, Yupeng and Li, Jiacheng and He, Zhankui and Yan, An and Chen, Xiusi and McAuley, Julian" in dom.stdout
    # The titles drawn in the price plot, as the page Chromium built gives them: dollar signs and all.
    [prices] = [a["alt"] for tag, a in tags.tags if tag == "img" and a["alt"].startswith("Before balancing")]
    assert f"every balanced item, at its $1 price slot: {len(BALANCED)} items, mean $" in prices, prices


def drawn_texts(fig) -> list[str]:
    """Every text the figure draws, as the SVG renderer lays it out with its glyphs kept as text: a title
    matplotlib sets as math comes out in pieces, its dollar signs gone."""
    import matplotlib

    svg = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(svg, format="svg")
    return ["".join(node.itertext()) for node in ET.fromstring(svg.getvalue()).iter("{http://www.w3.org/2000/svg}text")]


def test_price_plot_titles_say_what_is_drawn_with_literal_dollar_signs(output):
    from pricecurate.report.data import balanced_rows
    from pricecurate.report.data import read_rows as rows_of
    from pricecurate.report.plots import price_histograms

    manifest = json.loads((output / "manifest.json").read_text())
    after = balanced_rows(manifest, {})
    drawn = drawn_texts(price_histograms(rows_of(output, "items"), after))
    kept_mean = sum(row[4] for row in ITEMS) / len(ITEMS)
    slot_mean = sum(round(row[4]) for row in ITEMS if row[1] in BALANCED) / len(BALANCED)
    assert f"Before balancing: every kept item (items/): {len(ITEMS)} items, mean ${kept_mean:,.2f}" in drawn, drawn
    assert (f"After balancing: every balanced item, at its $1 price slot: {len(BALANCED)} items, "
            f"mean ${slot_mean:,.2f}") in drawn, drawn
    assert "price ($)" in drawn and not [text for text in drawn if "\\" in text]


def test_an_earlier_manifest_plots_the_split_rows_and_says_so(output):
    """Before balanced_by_price_slot the manifest held no balanced prices: the split rows stand in, and the
    plot's title names them."""
    from pricecurate.report.data import balanced_rows
    from pricecurate.report.data import read_rows as rows_of
    from pricecurate.report.plots import price_histograms

    splits = {split: rows_of(output, split) for split in ("train", "test")}
    after = balanced_rows({}, splits)
    assert sorted(after.price) == sorted(row[4] for row in ITEMS if row[1] in SPLITS["train"] + SPLITS["test"])
    drawn = drawn_texts(price_histograms(rows_of(output, "items"), after))
    assert any(text.startswith("After balancing: the rows of train + validation + test: 5 items, mean $")
               for text in drawn), drawn


def test_the_balanced_histogram_holds_items_in_no_split():
    """A manifest with the balanced set's slots: every balanced item counts, in a split or not."""
    from pricecurate.report.data import balanced_rows

    rows = balanced_rows({"balanced_by_price_slot": {"12": 3, "450": 2}}, {})
    assert sorted(rows.price.tolist()) == [12.0, 12.0, 12.0, 450.0, 450.0]


def test_the_page_states_the_source_terms_the_manifest_records_without_a_link(tmp_path):
    """Terms read from the source's card (``source`` in the manifest) are shown; their link is left to the card."""
    from pricecurate.report.html import render_page

    manifest = build_manifest({}, {}) | {"source": {"license": "other", "license_name": "example-terms",
                                                    "license_link": "https://example.org/terms"}}
    page = render_page(manifest, {"lines": 0, "kept": 0, "dropped": {}, "quarantined": {}, "balanced": 0,
                                  "splits": {}, "tokenizer": None, "per_category": {},
                                  "samples": {"train": [], "test": []}},
                       {name: b"" for name in PNGS})
    source = re.search(r"<p id='source-data'>(.*?)</p>", page).group(1)
    assert 'licence as &quot;other&quot; (example-terms)' in source and "no licence" not in source
    assert "example.org" not in page


@pytest.mark.parametrize("terms, card, page", [
    ({}, "no licence was recorded with this run, so none is named here; this dataset is derived from the source, so "
         "the source's terms apply to it: read them on the source's dataset page, https://hub.example/src",
     "read them on the source's dataset page on the Hugging Face Hub"),
    ({"license": ["mit", "cc-by-4.0"]}, 'states its licence as "mit", "cc-by-4.0";', 'as "mit", "cc-by-4.0";'),
    ({"license_name": "example-terms"}, "states its licence as (example-terms);", "as (example-terms);"),
    ({"license_link": "https://example.org/t"}, "links its terms (https://example.org/t)",
     "links its terms (the data card, README.md, shows the link)"),
])
def test_the_terms_in_words_for_the_card_and_for_the_page(terms, card, page):
    from pricecurate.report.sections import terms_words

    assert card in terms_words(terms, "https://hub.example/src")
    assert page in terms_words(terms) and "http" not in terms_words(terms)


def _titled(title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().set_title(title)
    return fig


@pytest.mark.skipif(sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="draws in one process")
def test_figures_are_drawn_in_forked_workers_with_the_same_pngs_as_in_process(tmp_path, monkeypatch):
    import pricecurate.report.build as build

    makers = {name: (lambda name=name: _titled(f"{name} drawn by {os.getpid()}")) for name in ("b", "a", "funnel")}
    (tmp_path / "forked").mkdir()
    (tmp_path / "here").mkdir()
    pngs, alts = build.draw_figures(makers, tmp_path / "forked")
    assert list(pngs) == list(alts) == ["b", "a", "funnel"]  # the makers' order, whatever order they were drawn in
    drawers = {int(alt.rsplit(" ", 1)[1]) for alt in alts.values()}
    assert os.getpid() not in drawers
    assert not build._TO_DRAW  # nothing kept alive after drawing

    monkeypatch.setattr(build, "_drawing_workers", lambda figures: 1)
    here_pngs, here_alts = build.draw_figures(makers, tmp_path / "here")
    assert here_alts == {name: f"{name} drawn by {os.getpid()}" for name in makers}
    # Same pixels but for the drawer's pid in the title: redraw the forked figures' titles here to compare.
    for name, alt in alts.items():
        assert pngs[name] == (tmp_path / "forked" / f"{name}.png").read_bytes()
        assert pngs[name] == build.save_png(_titled(alt), tmp_path / f"again-{name}.png")


def test_a_figure_that_fails_to_draw_fails_the_report(tmp_path):
    import pricecurate.report.build as build

    def broken():
        raise ValueError("no prices to draw")

    with pytest.raises(ValueError, match="no prices to draw"):
        build.draw_figures({"token_counts": lambda: _titled("fine"), "prices": broken}, tmp_path)
    assert not build._TO_DRAW
