"""Publishing a dataset so that no kill, on any filesystem, leaves the output without one.

An output folder holds:

    OUTPUT/manifest.json       the commit point: ``data`` names the published data folder
    OUTPUT/README.md           the data card, whose configs point into that folder
    OUTPUT/data-<time>-<id>/   one run's datasets; complete once its own manifest.json exists
    OUTPUT/_pricecurate.lease  while a run writes here: which one (``pricecurate.output.lease``)

pricecurate touches only what it wrote: a data folder is one by its exact name
*and* the marker file (``_pricecurate.json``) a run writes into it first; the
top manifest by its format key; the card by its mark. An output that holds
anything else, and no dataset of ours, is never written to (``survey``,
``claim``); in an output of ours, files of others stay as they are.

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
versions (``.<name>.pricecurate-{staging,old}-<id>`` beside the output) are
copied into a data folder and published, never deleted while they hold the only
dataset. Small files are written whole or not at all (``fs.HadoopFS.write_text``);
one cut short by an older version or a crash is treated as absent, and said.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pricecurate.errors import OutputError
from pricecurate.output.layout import (
    CARD,
    DATA_FOLDER,
    DATA_KEY,
    DEDUP_DONE,
    DERIVED,
    DERIVED_MARK,
    FORMAT,
    FORMAT_KEY,
    ITEMS_DONE,
    LEASE,
    LEGACY_DATASETS,
    LEGACY_MARK,
    MANIFEST,
    MARKER,
    TOP_FILES,
    FileSystem,
    data_folder_name,
    is_card,
    is_manifest,
    read_json,
    read_manifest,
    read_text,
)
from pricecurate.output.lease import Lease
from pricecurate.output.lease import timeout_seconds as lease_timeout
from pricecurate.spark.fs import is_temp_name, tree_difference

# Called with the name of each publish step once it is done: tests kill the process there.
after_step: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if after_step is not None:
        after_step(name)


def published(fs: FileSystem, output: str) -> str | None:
    """The data folder the output's manifest names (None: no dataset, or an earlier version's flat one)."""
    manifest = read_manifest(fs, f"{output}/{MANIFEST}")
    return manifest.get(DATA_KEY) if manifest else None


def is_data_folder(fs: FileSystem, entry) -> bool:
    """A data folder a run of pricecurate made: its exact name, and its marker (or, from versions before the
    marker, its own manifest naming it or its finished items)."""
    if not (entry.is_dir and DATA_FOLDER.fullmatch(entry.name)):
        return False
    if fs.exists(f"{entry.uri}/{MARKER}"):
        return True
    # Empty (its last object deleted; nothing to lose), or killed while its marker was written.
    if all(is_temp_name(e.name) and e.name.startswith(f".{MARKER}") for e in fs.list(entry.uri)):
        return True
    own = read_json(fs, f"{entry.uri}/{MANIFEST}")
    return (own or {}).get(DATA_KEY) == entry.name or read_json(fs, f"{entry.uri}/{ITEMS_DONE}") is not None


def remove_folder(fs: FileSystem, uri: str) -> None:
    """Delete a data folder so that what is left at any kill is still recognised as ours: its manifest first
    (it is then incomplete), its marker last (on an object store a delete is one object at a time)."""
    if fs.exists(f"{uri}/{MANIFEST}"):
        fs.delete(f"{uri}/{MANIFEST}")
        _step("retiring")
    for entry in fs.list(uri) if fs.is_dir(uri) else []:
        if entry.name != MARKER:
            fs.delete(entry.uri)
    fs.delete(uri)


def _data_folders(fs: FileSystem, output: str) -> list:
    if not fs.is_dir(output):
        return []
    return [e for e in fs.list(output) if is_data_folder(fs, e)]


@dataclass
class Survey:
    """What an output folder holds, looked at before anything is written to it."""

    state: str  # "new" (absent or empty), "dataset" (ours, published), "interrupted" (ours, none published), "foreign"
    why: str = ""  # for "foreign": what is there that pricecurate did not write
    notes: list[str] = field(default_factory=list)  # what was found cut short


def survey(fs: FileSystem, output: str, card: Callable[[dict], str]) -> Survey:
    """Whose the output is; reads only."""
    if not fs.exists(output):
        return Survey("new")
    if not fs.is_dir(output):
        return Survey("foreign", "it is a file")
    entries = fs.list(output)
    if not [e for e in entries if not e.name.startswith(".")]:
        return Survey("new")
    names = {e.name for e in entries}
    ours = bool(_data_folders(fs, output)) or LEASE in names
    manifest, notes = None, []
    if MANIFEST in names:
        value = read_json(fs, f"{output}/{MANIFEST}")
        if is_manifest(value):
            manifest = value
        elif value is not None or not ours:
            return Survey("foreign", f"its {MANIFEST} is not a pricecurate manifest")
        else:
            notes.append(f"{MANIFEST} is cut short or unreadable (an interrupted run's): treated as absent")
    if manifest is None and not ours:
        return Survey("foreign", "it holds files and no pricecurate dataset")
    if CARD in names:
        text = read_text(fs, f"{output}/{CARD}") or ""
        if not is_card(text, _card_text(card, manifest)):
            return Survey("foreign", _NOT_OUR_CARD)
    return Survey("dataset" if manifest else "interrupted", notes=notes)


_NOT_OUR_CARD = f"its {CARD} is not a pricecurate data card"


def claim(found: Survey, output: str, overwrite: bool) -> None:
    """Refuse to write into a folder that is not pricecurate's, or to replace a dataset without ``overwrite``."""
    if found.why == _NOT_OUR_CARD:
        raise OutputError(f"output {output} holds a {CARD} that is not a pricecurate data card; pricecurate writes its "
                          "card there and never replaces yours: move it out of the folder, or choose another --output")
    if found.state == "foreign":
        raise OutputError(
            f"output {output} is not a pricecurate dataset ({found.why}); pricecurate never writes into or "
            "replaces what it did not make, with or without --overwrite: choose a new or empty --output"
        )
    if found.state == "dataset" and not overwrite:
        raise OutputError(f"output {output} already exists; pass --overwrite to replace it or choose another --output")


def _card_text(card: Callable[[dict], str], manifest: dict | None) -> str | None:
    try:
        return card(manifest) if manifest else None
    except Exception:  # noqa: BLE001 - an earlier version's manifest the card cannot be made from
        return None


def begin(fs: FileSystem, output: str, folder: str, run: str) -> None:
    """Make the run's data folder, its marker first: from here on it is recognisably pricecurate's."""
    fs.write_text(f"{output}/{folder}/{MARKER}", json.dumps({"run": run, "folder": folder}) + "\n")


def _check_commit(fs: FileSystem, output: str, folder: str, seen, written: dict | None) -> None:
    """Publish only what this run made, over what it saw: its folder whole, the top manifest unchanged."""
    where = f"{output}/{folder}"
    if written is not None:
        if not fs.exists(f"{where}/{MARKER}"):
            raise OutputError(f"{where} was removed while this run wrote it; nothing published")
        problem = tree_difference(written, fs.tree(where))
        if problem:
            raise OutputError(f"{where} lost files this run wrote ({problem}); nothing published")
    if seen is not _UNCHECKED and read_text(fs, f"{output}/{MANIFEST}") != seen:
        raise OutputError(f"the dataset at {output} was replaced while this run ran; nothing published")


_UNCHECKED = object()


def publish(fs: FileSystem, output: str, folder: str, manifest: dict, card: Callable[[dict], str],
            seen=_UNCHECKED, written: dict | None = None, check: Callable[[], None] | None = None) -> list[str]:
    """Make ``output/folder`` (its datasets written) the published dataset; return what was removed.

    ``seen``: the top manifest's text when the run began (None: there was none); the commit happens only
    if it is still that. ``written``: the files the run wrote (``fs.tree``); the folder must still hold them.
    ``check``: raises when the run may no longer publish (its lease was taken over).
    """
    text = json.dumps({**manifest, FORMAT_KEY: FORMAT, DATA_KEY: folder}, indent=2) + "\n"
    _check_commit(fs, output, folder, seen, written)
    previous = read_manifest(fs, f"{output}/{MANIFEST}")
    flat = previous is not None and not previous.get(DATA_KEY)
    for name in DERIVED:  # before the commit: without it the old dataset only lacks what can be made again
        if fs.exists(f"{output}/{name}/{DERIVED_MARK[name]}"):
            fs.delete(f"{output}/{name}")
    fs.write_text(f"{output}/{folder}/{MANIFEST}", text)  # the folder is complete
    _step("completed")
    if check is not None:
        check()
    fs.write_text(f"{output}/{MANIFEST}", text)  # the commit point
    _step("committed")
    fs.write_text(f"{output}/{CARD}", card(json.loads(text)))
    _step("carded")
    return _remove_others(fs, output, folder, flat=flat)


def resumable(fs: FileSystem, output: str) -> str | None:
    """The newest data folder an interrupted run left with its items done and its datasets not."""
    names = sorted(e.name for e in _data_folders(fs, output)
                   if not fs.exists(f"{e.uri}/{MANIFEST}") and read_json(fs, f"{e.uri}/{ITEMS_DONE}") is not None)
    return names[-1] if names else None


def amend(fs: FileSystem, output: str, additions: dict, card: Callable[[dict], str]) -> dict:
    """Add sections to the published dataset's manifest (e.g. its baselines' scores); return the new manifest.

    The output's manifest is written first, as in ``publish``: a kill after it
    leaves the data folder's copy and the card behind (the next ``recover``
    rewrites the card, the next ``amend`` both); a kill before it leaves the
    dataset as it was.
    """
    manifest = read_manifest(fs, f"{output}/{MANIFEST}")
    if manifest is None or not manifest.get(DATA_KEY):
        raise OutputError(f"{output} has no published dataset to amend")
    text = json.dumps({**manifest, **additions}, indent=2) + "\n"
    fs.write_text(f"{output}/{MANIFEST}", text)
    fs.write_text(f"{output}/{manifest[DATA_KEY]}/{MANIFEST}", text)
    fs.write_text(f"{output}/{CARD}", card(json.loads(text)))
    return json.loads(text)


def finished_items(fs: FileSystem, folder: str) -> dict | None:
    """The curation section a run wrote into ``folder`` once its items were done, with its deduplication
    when that was done too (None, as a file cut short by a kill counts as not written)."""
    curation = read_json(fs, f"{folder}/{ITEMS_DONE}")
    if curation is None:
        return None
    dedup = read_json(fs, f"{folder}/{DEDUP_DONE}")
    if dedup and "files" in dedup:  # the duplicates' files, kept with the items' (``curation["files"]``)
        curation["files"] = {**curation.get("files", {}), "duplicates": dedup.pop("files")}
    return curation | ({"dedup": dedup} if dedup else {})


def _remove_others(fs: FileSystem, output: str, keep: str, spare: str | None = None, flat: bool = False) -> list[str]:
    """Every data folder of ours but ``keep`` (and ``spare``), and the flat datasets of the earlier version's
    dataset this one replaced (``flat``); manifests first, so a folder half deleted is never taken for a
    complete one."""
    removed = []
    for entry in _data_folders(fs, output):
        if entry.name in (keep, spare):
            continue
        remove_folder(fs, entry.uri)
        _step("retired")
        removed.append(entry.name)
    for name in LEGACY_DATASETS if flat else ():
        if fs.exists(f"{output}/{name}"):
            fs.delete(f"{output}/{name}")
            _step("retired")
            removed.append(name)
    return removed


def _remove_temp_files(fs: FileSystem, output: str) -> list[str]:
    """The temp files of the output's top files that interrupted runs left. The lease's are written for a moment
    by live runs too (one trying to take the lease, the holder's heartbeat): removed only once older than the
    lease's timeout (removing another run's while it took the lease made that run fail with a traceback)."""
    said = []
    for entry in fs.list(output) if fs.is_dir(output) else []:
        if not entry.is_dir and is_temp_name(entry.name) and entry.name[1:].startswith(TOP_FILES):
            if entry.name[1:].startswith(LEASE) and not _older_than_the_lease_timeout(fs, entry.uri):
                continue
            fs.delete(entry.uri)
            said.append(f"removed {entry.name}, a file an interrupted run was writing")
    return said


def _older_than_the_lease_timeout(fs: FileSystem, uri: str) -> bool:
    try:
        return time.time() - fs.modified(uri) / 1000.0 > lease_timeout()
    except Exception:  # noqa: BLE001 - gone meanwhile, or no modification times: not judged stale
        return False


def recover(fs: FileSystem, output: str, card: Callable[[dict], str]) -> list[str]:
    """Bring ``output`` to one complete published dataset (or none) after any interrupted run; say what was done.

    Runs only in an output of ours (``survey``) that no other run holds (``pricecurate.output.lease``).
    """
    said = _recover_legacy(fs, output, card) + _remove_temp_files(fs, output)
    folders = _data_folders(fs, output)
    complete = []
    for entry in folders:
        if read_manifest(fs, f"{entry.uri}/{MANIFEST}") is not None:
            complete.append(entry.name)
        elif fs.exists(f"{entry.uri}/{MANIFEST}"):
            said.append(f"{entry.name}/{MANIFEST} is cut short or unreadable: the folder counts as incomplete")
        elif fs.exists(f"{entry.uri}/{ITEMS_DONE}") and read_json(fs, f"{entry.uri}/{ITEMS_DONE}") is None:
            said.append(f"{entry.name}/{ITEMS_DONE} is cut short or unreadable: its items are not resumed from")
    complete.sort()
    if fs.exists(f"{output}/{MANIFEST}") and read_manifest(fs, f"{output}/{MANIFEST}") is None:
        said.append(f"{MANIFEST} is cut short or unreadable: treated as absent")
    current = published(fs, output)
    if current not in complete:
        current = None
    if complete and (current is None or complete[-1] > current):
        # A run finished its data folder but was stopped before (or while) publishing it.
        newest = complete[-1]
        manifest = read_manifest(fs, f"{output}/{newest}/{MANIFEST}")
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
                remove_folder(fs, entry.uri)
                said.append(f"removed {entry.name}, left incomplete by an interrupted run")
        return said
    manifest = read_manifest(fs, f"{output}/{MANIFEST}")
    if read_text(fs, f"{output}/{CARD}") != card(manifest):
        fs.write_text(f"{output}/{CARD}", card(manifest))
        said.append(f"rewrote {CARD} for {current}")
    said += [f"removed {name}, left by an interrupted run" for name in _remove_others(fs, output, current, spare)]
    return said


def _legacy_leftovers(fs: FileSystem, output: str) -> list:
    parent, name = posixpath.split(output.rstrip("/"))
    if not fs.exists(parent):
        return []
    pattern = re.compile(rf"\.{re.escape(name)}{re.escape(LEGACY_MARK)}(staging|old)-[0-9A-Za-z]+")
    return [e for e in fs.list(parent) if e.is_dir and pattern.fullmatch(e.name)]


def _recover_legacy(fs: FileSystem, output: str, card: Callable[[dict], str]) -> list[str]:
    """Leftovers of the earlier rename-based publish, beside the output.

    A staging folder with its manifest and card was complete; a retired folder
    is the dataset it was replacing. With no dataset at the output the newest
    complete one of them is copied into a data folder and published like any
    other (a kill while copying leaves the leftover as it was, and the next
    recovery copies again); leftovers go only once a dataset is published.
    """
    leftovers = _legacy_leftovers(fs, output)
    if not leftovers:
        return []
    said = []
    name = posixpath.basename(output.rstrip("/"))

    def complete(entry) -> bool:
        return read_json(fs, f"{entry.uri}/{MANIFEST}") is not None and fs.exists(f"{entry.uri}/{CARD}")

    # A finished staging folder is newer than the dataset it was to replace.
    candidates = [e for e in leftovers if "-staging-" in e.name and complete(e)]
    candidates += [e for e in leftovers if "-old-" in e.name and complete(e)]
    empty = not fs.exists(output) or not [e for e in fs.list(output) if not e.name.startswith(".")
                                          and not is_data_folder(fs, e) and e.name != LEASE]
    chosen = None
    if candidates and published(fs, output) is None and empty:
        chosen = candidates[0]
        _restore(fs, output, chosen, card)
        said.append(f"restored the dataset in {chosen.name}, which an interrupted publish had left beside {name}")
    replaced = published(fs, output) is not None
    for entry in leftovers:
        if entry is chosen:
            fs.delete(entry.uri)  # its copy is published
            continue
        if complete(entry) and not replaced:
            said.append(f"left {entry.name} in place: it holds a complete dataset and {name} holds none; "
                        f"move it to {name} by hand if it is the one you want")
            continue
        fs.delete(entry.uri)
        said.append(f"removed {entry.name}, " + ("superseded by the dataset in " + name if replaced
                                                  else "left incomplete by an interrupted run"))
    return said


def _restore(fs: FileSystem, output: str, leftover, card: Callable[[dict], str]) -> None:
    """Copy an earlier version's complete dataset into a new data folder, its manifest last, and publish it."""
    folder = data_folder_name(dt.datetime.now(dt.timezone.utc), uuid.uuid4().hex[:12])
    begin(fs, output, folder, "restore")
    for entry in fs.list(leftover.uri):
        if entry.name not in (MANIFEST, CARD):
            fs.copy(entry.uri, f"{output}/{folder}/{entry.name}")
            _step("restoring")
    manifest = read_json(fs, f"{leftover.uri}/{MANIFEST}")
    earlier_card = read_text(fs, f"{leftover.uri}/{CARD}") or ""

    def restored_card(value: dict) -> str:
        return _card_text(card, value) or earlier_card

    publish(fs, output, folder, manifest, restored_card)


class Claim:
    """One run's hold on an output, from the first look to the commit.

    ``open`` looks before it writes: a folder that is not pricecurate's is
    refused untouched; then the run takes the output's lease (one writer at a
    time), finishes or removes what interrupted runs left, and makes its data
    folder, marker first. ``publish`` commits it only while the lease is the
    run's, the output's manifest is the one it saw, and the folder holds every
    file ``written`` found. ``close`` gives the lease back.
    """

    def __init__(self, fs: FileSystem, uri: str, folder: str, run: str, card: Callable[[dict], str], shown: str):
        self.fs, self.uri, self.folder, self.run, self._card, self.shown = fs, uri, folder, run, card, shown
        self.lease: Lease | None = None
        self._created = False
        self._seen: str | None = None
        self._written: dict[str, int] | None = None

    def _claim(self, overwrite: bool) -> list[str]:
        found = survey(self.fs, self.uri, self._card)
        claim(found, self.shown, overwrite)
        return found.notes

    def open(self, overwrite: bool, wait: bool = False, say: Callable[[str], None] = lambda _: None) -> list[str]:
        """Claim the output for this run; what was found and done there, in words."""
        self._claim(overwrite)  # nothing is written into a folder that is not ours, not even the lease
        self._created = not self.fs.exists(self.uri)
        self.lease = Lease.acquire(self.fs, f"{self.uri}/{LEASE}", self.run, self.shown, wait, say)
        try:
            said = self._claim(overwrite)  # again, under the lease: a run that just finished may have published
            said += recover(self.fs, self.uri, self._card)
            self._seen = read_text(self.fs, f"{self.uri}/{MANIFEST}")
            begin(self.fs, self.uri, self.folder, self.run)
        except BaseException:
            self.close()
            raise
        return said

    def written(self) -> None:
        """Every dataset is written: what the data folder holds now must be there when it is published."""
        self._written = self.fs.tree(f"{self.uri}/{self.folder}")

    def publish(self, manifest: dict) -> list[str]:
        """Make the run's data folder the output's dataset; older data folders go after."""
        return publish(self.fs, self.uri, self.folder, manifest, self._card, seen=self._seen, written=self._written,
                       check=self.lease.check if self.lease else None)

    def close(self) -> None:
        """Give the lease back; an output folder this run created and left empty goes too."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        if self._created and self.fs.is_dir(self.uri) and not self.fs.list(self.uri):
            self.fs.delete(self.uri)
