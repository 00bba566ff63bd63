"""Writing a file whole or not at all; a file given a second name.

``write_atomic`` writes the bytes to a staging file beside the target and renames it over the target: a reader
(the page fetching a picture, a later run reading a key) sees the old file or the new one, never half of one, and a
write that fails leaves no staging file behind. The staging file is made readable by this user only (``mkstemp``),
and the target takes that mode.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | str, sync: bool = False) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` whole, making its folder; ``sync``: on disk before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            if sync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """``target`` becomes ``source``'s contents: a second name of the same file where the file system allows (no
    bytes copied), a copy otherwise. Such a file is written only once: never open one of its names for writing
    (unlink the name and write a new file)."""
    target = Path(target)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
