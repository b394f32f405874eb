"""build_items on hand-made lines: quarantine reasons, drops, and the kept item's fields."""

from __future__ import annotations

import json

import pytest

from pricecurate.rules import lines as items
from pricecurate.rules import recipe
from pricecurate.rules.lines import DROPPED, KEPT, QUARANTINED, build_items

PROSE = (
    "This sturdy garden hose nozzle has eight spray patterns for watering plants, washing the car and "
    "cleaning the patio. The thumb control lets you adjust the flow with one hand, and the rubber grip "
    "stays comfortable in wet weather. "
)


def record(**fields) -> str:
    base = {"title": "Hose Nozzle", "parent_asin": "B000TEST01", "description": [PROSE * 5], "features": [],
            "price": 12.5, "details": {"Brand": "Acme"}}
    base.update(fields)
    return json.dumps(base)


def test_kept_item_has_prompt_and_exact_token_count(codec):
    [outcome] = build_items([record()], codec)
    assert outcome.status == KEPT
    assert outcome.prompt.startswith(recipe.QUESTION + "\n\nHose Nozzle\n")
    assert outcome.prompt.endswith("\n\nPrice is $12.00")  # 12.5 rounds half to even
    assert recipe.make_test_prompt(outcome.prompt) == outcome.prompt[: -len("12.00")]
    assert outcome.token_count == len(codec.encode([outcome.prompt])[0])


def test_drops_carry_reason_and_identity(codec):
    lines = [record(price=None), record(price="12 dollars"), record(price=0.1), record(description=["short"])]
    outcomes = build_items(lines, codec)
    assert [o.status for o in outcomes] == [DROPPED] * 4
    assert [o.reason for o in outcomes] == [
        recipe.NO_PRICE, recipe.UNPARSABLE_PRICE, recipe.PRICE_OUT_OF_RANGE, recipe.TOO_FEW_CHARS
    ]
    assert all(o.parent_asin == "B000TEST01" for o in outcomes)


def test_unreadable_lines_are_quarantined_with_reason(codec):
    lines = {
        "": items.EMPTY_LINE,
        "   ": items.EMPTY_LINE,
        '{"title": "x", ': items.INVALID_JSON,
        record() + " trailing": items.INVALID_JSON,
        "42": items.NOT_AN_OBJECT,
        json.dumps({"parent_asin": "B1"}): "missing_field:title",
        record(title=None): "bad_type:title",
        record(title=7): "bad_type:title",
        record(description="a string"): "bad_type:description",
        record(features=["ok", 3]): "bad_type:features",
        record(details=["a"]): "bad_type:details",
        record(details="text"): "bad_type:details",
        record(price={"value": 3}): "bad_type:price",
        record(price=[3]): "bad_type:price",
        record(title="lone \ud800 surrogate"): "invalid_unicode",
        # Lists of strings are checked by joining them: anything else in them, at any place, is a bad type.
        record(description=[3]): "bad_type:description",
        record(description=["a", None]): "bad_type:description",
        record(features=[["nested"]]): "bad_type:features",
        record(features={"a": "b"}): "bad_type:features",
        # The first problem in the rule's order: title, parent_asin, description, features, details, price.
        record(description=[1], features=[2], price=[3]): "bad_type:description",
        # A lone surrogate in any tokenized text, with the others ASCII or not.
        record(description=["ok", "lone \udc00 surrogate"]): "invalid_unicode",
        record(title="café", features=["\ud83d alone"]): "invalid_unicode",
    }
    outcomes = build_items(list(lines), codec)
    assert [(o.status, o.reason) for o in outcomes] == [(QUARANTINED, reason) for reason in lines.values()]
    assert outcomes[2].raw == '{"title": "x", '
    # Texts that are not ASCII but hold no lone surrogate go through the rules.
    readable = build_items([record(title="café crème", description=["naïve"], features=["日本"])], codec)
    assert readable[0].status != QUARANTINED


def test_oversized_record_is_quarantined_and_cut(codec):
    huge = record(description=["x" * 50_000])
    [outcome] = build_items([huge], codec, max_record_bytes=10_000)
    assert (outcome.status, outcome.reason) == (QUARANTINED, items.TOO_LARGE)
    assert len(outcome.raw) == items.RAW_SNIPPET_CHARS


def test_warmed_up_workers_are_the_ones_the_rules_run_in(spark, tokenizer_spec):
    """The warm-up job builds the codec in one worker per slot, and the job's mapInArrow tasks then find it built
    there (an RDD warm-up would start workers of another pool, which the rules never use)."""
    import pyarrow as pa

    from pricecurate.pipeline.arrow_rules import end_warm_up, warm_up_workers

    sha = "warm-up-test-" + tokenizer_spec.sha256  # a key no earlier test built, so the warm-up builds it
    builds = spark.sparkContext.accumulator(0)
    broadcast = spark.sparkContext.broadcast(tokenizer_spec.json)
    end_warm_up(spark, warm_up_workers(spark, broadcast, sha, builds, "tiktoken"))
    slots = spark.sparkContext.defaultParallelism
    assert builds.value == slots

    def built_here(batches):
        from pricecurate.tokenizer import engine

        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"built": [any(key[0] == sha for key in engine._worker_codecs)]})

    found = spark.range(4 * slots, numPartitions=4 * slots).mapInArrow(built_here, "built boolean").collect()
    broadcast.unpersist()
    assert all(row.built for row in found)


def test_the_rules_workers_start_before_the_input_is_listed_and_stop_with_a_failed_run(spark, tmp_path):
    """A run whose rules will run starts its workers first thing (in a cold JVM the warm-up's query takes as long
    to plan as the rules' own, so started later it ran after them), and a run that fails early leaves none of it
    running."""
    import threading

    from pricecurate.config import load_config
    from pricecurate.errors import InputError
    from pricecurate.pipeline.arrow_rules import WARM_UP_GROUP
    from pricecurate.pipeline.job import run_job

    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(WARM_UP_GROUP))
    with pytest.raises(InputError):
        run_job(spark, load_config("conf/course.yaml", []), str(tmp_path / "no-such-input"), str(tmp_path / "out"))
    assert len(set(tracker.getJobIdsForGroup(WARM_UP_GROUP)) - before) == 1
    assert not [thread for thread in threading.enumerate() if thread.name == "warm-up-workers"]

    before = set(tracker.getJobIdsForGroup(WARM_UP_GROUP))  # reused items: the rules do not run, nothing to warm
    with pytest.raises(InputError):
        run_job(spark, load_config("conf/course.yaml", [f"reuse_items={tmp_path}"]), str(tmp_path / "no-such-input"),
                str(tmp_path / "out"))
    assert set(tracker.getJobIdsForGroup(WARM_UP_GROUP)) == before

    # Reused items whose run's manifest says the leakage check will run (the course has no near-duplicate removal):
    # the check's workers start first thing too, and stop with the failed run.
    import json

    from pricecurate.output.layout import FORMAT, FORMAT_KEY, MANIFEST
    from pricecurate.pipeline.reuse import dedup_key

    course = load_config("conf/course.yaml", [])
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / MANIFEST).write_text(json.dumps({FORMAT_KEY: FORMAT, "curation": {"dedup": {
        "key": dedup_key(course.dedup, course.near, course.seed), "near": None}}}))
    with pytest.raises(InputError):
        run_job(spark, load_config("conf/course.yaml", [f"reuse_items={previous}"]), str(tmp_path / "no-such-input"),
                str(tmp_path / "out"))
    assert len(set(tracker.getJobIdsForGroup(WARM_UP_GROUP)) - before) == 1
    assert not [thread for thread in threading.enumerate() if thread.name == "warm-up-workers"]


def test_the_cycle_collector_is_paused_while_the_rules_run_and_left_as_it_was():
    import gc

    from pricecurate.pipeline.arrow_rules import _no_cycle_collection

    assert gc.isenabled()
    try:
        with _no_cycle_collection():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()  # a worker that runs without it keeps running without it
        with _no_cycle_collection():
            pass
        assert not gc.isenabled()
        with pytest.raises(ValueError), _no_cycle_collection():
            raise ValueError("a batch that fails")
    finally:
        gc.enable()
    with pytest.raises(ValueError), _no_cycle_collection():
        raise ValueError("a batch that fails")
    assert gc.isenabled()
