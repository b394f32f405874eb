"""How a small run compares with Spark's own floor: a bare session against the README's sample run, alternating.

    .venv/bin/python scripts/small_runs.py [--rounds 3] [--before WORKTREE]

Each round times, as a user starts them: a bare ``local[2]`` session that starts, counts 1,000 rows and stops;
``pricecurate run --categories all --output DIR --overwrite --quiet`` on the bundled sample (5,100 records); and,
with ``--before``, the same run from another checkout (e.g. ``git worktree add /tmp/before <commit>``), run with
that checkout first on PYTHONPATH. Alternating rounds spread a shared machine's noise over all three.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BARE = ("from pricecurate.spark.session import build_session\n"
        "spark = build_session('local[2]', {}); spark.range(1000).count(); spark.stop()\n")


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"small_runs: {' '.join(command[:4])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout of pricecurate to time beside this one")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="small-runs-"))
    run = ["run", "--categories", "all", "--overwrite", "--quiet", "--output"]
    times: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        times.setdefault("bare session", []).append(timed([str(PYTHON), "-c", BARE], ROOT))
        times.setdefault("sample run", []).append(
            timed([str(PYTHON), "-m", "pricecurate.cli.main", *run, str(out / "now")], ROOT))
        if args.before:
            # The older layout's entry point was pricecurate.cli; its checkout first on the path.
            env = {**os.environ, "PYTHONPATH": str(args.before)}
            packaged = (args.before / "pricecurate" / "cli" / "main.py").exists()
            entry = "pricecurate.cli.main" if packaged else "pricecurate.cli"
            times.setdefault("sample run, --before", []).append(
                timed([str(PYTHON), "-m", entry, *run, str(out / "before")], args.before, env))
        print(f"round {round_}: " + ", ".join(f"{name} {values[-1]:.1f} s" for name, values in times.items()),
              flush=True)
    bare = statistics.median(times["bare session"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<22} median {median:6.1f} s  ({median / bare:.1f}x the bare session)")


if __name__ == "__main__":
    main()
