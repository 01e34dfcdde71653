"""The push destination's layout: TF Serving's ``<destination>/<version>/`` with integer versions.

A destination is a local folder or a URL (``gs://bucket/models/credit``, any ``scheme://`` TensorFlow's
file systems know). What counts as a complete version follows from what the storage guarantees (see
``components.pusher.core``): in a local folder a numbered folder only ever appears whole, by an atomic
rename; on an object store a numbered folder fills up object by object, so it is a version only once
its manifest, written last, is there.

Two fingerprints of a model are recorded in a manifest: ``model_fingerprint``
(``components.common.model_fingerprint``: weights, assets, signatures, graph constants; the same for two
exports of the same model) decides "this model already serves"; ``model_files`` (each file's size) and
``model_files_sha256`` let ``version_problem`` check a pushed version cheaply, without TensorFlow.
Manifests written before them hold ``model_sha256`` (every file's content) only; they are still read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import socket

from pipeline.errors import SluicewayError
from pipeline.files import files_sha256, listing_difference, tree_listing, tree_sha256

MANIFEST_FILE = "sluiceway_manifest.json"
TEMPORARY_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"  # beside a temporary copy: held (flock) by its push while it runs
_NUMBERED = re.compile(r"^(?:\.tmp-)?(\d+)(?:-.*)?$")


def is_url(path: str) -> bool:
    """Whether ``path`` names a location through a URL scheme (``gs://...``) rather than a local path."""
    return "://" in path


def join(destination: str, name: str) -> str:
    """``destination/name``, keeping a URL a URL."""
    return f"{destination.rstrip('/')}/{name}" if is_url(destination) else os.path.join(destination, name)


def entries(destination: str) -> list[str]:
    """The names directly inside ``destination`` (none when it does not exist).

    Raises:
        SluicewayError: A URL destination cannot be listed (no access, unknown scheme, network).
    """
    if not is_url(destination):
        return os.listdir(destination) if os.path.isdir(destination) else []
    import tensorflow as tf

    try:
        if not tf.io.gfile.exists(destination) or not tf.io.gfile.isdir(destination):  # exists: unknown schemes raise
            return []
        return [name.rstrip("/") for name in tf.io.gfile.listdir(destination)]  # GCS lists folders as "name/"
    except tf.errors.OpError as exc:
        raise SluicewayError(f"Pusher: cannot read pusher.destination {destination}: {exc.message}") from None


def taken_numbers(names: list[str]) -> set[int]:
    """Every version number ``names`` use in any form: complete, partial, or a temporary copy's."""
    return {int(match.group(1)) for match in map(_NUMBERED.match, names) if match}


def versions(destination: str) -> list[int]:
    """The complete versions in ``destination``, oldest first.

    Temporary copies are never versions; on a URL destination neither is a numbered folder without
    its manifest (a push interrupted while filling it).

    Raises:
        SluicewayError: A URL destination cannot be listed.
    """
    if not destination:
        return []
    numbered = [name for name in entries(destination) if name.isdigit()]
    if not is_url(destination):
        return sorted(int(name) for name in numbered if os.path.isdir(os.path.join(destination, name)))
    import tensorflow as tf

    try:
        return sorted(int(name) for name in numbered
                      if tf.io.gfile.exists(join(join(destination, name), MANIFEST_FILE)))
    except tf.errors.OpError as exc:
        raise SluicewayError(f"Pusher: cannot read pusher.destination {destination}: {exc.message}") from None


def latest(destination: str) -> str | None:
    """The folder of the newest version: the model currently serving, or ``None``.

    Raises:
        SluicewayError: A URL destination cannot be listed.
    """
    found = versions(destination)
    return join(destination, str(found[-1])) if found else None


def model_sha256(model_dir: str) -> str:
    """A fingerprint of a local SavedModel folder: every file's relative path and content (``tree_sha256``).

    Manifests record it as ``model_sha256``; the Pusher compares it to the serving model's.
    """
    return tree_sha256(model_dir)


def read_text(path: str) -> str | None:
    """A text file in a destination, local or at a URL; ``None`` when it does not exist.

    Raises:
        SluicewayError: A URL cannot be read (no access, network).
    """
    if not is_url(path):
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    import tensorflow as tf

    try:
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as handle:
            return handle.read()
    except tf.errors.OpError as exc:
        raise SluicewayError(f"cannot read {path}: {exc.message}") from None


def read_manifest(version_dir: str) -> dict | None:
    """The manifest of a pushed version (``None`` for a version pushed without one)."""
    import json

    text = read_text(join(version_dir, MANIFEST_FILE))
    return None if text is None else json.loads(text)


def model_record(model_dir: str) -> dict:
    """What a manifest records to check the pushed copy later: ``model_sha256`` (as before),
    ``model_files`` (relative path -> size) and ``model_files_sha256``."""
    listing = tree_listing(model_dir)
    return {"model_sha256": model_sha256(model_dir), "model_files": listing,
            "model_files_sha256": files_sha256(model_dir, listing)}


def version_problem(version_dir: str, manifest: dict | None) -> str | None:
    """Why a pushed version is not the complete model it was pushed as, or ``None`` when it is.

    A local version whose manifest lists its files is checked against that list (sizes, then content),
    which needs no TensorFlow; any other version (a URL, an older manifest, none) is read as a
    SavedModel (``model_fingerprint``), and compared with the manifest's ``model_fingerprint`` if any.
    Files added to a version are not a problem: TF Serving reads only the SavedModel's own.
    """
    manifest = manifest or {}
    recorded = manifest.get("model_files")
    if recorded and not is_url(version_dir):
        try:
            found = {name: size for name, size in tree_listing(version_dir).items() if name in recorded}
            difference = listing_difference(recorded, found)
            if difference:
                return difference
            if files_sha256(version_dir, recorded) != manifest.get("model_files_sha256"):
                return "its content differs from what was pushed, though no file changed size"
        except OSError as exc:
            return f"its files cannot be read ({exc.strerror or exc})"
        return None
    from components.common.model_fingerprint import ModelUnreadable, model_fingerprint

    try:
        fingerprint = model_fingerprint(version_dir)
    except ModelUnreadable as exc:
        return exc.problem
    expected = manifest.get("model_fingerprint")
    if expected and fingerprint != expected:
        return f"its content differs from what was pushed (model fingerprint {fingerprint}, pushed as {expected})"
    return None


# --- temporary copies: named after the push that writes them, locked while it runs


def temporary_name(version: int) -> str:
    """``.tmp-<version>-<host>-<pid>-<random>``: who wrote a temporary copy, for a person looking at it."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"
    return f"{TEMPORARY_PREFIX}{version}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


@contextlib.contextmanager
def held_lock(path: str):
    """Creates ``path`` and holds an exclusive ``flock`` on it for the block, then removes it.

    The kernel releases the lock when the holder dies, however it dies (kill -9 included), so a lock
    file nobody holds belongs to a push that is gone. The lock is taken on the file that is still at
    ``path`` (a cleaner may remove a file between its creation and the lock; then it is made again).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def clean_stale_temporaries(destination: str) -> tuple[list[str], list[str]]:
    """Removes the temporary copies that pushes which are no longer running left in a local folder.

    A copy is stale when nobody holds its lock file (``<copy>.lock``): its push was killed. A live
    push holds its lock from before its copy exists until after the copy is renamed to a version, so
    its copy is never touched. A ``.tmp-`` folder without a lock file (left by a sluiceway that did not
    lock) is kept, as nothing says whether its push still runs.

    Returns:
        The names removed, and the names kept because nothing says whether they are stale.
    """
    names = entries(destination)
    removed = []
    for name in sorted(names):
        if not name.startswith(TEMPORARY_PREFIX) or not name.endswith(LOCK_SUFFIX):
            continue
        lock = os.path.join(destination, name)
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # its push just finished
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live push holds it
            os.close(fd)
            continue
        try:
            copy = name[:-len(LOCK_SUFFIX)]
            if os.path.isdir(os.path.join(destination, copy)):  # none when its push died right after the rename
                shutil.rmtree(os.path.join(destination, copy), ignore_errors=True)
                removed.append(copy)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
        finally:
            os.close(fd)
    locked = {name[:-len(LOCK_SUFFIX)] for name in names if name.endswith(LOCK_SUFFIX)}
    unknown = [name for name in sorted(names) if name.startswith(TEMPORARY_PREFIX) and not name.endswith(LOCK_SUFFIX)
               and name not in locked and name not in removed]
    return removed, unknown
