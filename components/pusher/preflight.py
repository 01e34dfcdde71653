"""The Pusher's check before a run starts: can the destination take a new version at all?

Found at push time, an unwritable destination costs the whole run (training, evaluation) and then
fails; checked first it costs nothing. Only a local destination is checked: a URL (``gs://...``) is
reached with the task's credentials, which may not be this machine's.
"""

from __future__ import annotations

import os
import tempfile
from typing import Mapping

from components.pusher.versions import is_url


def check_destination(sections: Mapping[str, object]) -> list[tuple[str, str]]:
    """Problems (YAML path, message) that would make a push to ``pusher.destination`` fail."""
    destination = sections["pusher"].destination
    if destination is None or is_url(destination):
        return []
    if os.path.exists(destination) and not os.path.isdir(destination):
        return [("pusher.destination", f"{destination} is a file, not a folder: the Pusher adds numbered "
                                       "version folders inside the destination")]
    existing = destination
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        return [("pusher.destination", f"{destination} cannot be created: {existing} is a file, not a folder")]
    try:  # os.access says yes to root on folders a read-only mount or a chattr refuses; trying says how it is
        handle, probe = tempfile.mkstemp(prefix=".sluiceway-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        what = "" if existing == destination else f" (it does not exist yet, and its nearest folder {existing} is not)"
        return [("pusher.destination", f"{destination} is not writable{what}: {exc.strerror or exc}. Choose a "
                                       "writable folder or change its permissions; the run stops before training")]
    return []
