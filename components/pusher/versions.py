"""The push destination's layout: TF Serving's ``<destination>/<version>/`` with integer versions.

A destination is a local folder or a URL (``gs://bucket/models/credit``, any ``scheme://`` TensorFlow's
file systems know). What counts as a complete version follows from what the storage guarantees (see
``components.pusher.core``): in a local folder a numbered folder only ever appears whole, by an atomic
rename; on an object store a numbered folder fills up object by object, so it is a version only once
its manifest, written last, is there.
"""

from __future__ import annotations

import os
import re

from pipeline.errors import SluicewayError
from pipeline.files import tree_sha256

MANIFEST_FILE = "sluiceway_manifest.json"
TEMPORARY_PREFIX = ".tmp-"
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


def read_manifest(version_dir: str) -> dict | None:
    """The manifest of a pushed version (``None`` for a version pushed without one)."""
    import json

    path = join(version_dir, MANIFEST_FILE)
    if not is_url(version_dir):
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    import tensorflow as tf

    try:
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as handle:
            return json.loads(handle.read())
    except tf.errors.OpError as exc:
        raise SluicewayError(f"Pusher: cannot read {path}: {exc.message}") from None
