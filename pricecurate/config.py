"""One validated, typed configuration from a YAML file plus ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pricecurate.errors import UserError
from pricecurate.masking import mask_settings, redact_uri
from pricecurate.rules import recipe as rules
from pricecurate.rules.categories import CATEGORIES
from pricecurate.rules.recipe import COURSE_2024, RECIPES, Recipe
from pricecurate.tokenizer import ENGINES, LLAMA31

DEDUP_FIELDS = ("title", "text", "near")

CANDIDATE_AT_THRESHOLD = 0.95  # least chance that a pair at the threshold shares a band


@dataclass(frozen=True)
class NearParams:
    """The settings of near-duplicate detection (config section ``near``)."""

    threshold: float = 0.8
    ngram: int = 3
    num_perm: int = 128
    bands: int = 0  # 0: derived from the threshold (``lsh_bands``)

    def settings(self) -> dict:
        """The settings as the manifest and the reuse key record them, with the bands they resolve to."""
        bands, rows = self.lsh
        return {"threshold": self.threshold, "ngram": self.ngram, "num_perm": self.num_perm,
                "bands": bands, "rows_per_band": rows}

    @property
    def lsh(self) -> tuple[int, int]:
        """(bands, rows per band)."""
        if self.bands:
            return self.bands, self.num_perm // self.bands
        return lsh_bands(self.threshold, self.num_perm)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two items of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """The most rows per band (fewest chance candidates) that still catch a pair at the threshold.

    Candidates are verified by signature similarity afterwards, so a missed
    candidate is lost for good while a chance one only costs a comparison.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= CANDIDATE_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1



class ConfigError(UserError, ValueError):
    """A configuration problem, phrased for the user."""


@dataclass
class Balance:
    slot_cap: int = 1200
    keep_all_from: int = 240
    default_weight: float = 5.0
    weights: dict[str, float] = field(default_factory=dict)

    def weight_of(self, category: str) -> float:
        return self.weights.get(category, self.default_weight)


@dataclass
class Split:
    train: int = 400_000
    test: int = 2_000
    validation: int = 0


@dataclass
class Write:
    # About 250 MB of Parquet per file for the items (a row is ~500 bytes compressed).
    rows_per_file: int = 500_000


@dataclass
class Config:
    recipe: Recipe = COURSE_2024  # the item rules' limits and wording
    categories: list[str] | str = "all"
    tokenizer: str = LLAMA31
    tokenizer_engine: str = "auto"  # auto | tiktoken | tokenizers
    seed: int = 42
    dedup: list[str] = field(default_factory=list)
    near: NearParams = field(default_factory=NearParams)  # near-duplicate settings, also used by the leakage check
    balance: Balance = field(default_factory=Balance)
    split: Split = field(default_factory=Split)
    write: Write = field(default_factory=Write)
    max_record_bytes: int = 4 * 1024 * 1024
    # A .gz that decompresses to more is read up to here and listed as damaged: past the whole 48 GB dump.
    max_gzip_bytes: int = 64 * 1024**3
    partitions: int = 0  # 0: derived from the input size and the cores
    reuse_items: str = ""  # a previous output whose curated items stand for this run's (same inputs, recipe, tokenizer)
    baseline: bool = False  # fit and score the baselines (``pricecurate.evaluate.baseline``) on the splits
    spark: dict[str, str] = field(default_factory=dict)  # extra Spark settings

    def to_dict(self) -> dict:
        """The config as written to the manifest: credential settings masked, and credentials in URIs."""
        tree = dataclasses.asdict(self)
        tree["recipe"] = {"base": self.recipe.base, **self.recipe.parameters()}  # reads back as the same config
        tree["spark"] = mask_settings(self.spark)
        tree["reuse_items"] = redact_uri(self.reuse_items)
        tree["tokenizer"] = redact_uri(self.tokenizer)
        return tree


def _set_path(tree: dict, dotted: str, value) -> None:
    if dotted.startswith("spark."):
        # A Spark setting, dots and all: --set spark.executor.memory=4g
        section = tree.setdefault("spark", {})
        if not isinstance(section, dict):
            raise ConfigError(f"--set {dotted}: 'spark' is not a section")
        section[dotted] = value
        return
    keys = dotted.split(".")
    if keys[0] == "recipe" and len(keys) > 1 and isinstance(tree.get("recipe"), str):
        # --set recipe.max_tokens=480 over "recipe: course-2024" overrides that recipe.
        tree["recipe"] = {"base": tree["recipe"]}
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
    node[keys[-1]] = value


# Keys whose value is a text taken as typed: "Answer: $" must not become a YAML mapping.
TEXT_KEYS = ("recipe.question", "recipe.price_prefix", "tokenizer", "reuse_items")


def parse_override(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as YAML (so numbers and lists keep their type)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set seed=7")
    key, raw = text.split("=", 1)
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
    if key.strip() in TEXT_KEYS and not quoted:
        return key.strip(), raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot read value {raw!r}: {exc}") from None
    return key.strip(), value


def _typed(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(sorted(known))}"
        )
    return data


def _int(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def _dedup(value) -> list[str]:
    if value in (None, "none", "", False, []):
        return []
    fields = value.split(",") if isinstance(value, str) else list(value)
    fields = [str(f).strip() for f in fields]
    bad = [f for f in fields if f not in DEDUP_FIELDS]
    if bad:
        raise ConfigError(f"dedup: unknown field(s) {', '.join(bad)}; use 'none' or a subset of 'title,text,near'")
    return [f for f in DEDUP_FIELDS if f in fields]


def _categories(value) -> list[str] | str:
    if value in ("all", None):
        return "all"
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        raise ConfigError(
            f"categories: unknown name(s) {', '.join(unknown)}; the dataset's names are {', '.join(CATEGORIES)}"
        )
    if not names:
        raise ConfigError("categories: empty list; use 'all' or names like Automotive,Electronics")
    return names


def _near(tree: dict) -> NearParams:
    default = NearParams()
    threshold = tree.get("threshold", default.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ConfigError(f"near.threshold must be a Jaccard similarity in (0, 1], got {threshold!r}")
    ngram = _int(tree.get("ngram", default.ngram), "near.ngram", 1)
    num_perm = _int(tree.get("num_perm", default.num_perm), "near.num_perm", 16)
    bands = _int(tree.get("bands", default.bands), "near.bands")
    if bands > num_perm:
        raise ConfigError(f"near.bands must be at most near.num_perm ({num_perm}), got {bands}; 0 derives it")
    return NearParams(float(threshold), ngram, num_perm, bands)


_RECIPE_TYPES = {"min_price": float, "max_price": float, "question": str, "price_prefix": str}


def _recipe(value) -> Recipe:
    """A recipe name, or a mapping of parameters over a ``base`` recipe (course-2024 unless named)."""
    if value is None or isinstance(value, str):
        value = {"base": value or COURSE_2024.base}
    tree = dict(_typed(Recipe, value, "recipe"))
    base = tree.pop("base", COURSE_2024.base)
    if base not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {base!r}; known: {', '.join(RECIPES)}")
    overrides = {}
    for key, raw in tree.items():
        kind = _RECIPE_TYPES.get(key, int)
        if key == "detail_removals":
            if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
                raise ConfigError(f"recipe.detail_removals must be a list of texts, got {raw!r}")
            overrides[key] = tuple(raw)
        elif kind is str:
            if not isinstance(raw, str):
                raise ConfigError(f"recipe.{key} must be a text, got {raw!r}")
            overrides[key] = raw
        elif kind is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ConfigError(f"recipe.{key} must be a number, got {raw!r}")
            overrides[key] = float(raw)
        else:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ConfigError(f"recipe.{key} must be a whole number, got {raw!r}")
            overrides[key] = raw
    resolved = dataclasses.replace(RECIPES[base], **overrides)
    found = rules.problems(resolved)
    if found:
        raise ConfigError("; ".join(found))
    return resolved


def build_config(tree: dict) -> Config:
    """Validate a raw mapping into a Config; every problem names the key and the fix."""
    tree = dict(_typed(Config, tree or {}, "config"))
    balance_tree = dict(_typed(Balance, tree.pop("balance", None) or {}, "balance"))
    split_tree = dict(_typed(Split, tree.pop("split", None) or {}, "split"))
    write_tree = dict(_typed(Write, tree.pop("write", None) or {}, "write"))
    near_tree = dict(_typed(NearParams, tree.pop("near", None) or {}, "near"))

    config = Config()
    config.recipe = _recipe(tree.get("recipe"))
    config.categories = _categories(tree.get("categories", "all"))
    config.tokenizer = str(tree.get("tokenizer", config.tokenizer))
    config.tokenizer_engine = str(tree.get("tokenizer_engine", config.tokenizer_engine))
    if config.tokenizer_engine not in ENGINES:
        raise ConfigError(f"tokenizer_engine must be one of {', '.join(ENGINES)}, got {config.tokenizer_engine!r}")
    config.seed = _int(tree.get("seed", config.seed), "seed")
    config.dedup = _dedup(tree.get("dedup"))
    config.max_record_bytes = _int(tree.get("max_record_bytes", config.max_record_bytes), "max_record_bytes", 1024)
    config.max_gzip_bytes = _int(tree.get("max_gzip_bytes", config.max_gzip_bytes), "max_gzip_bytes", 1024)
    config.partitions = _int(tree.get("partitions", config.partitions), "partitions")
    config.reuse_items = str(tree.get("reuse_items") or "")
    config.baseline = _bool(tree.get("baseline", config.baseline), "baseline")
    spark = tree.get("spark") or {}
    if not isinstance(spark, dict):
        raise ConfigError(f"spark: expected a mapping of Spark settings, got {spark!r}")
    config.spark = {str(k): str(v) for k, v in spark.items()}

    balance = config.balance
    balance.slot_cap = _int(balance_tree.get("slot_cap", balance.slot_cap), "balance.slot_cap", 1)
    balance.keep_all_from = _int(balance_tree.get("keep_all_from", balance.keep_all_from), "balance.keep_all_from", 1)
    balance.default_weight = _positive(balance_tree.get("default_weight", balance.default_weight), "balance.default_weight")
    weights = balance_tree.get("weights") or {}
    if not isinstance(weights, dict):
        raise ConfigError(f"balance.weights: expected Category: weight pairs, got {weights!r}")
    for name, weight in weights.items():
        if name not in CATEGORIES:
            raise ConfigError(f"balance.weights: unknown category {name!r}; use one of the dataset's 34 names")
        balance.weights[name] = _positive(weight, f"balance.weights.{name}")

    split = config.split
    split.train = _int(split_tree.get("train", split.train), "split.train")
    split.test = _int(split_tree.get("test", split.test), "split.test")
    split.validation = _int(split_tree.get("validation", split.validation), "split.validation")
    if split.train + split.test + split.validation == 0:
        raise ConfigError("split: train, test and validation are all 0; ask for at least one item")
    config.near = _near(near_tree)
    config.write.rows_per_file = _int(write_tree.get("rows_per_file", config.write.rows_per_file), "write.rows_per_file", 1)
    return config


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass e.g. --config conf/course.yaml")
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
    for text in overrides:
        key, value = parse_override(text)
        _set_path(tree, key, value)
    return build_config(tree)
