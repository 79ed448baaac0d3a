"""Files written from the store's contents (exports, reports): whole or not at all.

A file is written under a temporary name beside its target and renamed over it only once
complete, so an error half-way (a missing customer, a full disk, a kill) leaves an existing
file as it was. A symbolic link is written through (its target is replaced); a target that is
not a regular file (a device such as /dev/null, a folder) is refused rather than replaced.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from crm_es.domain.errors import CrmError


@contextlib.contextmanager
def replaced(out: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write that becomes ``out`` when the block ends without an error;
    ``private``: readable by its owner only (an export holds personal data and keys)."""
    target = Path(os.path.realpath(out))
    if target.exists() and not target.is_file():
        raise CrmError(f"{out} is not a regular file: give a file path to write to")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(tmp, flags, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
