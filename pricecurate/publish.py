"""Publishing a dataset so that no kill, on any filesystem, leaves the output without one.

An output folder holds:

    OUTPUT/manifest.json       the commit point: ``data`` names the published data folder
    OUTPUT/README.md           the data card, whose configs point into that folder
    OUTPUT/data-<time>-<id>/   one run's datasets; complete once its own manifest.json exists

A run writes its data folder beside the published one and writes that folder's
manifest last; it then rewrites the top manifest (one small file: on an object
store a single PUT), then the card, and only then deletes older data folders,
each manifest first. No step renames a folder, so an object store, where a
rename is a copy and a delete of every file, is as safe as HDFS.

``recover`` runs before every run: it publishes the newest complete data folder
when the top manifest does not (a run killed after finishing its data), rewrites
a card that does not match the manifest, and deletes data folders that are
incomplete or superseded, except the newest incomplete one whose items are
complete (``ITEMS_DONE``): a later run with the same inputs, recipe and
tokenizer resumes from them, and its publish removes the folder. Leftovers of the rename-based publish of earlier
versions (``.<name>.pricecurate-*`` beside the output) are restored, never
deleted while they hold the only dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Callable
from typing import Protocol

MANIFEST = "manifest.json"
CARD = "README.md"
DATA_PREFIX = "data-"
DATA_KEY = "data"  # the manifest's name for its data folder
LEGACY_MARK = ".pricecurate-"  # earlier versions staged and retired datasets in .<name>.pricecurate-<kind>-<id>
LEGACY_DATASETS = ("items", "train", "validation", "test", "quarantine")  # at the top of an earlier-version output
DERIVED = ("report",)  # made from the published dataset (``pricecurate report``): stale once it is replaced
ITEMS_DONE = "curated.json"  # in a data folder: the run finished its items (``pricecurate.reuse``), written last
DEDUP_DONE = "deduplicated.json"  # ... and their deduplication, written after its duplicates

# Called with the name of each publish step once it is done: tests kill the process there.
after_step: Callable[[str], None] | None = None


class FileSystem(Protocol):
    """What publishing needs of a filesystem (``fs.HadoopFS`` in the job)."""

    def exists(self, uri: str) -> bool: ...
    def is_dir(self, uri: str) -> bool: ...
    def list(self, uri: str) -> list: ...  # entries with .uri, .name, .is_dir
    def delete(self, uri: str) -> None: ...
    def rename(self, source: str, target: str) -> None: ...
    def write_text(self, uri: str, text: str) -> None: ...
    def read_text(self, uri: str) -> str: ...


def data_folder_name(started: dt.datetime, run_id: str) -> str:
    """A new data folder's name: later runs sort later."""
    return f"{DATA_PREFIX}{started.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S}-{run_id}"


def _step(name: str) -> None:
    if after_step is not None:
        after_step(name)


def _read(fs: FileSystem, uri: str) -> str | None:
    try:
        return fs.read_text(uri)
    except Exception:  # noqa: BLE001 - a missing file is as good as none, whatever the filesystem raises
        return None


def _manifest(fs: FileSystem, uri: str) -> dict | None:
    """The manifest at ``uri``, or None when it is missing or unreadable (cut short by a kill)."""
    try:
        value = json.loads(_read(fs, uri) or "")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def data_prefix(manifest: dict) -> str:
    """Where the datasets are, relative to the output folder ("" for an earlier version's flat layout)."""
    return f"{manifest[DATA_KEY]}/" if manifest.get(DATA_KEY) else ""


def published(fs: FileSystem, output: str) -> str | None:
    """The data folder the output's manifest names (None: no dataset, or an earlier version's flat one)."""
    manifest = _manifest(fs, f"{output}/{MANIFEST}")
    return manifest.get(DATA_KEY) if manifest else None


def _data_folders(fs: FileSystem, output: str) -> list:
    if not fs.is_dir(output):
        return []
    return [e for e in fs.list(output) if e.is_dir and e.name.startswith(DATA_PREFIX)]


def publish(fs: FileSystem, output: str, folder: str, manifest: dict, card: Callable[[dict], str]) -> list[str]:
    """Make ``output/folder`` (its datasets written) the published dataset; return what was removed."""
    text = json.dumps({**manifest, DATA_KEY: folder}, indent=2) + "\n"
    for name in DERIVED:  # before the commit: without it the old dataset only lacks what can be made again
        if fs.exists(f"{output}/{name}"):
            fs.delete(f"{output}/{name}")
    fs.write_text(f"{output}/{folder}/{MANIFEST}", text)  # the folder is complete
    _step("completed")
    fs.write_text(f"{output}/{MANIFEST}", text)  # the commit point
    _step("committed")
    fs.write_text(f"{output}/{CARD}", card(json.loads(text)))
    _step("carded")
    return _remove_others(fs, output, folder)


def resumable(fs: FileSystem, output: str) -> str | None:
    """The newest data folder an interrupted run left with its items done and its datasets not."""
    names = sorted(e.name for e in _data_folders(fs, output)
                   if not fs.exists(f"{e.uri}/{MANIFEST}") and fs.exists(f"{e.uri}/{ITEMS_DONE}"))
    return names[-1] if names else None


def amend(fs: FileSystem, output: str, additions: dict, card: Callable[[dict], str]) -> dict:
    """Add sections to the published dataset's manifest (e.g. its baselines' scores); return the new manifest.

    The output's manifest is written first, as in ``publish``: a kill after it
    leaves the data folder's copy and the card behind (the next ``recover``
    rewrites the card, the next ``amend`` both); a kill before it leaves the
    dataset as it was.
    """
    manifest = _manifest(fs, f"{output}/{MANIFEST}")
    if manifest is None or not manifest.get(DATA_KEY):
        raise ValueError(f"{output} has no published dataset to amend")
    text = json.dumps({**manifest, **additions}, indent=2) + "\n"
    fs.write_text(f"{output}/{MANIFEST}", text)
    fs.write_text(f"{output}/{manifest[DATA_KEY]}/{MANIFEST}", text)
    fs.write_text(f"{output}/{CARD}", card(json.loads(text)))
    return json.loads(text)


def finished_items(fs: FileSystem, folder: str) -> dict:
    """The curation section a run wrote into ``folder`` once its items were done, with its deduplication
    when that was done too (a file cut short by a kill counts as not written)."""
    curation = json.loads(fs.read_text(f"{folder}/{ITEMS_DONE}"))
    dedup = _manifest(fs, f"{folder}/{DEDUP_DONE}")
    return curation | ({"dedup": dedup} if dedup else {})


def _remove_others(fs: FileSystem, output: str, keep: str, spare: str | None = None) -> list[str]:
    """Every data folder but ``keep`` (and ``spare``), and an earlier version's flat datasets; manifests first,
    so a folder half deleted is never taken for a complete one."""
    removed = []
    for entry in _data_folders(fs, output):
        if entry.name in (keep, spare):
            continue
        fs.delete(f"{entry.uri}/{MANIFEST}")
        _step("retiring")
        fs.delete(entry.uri)
        _step("retired")
        removed.append(entry.name)
    for name in LEGACY_DATASETS:
        if fs.exists(f"{output}/{name}"):
            fs.delete(f"{output}/{name}")
            _step("retired")
            removed.append(name)
    return removed


def recover(fs: FileSystem, output: str, card: Callable[[dict], str]) -> list[str]:
    """Bring ``output`` to one complete published dataset (or none) after any interrupted run; say what was done."""
    said = _recover_legacy(fs, output)
    folders = _data_folders(fs, output)
    complete = sorted(e.name for e in folders if fs.exists(f"{e.uri}/{MANIFEST}"))
    current = published(fs, output)
    if current not in complete:
        current = None
    if complete and (current is None or complete[-1] > current):
        # A run finished its data folder but was stopped before (or while) publishing it.
        newest = complete[-1]
        manifest = _manifest(fs, f"{output}/{newest}/{MANIFEST}")
        publish(fs, output, newest, manifest, card)
        said.append(f"published {newest}, which an interrupted run had finished")
        return said
    spare = resumable(fs, output)
    if spare:
        said.append(f"kept the items {spare} holds: an interrupted run finished them, and a run with the same "
                    "inputs, recipe and tokenizer resumes from them")
    if current is None:
        for entry in folders:
            if entry.name != spare:
                fs.delete(entry.uri)
                said.append(f"removed {entry.name}, left incomplete by an interrupted run")
        return said
    manifest = _manifest(fs, f"{output}/{MANIFEST}")
    if _read(fs, f"{output}/{CARD}") != card(manifest):
        fs.write_text(f"{output}/{CARD}", card(manifest))
        said.append(f"rewrote {CARD} for {current}")
    said += [f"removed {name}, left by an interrupted run" for name in _remove_others(fs, output, current, spare)]
    return said


def _recover_legacy(fs: FileSystem, output: str) -> list[str]:
    """Leftovers of the earlier rename-based publish, beside the output.

    A staging folder with its manifest and card was complete; a retired folder
    is the dataset it was replacing. With no dataset at the output the newest
    complete one of them is moved back; the rest are removed.
    """
    parent, name = posixpath.split(output.rstrip("/"))
    if not fs.exists(parent):
        return []
    prefix = f".{name}{LEGACY_MARK}"
    leftovers = [e for e in fs.list(parent) if e.name.startswith(prefix)]
    if not leftovers:
        return []
    said = []

    def complete(entry) -> bool:
        return fs.exists(f"{entry.uri}/{MANIFEST}") and fs.exists(f"{entry.uri}/{CARD}")

    # A finished staging folder is newer than the dataset it was to replace.
    candidates = [e for e in leftovers if "-staging-" in e.name and complete(e)]
    candidates += [e for e in leftovers if "-old-" in e.name and complete(e)]
    if candidates and not fs.exists(output):
        chosen = candidates[0]
        fs.rename(chosen.uri, output)
        said.append(f"restored the dataset in {chosen.name}, which an interrupted publish had left beside {name}")
        leftovers = [e for e in leftovers if e is not chosen]
    replaced = fs.exists(f"{output}/{MANIFEST}")
    for entry in leftovers:
        if complete(entry) and not replaced:
            said.append(f"left {entry.name} in place: it holds a complete dataset and {name} holds none; "
                        f"move it to {name} by hand if it is the one you want")
            continue
        fs.delete(entry.uri)
        said.append(f"removed {entry.name}, " + ("superseded by the dataset in " + name if replaced
                                                  else "left incomplete by an interrupted run"))
    return said
