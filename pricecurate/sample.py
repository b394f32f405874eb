"""Synthetic raw records in the Amazon Reviews 2023 metadata format.

The bundled sample, the balancing tests and the benchmark all need input that
looks like the real dump without shipping any of it. Every word bank and
template below is our own. Output is deterministic: each category draws from
its own ``random.Random`` seeded with the string ``"<seed>:<category>"``, so the
same (category, count, seed) gives the same records in any process, whichever
other categories are generated alongside.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from pricecurate.rules.categories import CATEGORIES

# Per category: the median price in dollars and a few product nouns.
GOODS = {
    "All_Beauty": (14, "nail polish set, hair clip, makeup sponge, face mask, lip balm, eyelash curler"),
    "Amazon_Fashion": (22, "tote bag, knit beanie, silk scarf, leather belt, ankle sock pack, sun hat"),
    "Appliances": (60, "dryer vent hose, water filter, ice maker tray, range hood light, washer drain pump"),
    "Arts_Crafts_and_Sewing": (12, "acrylic paint set, sewing thread kit, sketch pad, glue gun, yarn skein"),
    "Automotive": (30, "brake pad, floor mat, spark plug, seat cover, wiper blade, tail light assembly"),
    "Baby_Products": (25, "swaddle blanket, bottle brush, crib sheet, teething ring, diaper caddy"),
    "Beauty_and_Personal_Care": (16, "hair dryer, shaving brush, body lotion, nail file, curling wand"),
    "Books": (15, "hardcover novel, paperback cookbook, travel guide, picture book, study workbook"),
    "CDs_and_Vinyl": (18, "vinyl record, live concert CD, box set, soundtrack album, remastered LP"),
    "Cell_Phones_and_Accessories": (13, "phone case, screen protector, charging cable, car mount, charger"),
    "Clothing_Shoes_and_Jewelry": (28, "running shoe, hoodie, pendant necklace, denim jacket, hiking boot"),
    "Digital_Music": (9, "album download, single track, live session, studio collection"),
    "Electronics": (40, "bluetooth speaker, HDMI cable, wireless mouse, USB hub, webcam, power bank"),
    "Gift_Cards": (25, "gift card, greeting card bundle, holiday gift tin, digital voucher"),
    "Grocery_and_Gourmet_Food": (12, "green tea sampler, hot sauce, trail mix, olive oil, coffee bean bag"),
    "Handmade_Products": (30, "ceramic mug, woven basket, beaded bracelet, soy candle, wooden sign"),
    "Health_and_Household": (15, "vitamin gummies, pill organizer, laundry pod pack, first aid kit"),
    "Health_and_Personal_Care": (16, "heating pad, knee brace, toothbrush head, thermometer, foot roller"),
    "Home_and_Kitchen": (26, "chef knife, throw pillow cover, storage bin, cutting board, shower curtain"),
    "Industrial_and_Scientific": (35, "lab beaker set, safety glasses, cable tie pack, digital caliper"),
    "Kindle_Store": (5, "ebook novel, short story collection, poetry ebook, self-help guide"),
    "Magazine_Subscriptions": (14, "monthly magazine, quarterly journal, weekly digest"),
    "Movies_and_TV": (15, "DVD movie, Blu-ray box set, documentary series, anime collection"),
    "Musical_Instruments": (45, "guitar string set, drum stick pair, ukulele, microphone stand, capo"),
    "Office_Products": (14, "gel pen pack, desk organizer, label maker, sticky note set, file folder"),
    "Patio_Lawn_and_Garden": (30, "garden hose, bird feeder, planter pot, solar path light, pruning shear"),
    "Pet_Supplies": (18, "dog leash, cat scratcher, pet bed, chew toy, aquarium filter"),
    "Software": (40, "antivirus license, photo editor, tax software, language course"),
    "Sports_and_Outdoors": (28, "yoga mat, camping lantern, water bottle, resistance band set, bike lock"),
    "Subscription_Boxes": (30, "snack box, craft kit box, grooming box, book club box"),
    "Tools_and_Home_Improvement": (32, "cordless drill, socket set, LED bulb, door hinge, stud finder"),
    "Toys_and_Games": (20, "building block set, board game, plush toy, puzzle, remote control car"),
    "Video_Games": (30, "game controller, headset, console skin, charging dock, game cartridge"),
    "Unknown": (20, "replacement part, accessory kit, storage case, multi-purpose tool"),
}

BRAND_STARTS = "Vel Kor Bright Sun Ox Nova Tru Zen Alto Pine Mar Quik Rho Tal Hex".split()
BRAND_ENDS = "tek ora line wise craft haus field mark ly via".split()
ADJECTIVES = ("durable", "compact", "lightweight", "heavy duty", "premium", "portable", "adjustable",
              "waterproof", "soft", "classic", "upgraded", "universal", "ergonomic", "reusable")
MATERIALS = ("stainless steel", "cotton", "silicone", "bamboo", "ABS plastic", "aluminum", "leather",
             "polyester", "glass", "oak wood", "nylon", "ceramic")
COLOURS = ("Black", "White", "Navy Blue", "Grey", "Red", "Forest Green", "Beige", "Rose Gold", "Silver")
SIZES = ("Small", "Medium", "Large", "XL", '12"', "2 Pack", "Pack of 4", "Set of 3", "16 oz")
BENEFITS = ("long-lasting use", "everyday comfort", "easy cleaning", "reliable performance",
            "a secure fit", "quiet operation", "gift giving", "quick setup", "safe daily handling")
ACTIONS = ("holds up to daily use", "stays stable under pressure", "resists scratches and fading",
           "cleans up with a damp cloth", "saves space in small rooms", "keeps its shape over time",
           "works right out of the box", "feels solid in the hand")
SETTINGS = ("at home", "on the road", "in the office", "outdoors on the weekend", "in a small apartment",
            "in the garage", "at school", "on a long trip")
HEADINGS = ("DURABLE BUILD", "EASY TO USE", "WHAT YOU GET", "PERFECT GIFT", "SAFE MATERIAL",
            "WIDE COMPATIBILITY", "WORRY-FREE SUPPORT", "THOUGHTFUL DESIGN")
SENTENCES = (
    "This {adj} {noun} is made from {material} for {benefit}.",
    "Whether you are {setting} or on the go, it {action}.",
    "The {colour} finish {action} and matches most spaces.",
    "Each {noun} is inspected by hand before it leaves our warehouse.",
    "Our team tested it for {n} hours to make sure it {action}.",
    "It measures about {a} x {b} inches and weighs only {w} ounces.",
    "The package includes {n} x {noun} and a short instruction card.",
    "If you have any question, contact us and we will reply within {n} hours.",
    "Thanks to the {material} body, the {noun} {action} and is built for {benefit}.",
    "Customers use it {setting}, and many buy a second one as a gift.",
)
CLAUSES = ("made of {adj} {material}", "designed for {benefit}", "it {action}", "great for use {setting}",
           "available in {colour}", "fits most standard setups", "backed by a {n}-day return window",
           "no tools needed for installation", "an ideal pick for {benefit}")
DETAIL_KEYS = ("Brand", "Material", "Color", "Product Dimensions", "Item Weight", "Item model number",
               "Manufacturer", "Date First Available", "Batteries Required?", "Best Sellers Rank",
               "Number of Items", "Package Dimensions")
MONTHS = ("January February March April May June July August September October November December").split()
FLOURISHES = ("【Premium】 ", "Café Edition – ", "Pack ×2 ", "“Deluxe” ", "[Upgraded] ", "Pro – ")
ASIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASIN_SPACE = 36**8


def _pick(rng: random.Random, options: Sequence):
    # rng.random() runs in C; rng.choice costs several Python calls, which shows at 1M records.
    return options[int(rng.random() * len(options))]


def _number(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _asin_maker(rng: random.Random):
    """A bijection index -> 8 base-36 digits (affine map mod 36**8), so ASINs never repeat."""
    multiplier = rng.randrange(ASIN_SPACE // 7, ASIN_SPACE) | 1
    while multiplier % 3 == 0:  # coprime to 36 means odd and not a multiple of 3
        multiplier += 2
    offset = rng.randrange(ASIN_SPACE)

    def asin(index: int) -> str:
        value, digits = (index * multiplier + offset) % ASIN_SPACE, []
        for _ in range(8):
            value, digit = divmod(value, 36)
            digits.append(ASIN_ALPHABET[digit])
        return "B0" + "".join(reversed(digits))

    return asin


def _price(rng: random.Random, median: float) -> float | str | None:
    """Half missing; the rest log-normal around the category median, with rare odd string forms."""
    if rng.random() < 0.5:
        return None
    price = min(rng.lognormvariate(math.log(median), 1.05), 989.99)
    price = math.floor(price) + 0.99 if price > 1 and rng.random() < 0.6 else max(round(price, 2), 0.01)
    if rng.random() < 0.01:  # how some sellers' prices come through the dump
        return _pick(rng, (f"{price:.2f}", "", f"${price:.2f}", f"{price:.2f} - {price * 1.4:.2f}"))
    return round(price, 2)


SLOT_FILLERS = {
    "adj": lambda rng: _pick(rng, ADJECTIVES),
    "material": lambda rng: _pick(rng, MATERIALS),
    "benefit": lambda rng: _pick(rng, BENEFITS),
    "action": lambda rng: _pick(rng, ACTIONS),
    "setting": lambda rng: _pick(rng, SETTINGS),
    "colour": lambda rng: _pick(rng, COLOURS).lower(),
    "n": lambda rng: _number(rng, 2, 48),
    "a": lambda rng: _number(rng, 2, 30),
    "b": lambda rng: _number(rng, 2, 20),
    "w": lambda rng: _number(rng, 3, 60),
}


class _Slots(dict):
    """Template slots filled on demand, so a template only draws the random values it uses."""

    def __init__(self, rng: random.Random, noun: str):
        super().__init__(noun=noun)
        self.rng = rng

    def __missing__(self, slot: str):
        return SLOT_FILLERS[slot](self.rng)


def _prose(slots: _Slots, templates: Sequence[str], words: int) -> list[str]:
    """Filled templates appended until the target word count is reached."""
    pieces, count = [], 0
    while count < words:
        piece = _pick(slots.rng, templates).format_map(slots)
        pieces.append(piece)
        count += piece.count(" ") + 1
    return pieces


def _description(slots: _Slots, sparse: bool) -> list[str]:
    rng = slots.rng
    if sparse or rng.random() < 0.1:
        return []
    return [" ".join(_prose(slots, SENTENCES, int(rng.triangular(20, 90, 25))))
            for _ in range(_pick(rng, (1, 1, 1, 2, 3)))]


def _features(slots: _Slots, sparse: bool) -> list[str]:
    rng = slots.rng
    if sparse:
        return []
    bullets = []
    for _ in range(int(rng.triangular(1, 8, 1))):
        text = ", ".join(_prose(slots, CLAUSES, _number(rng, 5, 22)))
        bullets.append(f"{_pick(rng, HEADINGS)}: {text[0].upper()}{text[1:]}.")
    return bullets


def _title(rng: random.Random, brand: str, noun: str, model: str) -> str:
    words = [brand, _pick(rng, ADJECTIVES).title(), noun.title()]
    if rng.random() < 0.5:
        words.insert(2, _pick(rng, MATERIALS).title())
    if rng.random() < 0.3:
        words.append(model)
    if rng.random() < 0.5:
        words.append(f"for {_pick(rng, BENEFITS).title()}")
    if rng.random() < 0.6:
        words.append(f"- {_pick(rng, COLOURS)}, {_pick(rng, SIZES)}")
    elif rng.random() < 0.3:
        words.append(f"({_pick(rng, SIZES)})")
    return " ".join(words)


def _details(rng: random.Random, brand: str, model: str, display: str) -> dict:
    def date() -> str:
        return f"{_pick(rng, MONTHS)} {_number(rng, 1, 28)}, {_number(rng, 2008, 2023)}"

    def dims() -> str:
        return f"{_number(rng, 1, 30)} x {_number(rng, 1, 20)} x {round(rng.uniform(0.2, 12), 1)} inches"

    values = {
        "Brand": lambda: brand,
        "Material": lambda: _pick(rng, MATERIALS).title(),
        "Color": lambda: _pick(rng, COLOURS),
        "Product Dimensions": dims,
        "Item Weight": lambda: f"{round(rng.uniform(0.1, 15), 2)} {_pick(rng, ('Pounds', 'Ounces'))}",
        "Item model number": lambda: model,
        "Manufacturer": lambda: _pick(rng, (brand, f"{brand} Inc.")),
        "Date First Available": date,
        "Batteries Required?": lambda: _pick(rng, ("No", "No", "Yes")),
        "Best Sellers Rank": lambda: {display: _number(rng, 100, 2_000_000)},
        "Number of Items": lambda: _number(rng, 1, 12),
        "Package Dimensions": lambda: f"{dims()}; {round(rng.uniform(0.1, 10), 2)} Pounds",
    }
    chosen = set(rng.sample(DETAIL_KEYS, _number(rng, 2, 8)))
    return {key: values[key]() for key in DETAIL_KEYS if key in chosen}


def _model_number(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{_pick(rng, 'ABKMRXZ')}{_pick(rng, 'CLRTX')}-{_number(rng, 1, 99) * 100}"
    return f"{_pick(rng, 'WAE')}{_number(rng, 10_000_000, 99_999_999)}"


def generate_records(category: str, count: int, seed: int = 0) -> Iterator[dict]:
    """``count`` records for one category; the same arguments always give the same records."""
    rng = random.Random(f"{seed}:{category}")
    median, noun_list = GOODS[category]
    nouns = [noun.strip() for noun in noun_list.split(",")]
    display = category.replace("_and_", " & ").replace("_", " ")  # "Toys & Games"
    asin = _asin_maker(rng)
    recent_titles: list[str] = []  # a bounded pool to relist from, so memory stays flat at 1M records
    for index in range(count):
        brand = _pick(rng, BRAND_STARTS) + _pick(rng, BRAND_ENDS)
        noun, model = _pick(rng, nouns), _model_number(rng)
        if recent_titles and rng.random() < 0.01:  # a seller relisting an earlier product
            title = _pick(rng, recent_titles)
        else:
            title = _title(rng, brand, noun, model)
        slots = _Slots(rng, noun)
        sparse = rng.random() < 0.33  # bare listings: neither description nor features
        features = _features(slots, sparse)
        if rng.random() < 0.02:  # the odd non-ASCII or quoted flourish real listings carry
            title = _pick(rng, FLOURISHES) + title
            features = [_pick(rng, FLOURISHES) + bullet for bullet in features]
        recent_titles.append(title)
        if len(recent_titles) > 1000:
            recent_titles[_number(rng, 0, 999)] = recent_titles.pop()
        yield {
            "main_category": display,
            "title": title,
            "average_rating": round(min(5.0, max(1.0, rng.gauss(4.2, 0.6))), 1),
            "rating_number": min(int(rng.paretovariate(0.9)), 250_000) - 1 + _number(rng, 1, 20),
            "features": features,
            "description": _description(slots, sparse),
            "price": _price(rng, median),
            "images": [],
            "videos": [],
            "store": _pick(rng, (brand, brand, f"{brand} Store", f"{brand} Official")),
            "categories": [display, noun.title()][: _number(rng, 0, 2)],
            "details": _details(rng, brand, model, display),
            "parent_asin": asin(index),
            "bought_together": None,
        }


def write_category_file(path: str | Path, category: str, count: int, seed: int = 0,
                        compressed: bool = False) -> Path:
    """Write ``count`` records of one category to ``path`` (gzip when ``compressed``); return the path."""
    path = Path(path)
    # Streamed in chunks of lines so a million-record benchmark file never sits in memory.
    with open(path, "wb") as raw:
        # mtime=0 and an empty header name keep the gzip bytes identical across runs.
        out = raw
        if compressed:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="")
        chunk = []
        for record in generate_records(category, count, seed):
            chunk.append(json.dumps(record, ensure_ascii=False) + "\n")
            if len(chunk) == 2000:
                out.write("".join(chunk).encode("utf-8"))
                chunk.clear()
        out.write("".join(chunk).encode("utf-8"))
        if compressed:
            out.close()
    return path


def write_sample(dest: str | Path, records_per_category: int = 40, seed: int = 0,
                 categories: Sequence[str] | None = None, gzip_categories: Sequence[str] = ()) -> list[Path]:
    """Write ``meta_<Category>.jsonl`` (or ``.jsonl.gz``) files into ``dest``; return their paths, sorted."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for category in CATEGORIES if categories is None else categories:
        compressed = category in gzip_categories
        path = dest / f"meta_{category}.jsonl{'.gz' if compressed else ''}"
        written.append(write_category_file(path, category, records_per_category, seed, compressed))
    return sorted(written)


SAMPLE_MARKER = "_sample.json"  # discovery skips names starting with "_": the marker is not read as input


def _generator_digest() -> str:
    """What the sample's records depend on: this module's source (word banks, templates, generator)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def _complete(folder: Path, expected: dict) -> bool:
    """True when ``folder`` holds the sample ``expected`` describes, every file at its recorded size."""
    try:
        marker = json.loads((folder / SAMPLE_MARKER).read_text(encoding="utf-8"))
        files = marker.pop("files")
        return marker == expected and all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def shared_sample(parent: str | Path, records_per_category: int, seed: int = 0) -> Path:
    """The sample for every category under ``parent``, written once and then only read.

    Runs on the bundled sample used to rewrite its files each time, a second a run, and a run reading them while
    another rewrote them could read a file cut short. Now the folder is named for the generator's source and the
    record count, written whole beside it and renamed into place (one rename; of two processes racing, the first
    wins and the second uses its folder); a complete folder is never written again.
    """
    parent = Path(parent)
    expected = {"records_per_category": records_per_category, "seed": seed, "generator": _generator_digest()}
    dest = parent / f"pricecurate-sample-{records_per_category}-{expected['generator']}"
    if _complete(dest, expected):
        return dest
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=parent))
    try:
        paths = write_sample(staging, records_per_category, seed)
        marker = {**expected, "files": {path.name: path.stat().st_size for path in paths}}
        (staging / SAMPLE_MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        try:
            os.rename(staging, dest)
        except OSError:
            if _complete(dest, expected):  # another process put its sample there first
                return dest
            # A folder of that name that is not the sample (damaged by hand): set aside, not deleted.
            os.rename(dest, parent / f".{dest.name}.damaged-{os.getpid()}-{time.time_ns()}")
            os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
