"""Which runs are alive: each local run holds an exclusive lock on ``<run folder>/.lock`` while it runs.

The operating system releases a lock when its process ends, however it ends (``kill -9``, a crash,
a machine reboot), so a run recorded as RUNNING whose lock can be taken is a run whose process is
gone: an abandoned run. The next run (and ``sluiceway runs``) marks it ABANDONED and removes the
temporary folders (``.tmp-*``) it left; the lock of a live run is held, so nothing of it is touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket

LOCK_FILE = ".lock"
TEMPORARY_PREFIX = ".tmp-"


class RunLock:
    """The lock a run holds while it runs (released by ``release`` or by the process ending)."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_FILE)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None


def is_live(run_dir: str) -> bool:
    """Whether the run of ``run_dir`` still holds its lock. A run folder without a lock file (never
    locked, or removed) is not live."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def remove_temporaries(run_dir: str) -> list[str]:
    """Removes the temporary output folders of a dead run (``<component>/.tmp-*``); returns them,
    relative to ``run_dir``."""
    removed = []
    if not os.path.isdir(run_dir):
        return removed
    for component in sorted(os.listdir(run_dir)):
        folder = os.path.join(run_dir, component)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.startswith(TEMPORARY_PREFIX):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                removed.append(f"{component}/{name}")
    return removed
