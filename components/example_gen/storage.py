"""Where ExampleGen's files live: a local path, or a URL (``gs://bucket/data/part-0.csv``).

URLs are read through ``tf.io.gfile``, the layer the Pusher writes with, so any scheme TensorFlow's
file systems know works (``gs://``, and ``ram://`` for tests). TensorFlow is imported only when a
URL is given: listing local files for the runner's cache key stays light. Every file is opened as
an ordinary buffered binary stream, so the readers stream from a bucket as from a local disk.
"""

from __future__ import annotations

import glob as local_glob
import hashlib
import io
import os
import posixpath
from typing import BinaryIO

from pipeline.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 1 << 20


def is_url(path: str) -> bool:
    """Whether ``path`` names a location through a URL scheme (``gs://...``) rather than a local path."""
    return "://" in path


def _gfile():
    import tensorflow as tf  # only for URLs: the import takes seconds

    return tf.io.gfile, tf.errors.OpError


def _url_error(path: str, exc) -> DataError:
    return DataError(f"{path}: cannot read: {getattr(exc, 'message', exc)}")


class _GFileRaw(io.RawIOBase):
    """A ``tf.io.gfile.GFile`` as a raw binary stream (GFile has no ``closed`` or ``readinto``)."""

    def __init__(self, path: str):
        gfile, self._op_error = _gfile()
        self._path = path
        try:
            self._handle = gfile.GFile(path, "rb")
            self._size = gfile.stat(path).length
        except self._op_error as exc:
            raise _url_error(path, exc) from None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._handle.read(len(buffer))
        except self._op_error as exc:
            raise _url_error(self._path, exc) from None
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset, whence = self._size + offset, io.SEEK_SET
        self._handle.seek(offset, whence)
        return self._handle.tell()

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def open_binary(path: str) -> BinaryIO:
    """``path`` opened for reading bytes: a buffered, seekable stream, local or URL.

    Raises:
        DataError: A URL that cannot be opened (no access, unknown scheme, network).
    """
    if not is_url(path):
        return open(path, "rb")
    return io.BufferedReader(_GFileRaw(path), buffer_size=_READ_BYTES)


def size(path: str) -> int:
    """The size of a file in bytes."""
    if not is_url(path):
        return os.path.getsize(path)
    gfile, op_error = _gfile()
    try:
        return gfile.stat(path).length
    except op_error as exc:
        raise _url_error(path, exc) from None


def is_gzip(path: str) -> bool:
    """Whether the file starts like a gzip stream."""
    with open_binary(path) as handle:
        return handle.read(2) == GZIP_MAGIC


def sha256(path: str) -> str:
    """SHA-256 of a file's content, as ``sha256sum`` prints it (``pipeline.files.file_sha256`` for URLs too)."""
    digest = hashlib.sha256()
    with open_binary(path) as handle:
        hashlib.file_digest(handle, lambda: digest)
    return digest.hexdigest()


def list_files(source: str) -> list[str] | None:
    """The files ``source`` names: a folder's files (not its hidden ones nor its subfolders), a glob's
    matches (hidden files only when the pattern names them), or the file itself; ``None`` when a
    plain path does not exist.

    Raises:
        DataError: A URL that cannot be listed (no access, unknown scheme, network).
    """
    if not is_url(source):
        if os.path.isdir(source):
            matches = [os.path.join(source, name) for name in os.listdir(source) if not name.startswith(".")]
            return [m for m in matches if os.path.isfile(m)]
        if local_glob.has_magic(source):
            return [m for m in local_glob.glob(source) if os.path.isfile(m)]
        return [source] if os.path.exists(source) else None
    gfile, op_error = _gfile()
    try:
        if local_glob.has_magic(source):
            pattern_hidden = posixpath.basename(source).startswith(".")
            return [m for m in gfile.glob(source) if not gfile.isdir(m)
                    and (pattern_hidden or not posixpath.basename(m).startswith("."))]
        if gfile.isdir(source):
            # object stores list a folder's subfolders as "name/"
            names = [name for name in gfile.listdir(source) if not name.startswith(".") and not name.endswith("/")]
            matches = [f"{source.rstrip('/')}/{name}" for name in names]
            return [m for m in matches if not gfile.isdir(m)]
        return [source] if gfile.exists(source) else None
    except op_error as exc:
        raise DataError(f"data.source: {source}: cannot list: {exc.message}") from None
