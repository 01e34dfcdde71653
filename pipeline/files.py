"""File helpers shared by the runner, the CLI and the components: content hashes and atomic writes.

Hashes: ``file_sha256`` (one file), ``tree_sha256`` (a folder: every file's relative path and content;
the Pusher's ``model_sha256``), ``files_sha256`` (a chosen set of files under a root, e.g. source code).

Atomic writes: the file is written under a temporary name in the target's own folder, flushed to disk,
then renamed over the target with ``os.replace``, so a reader sees the old file or the new one, never
half of one. When writing fails the temporary file is removed and the old file is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import IO, Any, Iterable, Iterator

_FILE_PERMISSIONS = 0o644  # what open() gives under the usual umask 022; mkstemp's own 0o600 would be a surprise


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, as ``sha256sum`` prints it; a URL (``gs://...``) is read through
    TensorFlow's file systems, as ExampleGen reads it."""
    if "://" in os.fspath(path):
        import tensorflow as tf

        digest = hashlib.sha256()
        with tf.io.gfile.GFile(os.fspath(path), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_sha256(path: str | os.PathLike) -> str:
    """A fingerprint of a folder: every file's path relative to it (with '/') and content.

    Files are taken top-down, each folder's files in sorted order before its subfolders in sorted
    order; empty folders add nothing, and symbolic links to folders are not followed. This is the
    ``model_sha256`` recorded in the manifests of pushed models, so the order and encoding must stay
    as they are. A file (not a folder) hashes as its content alone, as ``file_sha256``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    top = os.fspath(path)
    if os.path.isfile(top):
        return file_sha256(top)
    if not os.path.isdir(top):
        raise FileNotFoundError(f"no such file or folder: {top}")
    digest = hashlib.sha256()
    for root, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            file_path = os.path.join(root, name)
            digest.update(os.path.relpath(file_path, top).replace(os.sep, "/").encode())
            with open(file_path, "rb") as handle:
                hashlib.file_digest(handle, lambda: digest)  # streams the content into the running digest
    return digest.hexdigest()


def tree_listing(path: str | os.PathLike) -> dict[str, int]:
    """Every file under a folder (relative path with '/') and its size in bytes; a file lists itself
    as ``""``. What the cache records beside ``tree_sha256`` to say what changed in a damaged output."""
    top = os.fspath(path)
    if os.path.isfile(top):
        return {"": os.path.getsize(top)}
    listing = {}
    for root, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            file_path = os.path.join(root, name)
            listing[os.path.relpath(file_path, top).replace(os.sep, "/")] = os.path.getsize(file_path)
    return listing


def listing_difference(recorded: dict[str, int], found: dict[str, int]) -> str | None:
    """The first way ``found`` differs from ``recorded`` (a ``tree_listing``), in words, or ``None``."""
    for name, size in recorded.items():
        shown = name or "the file"
        if name not in found:
            return f"{shown} is missing"
        if found[name] != size:
            return f"{shown} is {found[name]:,} bytes, was {size:,}"
    extra = sorted(set(found) - set(recorded))
    return f"{extra[0]} was added" if extra else None


def files_sha256(root: str | os.PathLike, relative_paths: Iterable[str]) -> str:
    """A fingerprint of some files under ``root``: their relative paths and contents.

    The same as ``cd ROOT && printf '%s\\n' PATHS | LC_ALL=C sort | xargs sha256sum | sha256sum``: the
    SHA-256 of the ``sha256sum`` listing (``<hex>  <path>`` lines), paths sorted byte-wise, so the order
    they are given in does not matter.

    Args:
        root: The folder the paths are relative to.
        relative_paths: Paths under ``root``, with '/' as separator.

    Raises:
        FileNotFoundError: A path does not exist.
    """
    base = os.fspath(root)
    listing = "".join(f"{file_sha256(os.path.join(base, relative))}  {relative}\n"
                      for relative in sorted(set(relative_paths), key=os.fsencode))
    return hashlib.sha256(listing.encode()).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary path to write ``path``'s new content to, for writers that want a file name.

    The temporary file (``.<name>.<random><suffix>``, in ``path``'s folder) exists, empty, when the
    block starts. When the block completes it is synced to disk and renamed over ``path``; when the
    block raises it is removed and ``path`` is untouched. The folder must exist.

    Args:
        path: The file to (re)place.
        suffix: The temporary name's ending, for writers that go by the extension (``.yaml``).

    Yields:
        The temporary file's path.
    """
    target = os.fspath(path)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=suffix,
                                dir=os.path.dirname(os.path.abspath(target)))
    os.close(fd)
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)  # the writer may have replaced the file: sync what is there now
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, _FILE_PERMISSIONS)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str = "utf-8") -> Iterator[IO]:
    """``open(path, mode)`` for writing, except that ``path`` changes only if the block completes.

    Args:
        path: The file to (re)place; its folder must exist.
        mode: ``"w"`` (text, in ``encoding``) or ``"wb"``.

    Yields:
        The open temporary file; see ``atomic_path``.

    Raises:
        ValueError: ``mode`` is neither ``"w"`` nor ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as temp:
        with open(temp, mode, encoding=None if mode == "wb" else encoding) as handle:
            yield handle


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically: readers see the old content or ``data``, never a part."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Writes ``text`` to ``path`` atomically (see ``atomic_write_bytes``)."""
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, **json_kwargs: Any) -> None:
    """Writes ``obj`` as JSON to ``path`` atomically; ``json_kwargs`` go to ``json.dumps``.

    The object is serialized before anything is written, so one that cannot be leaves ``path`` alone.

    Raises:
        TypeError, ValueError: ``obj`` is not JSON-serializable (as ``json.dumps`` raises).
    """
    atomic_write_text(path, json.dumps(obj, **json_kwargs))
