"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over it.

Readers see the old file or the new one, never half of one, even when the writer is killed
mid-write. A crash leaves at most a hidden ``.<name>.tmp-<random>`` file beside the target, which
nothing reads (backups skip names holding ``TEMP_MARK``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = ".tmp-"
"""Part of every temporary file's name, so that directory walkers can skip them."""


@contextlib.contextmanager
def atomic_write(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A binary file whose bytes replace ``path`` when the ``with`` block ends without an error.

    The temporary file lives in ``path``'s directory (a rename is atomic only within one file
    system) and is fsynced before ``os.replace``, the directory after it. On an error the
    temporary file is removed and ``path`` is left as it was. ``private=True`` creates the file
    mode 0600 from its first byte (no umask window), for secrets. The directory must exist.
    """
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags | getattr(os, "O_BINARY", 0), 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if private and os.name == "posix":
                os.fchmod(handle.fileno(), 0o600)  # exactly 0600, whatever the umask took away
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if os.name == "posix":  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_bytes_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` through :func:`atomic_write`."""
    with atomic_write(path, private=private) as handle:
        handle.write(data)
