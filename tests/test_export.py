"""pricecurate export: each format round-trips through `datasets`, every row is checked, exports are atomic."""

from __future__ import annotations

import functools
import json
import os

import pyarrow.parquet as pq
import pytest
from handoff_fixtures import row, storage_order, write_dataset

from pricecurate.cli.main import main
from pricecurate.export import build as export_module
from pricecurate.export.build import ExportError, export_dataset, resolve_templates
from pricecurate.export.formats import DEFAULT_SYSTEM, line_problem
from pricecurate.output import readback
from pricecurate.rules.recipe import PRICE_PREFIX, QUESTION
from pricecurate.tokenizer.engine import build_codec

SHORT_QUESTION = "How much does this cost?"


def _files() -> dict:
    """Two categories, Automotive's train cut into two files; prices that round half to even; one description
    that spells the price prefix itself."""
    def make(split, category, number, price, extra=""):
        description = (f"{category} thing {split} {number}\nA sturdy {category.lower()} item number {number} "
                       f"with a long enough description.{extra}")
        return row(description, price, category, f"B{split[:2].upper()}{category[:3].upper()}{number:04d}", split)

    return {
        "train": {
            "Toys_and_Games": [[make("train", "Toys_and_Games", i, p) for i, p in enumerate((12.5, 13.5, 7.25))]],
            "Automotive": [[make("train", "Automotive", 0, 99.99), make("train", "Automotive", 1, 0.5)],
                           [make("train", "Automotive", 2, 250.0, " Price is $5 off this week."),
                            make("train", "Automotive", 3, 999.49)]],
        },
        "validation": {"Automotive": [[make("validation", "Automotive", 0, 45.0)]]},
        "test": {"Toys_and_Games": [[make("test", "Toys_and_Games", 0, 19.99)]],
                 "Automotive": [[make("test", "Automotive", 0, 64.5), make("test", "Automotive", 1, 300.0)]]},
    }


FILES = _files()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tokenizer_spec):
    identity = {**tokenizer_spec.identity(), "engine": "tiktoken"}
    return write_dataset(tmp_path_factory.mktemp("handmade"), FILES, identity)


@pytest.fixture(scope="module")
def exports(dataset, tmp_path_factory):
    """Every format exported once, with token counts."""
    root = tmp_path_factory.mktemp("exports")
    return {fmt: export_dataset(str(dataset), fmt, str(root / fmt)) for fmt in
            ("chat-jsonl", "messages", "prompt-completion")}


def _load(kind: str, files: dict, tmp_path):
    import datasets

    return datasets.load_dataset(kind, data_files={k: str(v) for k, v in files.items()},
                                 cache_dir=str(tmp_path / "hf-cache"))


def _rounded(price: float) -> str:
    return f"{round(price)}.00"


def _text_from_chat(messages: list[dict], split: str) -> str:
    """The dataset text a default chat was made from: the user text with the full question, then the price line."""
    user, answer = messages[1]["content"], messages[2]["content"]
    assert user.startswith(SHORT_QUESTION + "\n\n")
    price = float(answer.removeprefix(PRICE_PREFIX))
    price_line = PRICE_PREFIX + ("" if split == "test" else _rounded(price))
    return QUESTION + user[len(SHORT_QUESTION):] + "\n\n" + price_line


def test_chat_jsonl_round_trip(exports, tmp_path):
    dest = exports["chat-jsonl"].dest
    assert sorted(os.listdir(dest)) == ["export.json", "test.jsonl", "train.jsonl", "validation.jsonl"]
    loaded = _load("json", {s: dest / f"{s}.jsonl" for s in FILES}, tmp_path)
    for split, categories in FILES.items():
        expected = storage_order(categories)
        lines = (dest / f"{split}.jsonl").read_bytes().splitlines(keepends=True)
        assert [line_problem(line) for line in lines] == [None] * len(expected)
        assert len(loaded[split]) == len(expected)
        for got, want in zip(loaded[split], expected):
            messages = got["messages"]
            assert [m["role"] for m in messages] == ["system", "user", "assistant"]
            assert messages[0]["content"] == DEFAULT_SYSTEM
            assert messages[2]["content"] == f"Price is ${want['price']:.2f}"  # the true price, two decimals
            assert "to the nearest dollar" not in messages[1]["content"]
            assert _text_from_chat(messages, split) == want["text"]


def test_messages_round_trip(exports, tmp_path):
    dest = exports["messages"].dest
    loaded = _load("parquet", {s: dest / f"{s}.parquet" for s in FILES}, tmp_path)
    chat_dest = exports["chat-jsonl"].dest
    for split, categories in FILES.items():
        expected = storage_order(categories)
        chat_lines = [json.loads(line) for line in (chat_dest / f"{split}.jsonl").read_text().splitlines()]
        assert loaded[split]["price"] == [r["price"] for r in expected]
        assert loaded[split]["category"] == [r["category"] for r in expected]
        assert loaded[split]["parent_asin"] == [r["parent_asin"] for r in expected]
        assert loaded[split]["messages"] == [line["messages"] for line in chat_lines]


def test_prompt_completion_round_trip(exports, tmp_path):
    dest = exports["prompt-completion"].dest
    loaded = _load("parquet", {s: dest / f"{s}.parquet" for s in FILES}, tmp_path)
    for split, categories in FILES.items():
        expected = storage_order(categories)
        got = loaded[split]
        assert got["price"] == [r["price"] for r in expected]
        assert got["parent_asin"] == [r["parent_asin"] for r in expected]
        assert got["completion"] == [_rounded(r["price"]) for r in expected]  # 12.5 -> "12.00", 13.5 -> "14.00"
        assert all(prompt.endswith(PRICE_PREFIX) for prompt in got["prompt"])
        if split == "test":
            assert got["prompt"] == [r["text"] for r in expected]  # the completion is there to score against
        else:
            assert [p + c for p, c in zip(got["prompt"], got["completion"])] == [r["text"] for r in expected]
    assert "Price is $5 off" in loaded["train"]["prompt"][2]  # the LAST prefix starts the completion


def _record_texts(fmt: str, path) -> list[list[str]]:
    """The texts of each exported record, read back from its file."""
    if fmt == "chat-jsonl":
        return [[m["content"] for m in json.loads(line)["messages"]] for line in path.read_text().splitlines()]
    table = pq.read_table(path).to_pylist()
    if fmt == "messages":
        return [[m["content"] for m in r["messages"]] for r in table]
    return [[r["prompt"], r["completion"]] for r in table]


def test_token_counts_are_the_tokenizers(exports, tokenizer_spec):
    codec = build_codec(tokenizer_spec.json, "tokenizers", tokenizer_spec.clean_up_spaces)  # the other engine
    for fmt, result in exports.items():
        described = json.loads((result.dest / "export.json").read_text())
        for split in FILES:
            texts = _record_texts(fmt, result.dest / described["splits"][split]["file"])
            counts = [sum(len(ids) for ids in codec.encode(group)) for group in texts]
            assert described["splits"][split]["tokens"] == {
                "min": min(counts), "mean": round(sum(counts) / len(counts), 2), "max": max(counts),
                "total": sum(counts)}, (fmt, split)
    summary = export_module.summary(exports["chat-jsonl"])
    assert "train.jsonl" in summary and "tokens per row min" in summary


def test_same_dataset_same_bytes(dataset, exports, tmp_path):
    for fmt, first in exports.items():
        again = export_dataset(str(dataset), fmt, str(tmp_path / fmt), count_tokens=False)
        for split in FILES:
            name = f"{split}.{'jsonl' if fmt == 'chat-jsonl' else 'parquet'}"
            assert (again.dest / name).read_bytes() == (first.dest / name).read_bytes(), (fmt, name)


def test_spark_reader_gives_the_same_files(spark, dataset, exports, tmp_path, monkeypatch):
    """A Hadoop URI is read through Spark; it must give the local reader's rows in the same order."""
    monkeypatch.setattr(export_module, "open_dataset", functools.partial(readback.open_dataset, use_spark=True))
    # train: two categories, one of them in two files
    result = export_dataset(str(dataset), "chat-jsonl", str(tmp_path / "spark"), ["train"], count_tokens=False)
    assert (result.dest / "train.jsonl").read_bytes() == (exports["chat-jsonl"].dest / "train.jsonl").read_bytes()


def test_refuses_to_overwrite(dataset, tmp_path):
    dest = tmp_path / "dest"
    export_dataset(str(dataset), "chat-jsonl", str(dest), ["test"], count_tokens=False)
    with pytest.raises(ExportError, match="test.jsonl already exists; pass --overwrite"):
        export_dataset(str(dataset), "chat-jsonl", str(dest), ["test"], count_tokens=False)
    (dest / "notes.txt").write_text("mine")
    export_dataset(str(dataset), "chat-jsonl", str(dest), ["test", "train"], count_tokens=False, overwrite=True)
    assert sorted(os.listdir(dest)) == ["export.json", "notes.txt", "test.jsonl", "train.jsonl"]


def _planted(monkeypatch, position: int, change) -> None:
    """Rows read from the dataset, with train row ``position`` (1-based) changed."""
    original = readback.LocalDataset.rows

    def rows(self, split, columns=readback.SPLIT_COLUMNS):
        for number, value in enumerate(original(self, split, columns), 1):
            yield change(dict(value)) if split == "train" and number == position else value

    monkeypatch.setattr(readback.LocalDataset, "rows", rows)


def _with_description(value: dict, description: str) -> dict:
    head = QUESTION + "\n\n"
    value["text"] = head + description + value["text"][value["text"].rfind("\n\n" + PRICE_PREFIX):]
    return value


@pytest.mark.parametrize("fmt, change, options, reason", [
    ("chat-jsonl", lambda v: _with_description(v, "   "), {"user": "{description}"}, "message 2 (user) is empty"),
    ("messages", lambda v: _with_description(v, "   "), {"user": "{description}"}, "message 2 (user) is empty"),
    ("chat-jsonl", lambda v: _with_description(v, "Broken \ud800 text"), {}, "not valid UTF-8"),
    ("prompt-completion", lambda v: _with_description(v, "Broken \ud800 text"), {}, "not valid UTF-8"),
    ("chat-jsonl", lambda v: _with_description(v, "long " * 400), {}, "over the limit of 1,500"),
    ("chat-jsonl", lambda v: {**v, "price": v["price"] + 7}, {}, "but the row's price is"),
], ids=["empty-chat", "empty-messages", "surrogate-chat", "surrogate-prompt", "oversize", "price-mismatch"])
def test_a_bad_row_is_refused_and_nothing_published(dataset, tmp_path, monkeypatch, fmt, change, options, reason):
    dest = tmp_path / "dest"
    dest.mkdir()
    suffix = "jsonl" if fmt == "chat-jsonl" else "parquet"
    (dest / f"train.{suffix}").write_text("the previous export")
    _planted(monkeypatch, 3, change)
    with pytest.raises(ExportError) as refused:
        export_dataset(str(dataset), fmt, str(dest), templates=resolve_templates(**options),
                       max_line_bytes=1500, count_tokens=False, overwrite=True)
    message = str(refused.value)
    assert "\n" not in message and reason in message
    third = storage_order(FILES["train"])[2]
    assert f"train row 3 (parent_asin {third['parent_asin']}, {third['category']})" in message
    assert sorted(os.listdir(dest)) == [f"train.{suffix}"]  # no other file, no staging folder left
    assert (dest / f"train.{suffix}").read_text() == "the previous export"


def test_a_refused_export_leaves_no_new_folder(dataset, tmp_path, monkeypatch):
    _planted(monkeypatch, 1, lambda v: {**v, "price": 1.0})
    with pytest.raises(ExportError):
        export_dataset(str(dataset), "chat-jsonl", str(tmp_path / "new"), count_tokens=False)
    assert not (tmp_path / "new").exists()


def test_rows_must_match_the_manifest(tmp_path):
    damaged = write_dataset(tmp_path / "out", {"test": FILES["test"]})
    (damaged / "data-20261127T000000-handmade" / "test" / "category=Automotive" / "part-00000-x.c000.snappy.parquet"
     ).unlink()
    with pytest.raises(ExportError, match="the test split has 1 rows but the manifest counts 3"):
        export_dataset(str(damaged), "prompt-completion", str(tmp_path / "dest"), count_tokens=False)
    assert not (tmp_path / "dest").exists()


def test_templates_from_yaml_and_flags(dataset, tmp_path):
    templates = tmp_path / "chat.yaml"
    templates.write_text("system: Answer with a price.\nuser: '{title} ({category})'\n")
    chosen = resolve_templates(str(templates), assistant="{rounded}")
    result = export_dataset(str(dataset), "chat-jsonl", str(tmp_path / "dest"), ["test"], chosen, count_tokens=False)
    first = json.loads((result.dest / "test.jsonl").read_text().splitlines()[0])["messages"]
    expected = storage_order(FILES["test"])[0]
    assert [m["content"] for m in first] == ["Answer with a price.", f"{expected['title']} (Automotive)",
                                             _rounded(expected["price"])]
    assert json.loads((result.dest / "export.json").read_text())["templates"]["assistant"] == "{rounded}"

    (tmp_path / "bad.yaml").write_text("sytem: typo\n")
    with pytest.raises(ExportError, match="unknown key"):
        resolve_templates(str(tmp_path / "bad.yaml"))
    with pytest.raises(ExportError, match=r"uses \{cost\}; available"):
        resolve_templates(user="{cost}")


def test_tokenizer_must_match_the_manifest(tmp_path, tokenizer_spec):
    mismatched = write_dataset(tmp_path / "out", {"test": FILES["test"]},
                               {**tokenizer_spec.identity(), "sha256": "0" * 64, "engine": "tiktoken"})
    with pytest.raises(ExportError, match="pass --no-token-count"):
        export_dataset(str(mismatched), "chat-jsonl", str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()
    result = export_dataset(str(mismatched), "chat-jsonl", str(tmp_path / "dest"), count_tokens=False)
    assert result.splits[0].tokens is None and "tokens not counted" in export_module.summary(result)


def test_cli_help_and_one_line_errors(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "examples:\n  pricecurate export out/course --format chat-jsonl" in capsys.readouterr().out

    dest = tmp_path / "dest"
    assert main(["export", str(dataset), "--format", "prompt-completion", "--dest", str(dest), "--splits", "test",
                 "--no-token-count"]) == 0
    assert "test.parquet" in capsys.readouterr().out
    for args, words in [
        (["--format", "prompt-completion", "--dest", str(dest), "--splits", "test"], "already exists"),
        (["--format", "chat-jsonl", "--dest", str(dest), "--splits", "items"], "unknown split 'items'"),
        (["--format", "chat-jsonl", "--dest", "s3a://bucket/x"], "not a local folder"),
        (["--format", "prompt-completion", "--dest", str(dest), "--system", "Hi"], "leave them out"),
        (["--format", "chat-jsonl", "--dest", str(dest), "--templates", str(tmp_path / "none.yaml")],
         "cannot read templates file"),
    ]:
        assert main(["export", str(dataset), *args]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and words in error, error
    assert main(["export", str(tmp_path / "absent"), "--format", "messages", "--dest", str(dest)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
