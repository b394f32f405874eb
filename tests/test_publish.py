"""Publishing never leaves the output without a complete dataset: SIGKILL after every step, on a local
filesystem and on an object store whose renames are copies; leftovers of the earlier publish are restored."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import publish_fakes as fakes
import pytest

from pricecurate.output import layout, publish

WORKER = os.path.abspath(fakes.__file__)


def worker(kind: str, output: str, tag: str, kill_at: int, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(WORKER), *sys.path])}
    return subprocess.run([sys.executable, WORKER, kind, output, tag, str(kill_at), mode],
                          capture_output=True, text=True, env=env, timeout=60)


def steps(kind: str, state: str, scratch: str, tag: str, mode: str) -> int:
    """How many steps a worker takes from ``state`` when nothing kills it."""
    shutil.copytree(state, scratch)
    done = worker(kind, scratch, tag, 0, mode)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(scratch)
    return int(done.stdout)


def killed_at_each_step(kind: str, state: str, work: str, tag: str, mode: str):
    """For every step of a worker started from ``state``: the output as that step's SIGKILL left it."""
    for kill_at in range(1, steps(kind, state, f"{work}-count", tag, mode) + 1):
        output = f"{work}-{kill_at}"
        shutil.copytree(state, output)
        done = worker(kind, output, tag, kill_at, mode)
        assert done.returncode == -signal.SIGKILL, (kill_at, done.returncode, done.stderr)
        yield kill_at, output


def readable_tag(output: str) -> str | None:
    """What a reader finds between a kill and the next run: the folders the manifest and the card name
    are both complete (the card may still name the previous one)."""
    with open(os.path.join(output, layout.MANIFEST), encoding="utf-8") as handle:
        manifest = json.load(handle)
    for folder in (manifest["data"], open(os.path.join(output, layout.CARD)).read().split(" in ")[-1].strip()):
        with open(os.path.join(output, folder, layout.MANIFEST), encoding="utf-8") as handle:
            named = json.load(handle)
        for name in named["files"]:
            assert os.path.exists(os.path.join(output, folder, name)), (folder, name)
    return manifest["tag"]


def tidy(output: str) -> list[str]:
    return sorted(os.listdir(output))


@pytest.mark.parametrize("kind", sorted(fakes.FILESYSTEMS))
def test_a_kill_after_any_step_leaves_the_old_or_the_new_dataset_and_the_next_run_one_of_them(kind, tmp_path):
    old = str(tmp_path / "old")
    fakes.write_run(fakes.FILESYSTEMS[kind](), old, "old")
    seen = set()
    for kill_at, output in killed_at_each_step(kind, old, str(tmp_path / "run"), "new", "run"):
        assert readable_tag(output) in {"old", "new"}, kill_at
        # The next run's recovery, itself killed after each of its steps, then left to finish (on the object
        # store, whose recovery takes the most steps).
        if kind == "object-store":
            for again, recovered in killed_at_each_step(kind, output, f"{output}-recover", "-", "recover"):
                assert readable_tag(recovered) in {"old", "new"}, (kill_at, again)
        assert worker(kind, output, "-", 0, "recover").returncode == 0
        tag = fakes.published_tag(output)
        seen.add(tag)
        folder = fakes.folder_for(tag)
        assert tidy(output) == [layout.CARD, folder, layout.MANIFEST], (kill_at, tidy(output))
        assert tidy(os.path.join(output, folder)) == [layout.MARKER, "items", layout.MANIFEST, "test", "train"]
    assert seen == {"old", "new"}  # kills before the commit point keep the old, after it the new


def test_a_run_killed_before_its_first_publish_leaves_nothing_behind(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for kill_at, output in killed_at_each_step("object-store", str(empty), str(tmp_path / "run"), "new", "run"):
        assert worker("object-store", output, "-", 0, "recover").returncode == 0
        tag = fakes.published_tag(output)
        assert tag in {None, "new"}
        assert tidy(output) == ([] if tag is None else [layout.CARD, fakes.folder_for("new"), layout.MANIFEST])


def _legacy_dataset(path, tag: str) -> None:
    """A dataset as earlier versions published it: flat, its manifest without ``data``."""
    for name in fakes.FILES:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(fakes.content(tag, name))
    (path / layout.MANIFEST).write_text(json.dumps({**fakes.manifest_for(tag), "recipe": {}, "config": {}, "accounting": {}}))
    (path / layout.CARD).write_text(f"# {tag}\n\nBuilt by pricecurate from Amazon Reviews 2023 product metadata\n")


def test_a_dataset_moved_aside_by_an_interrupted_earlier_publish_is_restored_not_deleted(tmp_path):
    retired = tmp_path / ".ds.pricecurate-old-abc123"
    _legacy_dataset(retired, "previous")
    said = publish.recover(fakes.LocalFS(), str(tmp_path / "ds"), fakes.card)
    assert said == [f"restored the dataset in {retired.name}, which an interrupted publish had left beside ds"]
    assert fakes.published_tag(str(tmp_path / "ds")) == "previous"
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_of_earlier_leftovers_a_finished_staging_folder_wins_and_incomplete_ones_go(tmp_path):
    _legacy_dataset(tmp_path / ".ds.pricecurate-old-aaa", "previous")
    _legacy_dataset(tmp_path / ".ds.pricecurate-staging-bbb", "finished")
    (tmp_path / ".ds.pricecurate-staging-ccc" / "train").mkdir(parents=True)  # no manifest: incomplete
    said = publish.recover(fakes.LocalFS(), str(tmp_path / "ds"), fakes.card)
    assert json.loads((tmp_path / "ds" / layout.MANIFEST).read_text())["tag"] == "finished"
    assert sorted(os.listdir(tmp_path)) == ["ds"]
    assert len(said) == 3


def test_a_complete_leftover_stays_when_the_output_holds_something_else(tmp_path):
    _legacy_dataset(tmp_path / ".ds.pricecurate-old-aaa", "previous")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    said = publish.recover(fakes.LocalFS(), str(tmp_path / "ds"), fakes.card)
    assert (tmp_path / ".ds.pricecurate-old-aaa" / layout.MANIFEST).exists()
    assert said and "left .ds.pricecurate-old-aaa in place" in said[0]
    assert os.listdir(tmp_path / "ds") == ["notes.txt"]


def test_publishing_over_an_earlier_flat_dataset_removes_its_folders_after_the_commit(tmp_path):
    _legacy_dataset(tmp_path / "ds", "previous")
    fs = fakes.LocalFS()
    fakes.write_run(fs, str(tmp_path / "ds"), "new")
    assert fakes.published_tag(str(tmp_path / "ds")) == "new"
    assert tidy(str(tmp_path / "ds")) == [layout.CARD, fakes.folder_for("new"), layout.MANIFEST]


def test_a_failed_step_on_hadoop_leaves_a_dataset_the_next_recovery_completes(spark, tmp_path):
    """The job's filesystem (Hadoop's local one): a failure after each step, then recovery."""
    from pricecurate.spark.fs import HadoopFS

    hadoop = HadoopFS(spark)
    old = str(tmp_path / "old")
    fakes.write_run(hadoop, old, "old")
    taken = 0

    def count(_name: str) -> None:
        nonlocal taken
        taken += 1

    publish.after_step = count
    try:
        fakes.write_run(hadoop, f"{old}-count", "new")
    finally:
        publish.after_step = None
    shutil.rmtree(f"{old}-count")
    for fail_at in range(1, taken + 1):
        output = str(tmp_path / f"run-{fail_at}")
        shutil.copytree(old, output)
        calls = 0

        def fail(_name: str) -> None:
            nonlocal calls
            calls += 1
            if calls == fail_at:
                raise RuntimeError("stopped")

        publish.after_step = fail
        try:
            with pytest.raises(RuntimeError, match="stopped"):
                fakes.write_run(hadoop, output, "new")
        finally:
            publish.after_step = None
        publish.recover(hadoop, output, fakes.card)
        assert fakes.published_tag(output) in {"old", "new"}, fail_at
        assert len([n for n in os.listdir(output) if n.startswith(layout.DATA_PREFIX)]) == 1
