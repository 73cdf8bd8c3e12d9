"""`expirytrack backup` / `restore`: a consistent archive, verified before anything is replaced."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from expirytrack_dagster.credentials.store import CredentialStore, StoredToken
from expirytrack_dagster.ops.backup import (
    BackupError,
    CredentialFiles,
    ProjectFiles,
    backup,
    list_archives,
    restore,
)
from expirytrack_dagster.ops.tables import table_checksums
from expirytrack_dagster_tests.ops.conftest import Project

SECRET = "upstox-token-that-must-never-show-0123456789"


def checksums(database: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(database), read_only=True) as db:
        return table_checksums(db)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (SQLite side files aside) and its SHA-256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def stores(project: Project) -> ProjectFiles:
    return ProjectFiles(project.database, project.landing, project.state, project.settings)


def test_backup_delete_restore_gives_every_table_back_identical(project: Project) -> None:
    tables, landing = checksums(project.database), tree(project.landing)
    settings = project.settings.read_text()
    assert tables["candles"][0] > 0 and tables["candle_fetch_status"][0] > 0

    done = project.run("backup", "--dir", str(project.root / "backups"))
    assert done.returncode == 0, done.stderr
    (archive,) = list_archives(project.root / "backups")
    assert f"Wrote {archive}" in done.stdout and "credentials: not included" in done.stdout

    project.database.unlink()
    shutil.rmtree(project.landing)
    shutil.rmtree(project.state)
    project.settings.write_text("collection:\n  lookback_months: 2\n")

    done = project.main("restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert "match their checksums" in done.stdout
    assert checksums(project.database) == tables  # every table: row count and checksum
    assert tree(project.landing) == landing
    assert (project.state / "ratelimit" / "USER1.sqlite").exists()
    assert project.settings.read_text() == settings
    kept = project.root / f"{project.settings.name}.before-restore-"
    assert any(p.name.startswith(kept.name) for p in project.root.iterdir())


def test_restore_keeps_the_previous_copy_beside_the_restored_one(project: Project) -> None:
    archive, _ = backup(stores(project), project.root / "backups")
    with duckdb.connect(str(project.database)) as db:
        db.execute("DELETE FROM candles WHERE partition_key = 'RELIANCE_2025-08-28'")
    changed = checksums(project.database)
    restored = restore(archive, stores(project))
    previous = dict(restored.replaced)[project.database]
    assert previous is not None and previous.name.startswith("expirytrack.duckdb.before-restore-")
    assert checksums(previous) == changed
    assert checksums(project.database) != changed


def test_a_damaged_archive_is_refused_and_nothing_is_replaced(project: Project) -> None:
    archive, _ = backup(stores(project), project.root / "backups")
    unpacked = project.root / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    victim = next((unpacked / "landing").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    damaged = project.root / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        for path in sorted(unpacked.rglob("*")):
            if path.is_file():
                tar.add(path, path.relative_to(unpacked).as_posix())
    before_db, before_landing = checksums(project.database), tree(project.landing)

    done = project.main("restore", str(damaged))

    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "is damaged (checksum differs); not restored" in line
    assert checksums(project.database) == before_db and tree(project.landing) == before_landing
    assert not [p for p in project.root.iterdir() if "before-restore" in p.name]


def test_a_changed_table_is_caught_by_its_checksum(project: Project) -> None:
    archive, _ = backup(stores(project), project.root / "backups")
    unpacked = project.root / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    database = unpacked / "database" / project.database.name
    with duckdb.connect(str(database)) as db:
        db.execute("UPDATE candles SET close = close + 0.05 WHERE volume = 100")
    # A forger who also fixes the file hashes still meets the table checksums.
    data = json.loads((unpacked / "manifest.json").read_text())
    data["files"][f"database/{database.name}"] = hashlib.sha256(database.read_bytes()).hexdigest()
    (unpacked / "manifest.json").write_text(json.dumps(data))
    forged = project.root / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        for path in sorted(unpacked.rglob("*")):
            if path.is_file():
                tar.add(path, path.relative_to(unpacked).as_posix())
    with pytest.raises(BackupError, match="tables candles differ from the manifest"):
        restore(forged, stores(project))


HOLD_AND_WRITE = """
import sys, time, duckdb
db = duckdb.connect(sys.argv[1])
db.execute("BEGIN TRANSACTION")
db.execute("INSERT INTO candles SELECT * FROM candles WHERE volume = 100")
print("writing", flush=True)
time.sleep(1.0)
db.execute("COMMIT")
db.close()
"""


def test_a_running_write_is_waited_for_not_copied_half_done(project: Project) -> None:
    rows = checksums(project.database)["candles"][0]
    with duckdb.connect(str(project.database), read_only=True) as db:
        added = db.execute("SELECT count(*) FROM candles WHERE volume = 100").fetchone()[0]
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WRITE, str(project.database)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "writing"
    _, manifest = backup(stores(project), project.root / "backups")
    assert writer.wait(timeout=60) == 0
    assert manifest.tables["candles"][0] == rows + added
    assert manifest.tables == checksums(project.database)


def test_keep_n_deletes_all_but_the_newest(project: Project) -> None:
    directory = project.root / "backups"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(3):
        backup(stores(project), directory, keep=2, now=start + timedelta(days=day))
    names = [p.name for p in list_archives(directory)]
    assert names == [
        "expirytrack-backup-20260102T000000000000Z.tar.gz",
        "expirytrack-backup-20260103T000000000000Z.tar.gz",
    ]
    assert sorted(p.name for p in directory.iterdir()) == names  # no partial file left


def _store(directory: Path) -> CredentialStore:
    store = CredentialStore(directory)
    store.save_token(StoredToken(SECRET, "access", obtained_at=datetime.now(UTC)))
    return store


def test_credentials_stay_out_unless_asked_and_then_are_encrypted(project: Project) -> None:
    _store(project.root / "credentials")
    backups = project.root / "backups"
    plain, _ = backup(stores(project), backups)
    with tarfile.open(plain) as tar:
        assert not any("credential" in name for name in tar.getnames())

    passphrase = {"EXPIRYTRACK_BACKUP_PASSPHRASE": "correct horse battery staple"}
    done = project.main("backup", "--dir", str(backups), "--include-credentials", **passphrase)
    assert done.returncode == 0, done.stderr
    assert "credentials: included, encrypted" in done.stdout
    archive = list_archives(backups)[-1]
    assert SECRET.encode() not in gzip.decompress(archive.read_bytes())

    shutil.rmtree(project.root / "credentials")
    target = CredentialFiles(
        project.root / "credentials" / "credentials.fernet",
        project.root / "credentials" / "credentials.key",
        b"",
    )
    with pytest.raises(BackupError, match="passphrase does not open") as refused:
        restore(archive, stores(project), credentials=target, passphrase="guess")
    assert SECRET not in str(refused.value)
    assert not (project.root / "credentials").exists()  # verified and refused before replacing

    done = project.main("restore", str(archive), "--include-credentials", **passphrase)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert CredentialStore(project.root / "credentials").load().token.access_token == SECRET


def test_credentials_without_a_passphrase_or_terminal_are_refused(project: Project) -> None:
    _store(project.root / "credentials")
    done = project.main("backup", "--dir", str(project.root / "b"), "--include-credentials")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "EXPIRYTRACK_BACKUP_PASSPHRASE" in line
    assert not list_archives(project.root / "b")


def test_restore_of_a_missing_archive_is_one_line(project: Project) -> None:
    done = project.main("restore", str(project.root / "nope.tar.gz"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "no such backup archive" in line
