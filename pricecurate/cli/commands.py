"""What each ``pricecurate`` sub-command does, once its arguments are parsed."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

from pricecurate.cli.parser import SAMPLE_RECORDS_PER_CATEGORY
from pricecurate.config import Config, load_config
from pricecurate.errors import InputError, OutputError
from pricecurate.evaluate.baseline import baseline_lines
from pricecurate.paths import local_path
from pricecurate.report.sections import checked_items
from pricecurate.spark.fs import redact


def _bundled_sample_dir() -> str:
    from pricecurate.sample import shared_sample

    return str(shared_sample(tempfile.gettempdir(), SAMPLE_RECORDS_PER_CATEGORY))


def summary(result) -> str:
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
    return "://" not in uri and not uri.startswith("file:")  # a plain path: checked here before Spark starts


def _preflight(input_uri: str, output_uri: str, overwrite: bool, categories: list[str] | str) -> None:
    """Fail fast on local paths and ``file:`` URIs, before Spark starts, with the checks the job makes again
    (on every URI) before it writes anything."""
    from pricecurate.output import publish
    from pricecurate.paths import local_path
    from pricecurate.report import card as datacard
    from pricecurate.spark.fs import LocalFiles

    if _is_local(input_uri) and not os.path.isdir(input_uri):
        what = "is not a directory" if os.path.exists(input_uri) else "does not exist"
        raise InputError(f"input directory {input_uri} {what}; pass --input DIR with meta_<Category>.jsonl files")
    if _is_local(input_uri):
        from pricecurate.pipeline.read import discover

        discover(LocalFiles(), input_uri, categories)  # no file for the chosen categories: said before Spark starts
    output = local_path(output_uri)
    if output is not None and os.path.isdir(output):
        found = publish.survey(LocalFiles(), output.rstrip("/") or "/", datacard.render)
        publish.claim(found, output_uri, overwrite)


def run(args) -> int:
    from pricecurate.pipeline.job import run_job
    from pricecurate.pipeline.progress import Progress

    overrides = list(args.overrides)
    if args.categories:
        overrides.append(f"categories={args.categories}")
    if args.reuse_items:
        overrides.append(f"reuse_items={args.reuse_items}")
    config = load_config(args.config, overrides)
    input_uri = args.input or _bundled_sample_dir()
    _preflight(input_uri, args.output, args.overwrite, config.categories)
    progress = Progress(log_path=args.log, quiet=args.quiet)
    if not args.no_report:
        # Its libraries (matplotlib, pandas) load in half a second or more, while the driver mostly waits on Spark.
        threading.Thread(target=_load_report_libraries, name="report-imports", daemon=True).start()
    spark, owns_session = _session(args, config, input_uri)
    try:
        result = run_job(spark, config, input_uri, args.output, args.overwrite, progress, wait=args.wait)
    except BaseException:
        if owns_session:
            spark.stop()
        raise
    # Stopping Spark takes a second or two, and the report reads only the written files: one runs beside the other.
    stopping = threading.Thread(target=spark.stop, name="spark-stop") if owns_session else None
    if stopping is not None:
        stopping.start()
    try:
        if not args.no_report:
            _report_after_run(result.output, progress)
    finally:
        if stopping is not None:
            stopping.join()
    print(summary(result))
    print(f"  wall time: {progress.elapsed:.1f}s")
    progress.close()
    return 0


def _session(args, config, input_uri: str | None = None):
    """The SparkSession for a command, and whether the command started it (and so stops it); a ``session.short_run``
    compiles with C1 only.

    A session this command starts has its start-up noise hidden unless ``--verbose``.
    """
    from pyspark.sql import SparkSession

    from pricecurate.pipeline.reuse import marks_apply
    from pricecurate.spark.noise import startup_noise_filtered
    from pricecurate.spark.session import build_session, short_run

    known_marks = bool(config.reuse_items) and marks_apply(config.reuse_items, config.dedup, config.near, config.seed)
    quick = short_run(config, input_uri, known_marks)
    if SparkSession.getActiveSession() is not None:
        return build_session(args.master, config.spark, quick_compiler=quick), False
    if args.verbose:
        return build_session(args.master, config.spark, quick_compiler=quick), True
    with startup_noise_filtered():
        return build_session(args.master, config.spark, quick_compiler=quick), True


def plan(args) -> int:
    from pricecurate.pipeline.estimate import plan_run

    overrides = list(args.overrides) + ([f"categories={args.categories}"] if args.categories else [])
    config = load_config(args.config, overrides)
    input_uri = args.input or _bundled_sample_dir()
    spark, owns_session = _session(args, config, input_uri)
    try:
        print("\n".join(plan_run(spark, config, input_uri)))
    finally:
        if owns_session:
            spark.stop()
    return 0


def _load_report_libraries() -> None:
    try:
        import pricecurate.report.build  # noqa: F401
    except Exception:  # noqa: BLE001 - the report's own import says what is wrong, when it runs
        pass


def _report_after_run(output_uri: str, progress) -> None:
    local = local_path(output_uri)
    if local is None:
        progress.say(f"report skipped: {redact(output_uri)} is not local; run `pricecurate report` on a local copy")
        return
    from pricecurate.report.build import write_report

    with progress.stage("report"):
        html = write_report(local)
    progress.say(f"report: {html}")


def report(args) -> int:
    from pricecurate.report.build import write_report

    if not os.path.isfile(os.path.join(args.output_dir, "manifest.json")):
        raise OutputError(f"{args.output_dir} has no manifest.json; pass a folder written by `pricecurate run`")
    print(write_report(args.output_dir))
    return 0


def prepare(args) -> int:
    from pricecurate.cli.prepare import build
    from pricecurate.paths import cache_dir
    from pricecurate.spark import local_fs
    from pricecurate.spark.jvm_archive import built
    from pricecurate.spark.noise import startup_noise_filtered

    folder = cache_dir()
    # First: local sessions put it on the class path, which the archive is made for.
    print(f"prepare: {local_fs.build(folder)[1]}")
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


def sample(args) -> int:
    from pricecurate.sample import write_sample

    paths = write_sample(args.dest, records_per_category=args.records, seed=args.seed)
    print(f"wrote {len(paths)} files to {args.dest}")
    return 0


def download(args) -> int:
    from pricecurate.output.hub import DEFAULT_BASE_URL, download_categories, download_source_card
    from pricecurate.rules.categories import CATEGORIES

    names = list(CATEGORIES) if args.categories == "all" else [c.strip() for c in args.categories.split(",") if c.strip()]
    where = {"base_url": args.base_url or DEFAULT_BASE_URL, "token": os.environ.get("HF_TOKEN"),
             "progress": lambda line: print(line, file=sys.stderr, flush=True)}
    paths = download_categories(names, args.dest, **where)
    card = download_source_card(args.dest, **where)  # the source's terms, for the data card; a warning if not had
    print(f"{len(paths)} file(s) in {args.dest}" + (f", and the source's card as {card.name}" if card else ""))
    return 0


def push(args) -> int:
    from pricecurate.output.hub import push_dataset

    url = push_dataset(args.output_dir, args.repo_id, private=args.private,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(url)
    return 0


def export(args) -> int:
    from pricecurate.export.build import export_dataset, resolve_templates, summary

    templates = resolve_templates(args.templates, args.system, args.user_template, args.assistant_template)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    result = export_dataset(args.output_dir, args.format, args.dest, splits, templates, args.max_line_bytes,
                            count_tokens=not args.no_token_count, overwrite=args.overwrite, master=args.master,
                            say=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary(result))
    return 0


def evaluate(args) -> int:
    from pricecurate.evaluate.score import evaluate, summary

    print(summary(evaluate(args.output_dir, args.predictions, args.split, args.out, args.master)))
    return 0


def baseline(args) -> int:
    from pricecurate.evaluate.baseline import read_split, run_baselines
    from pricecurate.output.publish import amend
    from pricecurate.output.readback import open_dataset
    from pricecurate.report import card as datacard
    from pricecurate.rules.recipe import from_manifest
    from pricecurate.spark.fs import HadoopFS

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


BY_NAME = {"run": run, "plan": plan, "sample": sample, "report": report, "download": download, "push": push,
           "export": export, "evaluate": evaluate, "baseline": baseline, "prepare": prepare}
