"""A big corpus recombined from the real records in ../shared, in the full dataset's category proportions.

The bench's synthetic records have short, regular texts, so what the job keeps of them, and what each kept item
weighs, is not what it keeps of real data. The shared real records are too few (about 12,600) to time a run on,
so this module builds N records out of their parts, drawn with a seeded RNG:

- the fields that give a line its shape and weight (main category, ratings, images, videos, store, categories,
  bought together) from one real record, with a title joining the first half of its title to the second half
  of another's;
- description and features lists shaped like a third record's (as many entries, each as long), filled with real
  sentences and feature bullets drawn one by one;
- the details object of a fourth record, and a real price value, or none for half of the records as in the full
  dataset; a record with a price takes its text shape from a record with one (those carry more text);
- a fresh ``parent_asin``, "R" and nine digits, unique over the corpus.

Why not whole real titles and texts: at a million records each would appear about 80 times, so exact and near
deduplication would drop most items; recombined, two records share a title or most of a text no more often than
by chance. The duplicates that matter are planted instead: about 3% of the records copy a recent record of
their file with two neighbouring words swapped in its title and two in its text, about the share of near-twins
on the real records (the bench plants the same share, ``devtools.bench.inputs``).

    PYTHONPATH=. .venv/bin/python -m devtools.real_corpus DEST --records N [--seed S] [--jobs J]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.corpus import category_path, scaled_counts, written_files

REPO = Path(__file__).resolve().parent.parent
SOURCE_SETS = ("real", "converted")
# The 2023 records are few (709) but carry a 2023 line's full weight (images, videos) and its wording; the
# converted older records most of the text and prices. Half the parts from each keeps lines near 1-2 KB.
REAL_SHARE = 0.5
NULL_PRICE_SHARE = 0.5
NEAR_DUPLICATE_SHARE = 0.03
# Near-duplicates copy one of the last RECENT records of their file: memory stays flat at any N, and
# distance in the file does not matter to the job (its deduplication shuffles by key).
RECENT = 4096
SWAP_WITHIN_WORDS = 60  # the prompt keeps about the first 150 tokens: a swap past that would change nothing
MAX_UNIT_CHARS = 200  # longer sentences are cut into pieces, so no single piece makes up most of a text
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MARKER_KIND = "real-recombined"
MARKER_VERSION = 1


def shared_dir() -> Path:
    """``$PRICECURATE_SHARED`` or ``../shared`` beside the repository, as the tests find it."""
    return Path(os.environ.get("PRICECURATE_SHARED", REPO.parent / "shared"))


# ---------------------------------------------------------------- the parts


def text_units(text: str) -> list[str]:
    """``text`` cut into sentences, and sentences longer than ``MAX_UNIT_CHARS`` into pieces at word breaks."""
    units = []
    for sentence in SENTENCE_END.split(text.strip()):
        piece: list[str] = []
        for word in sentence.split():
            if piece and sum(map(len, piece)) + len(piece) + len(word) > MAX_UNIT_CHARS:
                units.append(" ".join(piece))
                piece = []
            piece.append(word)
        if piece:
            units.append(" ".join(piece))
    return units


def _fragment(record: dict, keys: tuple[str, ...]) -> str:
    return "".join(f"{json.dumps(key)}: {json.dumps(record.get(key), ensure_ascii=False)}, " for key in keys)


@dataclass(frozen=True)
class Donor:
    """One real record and the fragments a line copies from it as they are (serialized once: joining is cheap)."""

    record: dict
    media: str  # images, videos, store, categories
    details: str
    tail: str  # bought_together and the closing brace


def make_donor(record: dict) -> Donor:
    return Donor(record=record,
                 media=_fragment(record, ("images", "videos", "store", "categories")),
                 details=_fragment(record, ("details",)),
                 tail=f'"bought_together": {json.dumps(record.get("bought_together"), ensure_ascii=False)}}}')


def has_price(record: dict) -> bool:
    return isinstance(record.get("price"), int | float)


@dataclass(frozen=True)
class SourceSet:
    """What one shared set gives: donors, text shapes with and without a price, title halves, text units."""

    donors: list[Donor]
    shapes: dict[bool, list[dict]]  # by has_price
    prices: list[str]
    title_starts: list[list[str]]
    title_ends: list[list[str]]
    units: dict[str, list[str]]  # "description" and "features"


def title_halves(titles: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """The first half (rounded up) and the rest of each title's words; an empty rest is left out."""
    words = [title.split() for title in titles if title.strip()]
    starts = [each[: (len(each) + 1) // 2] for each in words]
    ends = [each[(len(each) + 1) // 2:] for each in words if len(each) > 1]
    return starts, ends


def unique_units(records: list[dict], key: str) -> list[str]:
    """The distinct text units of every entry of ``key``, in first-seen order (so the draws are reproducible)."""
    return list(dict.fromkeys(unit for record in records for entry in record.get(key) or []
                              for unit in text_units(entry)))


def make_source_set(records: list[dict]) -> SourceSet:
    starts, ends = title_halves([record.get("title") or "" for record in records])
    return SourceSet(
        donors=[make_donor(record) for record in records],
        shapes={priced: [r for r in records if has_price(r) == priced] for priced in (True, False)},
        prices=[json.dumps(record["price"]) for record in records if has_price(record)],
        title_starts=starts, title_ends=ends,
        units={key: unique_units(records, key) for key in ("description", "features")},
    )


def read_source_set(folder: Path) -> list[dict]:
    """The records of one shared set, in file-name order (the order the draws depend on)."""
    records = []
    for path in sorted(folder.glob("meta_*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    if not records:
        raise FileNotFoundError(f"no records in {folder}")
    return records


@functools.cache
def load_sources(shared: str) -> dict[str, SourceSet]:
    """Every shared set's parts, once per process."""
    return {name: make_source_set(read_source_set(Path(shared) / "data" / name)) for name in SOURCE_SETS}


def source_counts(shared: Path) -> dict[str, int]:
    """Records per shared set: the marker holds them, so a changed shared folder means a new corpus."""
    return {name: len(source.donors) for name, source in load_sources(str(shared)).items()}


class Draws:
    """One category file's RNG, and the parts drawn with it: each part from the 2023 records with REAL_SHARE."""

    def __init__(self, sources: dict[str, SourceSet], seed: int, category: str):
        self.sources = sources
        self.rng = random.Random(f"real-corpus:{seed}:{category}")

    def source(self) -> SourceSet:
        return self.sources[SOURCE_SETS[0] if self.rng.random() < REAL_SHARE else SOURCE_SETS[1]]

    def donor(self) -> Donor:
        return self.rng.choice(self.source().donors)

    def priced(self) -> bool:
        return self.rng.random() >= NULL_PRICE_SHARE

    def price(self, priced: bool) -> str:
        return self.rng.choice(self.source().prices) if priced else "null"

    def title(self) -> str:
        start = self.rng.choice(self.source().title_starts)
        return " ".join(start + self.rng.choice(self.source().title_ends))

    def entry(self, key: str, length: int) -> str:
        """Real units of ``key`` joined up to ``length`` characters, the last one cut at a word break."""
        units: list[str] = []
        while sum(map(len, units)) + len(units) - 1 < length:
            units.append(self.rng.choice(self.source().units[key]))
        text = " ".join(units)
        cut = text.rfind(" ", 0, length + 1)
        return text[:cut] if cut > 0 else text

    def texts(self, priced: bool) -> dict[str, list[str]]:
        """Description and features shaped like a real record's (with a price or without, as this one)."""
        shape = self.rng.choice(self.source().shapes[priced])
        return {key: [self.entry(key, len(entry)) for entry in shape.get(key) or [] if entry.strip()]
                for key in ("features", "description")}


# ---------------------------------------------------------------- one record


@dataclass(frozen=True)
class Product:
    """A record's drawn parts but its price and asin; a near-duplicate is another record's, a little changed."""

    look: Donor  # main category, ratings, media and bought_together come from it
    title: str
    texts: dict[str, list[str]]
    details: Donor
    priced: bool  # a near-twin has a price when its original has one (a price of its own)


def draw_product(draws: Draws) -> Product:
    priced = draws.priced()
    return Product(draws.donor(), draws.title(), draws.texts(priced), draws.donor(), priced)


def swap_neighbours(text: str, rng: random.Random) -> str | None:
    """``text`` with two different neighbouring words among the first ones swapped; None when it has none."""
    words = text.split(" ")
    positions = [i for i in range(min(len(words), SWAP_WITHIN_WORDS) - 1) if words[i] != words[i + 1]]
    if not positions:
        return None
    at = rng.choice(positions)
    words[at], words[at + 1] = words[at + 1], words[at]
    return " ".join(words)


def swapped_in_list(texts: list[str], rng: random.Random) -> list[str] | None:
    """The list with a swap in its first entry that allows one; None when none does."""
    for index, text in enumerate(texts):
        changed = swap_neighbours(text, rng)
        if changed is not None:
            return [*texts[:index], changed, *texts[index + 1:]]
    return None


def near_twin(product: Product, rng: random.Random) -> Product:
    """``product`` with a swap in its title (so exact title dedup does not take it: near dedup has to) and one in
    its description, else its features (the start of the item's text after the title)."""
    title = swap_neighbours(product.title, rng) or product.title
    texts = product.texts
    for key in ("description", "features"):
        changed = swapped_in_list(texts[key], rng)
        if changed is not None:
            texts = {**texts, key: changed}
            break
    return Product(product.look, title, texts, product.details, product.priced)


def record_line(product: Product, price: str, asin: str) -> str:
    """One JSON line with the 2023 dataset's keys in its order."""
    look = product.look.record
    head = _fragment({**look, "title": product.title}, ("main_category", "title", "average_rating", "rating_number"))
    return (f"{{{head}{_fragment(product.texts, ('features', 'description'))}\"price\": {price}, "
            f"{product.look.media}{product.details.details}\"parent_asin\": \"{asin}\", {product.look.tail}\n")


def asin(index: int) -> str:
    return f"R{index:09d}"


# ---------------------------------------------------------------- files


def category_lines(category: str, count: int, first_index: int, seed: int,
                   sources: dict[str, SourceSet]) -> Iterator[str]:
    """The lines of one category file; they depend only on (category, count, first_index, seed, sources)."""
    draws = Draws(sources, seed, category)
    recent: deque[Product] = deque(maxlen=RECENT)
    for offset in range(count):
        if recent and draws.rng.random() < NEAR_DUPLICATE_SHARE:
            product = near_twin(draws.rng.choice(recent), draws.rng)
        else:
            product = draw_product(draws)
            recent.append(product)
        yield record_line(product, draws.price(product.priced), asin(first_index + offset))


def _write_category(task: tuple[str, str, str, int, int, int]) -> str:
    dest, shared, category, count, first_index, seed = task
    path = category_path(Path(dest), category)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(category_lines(category, count, first_index, seed, load_sources(shared)))
    return str(path)


def first_indexes(counts: dict[str, int]) -> dict[str, int]:
    """Where each category's asins start: categories in ``pricecurate.rules.categories.CATEGORIES`` order."""
    from pricecurate.rules.categories import CATEGORIES

    starts, total = {}, 0
    for category in CATEGORIES:
        starts[category] = total
        total += counts[category]
    return starts


def write_real_corpus(dest: str | Path, records: int, seed: int = 0, jobs: int = 2,
                      shared: Path | None = None) -> list[Path]:
    """One ``meta_<Category>.jsonl`` per category, ``scaled_counts(records)`` lines in all, whatever ``jobs`` is."""
    dest, shared = Path(dest), Path(shared or shared_dir())
    dest.mkdir(parents=True, exist_ok=True)
    counts = scaled_counts(records)
    starts = first_indexes(counts)
    # Biggest first, so the processes finish about together.
    tasks = [(str(dest), str(shared), name, count, starts[name], seed)
             for name, count in sorted(counts.items(), key=lambda item: -item[1])]
    load_sources(str(shared))  # read here once: forked workers inherit it
    return written_files(_write_category, tasks, jobs)


def marker_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".done.json")


def ensure_real_corpus(dest: str | Path, records: int, seed: int = 0, jobs: int = 2,
                       shared: Path | None = None) -> Path:
    """``write_real_corpus`` unless ``dest`` already holds that corpus.

    The marker beside ``dest`` is written last: a folder left half-written by a killed run has none and is
    written anew, as is one made with other counts, seed or shared records.
    """
    dest, shared = Path(dest), Path(shared or shared_dir())
    marker = marker_path(dest)
    wanted = {"kind": MARKER_KIND, "version": MARKER_VERSION, "records": records, "seed": seed,
              "sources": source_counts(shared)}
    if dest.is_dir() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return dest
    marker.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    write_real_corpus(dest, records, seed=seed, jobs=jobs, shared=shared)
    marker.write_text(json.dumps(wanted))
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="folder for the meta_<Category>.jsonl files")
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="processes writing files (default: %(default)s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ensure_real_corpus(args.dest, args.records, seed=args.seed, jobs=args.jobs)
    size = sum(path.stat().st_size for path in args.dest.glob("meta_*.jsonl"))
    print(f"{args.records:,} records, {size / 2**20:,.1f} MiB in {args.dest} "
          f"({time.perf_counter() - started:.1f}s; an existing complete corpus is reused)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
