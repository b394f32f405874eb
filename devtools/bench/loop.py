"""(a) baseline and (c) floor: the course's per-record loop, the tokenizer alone; (e) the budget on real records."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from devtools.bench.inputs import read_even_subset
from devtools.bench.project import ROOT, one_cpu

BUDGET_PRESETS = ("course.yaml", "long-context.yaml")
# 2023 records, and older records converted to the 2023 schema (shorter texts, on average).
SHARED_DATA = Path(os.environ.get("PRICECURATE_SHARED", ROOT.parent / "shared")) / "data"
BUDGET_SETS = ("real", "converted")


def hf_tokenizer(spec_json: str):
    """The transformers fast tokenizer the course notebook used, from the job's own tokenizer JSON."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(spec_json))


def per_record_loop(lines: list[str], tokenizer) -> int:
    """The course's loop, one record at a time, all in Python: the scrub's C kernel is the job's, not the course's
    (on the bench's mostly ASCII input it changes the loop's rate by nothing measurable; on the real records, where
    a tenth of the texts are not ASCII, it would). Returns how many items it kept."""
    from pricecurate.rules import recipe

    with mock.patch.object(recipe, "scrub", recipe.scrub_in_python):
        return _loop(lines, tokenizer, recipe)


def _loop(lines: list[str], tokenizer, recipe) -> int:
    kept = 0
    for line in lines:
        prepared = recipe.prepare(json.loads(line))
        if isinstance(prepared, recipe.Drop):
            continue
        ids = tokenizer.encode(prepared.text, add_special_tokens=False)
        if not recipe.has_enough_tokens(len(ids)):
            continue
        text = tokenizer.decode(ids[: recipe.MAX_TOKENS], clean_up_tokenization_spaces=False)
        prompt = recipe.make_prompt(recipe.clean_up_decoded(text), prepared.price)
        len(tokenizer.encode(prompt, add_special_tokens=False))  # the token count the course stored
        kept += 1
    return kept


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float  # this process only: shows when a call used more than one core
    value: object = None


def timed(function, *args) -> Timed:
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, value)


def job_codec(spec_json: str):
    """The batch codec the job's workers build (built outside any timed region, like the tokenizer above)."""
    from pricecurate.tokenizer.engine import build_codec

    return build_codec(spec_json)  # the job's default engine choice


def kept_by_build_items(lines: list[str], codec) -> int:
    """What the job's batch item builder keeps on the same lines (the sanity check for the baseline)."""
    from pricecurate.rules.lines import KEPT, build_items

    batch = 5000  # about the size of the Arrow batches the job feeds it
    return sum(
        outcome.status == KEPT
        for start in range(0, len(lines), batch)
        for outcome in build_items(lines[start : start + batch], codec)
    )


def budget_on_real_records(spec_json: str) -> dict | None:
    """Per record set and preset, what the preset's recipe keeps of the real records in ../shared and how long
    the prompts are."""
    from pricecurate.config import load_config
    from pricecurate.rules.lines import KEPT, build_items

    if not SHARED_DATA.is_dir():
        return None
    codec = job_codec(spec_json)
    found = {}
    for name in BUDGET_SETS:
        lines = [line for path in sorted((SHARED_DATA / name).glob("*.jsonl"))
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for preset in BUDGET_PRESETS:
            rules = load_config(ROOT / "conf" / preset).recipe
            tokens = [o.token_count for o in build_items(lines, codec, rules=rules) if o.status == KEPT]
            found[f"{name}, {preset}"] = {
                "recipe": rules.label, "records": len(lines), "kept": len(tokens),
                "mean_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
                "max_tokens": max(tokens, default=None), "prompt_tokens": sum(tokens)}
    return found


def encode_all(tokenizer, texts: list[str]) -> int:
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    return len(encode(texts, add_special_tokens=False))


def _baseline_on_one_cpu(folder: str, count: int, spec_json: str) -> Timed:
    os.sched_setaffinity(0, one_cpu())
    return timed(per_record_loop, read_even_subset(Path(folder), count), hf_tokenizer(spec_json))


def baseline_on_one_cpu(folder: Path, count: int, spec_json: str) -> Timed:
    """The baseline in a fresh interpreter held to one CPU, like the pinned job.

    A fresh process, because the tokenizers thread pool keeps the CPU set of
    the moment it starts: started here under the pin, it would hobble the floor.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_baseline_on_one_cpu, str(folder), count, spec_json).result()


def floor_single_thread(tokenizer, texts: list[str]) -> Timed:
    """The same call with the tokenizers thread pool switched off, for a per-core comparison."""
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by tokenizers on every batch call
    try:
        return timed(encode_all, tokenizer, texts)
    finally:
        if previous is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous
