"""Durable file operations shared by the gcache and grastate.dat.

A file replaced with `atomic_write` is either entirely the old one or entirely the new one
after a crash at any point: the new bytes go to a temporary file that is fsynced, renamed
over the old name (atomic in POSIX), and the directory is fsynced so the rename itself
survives a power loss.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make creations, renames and unlinks in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, sync: bool = True) -> None:
    """Replace `path` with `data` all at once; with `sync` the new content is durable too."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)
