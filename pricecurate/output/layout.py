"""Every name pricecurate gives a file or folder in an output, and the one reader of its JSON files.

    OUTPUT/manifest.json            the commit point: ``data`` names the published data folder
    OUTPUT/README.md                the data card (its mark says it is ours)
    OUTPUT/_pricecurate.lease       while a run writes here (``output.lease``)
    OUTPUT/data-<time>-<id>/        one run's datasets:
        _pricecurate.json           written first: the folder is ours
        items/ train/ validation/ test/ quarantine/     <dataset>/category=<C>/part-*.parquet
        curated/ duplicates/        the items and the dropped duplicates, kept for reuse
        curated.json, deduplicated.json    the items (and their deduplication) are done
        manifest.json               written last: the folder is complete
    OUTPUT/report/                  ``pricecurate report``'s files
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Protocol

MANIFEST = "manifest.json"
CARD = "README.md"
DATA_PREFIX = "data-"
DATA_FOLDER = re.compile(r"data-\d{8}T\d{6}-[0-9a-f]{12}")  # data_folder_name's names, and no others
DATA_KEY = "data"  # the manifest's name for its data folder
FORMAT_KEY, FORMAT = "pricecurate_format", 1  # in every manifest publish writes
MARKER = "_pricecurate.json"  # the first file a run writes into its data folder
LEASE = "_pricecurate.lease"  # at the top of an output while a run writes there
CARD_MARK = "<!-- pricecurate data card: rewritten with each dataset published here -->"
EARLIER_CARD = "Built by pricecurate from"  # in the cards of versions before CARD_MARK
LEGACY_MARK = ".pricecurate-"  # earlier versions staged and retired datasets in .<name>.pricecurate-<kind>-<id>
LEGACY_DATASETS = ("items", "train", "validation", "test", "quarantine")  # at the top of an earlier-version output
DERIVED = ("report",)  # made from the published dataset (``pricecurate report``): stale once it is replaced
DERIVED_MARK = {"report": "report.html"}  # what shows a derived folder is ours
ITEMS_DONE = "curated.json"  # in a data folder: the run finished its items (``pipeline.reuse``), written last
DEDUP_DONE = "deduplicated.json"  # ... and their deduplication, written after its duplicates
TOP_FILES = (MANIFEST, CARD, LEASE)
WORK = "_work"  # a run's intermediate files (near-duplicate rounds), deleted before publish
CURATED = "curated"  # the items as the rules left them, for reuse (``pricecurate.pipeline.reuse``)
DUPLICATES = "duplicates"  # the lines deduplication dropped, for reuse with the same dedup settings


class FileSystem(Protocol):
    """What reading and publishing need of a filesystem (``fs.HadoopFS`` in the job)."""

    def exists(self, uri: str) -> bool: ...
    def is_dir(self, uri: str) -> bool: ...
    def list(self, uri: str) -> list: ...  # entries with .uri, .name, .is_dir
    def delete(self, uri: str) -> None: ...
    def copy(self, source: str, target: str) -> None: ...
    def tree(self, uri: str) -> dict[str, int]: ...  # every file under uri, relative, with its size
    def write_text(self, uri: str, text: str) -> None: ...  # whole or not at all
    def create_new(self, uri: str, text: str) -> bool: ...  # only if absent
    def read_text(self, uri: str) -> str: ...
    def modified(self, uri: str) -> int: ...


def data_folder_name(started: dt.datetime, run_id: str) -> str:
    """A new data folder's name: later runs sort later."""
    return f"{DATA_PREFIX}{started.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S}-{run_id}"


def read_text(fs: FileSystem, uri: str) -> str | None:
    """The file's text, or None when there is none."""
    try:
        return fs.read_text(uri)
    except Exception:  # noqa: BLE001 - a missing file is as good as none, whatever the filesystem raises
        return None


def read_json(fs: FileSystem, uri: str) -> dict | None:
    """The JSON object at ``uri``, or None when it is missing or unreadable (cut short by a kill)."""
    try:
        value = json.loads(read_text(fs, uri) or "")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def is_manifest(value: dict | None) -> bool:
    """A manifest pricecurate wrote (this version's, by its format key; an earlier one's, by its sections)."""
    if not isinstance(value, dict):
        return False
    folder = value.get(DATA_KEY)
    if folder is not None and not (isinstance(folder, str) and DATA_FOLDER.fullmatch(folder)):
        return False
    return value.get(FORMAT_KEY) == FORMAT or {"recipe", "config", "accounting"} <= value.keys()


def read_manifest(fs: FileSystem, uri: str) -> dict | None:
    """The pricecurate manifest at ``uri``; None when there is none, or it is cut short or not ours."""
    value = read_json(fs, uri)
    return value if is_manifest(value) else None


def is_card(text: str, expected: str | None = None) -> bool:
    """A data card pricecurate wrote (possibly cut short by a kill, or an empty file, which holds nothing)."""
    return (not text.strip() or CARD_MARK in text or EARLIER_CARD in text
            or (expected is not None and expected.startswith(text)))


def data_prefix(manifest: dict) -> str:
    """Where the datasets are, relative to the output folder ("" for an earlier version's flat layout)."""
    return f"{manifest[DATA_KEY]}/" if manifest.get(DATA_KEY) else ""
