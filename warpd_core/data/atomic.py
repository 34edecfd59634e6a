"""Write a file so that it is either absent or complete under its real name, even across a crash.

The bytes go to `<name>.tmp` in the same directory (same filesystem, so the rename is atomic),
are fsynced, and only then renamed over the real name; the directory is fsynced so the rename
itself survives a power cut. A hard kill mid-write leaves only the temp file, which readers
ignore (reader.py warns about it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

from warpd_core.data.schema import TEMP_SUFFIX


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create or replace `path` with what `write(file)` writes, atomically."""
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:  # including KeyboardInterrupt: leave no temp file behind when we can
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
