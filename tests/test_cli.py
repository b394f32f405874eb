"""The command line: one-line errors with a fix, exit codes, and safe overwrites."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import manifest, split_rows
from pricecurate.cli import main
from pricecurate.sample import write_sample


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pricecurate.cli", *args], capture_output=True, text=True, timeout=300)


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


def test_bad_config_key_is_one_line_error(tmp_path, small_input):
    result = cli("run", "--input", str(small_input), "--output", str(tmp_path / "out"), "--set", "balance.cap=3")
    assert result.returncode == 2 and "unknown key(s) cap" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_output_needs_overwrite_and_is_replaced_whole(spark, tmp_path, small_input):
    output = tmp_path / "out"
    args = ["run", "--input", str(small_input), "--output", str(output), "--categories", "all",
            "--set", "split.train=50", "--set", "split.test=5"]
    assert main(args) == 0
    first = split_rows(str(output), "train")
    assert len(first) == 50

    (output / "marker.txt").write_text("from the first run")
    assert main(args) == 2  # refused: the first dataset stays as it was
    assert (output / "marker.txt").exists() and split_rows(str(output), "train") == first

    assert main([*args, "--overwrite", "--set", "seed=1"]) == 0
    assert not (output / "marker.txt").exists()  # replaced whole, not merged
    assert split_rows(str(output), "train") != first
    assert manifest(str(output))["config"]["seed"] == 1
    assert [n for n in os.listdir(tmp_path) if n != "out"] == []  # no staging or retired folders left


def test_output_inside_input_is_refused(spark, tmp_path, small_input):
    assert main(["run", "--input", str(small_input), "--output", str(small_input / "out")]) == 2
    assert not (small_input / "out").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(spark, tmp_path, small_input):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["run", "--input", str(small_input), "--output", str(precious), "--overwrite"]) == 2
    assert (precious / "notes.txt").read_text() == "keep me"
