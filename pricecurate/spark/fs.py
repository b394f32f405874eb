"""Filesystem operations through Spark's Hadoop FileSystem, so every URI Spark reads works.

Local paths, ``file://``, ``hdfs://`` and ``s3a://`` all go through the same
calls; the driver's JVM does the work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass

# The one masking rule, under the names the modules that print URIs import from here.
from pricecurate.masking import redact_text  # noqa: F401
from pricecurate.masking import redact_uri as redact
from pricecurate.paths import local_path


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
        self._default_local = str(self._conf.get("fs.defaultFS") or "file:///").startswith("file:")

    def _local(self, uri: str) -> str | None:
        """The path on this machine's disk that ``uri`` names (a ``file:`` URI, or a plain path while the default
        filesystem is local), else None. Reads and listings there are done in plain Python, as Hadoop's local
        filesystem would do them, without a JVM call per file (a small run's dozens of files cost seconds)."""
        path = local_path(uri)
        return path if uri.startswith("file:") or self._default_local else None

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(str(uri))
        return path, path.getFileSystem(self._conf)

    def qualify(self, uri: str) -> str:
        path, fs = self._path(uri)
        return str(fs.makeQualified(path).toString())

    def exists(self, uri: str) -> bool:
        local = self._local(uri)
        if local is not None:
            return os.path.exists(local)
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def is_dir(self, uri: str) -> bool:
        local = self._local(uri)
        if local is not None:
            return os.path.isdir(local)
        path, fs = self._path(uri)
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def list(self, uri: str) -> list[Entry]:
        local = self._local(uri)
        if local is not None and os.path.isdir(local):
            return _local_list(local)
        return self._hadoop_list(uri)

    def _hadoop_list(self, uri: str) -> list[Entry]:
        path, fs = self._path(uri)
        entries = []
        for status in fs.listStatus(path):
            child = status.getPath()
            entries.append(Entry(str(child.toString()), str(child.getName()), int(status.getLen()),
                                 bool(status.isDirectory())))
        return sorted(entries, key=lambda e: e.name)

    def mkdirs(self, uri: str) -> None:
        path, fs = self._path(uri)
        fs.mkdirs(path)

    def delete(self, uri: str) -> None:
        path, fs = self._path(uri)
        if fs.exists(path):
            fs.delete(path, True)

    def rename(self, source: str, target: str) -> None:
        local_source, local_target = self._local(source), self._local(target)
        if (local_source and local_target and os.path.isdir(local_source) and not os.path.lexists(local_target)
                and os.path.isdir(os.path.dirname(local_target))):
            # A folder on this machine's disk to a free name: the rename(2) Hadoop's local filesystem makes, without
            # the JVM calls (a run's write moves 70-100 category folders, 7 ms each through the gateway).
            os.rename(local_source, local_target)
            return
        src, fs = self._path(source)
        dst, _ = self._path(target)
        if not fs.rename(src, dst):
            raise OSError(f"could not rename {redact(source)} to {redact(target)}")

    def copy(self, source: str, target: str) -> None:
        """Copy a file or a folder with all it holds, byte for byte (possibly across filesystems), and check the
        copy holds every file of the source with its size; a source that changes meanwhile fails the copy.

        Within one local disk the files are hard-linked instead: what pricecurate copies is written once and
        never changed, so sharing the bytes is as good as a copy, and instant.
        """
        src, src_fs = self._path(source)
        dst, dst_fs = self._path(target)
        before = self.tree(source)
        if not (_is_local(src_fs) and _is_local(dst_fs) and link_tree(_local_path(src), _local_path(dst))):
            if not self._jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src, dst_fs, dst, False, self._conf):
                raise OSError(f"could not copy {redact(source)} to {redact(target)}")
        problem = tree_difference(before, self.tree(target)) or tree_difference(before, self.tree(source))
        if problem:
            self.delete(target)
            raise OSError(f"copying {redact(source)} to {redact(target)} did not copy it whole ({problem}); "
                          "is another process changing it?")

    def tree(self, uri: str) -> dict[str, int]:
        """Every file under ``uri`` (a folder, or one file) by its path relative to it, with its size; checksum
        files left out (a copy may or may not have them)."""
        local = self._local(uri)
        if local is not None:
            return _local_tree(local)
        path, fs = self._path(uri)
        if not fs.exists(path):
            return {}
        status = fs.getFileStatus(path)
        if not status.isDirectory():
            return {"": int(status.getLen())}
        root = str(fs.makeQualified(path).toString()).rstrip("/") + "/"
        files = {}
        found = fs.listFiles(path, True)
        while found.hasNext():
            status = found.next()
            name = str(status.getPath().toString())
            relative = name[len(root):] if name.startswith(root) else name.rsplit("/", 1)[-1]
            if not relative.rsplit("/", 1)[-1].endswith(".crc"):
                files[relative] = int(status.getLen())
        return files

    def write_text(self, uri: str, text: str) -> None:
        """Write a small file so that a reader (or a kill) never sees part of it: a temp file renamed over the
        target where rename is atomic (local disks, HDFS), one PUT on object stores (an object appears whole)."""
        path, fs = self._path(uri)
        data = text.encode("utf-8")
        scheme = str(fs.getUri().getScheme())
        if scheme == "file":
            _write_local(_local_path(path), data)
            return
        if scheme in OBJECT_STORES:
            self._create(path, fs, data, overwrite=True)
            return
        temp = self._jvm.org.apache.hadoop.fs.Path(path.getParent(), temp_name(str(path.getName())))
        self._create(temp, fs, data, overwrite=False)
        try:
            self._replace(temp, path, fs)
        except BaseException:
            fs.delete(temp, False)
            raise

    def _create(self, path, fs, data: bytes, overwrite: bool) -> None:
        stream = fs.create(path, overwrite)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def _replace(self, temp, path, fs) -> None:
        """Rename ``temp`` over ``path``: atomically through FileContext where the filesystem supports it (HDFS);
        else the old file goes first (a reader then finds none for a moment, never a partial one)."""
        jvm = self._jvm
        try:
            options = self._gateway().new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
            options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
            jvm.org.apache.hadoop.fs.FileContext.getFileContext(path.toUri(), self._conf).rename(temp, path, options)
            return
        except Exception:  # noqa: BLE001 - no FileContext for this scheme: the two-step rename below
            pass
        if fs.exists(path):
            fs.delete(path, False)
        if not fs.rename(temp, path):
            raise OSError(f"could not rename {redact(str(temp))} to {redact(str(path))}")

    def _gateway(self):
        from pyspark import SparkContext

        return SparkContext._gateway

    def create_new(self, uri: str, text: str) -> bool:
        """Create a small file only if nothing is there; False when something is (another run's lease).

        Local disks: a complete temp file hard-linked to the name (atomic, never seen partial). HDFS: the
        NameNode's exclusive create. Object stores: the connector's create without overwrite, a conditional
        PUT where it makes one (S3A with conditional writes, GCS, ABFS); since some make it a look then a PUT,
        the file is read back after ``SETTLE_SECONDS`` and only counts as created if it still holds this text.
        """
        path, fs = self._path(uri)
        data = text.encode("utf-8")
        scheme = str(fs.getUri().getScheme())
        if scheme == "file":
            return _create_local(_local_path(path), data)
        try:
            self._create(path, fs, data, overwrite=False)
        except Exception as error:  # noqa: BLE001 - FileAlreadyExistsException, wrapped by py4j
            if "AlreadyExists" in str(error) or fs.exists(path):
                return False
            raise
        if scheme in OBJECT_STORES:
            time.sleep(SETTLE_SECONDS)
            try:
                return self.read_text(uri) == text
            except Exception:  # noqa: BLE001 - deleted by the run that won
                return False
        return True

    def head(self, uri: str, max_bytes: int) -> bytes:
        """The first ``max_bytes`` bytes of a file (fewer if it is shorter), as stored (no decompression)."""
        return self.read_range(uri, 0, max_bytes)

    def read_range(self, uri: str, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes from ``offset`` on, as stored."""
        local = self._local(uri)
        if local is not None:
            return b"".join(_local_chunks(local, offset, max_bytes))
        return bytes(self._in_range(uri, offset, max_bytes, self._jvm.org.apache.commons.io.IOUtils.toByteArray))

    def sha256(self, uri: str, offset: int, max_bytes: int) -> str:
        """The sha256 of up to ``max_bytes`` bytes from ``offset`` on, hashed where they are read (only the
        digest crosses to Python)."""
        local = self._local(uri)
        if local is not None:
            hashed = hashlib.sha256()
            for chunk in _local_chunks(local, offset, max_bytes):
                hashed.update(chunk)
            return hashed.hexdigest()
        digest = self._jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex
        return str(self._in_range(uri, offset, max_bytes, digest))

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
        local = self._local(uri)
        if local is not None:
            return os.stat(local).st_mtime_ns // 1_000_000
        path, fs = self._path(uri)
        return int(fs.getFileStatus(path).getModificationTime())

    def read_text(self, uri: str) -> str:
        local = self._local(uri)
        if local is not None:
            with open(local, encoding="utf-8") as handle:
                return handle.read()
        path, fs = self._path(uri)
        stream = fs.open(path)
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode("utf-8")


def _local_list(folder: str) -> list[Entry]:
    """``HadoopFS.list`` of a local folder as Hadoop's local filesystem answers it: qualified ``file:`` URIs, sizes
    as ``File.length()`` (a folder's too), its checksum files (``.name.crc``) hidden, entries gone meanwhile left out.
    """
    root = os.path.abspath(folder)
    entries = []
    with os.scandir(root) as found:
        for entry in found:
            if entry.name.startswith(".") and entry.name.endswith(".crc"):
                continue
            try:
                status = entry.stat()
            except FileNotFoundError:  # removed since the folder was read, or a dangling link
                continue
            entries.append(Entry(f"file:{os.path.join(root, entry.name)}", entry.name, status.st_size,
                                 stat.S_ISDIR(status.st_mode)))
    return sorted(entries, key=lambda e: e.name)


def _local_chunks(path: str, offset: int, max_bytes: int, size: int = 1 << 20):
    """Up to ``max_bytes`` bytes of a local file from ``offset`` on, in chunks (never all at once)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        left = max_bytes
        while left > 0:
            chunk = handle.read(min(size, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _local_tree(root: str) -> dict[str, int]:
    """``HadoopFS.tree`` of a local path: every file's size by its path relative to ``root``, no checksum files."""
    if os.path.isfile(root):
        return {"": os.path.getsize(root)}
    if not os.path.isdir(root):
        return {}
    files = {}
    for folder, _, names in os.walk(root, onerror=_fail):
        for name in names:
            if not name.endswith(".crc"):
                path = os.path.join(folder, name)
                files[os.path.relpath(path, root).replace(os.sep, "/")] = os.path.getsize(path)
    return files


# Schemes whose "rename" is a copy and a delete, and whose single PUT is all or nothing.
OBJECT_STORES = frozenset({"s3a", "s3", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos", "cosn", "obs"})
SETTLE_SECONDS = 2.0  # before reading back a file created on an object store (see create_new)
_TEMP_MARK = ".pricecurate-write-"


def temp_name(name: str) -> str:
    """Where a small file is written before it is renamed to ``name`` (hidden, so no reader lists it)."""
    return f".{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and _TEMP_MARK in name


def tree_difference(expected: dict[str, int], found: dict[str, int]) -> str | None:
    """What ``found`` lacks of ``expected`` (a missing file or another size), in words; None when it has it all."""
    for name, size in sorted(expected.items()):
        if name not in found:
            return f"{name or 'the file'} is missing"
        if found[name] != size:
            return f"{name or 'the file'} has {found[name]:,} bytes, not {size:,}"
    return None


def _temp_beside(target: str, data: bytes) -> str:
    """``data`` on disk in a hidden temp file beside ``target``; its path."""
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, temp_name(name))
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return temp


def _write_local(target: str, data: bytes) -> None:
    temp = _temp_beside(target, data)
    try:
        # Hadoop's local filesystem checks a file against its .crc when one is there: an old one must not
        # outlive the bytes it was made for (without one, nothing is checked).
        folder, name = os.path.split(target)
        crc = os.path.join(folder, f".{name}.crc")
        if os.path.lexists(crc):
            os.unlink(crc)
        os.replace(temp, target)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _create_local(target: str, data: bytes) -> bool:
    """A complete temp file linked to ``target``: linking fails if anything is there."""
    temp = _temp_beside(target, data)
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    return True


class LocalFiles:
    """The read-only calls of ``HadoopFS`` on local paths, in plain Python: lets the command check an output
    folder before Spark starts."""

    def exists(self, uri: str) -> bool:
        return os.path.lexists(uri)

    def is_dir(self, uri: str) -> bool:
        return os.path.isdir(uri)

    def list(self, uri: str) -> list[Entry]:
        with os.scandir(uri) as found:
            return sorted((Entry(e.path, e.name, e.stat().st_size if e.is_file() else 0, e.is_dir()) for e in found),
                          key=lambda e: e.name)

    def read_text(self, uri: str) -> str:
        with open(uri, encoding="utf-8") as handle:
            return handle.read()


def _is_local(fs) -> bool:
    return str(fs.getUri().getScheme()) == "file"


def _local_path(path) -> str:
    return str(path.toUri().getPath())


def _fail(error: OSError) -> None:
    raise error  # os.walk skips a folder it cannot list unless told otherwise: a copy must not


def link_tree(source: str, target: str) -> bool:
    """Hard-link ``source`` (a file, or a folder and all it holds) at ``target``; False, with nothing left at
    ``target``, when the filesystem cannot (another device, no hard links) or ``target`` is already there."""
    if os.path.lexists(target):
        return False
    try:
        if not os.path.isdir(source):
            os.link(source, target)
            return True
        for folder, _, files in os.walk(source, onerror=_fail):
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
