"""pricecurate deletes or replaces only what it wrote, one run writes an output at a time, and a small file cut
short by a kill never stops a later run: the publish protocol with the fake filesystems (every step killed, runs
started together), then the job itself on folders that are not its own."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import publish_fakes as fakes
import pytest
from test_publish import WORKER, readable_tag, tidy, worker

from pricecurate.output import layout, publish


def snapshot(root) -> dict[str, str]:
    """Every file and folder under ``root`` with a digest of its bytes."""
    found = {}
    for folder, names, files in os.walk(root):
        for name in names:
            found[os.path.relpath(os.path.join(folder, name), root) + "/"] = ""
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                found[os.path.relpath(os.path.join(folder, name), root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def users_folder(path) -> None:
    """A folder of someone else's: folders named like pricecurate's, a README and a manifest of their own."""
    (path / "data-raw").mkdir(parents=True)
    (path / "data-raw" / "part-0.csv").write_text("a,b\n1,2\n")
    (path / "data-20260101T000000-0123456789ab").mkdir()  # the exact name of a data folder, without its marker
    (path / "data-20260101T000000-0123456789ab" / "notes.txt").write_text("mine")
    (path / "README.md").write_text("# my project\n")
    (path / "manifest.json").write_text(json.dumps({"name": "my project", "data": "data-raw"}))


@pytest.mark.parametrize("kind", sorted(fakes.FILESYSTEMS))
def test_a_folder_that_is_not_pricecurates_is_refused_untouched(kind, tmp_path):
    out = tmp_path / "out"
    users_folder(out)
    before = snapshot(out)
    for overwrite in (False, True):
        with pytest.raises(publish.OutputError, match="is not a pricecurate dataset"):
            fakes.write_run(fakes.FILESYSTEMS[kind](), str(out), "new", overwrite=overwrite)
        assert snapshot(out) == before
    (out / "manifest.json").unlink()  # no manifest at all: still not ours
    before = snapshot(out)
    with pytest.raises(publish.OutputError, match="is not a pricecurate dataset"):
        fakes.write_run(fakes.FILESYSTEMS[kind](), str(out), "new", overwrite=True)
    assert snapshot(out) == before


def test_a_users_files_in_a_pricecurate_output_stay_and_a_foreign_card_is_refused(tmp_path):
    fs, out = fakes.LocalFS(), tmp_path / "out"
    fakes.write_run(fs, str(out), "old")
    for name in ("train", "report", "data-raw"):  # names pricecurate uses or used at the top, holding files of theirs
        (out / name).mkdir()
        (out / name / "mine.txt").write_text(name)
    theirs = {name: snapshot(out / name) for name in ("train", "report", "data-raw")}
    fakes.write_run(fs, str(out), "new", overwrite=True)
    assert fakes.published_tag(str(out)) == "new"
    assert {name: snapshot(out / name) for name in theirs} == theirs
    (out / layout.CARD).write_text("# my own notes on this dataset\n")
    before = snapshot(out)
    with pytest.raises(publish.OutputError, match="holds a README.md that is not a pricecurate data card"):
        fakes.write_run(fs, str(out), "third", overwrite=True)
    assert snapshot(out) == before


def start(kind: str, output: str, tag: str, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(WORKER), *sys.path])}
    return subprocess.Popen([sys.executable, WORKER, kind, output, tag, "0", "run", str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("kind", sorted(fakes.FILESYSTEMS))
def test_two_runs_at_once_publish_exactly_one_whole_dataset(kind, tmp_path):
    """Started together, or one while the other writes, five times at different offsets: one run publishes,
    the other stops with one line naming it, and every file the published manifest names is there."""
    for attempt, offset in enumerate((0.0, 0.02, 0.1, 0.3, 0.6)):  # the first writes for 0.8 s
        output = str(tmp_path / f"out-{attempt}")
        if attempt % 2:
            fakes.write_run(fakes.FILESYSTEMS[kind](), output, "old")  # over a published dataset
        first = start(kind, output, "new", delay=0.2)
        time.sleep(offset)
        second = start(kind, output, "third", delay=0.2)
        outs = [process.communicate(timeout=60) for process in (first, second)]
        codes = sorted(process.returncode for process in (first, second))
        assert codes == [0, 2], (offset, outs)
        refused = [out for out, _ in outs if out.startswith("refused:")]
        assert len(refused) == 1 and refused[0].count("\n") == 1 and "is being written by run" in refused[0]
        assert fakes.published_tag(output) in {"new", "third"}  # checks every file against the manifest
        assert tidy(output) == [layout.CARD, fakes.folder_for(fakes.published_tag(output)), layout.MANIFEST]


def test_a_run_whose_lease_was_taken_over_publishes_nothing(tmp_path):
    fs, output = fakes.LocalFS(), str(tmp_path / "out")
    fakes.write_run(fs, output, "old")
    claim = publish.Claim(fs, output, fakes.folder_for("new"), "slow-run", fakes.card, output)
    claim.open(overwrite=True)
    fs.write_text(f"{output}/{fakes.folder_for('new')}/train/part-0.parquet", "rows")
    claim.written()
    fs.write_text(f"{output}/{layout.LEASE}", json.dumps({  # another run took the lease over
        "run": "other", "host": "elsewhere", "pid": 1, "started": time.time(), "heartbeat": time.time()}))
    with pytest.raises(publish.OutputError, match="taken over by run other"):
        claim.publish(fakes.manifest_for("new"))
    assert fakes.published_tag(output) == "old"


def test_a_commit_checks_the_folder_still_holds_what_the_run_wrote(tmp_path):
    fs, output = fakes.LocalFS(), str(tmp_path / "out")
    folder = fakes.folder_for("new")
    claim = publish.Claim(fs, output, folder, "run", fakes.card, output)
    claim.open(overwrite=False)
    try:
        for name in fakes.FILES:
            fs.write_text(f"{output}/{folder}/{name}", fakes.content("new", name))
        claim.written()
        os.remove(f"{output}/{folder}/{fakes.FILES[0]}")  # taken by someone else's cleanup
        with pytest.raises(publish.OutputError, match="lost files this run wrote"):
            claim.publish(fakes.manifest_for("new"))
        shutil.rmtree(f"{output}/{folder}")
        with pytest.raises(publish.OutputError, match="was removed while this run wrote it"):
            claim.publish(fakes.manifest_for("new"))
    finally:
        claim.close()
    assert not os.path.exists(f"{output}/{layout.MANIFEST}")


def _with_resumable_items(fs, output: str) -> str:
    """A published dataset, and beside it the data folder of a run killed after its items."""
    fakes.write_run(fs, output, "old")
    folder = fakes.folder_for("killed")
    publish.begin(fs, output, folder, "killed")
    fs.write_text(f"{output}/{folder}/{layout.ITEMS_DONE}", json.dumps({"key": {}}))
    fs.write_text(f"{output}/{folder}/{layout.DEDUP_DONE}", json.dumps({"key": {}}))
    return folder


@pytest.mark.parametrize("kind", sorted(fakes.FILESYSTEMS))
def test_every_small_file_cut_short_is_treated_as_absent_and_said(kind, tmp_path):
    fs = fakes.FILESYSTEMS[kind]()
    old, killed = fakes.folder_for("old"), fakes.folder_for("killed")
    small = [layout.MANIFEST, layout.CARD, f"{old}/{layout.MANIFEST}", f"{old}/{layout.MARKER}",
             f"{killed}/{layout.ITEMS_DONE}", f"{killed}/{layout.DEDUP_DONE}", f"{killed}/{layout.MARKER}"]
    for name in small:
        for cut in ("empty", "half"):
            output = str(tmp_path / f"{name.replace('/', '_')}-{cut}")
            _with_resumable_items(fs, output)
            path = os.path.join(output, name)
            with open(path, "rb") as handle:
                data = handle.read()
            with open(path, "wb") as handle:
                handle.write(b"" if cut == "empty" else data[: len(data) // 2])
            done = worker(kind, output, "new", 0, "run")
            assert done.returncode == 0, (name, cut, done.stdout, done.stderr)
            assert fakes.published_tag(output) == "new", (name, cut)
            assert tidy(output) == [layout.CARD, fakes.folder_for("new"), layout.MANIFEST], (name, cut)
            if name.endswith(layout.MANIFEST) or name.endswith(layout.ITEMS_DONE):
                assert "cut short or unreadable" in done.stderr, (name, cut, done.stderr)
    # The lease of a killed run, cut short: judged by its file's age (stale after the timeout).
    output = str(tmp_path / "lease")
    fakes.write_run(fs, output, "old")
    with open(os.path.join(output, layout.LEASE), "w") as handle:
        handle.write('{"run": "kil')
    os.utime(os.path.join(output, layout.LEASE), (time.time() - 3600, time.time() - 3600))
    done = worker(kind, output, "new", 0, "run")
    assert done.returncode == 0 and "took over the lease" in done.stderr, done.stderr
    assert fakes.published_tag(output) == "new"


def _legacy_beside(parent, kind_of_leftover: str = "old") -> str:
    """An earlier version's dataset moved aside by its rename-based publish, with no dataset at the output."""
    from test_publish import _legacy_dataset

    _legacy_dataset(parent / f".ds.pricecurate-{kind_of_leftover}-abc123", "previous")
    return str(parent / "ds")


@pytest.mark.parametrize("kind", sorted(fakes.FILESYSTEMS))
def test_restoring_an_earlier_versions_dataset_survives_a_kill_at_every_step_and_a_killed_recovery(kind, tmp_path):
    state = tmp_path / "state"
    _legacy_beside(state)
    count = tmp_path / "count"
    shutil.copytree(state, count)
    done = worker(kind, str(count / "ds"), "-", 0, "recover")
    assert done.returncode == 0, done.stderr
    total = int(done.stdout)
    assert total > 5  # copied object by object: there is something to kill between
    for kill_at in range(1, total + 1):
        parent = tmp_path / f"kill-{kill_at}"
        shutil.copytree(state, parent)
        killed = worker(kind, str(parent / "ds"), "-", kill_at, "recover")
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        if kill_at == total // 2 and kind == "object-store":  # mid-copy: its recovery killed at each step too
            probe = tmp_path / f"probe-{kill_at}"
            shutil.copytree(parent, probe)
            for second in range(1, int(worker(kind, str(probe / "ds"), "-", 0, "recover").stdout) + 1):
                twice = tmp_path / f"kill-{kill_at}-{second}"
                shutil.copytree(parent, twice)
                assert worker(kind, str(twice / "ds"), "-", second, "recover").returncode == -signal.SIGKILL
                assert worker(kind, str(twice / "ds"), "-", 0, "recover").returncode == 0
                assert fakes.published_tag(str(twice / "ds")) == "previous", (kill_at, second)
                assert sorted(os.listdir(twice)) == ["ds"], (kill_at, second)
        assert worker(kind, str(parent / "ds"), "-", 0, "recover").returncode == 0
        assert fakes.published_tag(str(parent / "ds")) == "previous", kill_at
        assert sorted(os.listdir(parent)) == ["ds"], (kill_at, os.listdir(parent))
        assert readable_tag(str(parent / "ds")) == "previous"


def test_an_earlier_versions_folders_without_the_marker_are_still_recognised(tmp_path):
    """Data folders of versions before the marker: a complete one (its manifest names it) is published by
    recovery, and one holding finished items is kept for resuming."""
    fs, output = fakes.LocalFS(), str(tmp_path / "out")
    complete, items = fakes.folder_for("old"), fakes.folder_for("killed")
    for name in fakes.FILES:
        fs.write_text(f"{output}/{complete}/{name}", fakes.content("old", name))
    fs.write_text(f"{output}/{complete}/{layout.MANIFEST}", json.dumps({**fakes.manifest_for("old"), "data": complete,
                                                                         "recipe": {}, "config": {}, "accounting": {}}))
    fs.write_text(f"{output}/{items}/{layout.ITEMS_DONE}", json.dumps({"key": {}}))
    assert publish.resumable(fs, output) == items
    said = publish.recover(fs, output, fakes.card)
    assert said[0] == f"published {complete}, which an interrupted run had finished"
    assert fakes.published_tag(output) == "old"


def test_recovery_leaves_a_lease_file_another_run_is_writing_and_removes_an_old_one(tmp_path):
    """The holder's recovery removes the temp files interrupted runs left, but not the lease's temp file of a run
    taking the lease at that moment (removed, that run failed with a traceback instead of one line naming the
    holder: seen in the two-runs test); one older than the lease timeout is an interrupted run's and goes."""
    from pricecurate.output.lease import timeout_seconds
    from pricecurate.spark.fs import temp_name

    fs = fakes.LocalFS()
    output = str(tmp_path / "out")
    fakes.write_run(fs, output, "old")
    taking = os.path.join(output, temp_name(layout.LEASE))  # another run's, between its write and its link
    left = os.path.join(output, temp_name(layout.MANIFEST))  # a run killed while publishing
    for path in (taking, left):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("{}")
    said = publish.recover(fs, output, fakes.card)
    assert os.path.exists(taking) and not os.path.exists(left)
    assert said == [f"removed {os.path.basename(left)}, a file an interrupted run was writing"]
    long_ago = time.time() - 2 * timeout_seconds()
    os.utime(taking, (long_ago, long_ago))
    assert publish.recover(fs, output, fakes.card) == [
        f"removed {os.path.basename(taking)}, a file an interrupted run was writing"]
    assert not os.path.exists(taking)
