"""The push destination's layout: TF Serving's ``<destination>/<version>/`` with integer versions."""

from __future__ import annotations

import os

MANIFEST_FILE = "sluiceway_manifest.json"


def versions(destination: str) -> list[int]:
    """The complete versions in ``destination``, oldest first (temporary folders are not versions)."""
    if not destination or not os.path.isdir(destination):
        return []
    return sorted(int(name) for name in os.listdir(destination)
                  if name.isdigit() and os.path.isdir(os.path.join(destination, name)))


def latest(destination: str) -> str | None:
    """The folder of the newest version: the model currently serving, or ``None``."""
    found = versions(destination)
    return os.path.join(destination, str(found[-1])) if found else None
