"""What the JVM class archive saves: a local session's start and first queries, with it and without.

Each round starts two fresh Python processes, one mapping the archive and one with PRICECURATE_JVM_ARCHIVE=off,
in alternating order (the host is shared), and each times: building the session, a first query, a second one.
Prints every round and the medians.

    .venv/bin/python scripts/startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE = """
import json, time
started = time.perf_counter()
from pricecurate.spark.session import build_session
spark = build_session("local[2]")
session = time.perf_counter()
spark.range(10).selectExpr("sum(id)").collect()
first = time.perf_counter()
spark.range(300000).selectExpr("id % 97 as k", "cast(id as string) as v").groupBy("k").agg({"v": "max"}).collect()
second = time.perf_counter()
spark.stop()
print(json.dumps({"session_s": session - started, "first_query_s": first - session, "second_query_s": second - first}))
"""
MEASURES = ("session_s", "first_query_s", "second_query_s")


def probe(archive: bool) -> dict:
    from pricecurate.spark.jvm_archive import OFF_ENV

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    if archive:
        env.pop(OFF_ENV, None)
    else:
        env[OFF_ENV] = "off"
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from pricecurate.paths import cache_dir
    from pricecurate.spark.jvm_archive import mapped

    archive = mapped(cache_dir())
    if archive is None:
        print("no JVM class archive to compare with: run `pricecurate prepare` first", file=sys.stderr)
        return 2
    print(f"archive: {archive} ({archive.stat().st_size / 2**20:,.0f} MB)")
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for archived in ((True, False) if round_ % 2 == 0 else (False, True)):
            runs[archived].append(probe(archived))
            figures = "  ".join(f"{name} {runs[archived][-1][name]:5.2f}" for name in MEASURES)
            print(f"round {round_ + 1} {'with   ' if archived else 'without'}  {figures}", flush=True)
    print("median")
    for name in MEASURES:
        with_it = statistics.median(run[name] for run in runs[True])
        without = statistics.median(run[name] for run in runs[False])
        print(f"  {name:<16} with {with_it:5.2f}s  without {without:5.2f}s  saved {without - with_it:5.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
