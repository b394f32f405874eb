"""Killed runs: the old dataset stays whole until the new one is complete; reruns recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import manifest, split_rows
from pricecurate.sample import write_sample

SPLITS = ("items", "train", "test")


def start(source, output, master: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pricecurate.cli", "run", "--config", "conf/course.yaml", "--input", str(source),
         "--output", str(output), "--categories", "all", "--master", master,
         "--set", "split.train=150", "--set", "split.test=20", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out[-4000:]
    return out


def kill_when(process: subprocess.Popen, marker: str, delay: float) -> None:
    """SIGKILL the run (driver, JVM and Python workers) shortly after it prints ``marker``."""
    for line in process.stdout:
        if marker in line:
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return
    pytest.fail(f"the run ended before printing {marker!r}")


def dataset(output) -> dict:
    return {split: split_rows(str(output), split) for split in SPLITS}


def test_sigkill_mid_write_keeps_the_old_dataset_and_the_next_run_recovers(tmp_path):
    source = tmp_path / "in"
    write_sample(source, records_per_category=250, categories=["Automotive", "Toys_and_Games", "Electronics"])
    output = tmp_path / "out"
    finish(start(source, output, "local[2]"))
    before, before_manifest = dataset(output), manifest(str(output))
    assert len(before["train"]) == 150

    for marker, delay in (("write items: started", 1.0), ("write splits: started", 0.5)):
        kill_when(start(source, output, "local[2]", "--overwrite", "--set", "seed=9"), marker, delay)
        assert dataset(output) == before and manifest(str(output)) == before_manifest
        leftovers = [name for name in os.listdir(tmp_path) if ".pricecurate-" in name]
        assert leftovers, f"killed at {marker!r} but no staging folder: the kill came too late to test anything"

    # The next run cleans up and, on one core, writes exactly what two cores wrote.
    log = finish(start(source, output, "local[1]", "--overwrite"))
    assert "left by an interrupted run" in log
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]
    assert dataset(output) == before
    assert manifest(str(output))["accounting"] == before_manifest["accounting"]
