"""Filesystem operations through Spark's Hadoop FileSystem, so every URI Spark reads works.

Local paths, ``file://``, ``hdfs://`` and ``s3a://`` all go through the same
calls; the driver's JVM does the work.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


def redact(uri: str) -> str:
    """The URI without credentials (``s3a://key:secret@bucket`` → ``s3a://***@bucket``)."""
    parts = urlsplit(str(uri))
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
    return str(uri)


_URI_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_text(text: str) -> str:
    """Any free text with the credentials of URIs in it masked."""
    return _URI_CREDENTIALS.sub(r"\1***@", text)


@dataclass(frozen=True)
class Entry:
    uri: str
    name: str
    size: int
    is_dir: bool


class HadoopFS:
    def __init__(self, spark):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(str(uri))
        return path, path.getFileSystem(self._conf)

    def qualify(self, uri: str) -> str:
        path, fs = self._path(uri)
        return str(fs.makeQualified(path).toString())

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def is_dir(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def list(self, uri: str) -> list[Entry]:
        path, fs = self._path(uri)
        entries = []
        for status in fs.listStatus(path):
            child = status.getPath()
            entries.append(Entry(str(child.toString()), str(child.getName()), int(status.getLen()), bool(status.isDirectory())))
        return sorted(entries, key=lambda e: e.name)

    def mkdirs(self, uri: str) -> None:
        path, fs = self._path(uri)
        fs.mkdirs(path)

    def delete(self, uri: str) -> None:
        path, fs = self._path(uri)
        if fs.exists(path):
            fs.delete(path, True)

    def rename(self, source: str, target: str) -> None:
        src, fs = self._path(source)
        dst, _ = self._path(target)
        if not fs.rename(src, dst):
            raise OSError(f"could not rename {redact(source)} to {redact(target)}")

    def copy(self, source: str, target: str) -> None:
        """Copy a file or a folder with all it holds, byte for byte (possibly across filesystems).

        Within one local disk the files are hard-linked instead: what pricecurate copies is written once and
        never changed, so sharing the bytes is as good as a copy, and instant.
        """
        src, src_fs = self._path(source)
        dst, dst_fs = self._path(target)
        if _is_local(src_fs) and _is_local(dst_fs) and link_tree(_local_path(src), _local_path(dst)):
            return
        if not self._jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src, dst_fs, dst, False, self._conf):
            raise OSError(f"could not copy {redact(source)} to {redact(target)}")

    def write_text(self, uri: str, text: str) -> None:
        path, fs = self._path(uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def head(self, uri: str, max_bytes: int) -> bytes:
        """The first ``max_bytes`` bytes of a file (fewer if it is shorter), as stored (no decompression)."""
        return self.read_range(uri, 0, max_bytes)

    def read_range(self, uri: str, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes from ``offset`` on, as stored."""
        return bytes(self._in_range(uri, offset, max_bytes, self._jvm.org.apache.commons.io.IOUtils.toByteArray))

    def sha256(self, uri: str, offset: int, max_bytes: int) -> str:
        """The sha256 of up to ``max_bytes`` bytes from ``offset`` on, hashed where they are read (only the
        digest crosses to Python)."""
        return str(self._in_range(uri, offset, max_bytes, self._jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex))

    def _in_range(self, uri: str, offset: int, max_bytes: int, consume):
        path, fs = self._path(uri)
        stream = fs.open(path)
        try:
            if offset:
                stream.seek(offset)
            return consume(self._jvm.org.apache.commons.io.input.BoundedInputStream(stream, max_bytes))
        finally:
            stream.close()

    def modified(self, uri: str) -> int:
        """The file's modification time, in milliseconds since the epoch."""
        path, fs = self._path(uri)
        return int(fs.getFileStatus(path).getModificationTime())

    def read_text(self, uri: str) -> str:
        path, fs = self._path(uri)
        stream = fs.open(path)
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode("utf-8")


def _is_local(fs) -> bool:
    return str(fs.getUri().getScheme()) == "file"


def _local_path(path) -> str:
    return str(path.toUri().getPath())


def link_tree(source: str, target: str) -> bool:
    """Hard-link ``source`` (a file, or a folder and all it holds) at ``target``; False, with nothing left at
    ``target``, when the filesystem cannot (another device, no hard links) or ``target`` is already there."""
    if os.path.lexists(target):
        return False
    try:
        if not os.path.isdir(source):
            os.link(source, target)
            return True
        for folder, _, files in os.walk(source):
            into = os.path.join(target, os.path.relpath(folder, source))
            os.makedirs(into, exist_ok=True)
            for name in files:
                os.link(os.path.join(folder, name), os.path.join(into, name))
        return True
    except OSError:
        if os.path.isdir(target):
            shutil.rmtree(target, ignore_errors=True)
        elif os.path.lexists(target):
            os.unlink(target)
        return False
