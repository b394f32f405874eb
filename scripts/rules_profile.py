"""Where a record's microseconds go in the item rules, phase by phase, outside Spark (one process, one core).

    .venv/bin/python scripts/rules_profile.py [FOLDER ...] [--per-file 1500] [--rounds 3]

FOLDER holds ``meta_<Category>.jsonl`` files (default: ../shared/data/real and ../shared/data/converted, or
$PRICECURATE_SHARED/data/...); the first ``--per-file`` lines of each file are read. Each phase runs over every
line (or every record that reaches it) as the rules run it, the best of ``--rounds`` rounds, and is shown in
microseconds per input line; ``build_items`` is the whole batch function, ``plumbing`` what the job's Arrow
side adds around it (``arrow_rules``: the batch's lines to Python, outcomes back to Arrow).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PRICECURATE_SHARED", ROOT.parent / "shared")) / "data"
BATCH = 10_000  # spark.sql.execution.arrow.maxRecordsPerBatch's default: the batches the job's workers get


def read_lines(folders: list[Path], per_file: int) -> list[tuple[str, bytes]]:
    lines = []
    for folder in folders:
        for path in sorted(folder.glob("meta_*.jsonl")):
            with open(path, "rb") as handle:
                for _, line in zip(range(per_file), handle):
                    lines.append((path.name, line.rstrip(b"\r\n")))
    return lines


def best_of(rounds: int, phase) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        phase()
        best = min(best, time.perf_counter() - started)
    return best


def phases(lines: list[bytes], codec) -> dict:
    """Each phase as a function over its own inputs, which the phase before made (outside the timing)."""
    import orjson

    from pricecurate.rules import lines as rules
    from pricecurate.rules import recipe

    records = [record for record in map(rules.decode_line, lines) if isinstance(record, dict)]
    prepared = [(record, recipe.prepare(record)) for record in records]
    candidates = [c for _, c in prepared if isinstance(c, recipe.Candidate)]
    # What scrub is given for each candidate: its title and its contents cut at the ceiling.
    scrubbed = [text for record, c in prepared if isinstance(c, recipe.Candidate) for text in (
        record["title"], recipe.assemble_contents(record.get("description") or [], record.get("features") or [],
                                                  recipe.presented_details(record))[: recipe.CEILING_CHARS])]
    token_ids = codec.encode([c.text for c in candidates])
    long_enough = [(c, ids[: recipe.MAX_TOKENS]) for c, ids in zip(candidates, token_ids)
                   if recipe.has_enough_tokens(len(ids))]
    texts = codec.decode([ids for _, ids in long_enough])
    prompts = [recipe.make_prompt(text, c.price) for (c, _), text in zip(long_enough, texts)]
    quotes = [recipe.Quote(recipe.text_start(), len(text), c.text, ids)
              for (c, ids), text in zip(long_enough, texts)]
    return {
        "JSON parse (orjson)": lambda: [orjson.loads(line) for line in lines],
        "decode_line (parse + schema checks)": lambda: [rules.decode_line(line) for line in lines],
        "prepare (price, contents, scrub)": lambda: [recipe.prepare(record) for record in records],
        "  of which scrub": lambda: [recipe.scrub(text) for text in scrubbed],
        "encode texts": lambda: codec.encode([c.text for c in candidates]),
        "decode first tokens": lambda: codec.decode([ids for _, ids in long_enough]),
        "count prompt tokens": lambda: codec.count_prompts(prompts, quotes),
        "  (encoding the prompts instead)": lambda: codec.encode(prompts),
        "_counts": (len(records), len(candidates), len(long_enough)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--per-file", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import pyarrow as pa

    from pricecurate.pipeline.arrow_rules import outcome_batches
    from pricecurate.rules.lines import build_items
    from pricecurate.tokenizer.engine import build_codec
    from pricecurate.tokenizer.spec import load_spec

    folders = args.folders or [SHARED / "real", SHARED / "converted"]
    named = read_lines(folders, args.per_file)
    lines = [line for _, line in named]
    if not lines:
        sys.exit(f"rules_profile: no meta_*.jsonl lines in {', '.join(map(str, folders))}")
    codec = build_codec(load_spec().json)
    batches = [pa.RecordBatch.from_pydict({
        "category": ["X"] * len(chunk), "file": [name for name, _ in chunk], "split_start": [0] * len(chunk),
        "position": list(range(len(chunk))), "value": pa.array([line for _, line in chunk], pa.binary())})
        for chunk in (named[start:start + BATCH] for start in range(0, len(named), BATCH))]

    def whole() -> None:
        for batch in batches:
            build_items(batch.column("value").to_pylist(), codec)

    def with_plumbing() -> None:
        for batch in batches:
            list(outcome_batches(batch, build_items(batch.column("value").to_pylist(), codec)))

    per_line = 1e6 / len(lines)
    timed = phases(lines, codec)
    records, candidates, kept = timed.pop("_counts")
    print(f"{len(lines):,} lines from {', '.join(map(str, folders))} ({codec.__class__.__name__}): "
          f"{records:,} records, {candidates:,} reach the tokenizer, {kept:,} kept")
    print(f"{'phase':40s} {'us per line':>12s}")
    for name, phase in timed.items():
        print(f"{name:40s} {best_of(args.rounds, phase) * per_line:12.2f}")
    rules = best_of(args.rounds, whole) * per_line
    print(f"{'build_items (the whole batch function)':40s} {rules:12.2f}")
    print(f"{'  plus the Arrow plumbing (the job)':40s} {best_of(args.rounds, with_plumbing) * per_line:12.2f}")


if __name__ == "__main__":
    main()
