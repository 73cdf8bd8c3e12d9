"""One in-memory DuckDB instance per process, to which each short connection attaches its file.

Starting a DuckDB instance builds its whole function catalogue: about 15 ms of CPU, and a
``malloc_trim`` when it closes. A run opens the database a dozen times, the explorer once per
request. Attaching the file to an instance that is already running takes about 1 ms.

- ``open`` attaches the file (``READ_ONLY`` for a reader) and returns a cursor of its own whose
  default catalogue is that file, so unqualified table names mean the file's tables.
- ``release`` detaches it when its last user in this process is done. ``DETACH`` checkpoints the
  file and frees its lock, as closing an instance of its own does: another process may then open
  it.
- DuckDB refuses to attach one file twice in a process, whatever the instance
  (``duckdb.ResourceInUseException``): a second user of the same file shares the attachment,
  and a user wanting the other mode (read-only against read-write) is refused, as DuckDB refuses
  two instances of one file with different configurations.
- Settings made on a cursor (the IST ``TimeZone``) stay on that cursor; temporary tables and
  registered frames belong to it too.
- A forked child never uses its parent's instance: it starts its own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

_RESERVED_ALIASES = frozenset({"memory", "temp", "system", "main"})


@dataclass
class _Attachment:
    alias: str
    read_only: bool
    users: int = 0


class SharedInstance:
    """An in-memory DuckDB with files attached while they are in use (see the module docstring)."""

    def __init__(self, config: dict[str, str]) -> None:
        self._base = duckdb.connect(":memory:", config=config)
        self._lock = threading.Lock()
        self._attached: dict[str, _Attachment] = {}

    def open(self, path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A cursor on ``path``, attached now or already; ``release(path)`` after closing it.

        Errors are DuckDB's own: a missing file opened read-only, another process's lock, a file
        that is not a DuckDB database.
        """
        key = _key(path)
        with self._lock:
            attachment = self._attached.get(key)
            if attachment is None:
                alias = self._free_alias(path.stem)
                quoted = str(path).replace("'", "''")
                mode = " (READ_ONLY)" if read_only else ""
                self._base.execute(f"ATTACH '{quoted}' AS {_identifier(alias)}{mode}")
                attachment = self._attached[key] = _Attachment(alias, read_only)
            elif attachment.read_only != read_only:
                held, wanted = (
                    ("read-only", "to write") if attachment.read_only else ("to write", "read-only")
                )
                raise duckdb.ConnectionException(
                    f"{path} is open {held} in this process, so it cannot be opened {wanted} "
                    "until that connection closes (DuckDB opens a file one way per process)"
                )
            attachment.users += 1
            try:
                cursor = self._base.cursor()
                cursor.execute(f"USE {_identifier(attachment.alias)}")
            except BaseException:
                self._release_locked(key)
                raise
        return cursor

    def release(self, path: Path) -> None:
        """One user of ``path`` is done; the last one detaches it (checkpoint, lock freed)."""
        with self._lock:
            self._release_locked(_key(path))

    def attached(self) -> dict[str, bool]:
        """``{file: read_only}`` of the files attached now."""
        with self._lock:
            return {key: a.read_only for key, a in self._attached.items()}

    def _release_locked(self, key: str) -> None:
        attachment = self._attached[key]
        attachment.users -= 1
        if attachment.users == 0:
            # Forgotten only once detached: after a failed DETACH (its checkpoint could not
            # write) the next user of the file takes the attachment, and its release tries again.
            self._base.execute(f"DETACH {_identifier(attachment.alias)}")
            del self._attached[key]

    def _free_alias(self, stem: str) -> str:
        taken = {a.alias for a in self._attached.values()} | _RESERVED_ALIASES
        alias, n = stem, 1
        while alias in taken:
            n += 1
            alias = f"{stem}_{n}"
        return alias


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_INSTANCES: dict[tuple[int, tuple[tuple[str, str], ...]], SharedInstance] = {}
"""Keyed by process id too. A forked child keeps its parent's entries without ever using or
closing them: closing would checkpoint, in the child, files the parent still has open."""
_INSTANCES_LOCK = threading.Lock()


def _fresh_lock_in_child() -> None:
    """A fork may copy the lock while another thread of the parent holds it."""
    global _INSTANCES_LOCK
    _INSTANCES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def shared_instance(config: dict[str, str], first_file: Path) -> SharedInstance:
    """This process's instance for ``config`` (one per process id: a forked child makes its own).

    A query larger than the memory limit spills to ``<first_file>.tmp``, where an instance of
    that file's own would spill (an in-memory instance would use ``.tmp`` in the working
    directory). DuckDB cannot move its spill folder once used, so the file that starts the
    instance chooses it: in a run, the CLI or the explorer, the collection database.
    """
    key = (os.getpid(), tuple(sorted(config.items())))
    with _INSTANCES_LOCK:
        instance = _INSTANCES.get(key)
        if instance is None:
            spill = {"temp_directory": f"{os.path.realpath(first_file)}.tmp"}
            instance = _INSTANCES[key] = SharedInstance(config | spill)
        return instance


def attached_files() -> dict[str, bool]:
    """``{file: read_only}`` of every file this process's instances hold attached now."""
    with _INSTANCES_LOCK:
        instances = [i for (pid, _), i in _INSTANCES.items() if pid == os.getpid()]
    return {file: ro for instance in instances for file, ro in instance.attached().items()}
