"""Near-duplicate groups against exact Jaccard: recall and precision per similarity band.

    .venv/bin/python scripts/near_quality.py [--bases N] [--threshold T] [--json]

Groups the prompts of two corpora with the job's signing and grouping
(``pricecurate.pipeline.dedup.near``), computes the exact word-n-gram Jaccard of every pair of
prompts, and prints per band how many pairs there are and how many share a
group. The corpora: planted variants (``devtools.near_quality``, made by the
item rules from generated records) and, when ``../shared`` is there, the kept
items of its real and converted records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devtools/ (not installed)

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PRICECURATE_SHARED", ROOT.parent / "shared"))


def planted_prompts(bases: int) -> list[str]:
    from devtools.near_quality import planted_records
    from pricecurate.rules.lines import KEPT, build_items
    from pricecurate.tokenizer.engine import codec_for
    from pricecurate.tokenizer.spec import load_spec

    spec = load_spec()
    outcomes = build_items([json.dumps(r) for r in planted_records(bases=bases)], codec_for(spec.json, spec.sha256))
    return [o.prompt for o in outcomes if o.status == KEPT]


def shared_prompts() -> list[str] | None:
    golden = SHARED / "golden"
    if not golden.is_dir():
        return None
    prompts = []
    for name in ("real", "converted"):
        with open(golden / f"{name}.jsonl", encoding="utf-8") as handle:
            prompts += [row["prompt"] for row in map(json.loads, handle) if row["include"]]
    return prompts


def measure(bases: int, threshold: float) -> dict:
    from devtools.near_quality import score
    from pricecurate.config import NearParams
    from pricecurate.pipeline.dedup.minhash import item_text
    from pricecurate.pipeline.dedup.near import group_prompts
    from pricecurate.spark.session import build_session

    params = NearParams(threshold=threshold)
    corpora = {"planted": planted_prompts(bases), "shared": shared_prompts()}
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = build_session("local[2]", {"spark.sql.shuffle.partitions": "4"})
    results = {"threshold": threshold, "ngram": params.ngram, "num_perm": params.num_perm, "lsh": params.lsh}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for name, prompts in corpora.items():
                if prompts is None:
                    continue
                started = time.perf_counter()
                labels = group_prompts(spark, prompts, params, 42, f"{scratch}/{name}")
                seconds = time.perf_counter() - started
                quality = score([item_text(p) for p in prompts], labels, params.ngram, threshold)
                results[name] = {"items": len(prompts), "groups": len(set(labels.values())),
                                 "seconds": round(seconds, 1), **quality}
    finally:
        spark.stop()
    return results


def print_table(results: dict) -> None:
    bands, rows = results["lsh"]
    print(f"\nnear-duplicate groups vs exact word-{results['ngram']}-gram Jaccard (threshold {results['threshold']:g}, "
          f"{results['num_perm']} values, {bands} bands of {rows})")
    for name in ("planted", "shared"):
        if name not in results:
            print(f"  {name}: not measured (no ../shared)")
            continue
        r = results[name]
        print(f"  {name}: {r['items']:,} items, {r['groups']:,} groups, {r['grouped_pairs']:,} grouped pairs, "
              f"grouping took {r['seconds']}s")
        print(f"    {'Jaccard':<12}{'pairs':>9}{'grouped':>9}{'recall':>9}{'of grouped':>12}")
        for band in r["bands"]:
            share = "" if band["share"] is None else f"{band['share']:.3f}"
            of_grouped = f"{band['grouped'] / r['grouped_pairs']:.3f}" if r["grouped_pairs"] else ""
            print(f"    {band['low']:.1f}-{band['high']:.1f}{'':<5}{band['pairs']:>9,}{band['grouped']:>9,}"
                  f"{share:>9}{of_grouped:>12}")
        precision = "n/a" if r["precision"] is None else f"{r['precision']:.3f}"
        lowest = "n/a" if r["lowest_grouped"] is None else f"{r['lowest_grouped']:.3f}"
        print(f"    precision (grouped pairs at or above the threshold): {precision}; lowest grouped pair: {lowest}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bases", type=int, default=40, help="planted families of 13 variants (default: 40)")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line instead")
    args = parser.parse_args(argv)
    results = measure(args.bases, args.threshold)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
