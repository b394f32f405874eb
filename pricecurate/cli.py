"""The ``pricecurate`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback

from pricecurate.baseline import baseline_lines
from pricecurate.config import Config, ConfigError, load_config
from pricecurate.fs import redact, redact_text
from pricecurate.leakage import checked_items
from pricecurate.read import InputError
from pricecurate.errors import OutputError

RUN_EXAMPLES = [
    "pricecurate run --output out/sample --overwrite          # the bundled sample, course recipe",
    "pricecurate run --config conf/course.yaml --input raw/meta_categories --output out/course",
    "pricecurate run --config conf/default.yaml --input s3a://bucket/meta --output s3a://bucket/curated \\",
    "    --categories all --master spark://host:7077 --set seed=7 --set split.test=5000",
]

SAMPLE_RECORDS_PER_CATEGORY = 150


def _recipe_help() -> str:
    """The recipe's parameters with the course's values, for ``run --help``."""
    from pricecurate.recipe import COURSE_2024

    shown = {key: value for key, value in COURSE_2024.parameters().items() if key != "detail_removals"}
    lines = [f"  recipe.{key} = {value!r}" for key, value in shown.items()]
    lines.append(f"  recipe.detail_removals = [{len(COURSE_2024.detail_removals)} texts removed from the details]")
    return (
        "\n\nrecipe parameters (config `recipe: {base: course-2024, max_tokens: 480, ...}` or --set recipe.KEY=VALUE;"
        " course-2024 values shown):\n" + "\n".join(lines)
    )


def _command(commands, name: str, summary: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
    """A sub-command with its examples shown by --help and a --verbose switch."""
    command = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--verbose", action="store_true",
                         help="show tracebacks on errors, and the start-up messages of Spark and libraries")
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pricecurate",
        description="Curate Amazon Reviews 2023 product metadata into a balanced price-prediction dataset.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = _command(
        commands, "run", "run the curation job",
        "Read meta_<Category>.jsonl[.gz] files, apply the recipe, balance, split and write Parquet." + _recipe_help(),
        RUN_EXAMPLES,
    )
    run.add_argument("--config", default="conf/course.yaml", help="YAML config (default: %(default)s)")
    run.add_argument(
        "--input",
        help="directory (local path or Hadoop URI) of meta_<Category>.jsonl[.gz] files; "
        "default: a bundled sample generated for all 34 categories",
    )
    run.add_argument("--output", required=True, help="output directory; created if missing")
    run.add_argument("--categories", help="comma-separated category names, or 'all' (overrides the config)")
    run.add_argument("--master", help="Spark master URL (default: local[*], or spark-submit's)")
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. seed=7, dedup=title,text,near, near.threshold=0.85, balance.slot_cap=600, "
        "balance.weights.Automotive=1, split.test=5000, recipe.max_tokens=480, "
        "tokenizer=PATH (a tokenizer.json or a folder holding one), "
        "spark.executor.memory=4g (repeatable)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing output dataset")
    run.add_argument("--wait", action="store_true",
                     help="if another run is writing the output, wait for it to finish (default: stop, exit 2)")
    run.add_argument("--no-report", action="store_true", help="skip the plots and HTML report at the end")
    run.add_argument("--log", help="also append progress lines to this file (with a status line every 30 s)")
    run.add_argument("--quiet", action="store_true", help="print only warnings, errors and the final summary")
    run.add_argument("--reuse-items", metavar="PREVIOUS_OUTPUT",
                     help="read the items a previous run made of the same inputs with the same recipe and tokenizer "
                     "instead of applying the rules again (refused, with the reason, when anything differs)")

    plan = _command(
        commands, "plan", "show what a run would read and make, without running it",
        "List the input files per category with their sizes, say which cannot be split, estimate the records, the "
        "read tasks, the recipe's kept share (on the first lines of each file), the output size and the wall time. "
        "Reads only the file listing and each file's first MB.",
        ["pricecurate plan --config conf/default.yaml --input raw/meta_categories",
         "pricecurate plan --config conf/long-context.yaml --input s3a://bucket/meta --master spark://host:7077"],
    )
    plan.add_argument("--config", default="conf/course.yaml", help="YAML config (default: %(default)s)")
    plan.add_argument("--input", help="input directory, as for run (default: the bundled sample)")
    plan.add_argument("--categories", help="comma-separated category names, or 'all' (overrides the config)")
    plan.add_argument("--master", help="Spark master URL, for its cores (default: local[*])")
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config key, as for run (repeatable)")

    sample = _command(
        commands, "sample", "write the bundled synthetic sample input",
        "Write a deterministic synthetic sample: one meta_<Category>.jsonl per category.",
        ["pricecurate sample data/sample", "pricecurate sample data/big --records 10000 --seed 3"],
    )
    sample.add_argument("dest", help="directory to write")
    sample.add_argument("--records", type=int, default=SAMPLE_RECORDS_PER_CATEGORY, help="records per category")
    sample.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")

    report = _command(
        commands, "report", "write plots and an HTML report for an output dataset",
        "Write OUTPUT_DIR/report/: PNG plots, report.json and one self-contained report.html. "
        "`run` does this by itself at the end.",
        ["pricecurate report out/course && xdg-open out/course/report/report.html"],
    )
    report.add_argument("output_dir", help="a pricecurate output folder (local path)")

    download = _command(
        commands, "download", "fetch raw meta_<Category>.jsonl files, resuming partial downloads",
        "Download the dataset's raw metadata files into DEST. Interrupted transfers resume on rerun. "
        "HF_TOKEN, when set, is sent as a bearer token, to the Hub only (huggingface.co or HF_ENDPOINT) over https.",
        ["pricecurate download --categories Automotive,Electronics raw/",
         "pricecurate download --categories all --base-url https://mirror.example/meta raw/"],
    )
    download.add_argument("dest", help="directory to write into (created if missing)")
    download.add_argument("--categories", required=True, help="comma-separated category names, or 'all'")
    download.add_argument("--base-url", help="where meta_<Category>.jsonl files live (default: the dataset's Hub repository)")

    push = _command(
        commands, "push", "upload an output dataset to the Hugging Face Hub",
        "Upload OUTPUT_DIR (data, manifest, data card) as a dataset repository. "
        "The token comes from HF_TOKEN or `huggingface-cli login`.",
        ["HF_TOKEN=hf_... pricecurate push out/course me/amazon-prices"],
    )
    push.add_argument("output_dir", help="a pricecurate output folder")
    push.add_argument("repo_id", help="dataset repository, e.g. user/amazon-prices")
    push.add_argument("--private", action="store_true", help="create the repository as private")

    export = _command(
        commands, "export", "write a dataset's splits as fine-tuning files (chat JSONL, messages, prompt-completion)",
        "Write one file per split into DEST: chat-jsonl (DEST/<split>.jsonl, {\"messages\": [system, user, assistant]} "
        "per line, as hosted fine-tuning services take it), messages (DEST/<split>.parquet, a messages column) or "
        "prompt-completion (DEST/<split>.parquet: prompt ends at the price prefix, completion is the price as the "
        "train text has it; in test too, so test rows can be scored). Rows keep the dataset's storage order. Every "
        "row is checked and the files replace DEST's only when all are good; tokens are counted with the dataset's "
        "tokenizer. Template fields: " + ", ".join("{%s}" % name for name in _export_placeholders()) + ".",
        ["pricecurate export out/course --format chat-jsonl --dest export/chat",
         "pricecurate export out/course --format prompt-completion --dest export/trl --splits train,test",
         "pricecurate export out/course --format chat-jsonl --dest export/chat --templates chat.yaml --overwrite",
         "pricecurate export out/course --format chat-jsonl --dest export/chat --system 'Answer with a price only.' "
         "--assistant-template '{prefix}{rounded}'",
         "pricecurate export hdfs:///curated/course --format messages --dest export/messages --master yarn"],
    )
    export.add_argument("output_dir", help="a pricecurate output folder (local path or Hadoop URI)")
    export.add_argument("--format", required=True, choices=_export_formats(), help="what to write")
    export.add_argument("--dest", required=True, help="local folder for <split>.jsonl or <split>.parquet")
    export.add_argument("--splits", help="comma-separated splits (default: every split with rows)")
    export.add_argument("--system", help="system message (chat formats)")
    export.add_argument("--user-template", help="user message template (default: '{question}\\n\\n{description}')")
    export.add_argument("--assistant-template", help="assistant message template (default: '{prefix}{price}')")
    export.add_argument("--templates", metavar="FILE.yaml", help="YAML with system, user and/or assistant texts; "
                        "the flags above override it")
    export.add_argument("--max-line-bytes", type=int, default=1024 * 1024,
                        help="refuse a chat-jsonl line longer than this (default: %(default)s)")
    export.add_argument("--no-token-count", action="store_true",
                        help="export without token counts (when the dataset's tokenizer cannot be loaded here)")
    export.add_argument("--overwrite", action="store_true", help="replace export files already in DEST")
    export.add_argument("--master", help="Spark master for a Hadoop URI (default: local[*])")

    evaluate = _command(
        commands, "evaluate", "score price predictions against a split (average error, RMSLE, hit rate)",
        "Score PREDICTIONS (.csv, .jsonl or .parquet with parent_asin and one of: prediction, price, or completion, "
        "a model's raw reply whose first number after the price prefix is taken; unparsable replies count as $0) "
        "against a split. Every row of the split needs exactly one prediction. Writes evaluation.json, "
        "scatter.png and evaluation.html into --out. Bands: green (a hit) error < $40 or < 20% of the true price; "
        "orange < $80 or < 40%; red the rest.",
        ["pricecurate evaluate out/course predictions.csv",
         "pricecurate evaluate out/course replies.jsonl --out out/course/evaluation/llama-ft",
         "pricecurate evaluate out/course validation.parquet --split validation"],
    )
    evaluate.add_argument("output_dir", help="a pricecurate output folder (local path or Hadoop URI)")
    evaluate.add_argument("predictions", help="predictions file: .csv, .jsonl or .parquet")
    evaluate.add_argument("--split", default="test", help="split to score against (default: %(default)s)")
    evaluate.add_argument("--out", help="folder for the evaluation files (default: OUTPUT_DIR/evaluation)")
    evaluate.add_argument("--master", help="Spark master for a Hadoop URI (default: local[*])")

    baseline = _command(
        commands, "baseline", "fit and score the baselines (mean, linear, ridge on log price) on a dataset",
        "Fit, with Spark MLlib on the train split, the mean train price, a linear regression on hashed TF-IDF of the "
        "text without its price, and a ridge regression of log(1 + price) on the same features; score each on test "
        "with evaluate's metrics; record them in the manifest, the data card and the report. `run` does the same "
        "when the config says `baseline: true` (conf/default.yaml does).",
        ["pricecurate baseline out/course", "pricecurate baseline hdfs://nn/data/prices --master yarn"],
    )
    baseline.add_argument("output_dir", help="a pricecurate output folder (local path or Hadoop URI)")
    baseline.add_argument("--master", help="Spark master (default: local[*])")

    prepare = _command(
        commands, "prepare", "build this machine's JVM class archive: every local Spark start is seconds faster",
        "Run the job's stages once on a small sample in a JVM that archives the classes it loaded (Java's class "
        "data sharing) into the pricecurate cache folder ($PRICECURATE_CACHE, else ~/.cache/pricecurate). Local "
        "sessions map the archive from then on: on a 2-core machine Spark starts about 2 s sooner and its first "
        "query runs about 1 s sooner (scripts/startup.py measures it). scripts/setup.sh runs this. A new Java or "
        "Spark leaves the archive unused until prepare runs again; PRICECURATE_JVM_ARCHIVE=off starts sessions "
        "without it.",
        ["pricecurate prepare", "pricecurate prepare --rebuild"],
    )
    prepare.add_argument("--rebuild", action="store_true", help="build it again even when it is already there")
    return parser


def _bundled_sample_dir() -> str:
    from pricecurate.sample import write_sample

    dest = os.path.join(tempfile.gettempdir(), f"pricecurate-sample-{SAMPLE_RECORDS_PER_CATEGORY}")
    write_sample(dest, records_per_category=SAMPLE_RECORDS_PER_CATEGORY)
    return dest


def _summary(result) -> str:
    manifest = result.manifest
    accounting = manifest["accounting"]
    rows = [
        ("records read", accounting["lines"]),
        ("kept", accounting["kept"]),
        *[(f"dropped: {reason}", count) for reason, count in accounting["dropped"].items()],
        *[(f"quarantined: {reason}", count) for reason, count in accounting["quarantined"].items()],
        ("after balancing", manifest["balanced"]),
        *[(f"split: {name}", size) for name, size in manifest["splits"]["sizes"].items() if size],
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"  {label:<{width}}  {value:>12,}" for label, value in rows]
    if manifest["splits"]["scaled"]:
        lines.append(f"  splits scaled down in proportion: requested {manifest['splits']['requested']}")
    if manifest["input"]["missing_categories"]:
        lines.append(f"  no input file for: {', '.join(manifest['input']['missing_categories'])}")
    lines.extend(_leakage_lines(manifest["leakage"]))
    lines.extend(baseline_lines(manifest.get("baselines")))
    tokenizer = manifest["tokenizer"]
    lines.append(f"  recipe: {manifest['recipe']['name']}; tokenizer {tokenizer['name']} "
                 f"(sha256 {tokenizer['sha256'][:12]}, engine {tokenizer['engine']})")
    lines.append(f"  output: {redact(result.output)}")
    return "summary\n" + "\n".join(lines)


def _leakage_lines(leakage: dict, shown: int = 3) -> list[str]:
    lines = [f"  leakage: {leakage['count']:,} of {checked_items(leakage)} items have a near-duplicate in train "
             f"(Jaccard >= {leakage['threshold']:g}" + ("; implied by near-duplicate removal)" if
                                                         leakage.get("implied_by_dedup") else ")")]
    for pair in leakage["examples"][:shown]:
        lines.append(f"    {pair['similarity']:.2f}  {pair['split']} {pair['title'][:50]!r} ${pair['price']:,.2f}"
                     f"  ~  train {pair['train_title'][:50]!r} ${pair['train_price']:,.2f}")
    if leakage["count"]:
        lines.append("    (all examples in manifest.json; dedup=title,text,near removes them)")
    return lines


def _is_local(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("file:")


def _preflight(input_uri: str, output_uri: str, overwrite: bool) -> None:
    """Fail fast on local paths and ``file:`` URIs, before Spark starts, with the checks the job makes again
    (on every URI) before it writes anything."""
    from pricecurate import datacard, publish
    from pricecurate.fs import LocalFiles, local_path

    if _is_local(input_uri) and not os.path.isdir(input_uri):
        what = "is not a directory" if os.path.exists(input_uri) else "does not exist"
        raise InputError(f"input directory {input_uri} {what}; pass --input DIR with meta_<Category>.jsonl files")
    output = local_path(output_uri)
    if output is not None and os.path.isdir(output):
        found = publish.survey(LocalFiles(), output.rstrip("/") or "/", datacard.render)
        publish.claim(found, output_uri, overwrite)


def _run(args) -> int:
    from pricecurate.job import run_job
    from pricecurate.progress import Progress

    overrides = list(args.overrides)
    if args.categories:
        overrides.append(f"categories={args.categories}")
    if args.reuse_items:
        overrides.append(f"reuse_items={args.reuse_items}")
    config = load_config(args.config, overrides)
    input_uri = args.input or _bundled_sample_dir()
    _preflight(input_uri, args.output, args.overwrite)
    progress = Progress(log_path=args.log, quiet=args.quiet)
    spark, owns_session = _session(args, config)
    try:
        result = run_job(spark, config, input_uri, args.output, args.overwrite, progress, wait=args.wait)
    finally:
        if owns_session:
            spark.stop()
    if not args.no_report:
        _report_after_run(result.output, progress)
    print(_summary(result))
    print(f"  wall time: {progress.elapsed:.1f}s")
    progress.close()
    return 0


def _session(args, config):
    """The SparkSession for a command, and whether the command started it (and so stops it).

    A session this command starts has its start-up noise hidden unless ``--verbose``.
    """
    from pyspark.sql import SparkSession

    from pricecurate.noise import startup_noise_filtered
    from pricecurate.session import build_session

    if SparkSession.getActiveSession() is not None:
        return build_session(args.master, config.spark), False
    if args.verbose:
        return build_session(args.master, config.spark), True
    with startup_noise_filtered():
        return build_session(args.master, config.spark), True


def _plan(args) -> int:
    from pricecurate.estimate import plan_run

    overrides = list(args.overrides) + ([f"categories={args.categories}"] if args.categories else [])
    config = load_config(args.config, overrides)
    input_uri = args.input or _bundled_sample_dir()
    spark, owns_session = _session(args, config)
    try:
        print("\n".join(plan_run(spark, config, input_uri)))
    finally:
        if owns_session:
            spark.stop()
    return 0


def _report_after_run(output_uri: str, progress) -> None:
    local = output_uri[len("file:"):] if output_uri.startswith("file:") else output_uri
    if not _is_local(local):
        progress.say(f"report skipped: {redact(output_uri)} is not local; run `pricecurate report` on a local copy")
        return
    from pricecurate.report import write_report

    with progress.stage("report"):
        html = write_report(local)
    progress.say(f"report: {html}")


def _report(args) -> int:
    from pricecurate.report import write_report

    if not os.path.isfile(os.path.join(args.output_dir, "manifest.json")):
        raise OutputError(f"{args.output_dir} has no manifest.json; pass a folder written by `pricecurate run`")
    print(write_report(args.output_dir))
    return 0


def _prepare(args) -> int:
    from pricecurate.jvm_archive import built
    from pricecurate.noise import startup_noise_filtered
    from pricecurate.prepare import build
    from pricecurate.tokenizer import cache_dir

    folder = cache_dir()
    archive = built(folder)
    if archive is not None and not args.rebuild:
        print(f"prepare: the class archive is already built: {archive}")
        return 0
    started = time.monotonic()
    if args.verbose:
        archive = build(folder)
    else:
        with startup_noise_filtered():
            archive = build(folder)
    print(f"prepare: class archive built in {time.monotonic() - started:.0f}s: {archive} "
          f"({archive.stat().st_size / 2**20:,.0f} MB)")
    return 0


def _sample(args) -> int:
    from pricecurate.sample import write_sample

    paths = write_sample(args.dest, records_per_category=args.records, seed=args.seed)
    print(f"wrote {len(paths)} files to {args.dest}")
    return 0


def _download(args) -> int:
    from pricecurate.categories import CATEGORIES
    from pricecurate.hub import DEFAULT_BASE_URL, download_categories

    names = list(CATEGORIES) if args.categories == "all" else [c.strip() for c in args.categories.split(",") if c.strip()]
    paths = download_categories(names, args.dest, base_url=args.base_url or DEFAULT_BASE_URL,
                                token=os.environ.get("HF_TOKEN"),
                                progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{len(paths)} file(s) in {args.dest}")
    return 0


def _push(args) -> int:
    from pricecurate.hub import push_dataset

    url = push_dataset(args.output_dir, args.repo_id, private=args.private,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(url)
    return 0


def _export_formats() -> tuple[str, ...]:
    from pricecurate.export_formats import FORMATS

    return FORMATS


def _export_placeholders() -> list[str]:
    from pricecurate.export_formats import PLACEHOLDERS

    return list(PLACEHOLDERS)


def _export(args) -> int:
    from pricecurate.export import export_dataset, resolve_templates, summary

    templates = resolve_templates(args.templates, args.system, args.user_template, args.assistant_template)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    result = export_dataset(args.output_dir, args.format, args.dest, splits, templates, args.max_line_bytes,
                            count_tokens=not args.no_token_count, overwrite=args.overwrite, master=args.master,
                            say=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary(result))
    return 0


def _evaluate(args) -> int:
    from pricecurate.evaluate import evaluate, summary

    print(summary(evaluate(args.output_dir, args.predictions, args.split, args.out, args.master)))
    return 0


def _baseline(args) -> int:
    from pricecurate import datacard
    from pricecurate.baseline import read_split, run_baselines
    from pricecurate.fs import HadoopFS
    from pricecurate.publish import amend
    from pricecurate.readback import open_dataset
    from pricecurate.recipe import from_manifest

    session, owns_session = _session(args, Config())
    try:
        with open_dataset(args.output_dir, args.master, use_spark=True) as dataset:  # in the session above
            spark, data = dataset.spark, dataset.data_uri
            section = run_baselines(read_split(spark, data, "train"), read_split(spark, data, "test"),
                                    dataset.manifest["config"]["seed"], from_manifest(dataset.manifest))
            amend(HadoopFS(spark), dataset.uri, {"baselines": section}, datacard.render)
    finally:
        if owns_session:
            session.stop()
    print("\n".join(baseline_lines(section)))
    print(f"  recorded in {redact(dataset.uri)}/manifest.json and its README.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    from pricecurate.export_formats import ExportError
    from pricecurate.hub import HubError
    from pricecurate.jvm_archive import ArchiveError
    from pricecurate.predictions import EvaluationError
    from pricecurate.noise import silence_libraries

    args = _parser().parse_args(argv)
    if not getattr(args, "verbose", False):
        silence_libraries()
    handler = {"run": _run, "plan": _plan, "sample": _sample, "report": _report, "download": _download, "push": _push,
               "export": _export, "evaluate": _evaluate, "baseline": _baseline, "prepare": _prepare}[
        args.command
    ]
    try:
        return handler(args)
    except (ConfigError, InputError, OutputError, HubError, ExportError, EvaluationError, ArchiveError) as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"pricecurate: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a wall of JVM frames
        if getattr(args, "verbose", False):
            traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [""])[0][:500]
        print(f"pricecurate: error: {type(exc).__name__}: {redact_text(first_line)}"
              + ("" if getattr(args, "verbose", False) else " (rerun with --verbose for the traceback)"),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
