#!/usr/bin/env bash
# Two `pricecurate run`s on one output, the second started OFFSET seconds after the first, for each OFFSET
# given (default: 0 2 5 10 20): exactly one may publish, the other must exit 2 with one line naming it, and
# the published dataset must load whole with `datasets.load_dataset(OUT)`.
#
#   scripts/two_runs.sh [WORKDIR] [OFFSET...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
WORK="${1:-$(mktemp -d)}"; shift || true
OFFSETS=("${@:-0 2 5 10 20}")
mkdir -p "$WORK"
"$ROOT/.venv/bin/pricecurate" sample "$WORK/in" --records 40 >/dev/null
for offset in ${OFFSETS[@]}; do
  out="$WORK/out-$offset"; rm -rf "$out"
  "$ROOT/.venv/bin/pricecurate" run --input "$WORK/in" --output "$out" --categories all --no-report --quiet \
      >"$WORK/a-$offset.out" 2>"$WORK/a-$offset.err" & first=$!
  sleep "$offset"
  "$ROOT/.venv/bin/pricecurate" run --input "$WORK/in" --output "$out" --categories all --no-report --quiet \
      >"$WORK/b-$offset.out" 2>"$WORK/b-$offset.err" & second=$!
  set +e; wait $first; a=$?; wait $second; b=$?; set -e
  rows=$("$PY" - "$out" <<'PY'
import sys, datasets
datasets.disable_progress_bars()
d = datasets.load_dataset(sys.argv[1])
print(" ".join(f"{name}={len(split)}" for name, split in sorted(d.items())))
PY
)
  refused=$(cat "$WORK/a-$offset.err" "$WORK/b-$offset.err" | grep -c "is being written by run" || true)
  echo "offset ${offset}s: exit codes $a $b; lines naming the running run: $refused; published: $rows"
done
