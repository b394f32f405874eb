"""The command line: one-line errors with a fix, exit codes, and safe overwrites."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import manifest, split_rows

from pricecurate.cli.main import main
from pricecurate.sample import write_sample


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pricecurate.cli.main", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def small_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("cli") / "in"
    write_sample(source, records_per_category=120, categories=["Automotive", "Toys_and_Games"])
    return source


def test_missing_input_is_one_line_error(tmp_path):
    result = cli("run", "--input", str(tmp_path / "absent"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "does not exist" in result.stderr and "--input" in result.stderr
    assert not (tmp_path / "out").exists()


def test_no_file_for_the_default_categories_names_them_and_the_way_to_take_every_file(tmp_path, capsys, monkeypatch):
    """The course's categories (the default config's) against an input of other ones: said before Spark starts."""
    from pricecurate.cli import commands
    from pricecurate.config import load_config

    def no_spark(*_):
        raise AssertionError("Spark started")

    monkeypatch.setattr(commands, "_session", no_spark)
    write_sample(tmp_path / "in", records_per_category=2, categories=["Books", "Gift_Cards"])
    assert main(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and said.startswith("pricecurate: error: no input files for the chosen categories")
    course = load_config("conf/course.yaml").categories
    assert len(course) == 8 and ", ".join(course) in said
    assert "meta_Books.jsonl, meta_Gift_Cards.jsonl" in said and "`--categories all` takes every file there" in said
    assert not (tmp_path / "out").exists()


def test_bad_config_key_is_one_line_error(tmp_path, small_input):
    result = cli("run", "--input", str(small_input), "--output", str(tmp_path / "out"), "--set", "balance.cap=3")
    assert result.returncode == 2 and "unknown key(s) cap" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_output_needs_overwrite_and_is_replaced_whole(spark, tmp_path, small_input, capsys):
    output = tmp_path / "out"
    args = ["run", "--input", str(small_input), "--output", str(output), "--categories", "all",
            "--set", "split.train=50", "--set", "split.test=5"]
    assert main(args) == 0
    said = capsys.readouterr()
    assert "items: started" in said.err and "summary" in said.out
    first = split_rows(str(output), "train")
    assert len(first) == 50

    first_data = output / manifest(str(output))["data"]
    (first_data / "train" / "marker.txt").write_text("from the first run")
    assert main(args) == 2  # refused: the first dataset stays as it was
    assert (first_data / "train" / "marker.txt").exists() and split_rows(str(output), "train") == first

    capsys.readouterr()
    assert main([*args, "--overwrite", "--set", "seed=1", "--quiet"]) == 0
    said = capsys.readouterr()  # --quiet: the summary only (and warnings, none here)
    assert said.err == "" and said.out.startswith("summary\n") and "records read" in said.out
    assert not first_data.exists()  # replaced whole, not merged
    assert split_rows(str(output), "train") != first
    assert manifest(str(output))["config"]["seed"] == 1
    assert [n for n in os.listdir(output) if n.startswith("data-")] == [manifest(str(output))["data"]]
    assert [n for n in os.listdir(tmp_path) if n != "out"] == []


def test_output_inside_input_is_refused(spark, tmp_path, small_input):
    assert main(["run", "--input", str(small_input), "--output", str(small_input / "out")]) == 2
    assert not (small_input / "out").exists()


def test_unexpected_metadata_file_names_are_refused(spark, tmp_path, small_input):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "meta_Automotive.jsonl").write_bytes((small_input / "meta_Automotive.jsonl").read_bytes())
    (mixed / "meta_Cars.jsonl").write_text("{}\n")
    (mixed / "notes.txt").write_text("not data: ignored and named in the manifest")
    assert main(["run", "--input", str(mixed), "--output", str(tmp_path / "out"), "--categories", "all"]) == 2
    assert not (tmp_path / "out").exists()
    (mixed / "meta_Cars.jsonl").unlink()
    (mixed / "meta_Automotive.jsonl.gz").write_bytes(b"")
    assert main(["run", "--input", str(mixed), "--output", str(tmp_path / "out"), "--categories", "all"]) == 2


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(spark, tmp_path, small_input):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["run", "--input", str(small_input), "--output", str(precious), "--overwrite"]) == 2
    assert (precious / "notes.txt").read_text() == "keep me"


def test_download_and_push_fail_clearly_offline(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_TOKEN_123")
    assert main(["download", "--categories", "Automotive", "--base-url", f"http://127.0.0.1:{closed}/raw",
                 str(tmp_path / "raw")]) == 2
    assert main(["download", "--categories", "Cars", str(tmp_path / "raw")]) == 2
    assert main(["push", str(tmp_path), "me/prices"]) == 2  # not a pricecurate output
    err = capsys.readouterr().err
    assert "meta_Automotive.jsonl" in err and "Cars" in err and "manifest.json" in err
    assert "hf_SECRET_TOKEN_123" not in err
    # Errors, and the one note that the token stays home (127.0.0.1 is not the Hub).
    assert all(line.startswith(("pricecurate: error: ", "HF_TOKEN not sent: ")) for line in err.strip().splitlines())


@pytest.mark.parametrize("command", ["run", "plan", "sample", "report", "download", "push", "export", "evaluate",
                                     "baseline", "prepare"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"pricecurate {command}" in text.replace("HF_TOKEN=hf_... ", "")


def test_prepare_beside_a_running_session_is_one_line_error(spark, tmp_path, monkeypatch, capsys):
    # The archive is written by the JVM as it exits: prepare must start (and stop) its own.
    monkeypatch.setenv("PRICECURATE_CACHE", str(tmp_path / "cache"))
    assert main(["prepare"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "pricecurate: error: a Spark session is already running in this process; run `pricecurate prepare` alone"
    assert not list((tmp_path / "cache").glob("*.jsa"))
