"""The ``pricecurate`` command line's arguments: one function per sub-command."""

from __future__ import annotations

import argparse

RUN_EXAMPLES = [
    "pricecurate run --output out/sample --overwrite          # the bundled sample, course recipe",
    "pricecurate run --config conf/course.yaml --input raw/meta_categories --output out/course",
    "pricecurate run --config conf/default.yaml --input s3a://bucket/meta --output s3a://bucket/curated \\",
    "    --categories all --master spark://host:7077 --set seed=7 --set split.test=5000",
]

SAMPLE_RECORDS_PER_CATEGORY = 150


def _recipe_help() -> str:
    """The recipe's parameters with the course's values, for ``run --help``."""
    from pricecurate.rules.recipe import COURSE_2024

    shown = {key: value for key, value in COURSE_2024.parameters().items() if key != "detail_removals"}
    lines = [f"  recipe.{key} = {value!r}" for key, value in shown.items()]
    lines.append(f"  recipe.detail_removals = [{len(COURSE_2024.detail_removals)} texts removed from the details]")
    return (
        "\n\nrecipe parameters (config `recipe: {base: course-2024, max_tokens: 480, ...}` or --set recipe.KEY=VALUE;"
        " course-2024 values shown):\n" + "\n".join(lines)
    )


def _export_formats() -> tuple[str, ...]:
    from pricecurate.export.formats import FORMATS

    return FORMATS


def _export_placeholders() -> list[str]:
    from pricecurate.export.formats import PLACEHOLDERS

    return list(PLACEHOLDERS)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pricecurate",
        description="Curate Amazon Reviews 2023 product metadata into a balanced price-prediction dataset.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    _add_plan(commands)
    _add_sample(commands)
    _add_report(commands)
    _add_download(commands)
    _add_push(commands)
    _add_export(commands)
    _add_evaluate(commands)
    _add_baseline(commands)
    _add_prepare(commands)
    return parser


def _add_run(commands) -> None:
    """``run``: the curation job."""
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


def _add_plan(commands) -> None:
    """``plan``: a plan without running."""
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


def _add_sample(commands) -> None:
    """``sample``: the synthetic sample input."""
    sample = _command(
        commands, "sample", "write the bundled synthetic sample input",
        "Write a deterministic synthetic sample: one meta_<Category>.jsonl per category.",
        ["pricecurate sample data/sample", "pricecurate sample data/big --records 10000 --seed 3"],
    )
    sample.add_argument("dest", help="directory to write")
    sample.add_argument("--records", type=int, default=SAMPLE_RECORDS_PER_CATEGORY, help="records per category")
    sample.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")


def _add_report(commands) -> None:
    """``report``: the HTML report."""
    report = _command(
        commands, "report", "write plots and an HTML report for an output dataset",
        "Write OUTPUT_DIR/report/: PNG plots, report.json and one self-contained report.html. "
        "`run` does this by itself at the end.",
        ["pricecurate report out/course && xdg-open out/course/report/report.html"],
    )
    report.add_argument("output_dir", help="a pricecurate output folder (local path)")


def _add_download(commands) -> None:
    """``download``: raw files from the Hub."""
    download = _command(
        commands, "download", "fetch raw meta_<Category>.jsonl files, resuming partial downloads",
        "Download the dataset's raw metadata files into DEST, and its card as DEST/SOURCE_CARD.md (a run states "
        "the source's terms from it in the data card). Interrupted transfers resume on rerun. "
        "HF_TOKEN, when set, is sent as a bearer token, to the Hub only (huggingface.co or HF_ENDPOINT) over https.",
        ["pricecurate download --categories Automotive,Electronics raw/",
         "pricecurate download --categories all --base-url https://mirror.example/meta raw/"],
    )
    download.add_argument("dest", help="directory to write into (created if missing)")
    download.add_argument("--categories", required=True, help="comma-separated category names, or 'all'")
    download.add_argument("--base-url", help="where meta_<Category>.jsonl files live (default: the dataset's Hub repository)")


def _add_push(commands) -> None:
    """``push``: a dataset to the Hub."""
    push = _command(
        commands, "push", "upload an output dataset to the Hugging Face Hub",
        "Upload OUTPUT_DIR (data, manifest, data card) as a dataset repository. "
        "The token comes from HF_TOKEN or `huggingface-cli login`.",
        ["HF_TOKEN=hf_... pricecurate push out/course me/amazon-prices"],
    )
    push.add_argument("output_dir", help="a pricecurate output folder")
    push.add_argument("repo_id", help="dataset repository, e.g. user/amazon-prices")
    push.add_argument("--private", action="store_true", help="create the repository as private")


def _add_export(commands) -> None:
    """``export``: fine-tuning files."""
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


def _add_evaluate(commands) -> None:
    """``evaluate``: scoring predictions."""
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


def _add_baseline(commands) -> None:
    """``baseline``: the MLlib baselines."""
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


def _add_prepare(commands) -> None:
    """``prepare``: the JVM class archive."""
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
