"""Filesystems for publish tests, and a process that publishes and can be killed at any step.

``LocalFS`` does what Hadoop's local filesystem does for the calls publishing
makes; ``ObjectStoreFS`` behaves like an object store: a folder rename copies
and deletes file by file, a delete removes file by file, a write is one PUT.
Every file-level action of either is a step the kill hook counts.

    python publish_fakes.py FS OUTPUT TAG KILL_AT {run,recover} [DELAY]

runs one fake run (the job's ``publish.Claim``: survey, lease, recovery, data
folder, publish) or only recovery, and SIGKILLs itself after step KILL_AT (0:
never); it prints the number of steps it took, or ``refused: <message>`` (exit
2) when the output is not its to write. DELAY seconds pass after each file
written, so that runs started together overlap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import sys
import time
import uuid

from pricecurate.errors import OutputError
from pricecurate.output import layout, publish
from pricecurate.output.lease import Lease
from pricecurate.spark.fs import Entry, temp_name

FILES = ("items/category=A/part-0.parquet", "items/category=B/part-0.parquet",
         "train/category=A/part-0.parquet", "test/category=A/part-0.parquet")


def step(name: str) -> None:
    if publish.after_step is not None:
        publish.after_step(name)


class LocalFS:
    def qualify(self, uri: str) -> str:
        return uri

    def exists(self, uri: str) -> bool:
        return os.path.exists(uri)

    def is_dir(self, uri: str) -> bool:
        return os.path.isdir(uri)

    def list(self, uri: str) -> list[Entry]:
        entries = []
        for name in sorted(os.listdir(uri)):
            path = os.path.join(uri, name)
            try:
                entries.append(Entry(path, name, os.path.getsize(path), os.path.isdir(path)))
            except FileNotFoundError:  # gone between the two looks (another process's), as Hadoop's listing skips it
                continue
        return entries

    def mkdirs(self, uri: str) -> None:
        os.makedirs(uri, exist_ok=True)

    def delete(self, uri: str) -> None:
        if os.path.isdir(uri):
            shutil.rmtree(uri)
        elif os.path.exists(uri):
            os.remove(uri)
        step("fs: delete")

    def rename(self, source: str, target: str) -> None:
        if os.path.exists(target):
            raise OSError(f"could not rename {source} to {target}")
        os.rename(source, target)
        step("fs: rename")

    def write_text(self, uri: str, text: str) -> None:
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        temp = os.path.join(os.path.dirname(uri), temp_name(os.path.basename(uri)))
        with open(temp, "w", encoding="utf-8") as handle:  # a temp file, then renamed: as HadoopFS.write_text
            handle.write(text)
        step("fs: write temp")
        os.replace(temp, uri)
        step("fs: rename temp")

    def create_new(self, uri: str, text: str) -> bool:
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        temp = os.path.join(os.path.dirname(uri), temp_name(os.path.basename(uri)))
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(temp, uri)
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(temp)

    def copy(self, source: str, target: str) -> None:
        for path in self._files(source):
            copy = os.path.join(target, os.path.relpath(path, source)) if os.path.isdir(source) else target
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copyfile(path, copy)
            step("fs: copy")

    def tree(self, uri: str) -> dict[str, int]:
        if not os.path.isdir(uri):
            return {"": os.path.getsize(uri)} if os.path.exists(uri) else {}
        return {os.path.relpath(path, uri): os.path.getsize(path) for path in self._files(uri)}

    def _files(self, uri: str) -> list[str]:
        if not os.path.isdir(uri):
            return [uri] if os.path.exists(uri) else []
        return sorted(os.path.join(d, f) for d, _, files in os.walk(uri) for f in files)

    def modified(self, uri: str) -> int:
        return int(os.path.getmtime(uri) * 1000)

    def read_text(self, uri: str) -> str:
        with open(uri, encoding="utf-8") as handle:
            return handle.read()


class ObjectStoreFS(LocalFS):
    """Keys, not folders: a rename or delete of a prefix is one copy or removal per object."""

    def _objects(self, uri: str) -> list[str]:
        return self._files(uri)

    def delete(self, uri: str) -> None:
        for path in self._objects(uri):
            os.remove(path)
            step("fs: delete object")
        if os.path.isdir(uri):
            shutil.rmtree(uri)  # empty prefixes: nothing to an object store

    def rename(self, source: str, target: str) -> None:
        if os.path.exists(target):
            raise OSError(f"could not rename {source} to {target}")
        for path in self._objects(source):
            copy = os.path.join(target, os.path.relpath(path, source)) if os.path.isdir(source) else target
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copyfile(path, copy)
            step("fs: copy object")
        self.delete(source)

    def _upload(self, uri: str, text: str) -> str:
        """The object's bytes, on their way: this process's alone (two uploads never share them) and hidden,
        as a store lists no PUT in flight."""
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        upload = os.path.join(os.path.dirname(uri), f".{os.path.basename(uri)}.put-{uuid.uuid4().hex}")
        with open(upload, "w", encoding="utf-8") as handle:
            handle.write(text)
        return upload

    def write_text(self, uri: str, text: str) -> None:
        os.replace(self._upload(uri, text), uri)  # a PUT is all or nothing
        step("fs: put")

    def create_new(self, uri: str, text: str) -> bool:
        """A conditional PUT (If-None-Match): all or nothing, and only where no object is."""
        upload = self._upload(uri, text)
        try:
            os.link(upload, uri)
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(upload)


FILESYSTEMS = {"local": LocalFS, "object-store": ObjectStoreFS}


def content(tag: str, name: str) -> str:
    return f"{tag}:{name}\n"


def manifest_for(tag: str) -> dict:
    return {"tag": tag, "files": {name: hashlib.sha256(content(tag, name).encode()).hexdigest() for name in FILES}}


def card(manifest: dict) -> str:
    return f"{layout.CARD_MARK}\n# dataset {manifest['tag']} in {manifest.get('data')}\n"


_SECONDS = {"old": 1, "new": 2}  # of a run's start: later tags' folders sort later


def folder_for(tag: str) -> str:
    """The data folder name of the fake run tagged ``tag``."""
    started = dt.datetime(2026, 1, 1, 0, 0, _SECONDS.get(tag, 3), tzinfo=dt.timezone.utc)
    return layout.data_folder_name(started, hashlib.sha256(tag.encode()).hexdigest()[:12])


def write_run(fs, output: str, tag: str, delay: float = 0.0, overwrite: bool = True) -> str:
    """One run as the job makes it: claim the output, write the data folder file by file, publish."""
    folder = folder_for(tag)
    claim = publish.Claim(fs, output, folder, uuid.uuid4().hex[:12], card, output)
    for said in claim.open(overwrite, say=lambda line: print(line, file=sys.stderr)):
        print(said, file=sys.stderr)
    try:
        for name in FILES:
            fs.write_text(f"{output}/{folder}/{name}", content(tag, name))
            time.sleep(delay)
        claim.written()
        claim.publish(manifest_for(tag))
    finally:
        claim.close()
    return folder


def published_tag(output: str) -> str | None:
    """The tag of the complete dataset at ``output``, checked file by file; None when there is none."""
    path = os.path.join(output, layout.MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    folder = os.path.join(output, manifest["data"])
    for name, digest in manifest["files"].items():
        with open(os.path.join(folder, name), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest, name
    with open(os.path.join(output, layout.CARD), encoding="utf-8") as handle:
        assert handle.read() == card(manifest)
    return manifest["tag"]


def main(kind: str, output: str, tag: str, kill_at: int, mode: str, delay: float = 0.0) -> None:
    taken = 0

    def count(_name: str) -> None:
        nonlocal taken
        taken += 1
        if taken == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    publish.after_step = count
    fs = FILESYSTEMS[kind]()
    if mode == "run":
        try:
            write_run(fs, output, tag, delay)
        except OutputError as error:
            print(f"refused: {error}")
            sys.exit(2)
    else:  # what the next run does first: take the lease (from a killed run, at once), recover, give it back
        lease = Lease.acquire(fs, f"{output}/{layout.LEASE}", uuid.uuid4().hex[:12], output)
        try:
            publish.recover(fs, output, card)
        finally:
            lease.release()
    print(taken)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5],
         float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
