"""Killed runs: the old dataset stays whole until the new one is complete; reruns recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import manifest, split_rows

from devtools.near_quality import write_planted
from pricecurate.sample import write_sample

SPLITS = ("items", "train", "test")
NEAR = ("--set", "dedup=title,text,near")  # the runs that finish: their groups must not depend on the cores
# At most two items per $1 slot: balancing draws, so the resumed run must make the same cut to match. The
# splits still get all they ask for (the cut leaves about 150 items).
CUT = ("--set", "balance.slot_cap=2")
TRAIN, TEST = 120, 20


def start(source, output, master: str, *extra: str) -> subprocess.Popen:
    log = open(output.parent / f"run-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "pricecurate.cli.main", "run", "--config", "conf/course.yaml", "--input", str(source),
         "--output", str(output), "--categories", "all", "--master", master, "--no-report",
         "--set", f"split.train={TRAIN}", "--set", f"split.test={TEST}", *CUT, *extra],
        stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    process.log = log
    return process


def finish(process: subprocess.Popen) -> str:
    process.wait(timeout=300)
    process.log.seek(0)
    out = process.log.read()
    assert process.returncode == 0, out[-4000:]
    return out


def staged(output, part: str) -> bool:
    """A new run's data folder exists and Spark has begun writing ``part`` (items, train...) into it."""
    published = manifest(str(output))["data"]
    for name in os.listdir(output):
        if name.startswith("data-") and name != published and os.path.isdir(os.path.join(output, name, part)):
            return True
    return False


def kill_when_writing(process: subprocess.Popen, output, part: str) -> None:
    """SIGKILL the run (driver, JVM and Python workers) as soon as it is writing ``part``."""
    deadline = time.monotonic() + 240
    while not staged(output, part):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the run ended or stalled before writing {part}")
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def dataset(output) -> dict:
    return {split: split_rows(str(output), split) for split in SPLITS}


def test_sigkill_mid_write_keeps_the_old_dataset_and_the_next_run_recovers(spark, tmp_path):
    from pricecurate.config import load_config
    from pricecurate.pipeline.job import run_job

    source = tmp_path / "in"
    write_sample(source, records_per_category=150, categories=["Automotive", "Toys_and_Games", "Electronics"])
    write_planted(source / "meta_Gift_Cards.jsonl", bases=8)  # near-duplicates: groups must not depend on cores
    output = tmp_path / "out"
    # The first dataset, made in the tests' session (two cores, like the killed run; a JVM start saved).
    run_job(spark, load_config("conf/course.yaml", [
        "categories=all", f"split.train={TRAIN}", f"split.test={TEST}", CUT[1], NEAR[1]]), str(source), str(output))
    before, before_manifest = dataset(output), manifest(str(output))
    assert len(before["train"]) == TRAIN and not before_manifest["splits"]["scaled"]
    assert before_manifest["accounting"]["kept"] > before_manifest["balanced"]  # the cut dropped items
    assert before_manifest["near_duplicates"]["groups"] >= 8

    # Killed while Spark writes the Parquet files (each later step of publishing is killed in test_publish.py).
    kill_when_writing(start(source, output, "local[2]", "--overwrite", "--set", "seed=9"), output, "_spark_output")
    assert dataset(output) == before and manifest(str(output)) == before_manifest

    # The killed run had finished its items (the write comes after): the next run, on one core, resumes from
    # them, deduplicates and balances them anew, writes exactly what two cores wrote, and then cleans up.
    [killed] = [n for n in os.listdir(output) if n.startswith("data-") and n != before_manifest["data"]]
    log = finish(start(source, output, "local[1]", "--overwrite", *NEAR))
    assert f"kept the items {killed} holds" in log and f"resuming: the items in {killed}" in log
    assert manifest(str(output))["spark"]["rule_records"] == 0
    assert manifest(str(output))["curation"]["reused_from"].endswith(killed)
    assert sorted(n for n in os.listdir(tmp_path) if not n.endswith(".log")) == ["in", "out"]
    visible = sorted(name for name in os.listdir(output) if not name.startswith("."))  # not Hadoop's .crc files
    assert visible == ["README.md", manifest(str(output))["data"], "manifest.json"]
    assert dataset(output) == before
    assert manifest(str(output))["accounting"] == before_manifest["accounting"]
    assert manifest(str(output))["balanced_by_price_slot"] == before_manifest["balanced_by_price_slot"]
    assert manifest(str(output))["near_duplicates"] == before_manifest["near_duplicates"]
