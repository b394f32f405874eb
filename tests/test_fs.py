"""Copies within one local disk are hard links; anything else is copied byte for byte."""

from __future__ import annotations

import os

from pricecurate import fs as fs_module
from pricecurate.fs import HadoopFS, link_tree


def _tree(root):
    (root / "category=Books").mkdir(parents=True)
    (root / "category=Books" / "part-0.parquet").write_bytes(b"PAR1 books")
    (root / "category=Books" / ".part-0.parquet.crc").write_bytes(b"crc")
    (root / "part-1.parquet").write_bytes(b"PAR1 top")
    return root


def _files(root):
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_folder_is_linked_file_by_file(tmp_path):
    source = _tree(tmp_path / "source")
    assert link_tree(str(source), str(tmp_path / "target"))
    assert _files(tmp_path / "target") == _files(source)
    for name in _files(source):
        assert os.stat(source / name).st_ino == os.stat(tmp_path / "target" / name).st_ino


def test_nothing_is_linked_over_an_existing_target(tmp_path):
    source = _tree(tmp_path / "source")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep.txt").write_text("mine")
    assert not link_tree(str(source), str(tmp_path / "target"))
    assert _files(tmp_path / "target") == {"keep.txt": b"mine"}


def test_a_failed_link_leaves_no_half_tree(tmp_path, monkeypatch):
    source = _tree(tmp_path / "source")
    real_link, made = os.link, []

    def link(src, dst):
        if made:
            raise OSError(18, "Invalid cross-device link")
        made.append(dst)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    assert not link_tree(str(source), str(tmp_path / "target"))
    assert not (tmp_path / "target").exists()
    assert _files(source) and len(made) == 1


def test_copy_links_on_a_local_disk_and_copies_where_it_cannot(spark, tmp_path, monkeypatch):
    fs = HadoopFS(spark)
    source = _tree(tmp_path / "source")
    fs.copy(str(source), str(tmp_path / "linked"))
    assert _files(tmp_path / "linked") == _files(source)
    assert os.stat(tmp_path / "linked" / "part-1.parquet").st_ino == os.stat(source / "part-1.parquet").st_ino

    monkeypatch.setattr(fs_module, "link_tree", lambda source, target: False)  # e.g. another device
    fs.copy(f"file://{source}", f"file://{tmp_path / 'copied'}")
    copied = {name: data for name, data in _files(tmp_path / "copied").items() if not name.endswith(".crc")}
    assert copied == {name: data for name, data in _files(source).items() if not name.endswith(".crc")}
    assert os.stat(tmp_path / "copied" / "part-1.parquet").st_ino != os.stat(source / "part-1.parquet").st_ino


def test_a_single_file_is_linked(tmp_path):
    source = _tree(tmp_path / "source")
    assert link_tree(str(source / "part-1.parquet"), str(tmp_path / "part-1.parquet"))
    assert os.stat(tmp_path / "part-1.parquet").st_ino == os.stat(source / "part-1.parquet").st_ino
