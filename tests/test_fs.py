"""Copies within one local disk are hard links; anything else is copied byte for byte."""

from __future__ import annotations

import os

import pytest

from pricecurate.spark import fs as fs_module
from pricecurate.spark.fs import HadoopFS, link_tree


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


def test_a_reader_never_sees_a_small_file_half_written(spark, tmp_path):
    """Written whole or not at all: a reader polling the file while it is rewritten sees the old text or the
    new one (a truncate-and-rewrite shows empty and partial files here)."""
    import threading

    fs = HadoopFS(spark)
    target = str(tmp_path / "manifest.json")
    texts = ["a" * 4_000_000 + "\n", "b" * 4_000_000 + "\n"]
    fs.write_text(target, texts[0])
    seen, done = set(), threading.Event()

    def read() -> None:
        while not done.is_set():
            with open(target, encoding="utf-8") as handle:
                seen.add(len(handle.read()))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(6):
            fs.write_text(target, texts[(round_ + 1) % 2])
    finally:
        done.set()
        reader.join()
    assert seen <= {len(texts[0])}, sorted(seen)
    assert not [name for name in os.listdir(tmp_path) if name != "manifest.json"]  # no temp file left
    assert fs.read_text(target) == texts[0]  # read through Hadoop: no stale checksum file in the way


def test_create_new_creates_only_where_nothing_is(spark, tmp_path):
    fs = HadoopFS(spark)
    target = str(tmp_path / "sub" / "lease")
    assert fs.create_new(target, "first\n")
    assert not fs.create_new(target, "second\n")
    assert fs.read_text(target) == "first\n"
    assert sorted(os.listdir(tmp_path / "sub")) == ["lease"]


def test_a_copy_whose_source_loses_a_file_meanwhile_fails_and_leaves_nothing(spark, tmp_path, monkeypatch):
    fs = HadoopFS(spark)
    source = tmp_path / "curated"
    for name in ("part-0.parquet", "part-1.parquet", "part-2.parquet"):
        (source / "category=A").mkdir(parents=True, exist_ok=True)
        (source / "category=A" / name).write_bytes(b"x" * 1000)
    real_link = os.link

    def link_then_lose_the_rest(src, dst, *args, **kwargs):  # another process deletes the source as it is copied
        real_link(src, dst, *args, **kwargs)
        for name in sorted(os.listdir(source / "category=A")):
            if not os.path.exists(os.path.join(os.path.dirname(dst), name)):
                os.remove(source / "category=A" / name)
                return

    monkeypatch.setattr(fs_module.os, "link", link_then_lose_the_rest)
    try:
        fs.copy(str(source), str(tmp_path / "copy"))
    except OSError as error:
        assert "did not copy it whole" in str(error) and "is missing" in str(error)
    else:
        raise AssertionError("a partial copy was reported as a success")
    assert not (tmp_path / "copy").exists()


def test_a_local_folder_is_renamed_on_the_disk_and_anything_else_through_hadoop(spark, tmp_path):
    """A local folder to a free name: os.rename, no JVM call (a gateway-less HadoopFS still does it); a file, or a
    folder onto a name that is taken, goes through Hadoop's filesystem as before."""
    fs = HadoopFS(spark)
    source = _tree(tmp_path / "scratch" / "dataset=items")
    before = _files(source)
    (tmp_path / "items").mkdir()
    no_jvm = HadoopFS(spark)
    no_jvm._jvm = None  # any Hadoop call would fail
    no_jvm.rename(f"file:{source / 'category=Books'}", str(tmp_path / "items" / "category=Books"))
    assert not (source / "category=Books").exists()
    assert _files(tmp_path / "items" / "category=Books") == {
        name.split("/", 1)[1]: data for name, data in before.items() if name.startswith("category=Books/")}

    # A file, or a folder onto a name that is taken: Hadoop's filesystem, whose rules for them are its own.
    (tmp_path / "taken").mkdir()
    for source_uri, target in ((source / "part-1.parquet", tmp_path / "items" / "part-1.parquet"),
                               (tmp_path / "items" / "category=Books", tmp_path / "taken")):
        with pytest.raises(AttributeError):
            no_jvm.rename(str(source_uri), str(target))
    fs.rename(str(source / "part-1.parquet"), str(tmp_path / "items" / "part-1.parquet"))
    assert (tmp_path / "items" / "part-1.parquet").read_bytes() == b"PAR1 top"


def test_local_listings_and_checks_answer_as_hadoop_s_local_filesystem_does(spark, tmp_path):
    """Answered in Python on a local disk: the same entries (URIs, names, sizes, folders; checksum files hidden),
    existence, folders and modification times as Hadoop's own calls give."""
    fs = HadoopFS(spark)
    root = _tree(tmp_path / "out put")  # a space in the name
    (root / "empty").mkdir()
    (root / ".hidden").write_text("not a checksum file")
    (root / ".part-1.parquet.crc").write_bytes(b"crc")
    os.symlink(root / "category=Books", root / "linked")
    os.symlink(root / "gone", root / "dangling")
    hadoop = fs._path(str(root))[1]
    for uri in (str(root), f"file:{root}", f"file://{root}", str(root / "category=Books")):
        assert fs.list(uri) == fs._hadoop_list(uri), uri
    assert [entry.name for entry in fs.list(str(root))] == [
        ".hidden", "category=Books", "empty", "linked", "part-1.parquet"]
    for path in (root, root / "empty", root / "part-1.parquet", root / "linked", root / "dangling", root / "nothing"):
        hadoop_path = fs._path(str(path))[0]
        assert fs.exists(str(path)) == bool(hadoop.exists(hadoop_path)), path
        assert fs.is_dir(str(path)) == bool(hadoop.exists(hadoop_path)
                                            and hadoop.getFileStatus(hadoop_path).isDirectory()), path
    for path in (root / "part-1.parquet", root / "empty"):
        assert fs.modified(str(path)) == int(hadoop.getFileStatus(fs._path(str(path))[0]).getModificationTime())
