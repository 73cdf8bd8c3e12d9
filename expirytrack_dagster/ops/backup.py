"""Backup and restore: one compressed archive of the database, landing zone, learned state and settings.

The archive (``expirytrack-backup-<UTC time>.tar.gz``) holds::

    manifest.json          what is inside: SHA-256 of every file, rows and checksum of every table
    database/<file>        the DuckDB file (and its WAL, if one is pending), copied while a
                           read-only connection is open: DuckDB then lets no process write, so the
                           copy is never taken mid-write (a running write is waited for)
    landing/…              the landing zone (each file read through one open handle: whole)
    state/…                learned request spans and rate ledgers (SQLite online backups)
    settings/<file>        data/expirytrack.yaml, when it exists
    credentials.enc        only with ``include_credentials``: the credential store and its key,
                           encrypted with a passphrase (scrypt + Fernet); never otherwise

Restoring verifies everything first (file checksums, then every table's rows and checksum in the
extracted database) and only then swaps each part into place, keeping what was there beside it as
``<name>.before-restore-<time>``. The Dagster instance (run history) is not part of a backup.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from expirytrack_dagster.atomic_write import TEMP_MARK, atomic_write, write_bytes_atomically
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster.storage.database import connect

ARCHIVE_PREFIX = "expirytrack-backup-"
ARCHIVE_SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
CREDENTIALS_MEMBER = "credentials.enc"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore cannot proceed; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class ProjectFiles:
    """The files a backup covers, as the settings name them."""

    database: Path
    landing_dir: Path
    state_dir: Path
    settings_file: Path


@dataclass(frozen=True)
class CredentialFiles:
    """The credential store file and its Fernet key (bytes), as ``expirytrack login`` keeps them."""

    store_file: Path
    key_file: Path | None  # None: the key comes from an environment variable
    key: bytes = field(repr=False)


@dataclass
class Manifest:
    """What an archive holds and how to check it."""

    created_at: str
    database_name: str
    tables: dict[str, tuple[int, str]]
    files: dict[str, str]  # member name -> sha256
    credentials: bool = False
    format: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        data["tables"] = {k: tuple(v) for k, v in data["tables"].items()}
        return cls(**data)


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _add_file(tar: tarfile.TarFile, source: Path, name: str, files: dict[str, str]) -> None:
    """Add ``source`` as ``name``, hashing and copying through one handle (a file replaced
    meanwhile by an atomic rename is still read whole, as it was when opened)."""
    with source.open("rb") as handle:
        info = tar.gettarinfo(fileobj=handle, arcname=name)
        files[name] = _sha256(handle)
        handle.seek(0)
        tar.addfile(info, handle)


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str, files: dict[str, str]) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and TEMP_MARK not in path.name:
            _add_file(tar, path, f"{prefix}/{path.relative_to(root).as_posix()}", files)


def _snapshot_state(state_dir: Path, into: Path) -> None:
    """Copy the state directory; SQLite files through the online backup API (consistent)."""
    for path in sorted(state_dir.rglob("*")):
        if not path.is_file() or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        target = into / path.relative_to(state_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".sqlite":
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
                source.close()
        else:
            shutil.copy2(path, target)


def _key(passphrase: str, salt: bytes) -> bytes:
    raw = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())
    return base64.urlsafe_b64encode(raw)


def seal_credentials(creds: CredentialFiles, passphrase: str) -> bytes:
    """The store file and its key, encrypted with ``passphrase`` (salt prepended)."""
    salt = os.urandom(16)
    plain = json.dumps(
        {
            "store": base64.b64encode(creds.store_file.read_bytes()).decode(),
            "key": creds.key.decode(),
        }
    ).encode()
    return salt + Fernet(_key(passphrase, salt)).encrypt(plain)


def open_credentials(sealed: bytes, passphrase: str) -> tuple[bytes, bytes]:
    """``(store file bytes, key)`` from :func:`seal_credentials`; ``BackupError`` if wrong."""
    try:
        plain = Fernet(_key(passphrase, sealed[:16])).decrypt(sealed[16:])
    except InvalidToken:
        raise BackupError("the passphrase does not open the backed-up credentials") from None
    data = json.loads(plain)
    return base64.b64decode(data["store"]), data["key"].encode()


def backup(
    stores: ProjectFiles,
    directory: Path,
    *,
    credentials: CredentialFiles | None = None,
    passphrase: str | None = None,
    keep: int | None = None,
    lock_timeout_s: float = 600.0,
    now: datetime | None = None,
) -> tuple[Path, Manifest]:
    """Write an archive of ``stores`` into ``directory``; with ``keep``, delete all but the newest
    ``keep`` archives there. Credentials go in only when given, sealed with ``passphrase``."""
    if not stores.database.exists():
        raise BackupError(f"no database at {stores.database}: nothing to back up")
    if credentials is not None and not passphrase:
        raise BackupError("backing up credentials needs a passphrase to encrypt them")
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{ARCHIVE_PREFIX}{now:%Y%m%dT%H%M%S%fZ}{ARCHIVE_SUFFIX}"
    archive = directory / name
    files: dict[str, str] = {}
    wal = stores.database.with_name(stores.database.name + ".wal")
    with (
        atomic_write(archive) as handle,
        tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as tar,
    ):
        with connect(stores.database, read_only=True, lock_timeout_s=lock_timeout_s) as db:
            # While this read-only connection is open no process can write the file.
            tables = table_checksums(db)
            for source in (stores.database, wal):
                if source.exists():
                    _add_file(tar, source, f"database/{source.name}", files)
        if stores.landing_dir.exists():
            _add_tree(tar, stores.landing_dir, "landing", files)
        if stores.state_dir.exists():
            with tempfile.TemporaryDirectory(dir=directory) as staging:
                _snapshot_state(stores.state_dir, Path(staging))
                _add_tree(tar, Path(staging), "state", files)
        if stores.settings_file.exists():
            _add_file(tar, stores.settings_file, f"settings/{stores.settings_file.name}", files)
        if credentials is not None:
            sealed = seal_credentials(credentials, passphrase or "")
            _add_bytes(tar, CREDENTIALS_MEMBER, sealed, files)
        manifest = Manifest(
            created_at=now.isoformat(),
            database_name=stores.database.name,
            tables=tables,
            files=files,
            credentials=credentials is not None,
        )
        _add_bytes(tar, MANIFEST, manifest.to_json(), {})
    if keep is not None:
        for old in list_archives(directory)[:-keep] if keep > 0 else []:
            old.unlink()
    return archive, manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, files: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    files[name] = hashlib.sha256(data).hexdigest()
    tar.addfile(info, io.BytesIO(data))


def list_archives(directory: Path) -> list[Path]:
    """The backups in ``directory``, oldest first (their names sort by time)."""
    if not directory.exists():
        return []
    return sorted(directory.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}"))


# -- Restore ---------------------------------------------------------------------------------


@dataclass
class Restored:
    """What a restore put in place, and where the previous copy of each part was kept."""

    manifest: Manifest
    replaced: list[tuple[Path, Path | None]]  # (restored path, previous copy or None)


def verify_archive(archive: Path, into: Path) -> Manifest:
    """Extract ``archive`` into ``into`` and check it whole; ``BackupError`` naming any fault.

    Every file must match its SHA-256 and every table of the extracted database its row count
    and checksum, as recorded when the backup was taken.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive: {exc}") from None
    manifest_path = into / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{archive} has no {MANIFEST}: not an expirytrack backup")
    manifest = Manifest.from_json(manifest_path.read_bytes())
    if manifest.format != FORMAT_VERSION:
        raise BackupError(f"{archive} is backup format {manifest.format}; this expirytrack reads 1")
    present = {
        p.relative_to(into).as_posix()
        for p in into.rglob("*")
        if p.is_file() and p != manifest_path
    }
    if present != set(manifest.files):
        odd = sorted(present ^ set(manifest.files))
        raise BackupError(f"{archive}: files differ from its manifest ({', '.join(odd[:3])})")
    for name, expected in manifest.files.items():
        with (into / name).open("rb") as handle:
            if _sha256(handle) != expected:
                raise BackupError(f"{archive}: {name} is damaged (checksum differs); not restored")
    database = into / "database" / manifest.database_name
    with connect(database, read_only=True) as db:
        found = table_checksums(db)
    if found != manifest.tables:
        bad = sorted(
            t for t in set(found) | set(manifest.tables) if found.get(t) != manifest.tables.get(t)
        )
        raise BackupError(
            f"{archive}: tables {', '.join(bad)} differ from the manifest; not restored"
        )
    return manifest


def _set_aside(path: Path, stamp: str) -> Path | None:
    if not path.exists():
        return None
    previous = path.with_name(f"{path.name}.before-restore-{stamp}")
    os.replace(path, previous)
    return previous


def _put(source: Path, target: Path, stamp: str, replaced: list[tuple[Path, Path | None]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    replaced.append((target, _set_aside(target, stamp)))
    os.replace(source, target)


def restore(
    archive: Path,
    stores: ProjectFiles,
    *,
    credentials: CredentialFiles | None = None,
    passphrase: str | None = None,
    lock_timeout_s: float = 600.0,
    now: datetime | None = None,
) -> Restored:
    """Verify ``archive``, then put each part it holds in place of the current one.

    The current database, landing zone, state and settings are kept beside themselves as
    ``<name>.before-restore-<time>``. Credentials are restored only when ``credentials`` names
    where they go (and ``passphrase`` opens them); otherwise they stay as they are.
    """
    if not archive.is_file():
        raise BackupError(f"no backup archive at {archive}")
    stamp = f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}"
    parent = stores.database.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".restore-") as staging_dir:
        staging = Path(staging_dir)
        manifest = verify_archive(archive, staging)
        sealed = None
        if credentials is not None:
            if not manifest.credentials:
                raise BackupError(f"{archive} holds no credentials (backed up without them)")
            sealed = open_credentials((staging / CREDENTIALS_MEMBER).read_bytes(), passphrase or "")
        replaced: list[tuple[Path, Path | None]] = []
        wal = stores.database.with_name(stores.database.name + ".wal")
        restored_db = staging / "database" / manifest.database_name
        restored_wal = restored_db.with_name(restored_db.name + ".wal")
        with ExitStack() as hold:
            if stores.database.exists():  # no process writes while the files are swapped
                hold.enter_context(
                    connect(stores.database, read_only=True, lock_timeout_s=lock_timeout_s)
                )
            _set_aside(wal, stamp)
            _put(restored_db, stores.database, stamp, replaced)
            if restored_wal.exists():
                os.replace(restored_wal, wal)
        for member, target in (("landing", stores.landing_dir), ("state", stores.state_dir)):
            if (staging / member).exists():
                _put(staging / member, target, stamp, replaced)
        settings = staging / "settings" / stores.settings_file.name
        if settings.exists():
            _put(settings, stores.settings_file, stamp, replaced)
        if sealed is not None and credentials is not None:
            store_bytes, key = sealed
            _restore_credentials(store_bytes, key, credentials, stamp, replaced)
    return Restored(manifest, replaced)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_bytes_atomically(path, data, private=True)


def _restore_credentials(
    store_bytes: bytes,
    key: bytes,
    target: CredentialFiles,
    stamp: str,
    replaced: list[tuple[Path, Path | None]],
) -> None:
    if target.key_file is None and target.key != key:
        raise BackupError(
            "the backed-up credentials use another key than the one in the environment: unset "
            "EXPIRYTRACK_CREDENTIALS_KEY to restore them with their own key"
        )
    replaced.append((target.store_file, _set_aside(target.store_file, stamp)))
    _write_private(target.store_file, store_bytes)
    if target.key_file is not None:
        replaced.append((target.key_file, _set_aside(target.key_file, stamp)))
        _write_private(target.key_file, key)
