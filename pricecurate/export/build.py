"""``pricecurate export``: a dataset's splits as fine-tuning files, one per split, published all at once.

Rows are read split by split in the dataset's storage order (see ``readback``),
turned into records by ``export_formats``, checked, token-counted with the
dataset's own tokenizer and written in chunks of a fixed size, so the same
dataset always gives byte-identical files. Everything is written into a hidden
staging folder inside DEST first; the finished files replace their namesakes in
DEST only after every row of every split passed its checks, so a refused export
leaves DEST as it was. ``export.json`` says what the files hold.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from pricecurate.export import formats
from pricecurate.export.formats import ExportError
from pricecurate.export.tokens import TokenStats, dataset_codec, record_token_counts
from pricecurate.output.readback import Dataset, open_dataset
from pricecurate.paths import local_path
from pricecurate.rules.recipe import Recipe, from_manifest
from pricecurate.spark.fs import redact

CHUNK_ROWS = 2048  # rows per encode call and per Parquet row group; fixed, so files do not depend on the reader
DESCRIPTION = "export.json"
STAGING_PREFIX = ".export-"
ORDER = "storage order: categories by name, then each category's files by name, then rows as stored (input order)"


@dataclass
class SplitResult:
    split: str
    file: str
    rows: int
    tokens: TokenStats | None


@dataclass
class ExportResult:
    format: str
    dest: Path
    splits: list[SplitResult]


# ------------------------------------------------------------------------------------------------ templates


def read_templates(path: str) -> dict:
    """The ``system``/``user``/``assistant`` texts of a YAML file (each optional)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise ExportError(f"cannot read templates file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ExportError(f"templates file {path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    loaded = loaded or {}
    if not isinstance(loaded, dict):
        raise ExportError(f"templates file {path} must be a mapping of system, user, assistant to texts")
    unknown = sorted(set(loaded) - set(formats.ROLES))
    if unknown:
        raise ExportError(f"templates file {path} has unknown key(s) {', '.join(map(str, unknown))}; "
                          f"use {', '.join(formats.ROLES)}")
    for key, value in loaded.items():
        if not isinstance(value, str):
            raise ExportError(f"templates file {path}: {key} must be a text, got {type(value).__name__}")
    return loaded


def resolve_templates(file: str | None = None, system: str | None = None, user: str | None = None,
                      assistant: str | None = None) -> formats.Templates:
    """The defaults, then the file's texts, then the flags'; one-line error on a field no row has."""
    chosen = formats.Templates().as_dict()
    if file:
        chosen.update(read_templates(file))
    chosen.update({key: value for key, value in (("system", system), ("user", user), ("assistant", assistant))
                   if value is not None})
    templates = formats.Templates(**chosen)
    problems = formats.template_problems(templates)
    if problems:
        raise ExportError(problems[0])
    return templates


# ------------------------------------------------------------------------------------------------ writing


def _chunks(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while chunk := list(islice(rows, size)):
        yield chunk


class _JsonlFile:
    def __init__(self, path: Path):
        self._handle = open(path, "wb")

    def write(self, records: list[dict], lines: list[bytes]) -> None:
        self._handle.writelines(lines)

    def close(self) -> None:
        self._handle.close()


def _parquet_schema(fmt: str):
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    head = ([("messages", pa.list_(message))] if fmt == formats.MESSAGES
            else [("prompt", pa.string()), ("completion", pa.string())])
    return pa.schema(head + [("price", pa.float64()), ("category", pa.string()), ("parent_asin", pa.string())])


class _ParquetFile:
    def __init__(self, path: Path, fmt: str):
        import pyarrow.parquet as pq

        self._schema = _parquet_schema(fmt)
        self._writer = pq.ParquetWriter(path, self._schema, compression="zstd")

    def write(self, records: list[dict], lines: list[bytes]) -> None:
        import pyarrow as pa

        self._writer.write_table(pa.Table.from_pylist(records, schema=self._schema), row_group_size=CHUNK_ROWS)

    def close(self) -> None:
        self._writer.close()


def _record(fmt: str, row: dict, rules: Recipe, templates: formats.Templates) -> dict:
    ids = {"price": row["price"], "category": row["category"], "parent_asin": row["parent_asin"]}
    if fmt == formats.PROMPT_COMPLETION:
        return {**formats.prompt_completion(row, rules), **ids}
    messages = formats.chat(row, rules, templates)
    problem = formats.chat_problem(messages)
    if problem:
        raise formats.RowError(problem)
    return {"messages": messages} if fmt == formats.CHAT_JSONL else {"messages": messages, **ids}


def _write_split(dataset: Dataset, split: str, fmt: str, path: Path, rules: Recipe, templates: formats.Templates,
                 max_line_bytes: int, codec) -> SplitResult:
    out = _JsonlFile(path) if fmt == formats.CHAT_JSONL else _ParquetFile(path, fmt)
    stats = TokenStats() if codec is not None else None
    rows = 0
    try:
        for chunk in _chunks(dataset.rows(split), CHUNK_ROWS):
            records, lines = [], []
            for row in chunk:
                rows += 1
                try:
                    record = _record(fmt, row, rules, templates)
                    if fmt == formats.CHAT_JSONL:
                        # The line is checked as written, the way a fine-tuning service will read it.
                        line = formats.chat_line(record["messages"])
                        problem = formats.line_problem(line, max_line_bytes)
                        if problem:
                            raise formats.RowError(problem)
                        lines.append(line)
                except formats.RowError as exc:
                    raise ExportError(f"{split} row {rows:,} (parent_asin {row.get('parent_asin')}, "
                                      f"{row.get('category')}): {exc}; nothing was exported") from None
                records.append(record)
            if stats is not None:
                stats.add(record_token_counts(codec, records))
            out.write(records, lines)
    finally:
        out.close()
    return SplitResult(split, path.name, rows, stats)


# ------------------------------------------------------------------------------------------------ the export


def _chosen_splits(dataset: Dataset, splits: list[str] | None) -> list[str]:
    from pricecurate.errors import InputError

    if not splits:
        chosen = list(dataset.split_sizes())
        if not chosen:
            raise ExportError(f"dataset {redact(dataset.uri)} has no rows in any split; nothing to export")
        return chosen
    for split in splits:
        try:
            dataset.check_split(split)
        except InputError as exc:
            raise ExportError(str(exc)) from None
    return list(dict.fromkeys(splits))


def _refuse_overwrite(dest: Path, names: list[str], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [name for name in names if (dest / name).exists()]
    if existing:
        raise ExportError(f"{dest / existing[0]} already exists; "
                          "pass --overwrite to replace it or choose another --dest")


def _description(dataset: Dataset, fmt: str, rules: Recipe, templates: formats.Templates,
                 results: list[SplitResult]) -> str:
    tokenizer = (dataset.manifest.get("tokenizer") or {}).get("name")
    described = {
        "format": fmt,
        "source": {"output": redact(dataset.uri), "data": dataset.data_folder, "recipe": rules.label,
                   "tokenizer": tokenizer},
        "order": ORDER,
        "splits": {r.split: {"file": r.file, "rows": r.rows, "tokens": r.tokens.as_dict() if r.tokens else None}
                   for r in results},
    }
    if fmt != formats.PROMPT_COMPLETION:
        described["templates"] = templates.as_dict()
    return json.dumps(described, indent=2, ensure_ascii=False) + "\n"


def export_dataset(output: str, fmt: str, dest: str, splits: list[str] | None = None,
                   templates: formats.Templates | None = None, max_line_bytes: int = formats.MAX_LINE_BYTES,
                   count_tokens: bool = True, overwrite: bool = False, master: str | None = None,
                   say: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Export ``splits`` (default: every split with rows) of the dataset at ``output`` into ``dest``."""
    if fmt not in formats.FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(formats.FORMATS)}")
    if max_line_bytes <= 0:
        raise ExportError(f"--max-line-bytes must be positive, got {max_line_bytes}")
    if fmt == formats.PROMPT_COMPLETION and templates not in (None, formats.Templates()):
        raise ExportError("--system and the templates shape the chat formats; prompt-completion keeps the dataset's "
                          "own prompt, so leave them out or choose --format chat-jsonl or messages")
    templates = templates or formats.Templates()
    local = local_path(dest)
    if local is None:
        raise ExportError(f"--dest {redact(dest)} is not a local folder; export to a local path and copy the files")
    folder = Path(local)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"--dest {folder} is a file; choose a folder")

    with open_dataset(output, master) as dataset:
        rules = from_manifest(dataset.manifest)
        chosen = _chosen_splits(dataset, splits)
        names = [f"{split}.{formats.SUFFIX[fmt]}" for split in chosen] + [DESCRIPTION]
        _refuse_overwrite(folder, names, overwrite)
        codec = dataset_codec(dataset.manifest) if count_tokens else None

        created = not folder.exists()
        staging = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        done = False
        try:
            results = []
            for split, name in zip(chosen, names):
                results.append(_write_split(dataset, split, fmt, staging / name, rules, templates, max_line_bytes,
                                            codec))
                expected = dataset.split_sizes().get(split, 0)
                if results[-1].rows != expected:  # a data folder damaged or edited since it was published
                    raise ExportError(f"the {split} split has {results[-1].rows:,} rows but the manifest counts "
                                      f"{expected:,}; is the data folder {dataset.data_folder} complete?")
                say(f"{split}: {results[-1].rows:,} rows checked and written")
            (staging / DESCRIPTION).write_text(_description(dataset, fmt, rules, templates, results), encoding="utf-8")
            _refuse_overwrite(folder, names, overwrite)  # again: another export may have finished meanwhile
            for name in names:  # each file replaces its namesake in one step; export.json goes last
                os.replace(staging / name, folder / name)
            done = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if created and not done and not any(folder.iterdir()):
                folder.rmdir()  # a refused export leaves no trace, not even the folder it made
    return ExportResult(fmt, folder, results)


def summary(result: ExportResult) -> str:
    """What was written, with tokens per record (min/mean/max) per split and in total."""
    lines = [f"exported {result.format} to {result.dest}"]
    width = max(len(r.file) for r in result.splits)
    for r in result.splits:
        line = f"  {r.file:<{width}}  {r.rows:>10,} rows"
        if r.tokens is not None and r.tokens.count:
            stats = r.tokens.as_dict()
            line += (f"   tokens per row min {stats['min']:,} / mean {stats['mean']:,.1f} / max {stats['max']:,}"
                     f", total {stats['total']:,}")
        lines.append(line)
    total = f"  {'total':<{width}}  {sum(r.rows for r in result.splits):>10,} rows"
    if all(r.tokens is not None for r in result.splits):
        tokens = sum(r.tokens.total for r in result.splits)
        lines.append(f"{total}   {tokens:,} tokens (the records' texts, without special tokens or a chat template)")
    else:
        lines.append(f"{total}   (tokens not counted)")
    return "\n".join(lines)
