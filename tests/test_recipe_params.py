"""The recipe's budget from the config: parsing, validation, identity, and the rules under other limits."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED, require_shared

from pricecurate.config import ConfigError, build_config, load_config
from pricecurate.rules import recipe
from pricecurate.rules.lines import DROPPED, KEPT, build_items
from pricecurate.rules.recipe import COURSE_2024, Recipe

LONG = {"base": "course-2024", "min_tokens": 400, "max_tokens": 480, "ceiling_chars": 3400, "max_price": 5000}


def test_the_name_means_the_course_values():
    for tree in ({}, {"recipe": "course-2024"}, {"recipe": {"base": "course-2024"}}, {"recipe": {}}):
        config = build_config(tree)
        assert config.recipe == COURSE_2024 and config.recipe.label == "course-2024"
    assert (COURSE_2024.min_price, COURSE_2024.max_price, COURSE_2024.min_chars, COURSE_2024.ceiling_chars,
            COURSE_2024.min_tokens, COURSE_2024.max_tokens) == (0.5, 999.49, 300, 1120, 150, 160)
    assert COURSE_2024.slots == (1, 999)  # the course fills slots 1-999: a $0.50 item rounds to slot 0


def test_a_mapping_overrides_the_base_and_changes_the_identity():
    rules = build_config({"recipe": LONG}).recipe
    assert (rules.min_tokens, rules.max_tokens, rules.ceiling_chars, rules.max_price) == (400, 480, 3400, 5000.0)
    assert rules.question == COURSE_2024.question and rules.detail_removals == COURSE_2024.detail_removals
    assert rules.changes() == {"min_tokens": 400, "max_tokens": 480, "ceiling_chars": 3400, "max_price": 5000.0}
    assert rules.digest != COURSE_2024.digest and rules.label == f"course-2024+{rules.digest}"
    assert rules.slots == (1, 5000)
    # The same parameters written another way are the same recipe.
    same = load_config("conf/course.yaml", [f"recipe.{key}={value}" for key, value in LONG.items() if key != "base"])
    assert same.recipe == rules and same.recipe.digest == rules.digest


def test_set_overrides_a_named_recipe_and_the_manifest_view_reads_back():
    config = load_config("conf/course.yaml", ["recipe.max_tokens=300", "recipe.question=What is the price?",
                                              "recipe.detail_removals=[Item, Package]"])
    assert config.recipe.max_tokens == 300 and config.recipe.question == "What is the price?"
    assert config.recipe.detail_removals == ("Item", "Package")
    view = config.to_dict()["recipe"]
    assert view["base"] == "course-2024" and view["max_tokens"] == 300
    assert build_config({"recipe": view}).recipe == config.recipe
    described = config.recipe.describe()
    assert recipe.from_manifest({"recipe": described}) == config.recipe
    assert recipe.from_manifest({"recipe": "course-2024"}) == COURSE_2024  # manifests written before the section


@pytest.mark.parametrize("override, message", [
    ("recipe.min_price=20", None),  # fine alone
    ("recipe.max_price=0.4", "recipe.min_price (0.5) is above recipe.max_price (0.4)"),
    ("recipe.min_tokens=200", "recipe.min_tokens (200) is above recipe.max_tokens (160)"),
    ("recipe.max_tokens=0", "recipe.max_tokens must be > 0, got 0"),
    ("recipe.min_price=-1", "recipe.min_price must be > 0, got -1.0"),
    ("recipe.ceiling_chars=-5", "recipe.ceiling_chars must be > 0, got -5"),
    ("recipe.min_chars=-1", "recipe.min_chars must be >= 0, got -1"),
    ("recipe.max_tokens=1.5", "recipe.max_tokens must be a whole number, got 1.5"),
    ("recipe.max_price=cheap", "recipe.max_price must be a number, got 'cheap'"),
    ("recipe.price_prefix=", "recipe.price_prefix is empty"),
    ("recipe.price_prefix=cost", "recipe.price_prefix 'cost' occurs in recipe.question"),
    ("recipe.question=' '", "recipe.question is empty"),
    ("recipe.detail_removals=Item", "recipe.detail_removals must be a list of texts"),
    ("recipe.temperature=3", "recipe: unknown key(s) temperature"),
    ("recipe.base=course-2025", "recipe: unknown recipe 'course-2025'"),
])
def test_recipe_mistakes_are_one_line_errors(override, message):
    if message is None:
        assert load_config("conf/course.yaml", [override]).recipe.min_price == 20
        return
    with pytest.raises(ConfigError, match=None) as caught:
        load_config("conf/course.yaml", [override])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_ceiling_too_small_for_the_token_minimum_warns():
    assert recipe.warnings(COURSE_2024) == []
    small = Recipe(ceiling_chars=500, min_tokens=150)
    [warning] = recipe.warnings(small)
    assert "recipe.ceiling_chars 500" in warning and "use at least 600" in warning


def test_the_long_context_preset_is_valid_and_bigger():
    config = load_config("conf/long-context.yaml")
    rules = config.recipe
    assert config.categories == "all" and rules.base == "course-2024"
    assert rules.max_tokens > 2 * COURSE_2024.max_tokens and rules.min_tokens < rules.max_tokens
    assert recipe.warnings(rules) == []


def _shared_lines() -> list[str]:
    require_shared()
    return [line for path in sorted((SHARED / "data").glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def test_rules_under_a_bigger_budget_keep_their_invariants(codec):
    """Every shared record under the long-context budget: limits, reasons and prompts follow the new values."""
    rules = build_config({"recipe": LONG}).recipe
    lines = _shared_lines()
    outcomes = build_items(lines, codec, rules=rules)
    question_and_price = len(codec.encode([f"{rules.question}\n\n\n\n{rules.price_prefix}5000.00"])[0])
    kept = [o for o in outcomes if o.status == KEPT]
    assert len(kept) >= 30  # about 3% of the shared records have that much text (the course keeps ~25%)
    for line, outcome in zip(lines, outcomes):
        record = json.loads(line)
        if outcome.status == KEPT:
            assert outcome.token_count <= question_and_price + rules.max_tokens + 2  # +2: merges at the joins
            assert rules.min_price <= outcome.price <= rules.max_price
            assert outcome.prompt.startswith(rules.question + "\n\n")
            assert outcome.prompt.endswith(f"{rules.price_prefix}{round(outcome.price)}.00")
            test_prompt = recipe.make_test_prompt(outcome.prompt, rules)
            assert outcome.prompt.startswith(test_prompt) and test_prompt.endswith(rules.price_prefix)
            candidate = recipe.prepare(record, rules)
            full = codec.encode([candidate.text])[0]
            assert len(full) > rules.min_tokens  # enough tokens before the cut
            assert codec.decode([full[: rules.max_tokens]])[0] in outcome.prompt
        elif outcome.status == DROPPED and outcome.reason == recipe.PRICE_OUT_OF_RANGE:
            price = float(record["price"])
            assert not rules.min_price <= price <= rules.max_price
        elif outcome.status == DROPPED and outcome.reason == recipe.TOO_FEW_TOKENS:
            assert len(codec.encode([recipe.prepare(record, rules).text])[0]) <= rules.min_tokens
        elif outcome.status == DROPPED and outcome.reason == recipe.TOO_FEW_CHARS:
            assert rules.min_price <= outcome.price <= rules.max_price
    # The new limits change the outcomes against the course's: dearer items come in, short texts go.
    course = build_items(lines, codec)
    by_reason = lambda results, reason: sum(1 for o in results if o.reason == reason)  # noqa: E731
    assert by_reason(outcomes, recipe.PRICE_OUT_OF_RANGE) < by_reason(course, recipe.PRICE_OUT_OF_RANGE)
    assert by_reason(outcomes, recipe.TOO_FEW_TOKENS) > by_reason(course, recipe.TOO_FEW_TOKENS)
    # Items above the course's $999.49 pass the price rule (a price is set once it parsed in range).
    assert any(o.price is not None and o.price > COURSE_2024.max_price for o in outcomes)
    assert max(o.token_count for o in kept) > 2 * max(o.token_count for o in course if o.status == KEPT)


def test_wording_and_removals_reach_the_prompt(codec):
    rules = Recipe(question="Estimate the price.", price_prefix="Answer: USD ", detail_removals=())
    lines = _shared_lines()
    pairs = [(o, c) for o, c in zip(build_items(lines, codec, rules=rules), build_items(lines, codec))
             if o.status == KEPT and c.status == KEPT]
    assert pairs
    for outcome, _ in pairs:
        assert outcome.prompt.startswith("Estimate the price.\n\n")
        assert outcome.prompt.endswith(f"\n\nAnswer: USD {round(outcome.price)}.00")
    # With no details removals the texts keep words the course deletes ("Item", "Package", "Best Sellers" ...).
    assert any("Best Sellers" in o.prompt and "Best Sellers" not in c.prompt for o, c in pairs)


def test_texts_given_with_set_are_taken_as_typed():
    config = load_config("conf/course.yaml", ["recipe.question=Price: what is it? # guess", "recipe.price_prefix=A: $ ",
                                              "tokenizer=/models/x: y"])
    assert config.recipe.question == "Price: what is it? # guess" and config.recipe.price_prefix == "A: $ "
    assert config.tokenizer == "/models/x: y"
    assert load_config("conf/course.yaml", ["recipe.price_prefix='Cost: $'"]).recipe.price_prefix == "Cost: $"
