"""``expirytrack migrate``, ``backup``, ``restore``, ``doctor``, ``delete``, ``prune-landing``: running it for months.

Paths come from the same settings the Dagster definitions use (``data/expirytrack.yaml`` and the
``EXPIRYTRACK_*`` variables), so these commands act on the files runs write. Bad input is one line
and exit code 2, as for every ``expirytrack`` command.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_BACKUP_DIR = Path("data/backups")
ENV_PASSPHRASE = "EXPIRYTRACK_BACKUP_PASSPHRASE"


class OpsUsageError(Exception):
    """Bad input or a refused operation: one line on stderr, exit code 2."""


def _usage(message: str) -> Exception:
    return OpsUsageError(message)


def _one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Print ``expirytrack CMD: error: …`` and return 2 for bad input, as ``cli.main`` does.

    Handled here because ``python -m expirytrack_dagster.cli`` runs ``cli`` as ``__main__``, whose
    ``UsageError`` is another class than the one ``cli._confirm`` raises when imported from here.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from expirytrack_dagster.cli import UsageError

        try:
            return command(args)
        except (OpsUsageError, UsageError) as exc:
            print(f"expirytrack {args.command}: error: {exc}", file=sys.stderr)
            return 2

    return run


def _stores() -> Any:
    """The files runs use, from the validated settings (``SettingsError`` is exit 2)."""
    from expirytrack_dagster.definitions import defs
    from expirytrack_dagster.instruments import config_path
    from expirytrack_dagster.ops.backup import ProjectFiles

    collection, upstox = defs.resources["collection"], defs.resources["upstox"]
    return ProjectFiles(
        database=Path(collection.database),
        landing_dir=Path(collection.landing_dir),
        state_dir=Path(upstox.state_dir),
        settings_file=config_path(),
    )


def _instance() -> Any:
    from dagster import DagsterInstance

    from expirytrack_dagster.cli import _dagster_home

    _dagster_home()
    return DagsterInstance.get()


# -- migrate -----------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema to this version, in place."""
    from expirytrack_dagster.storage.database import connect
    from expirytrack_dagster.storage.schema import (
        CURRENT_VERSION,
        SchemaError,
        describe,
        pending_migrations,
        schema_version,
    )

    database = _stores().database
    if not database.exists():
        raise _usage(f"no database at {database}: nothing to migrate")
    try:
        with connect(database, read_only=True) as db:
            before, steps = schema_version(db), pending_migrations(db)
        if steps or before is None:
            with connect(database):  # a write-open migrates, in one transaction
                pass
    except SchemaError as exc:
        raise _usage(str(exc)) from None
    if not steps and before is not None:
        print(f"{database}: schema version {CURRENT_VERSION}, nothing to do.")
    else:
        print(f"{database}: schema version {before or 1} → {CURRENT_VERSION}: {describe(steps)}.")
    return 0


# -- backup and restore --------------------------------------------------------------------------


def _passphrase(confirm: bool) -> str:
    given = os.environ.get(ENV_PASSPHRASE)
    if given:
        return given
    if not sys.stdin.isatty():
        raise _usage(
            f"credentials are encrypted with a passphrase: set {ENV_PASSPHRASE} or run on a terminal"
        )
    first = getpass.getpass("Passphrase for the credentials in the backup (input hidden): ")
    if confirm and getpass.getpass("Again: ") != first:
        raise _usage("the two passphrases differ; nothing was written")
    if not first:
        raise _usage("an empty passphrase would not protect the credentials")
    return first


def _credential_files() -> Any:
    from expirytrack_dagster.credentials.store import ENV_KEY, CredentialStore
    from expirytrack_dagster.ops.backup import CredentialFiles

    store = CredentialStore()
    env_key = os.environ.get(ENV_KEY)
    key = env_key.encode() if env_key else b""
    if not env_key and store.key_file.exists():
        key = store.key_file.read_bytes().strip()
    return CredentialFiles(store.path, None if env_key else store.key_file, key)


def cmd_backup(args: argparse.Namespace) -> int:
    """Write a verified, compressed archive of the database, landing zone, state and settings."""
    from expirytrack_dagster.ops.backup import BackupError, backup

    stores = _stores()
    credentials, passphrase = None, None
    if args.include_credentials:
        credentials = _credential_files()
        if not credentials.store_file.exists():
            raise _usage(f"no credentials stored at {credentials.store_file}: nothing to include")
        passphrase = _passphrase(confirm=True)
    print(f"Backing up {stores.database} (waiting for any running write to finish)…", flush=True)
    try:
        archive, manifest = backup(
            stores, args.dir, credentials=credentials, passphrase=passphrase, keep=args.keep
        )
    except BackupError as exc:
        raise _usage(str(exc)) from None
    rows = sum(n for n, _ in manifest.tables.values())
    print(f"Wrote {archive} ({archive.stat().st_size / 1e6:,.1f} MB)")
    print(
        f"  {len(manifest.tables)} tables, {rows:,} rows; {len(manifest.files)} files; "
        f"credentials: {'included, encrypted' if manifest.credentials else 'not included'}"
    )
    if args.keep:
        print(f"  keeping the newest {args.keep} backups in {args.dir}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Verify an archive, then put its parts in place, keeping the current ones beside them."""
    from expirytrack_dagster.ops.backup import BackupError, restore

    archive = Path(args.archive)
    if not archive.is_file():
        raise _usage(f"{archive}: no such backup archive (see `expirytrack backup`)")
    credentials, passphrase = None, None
    if args.include_credentials:
        credentials = _credential_files()
        passphrase = _passphrase(confirm=False)
    try:
        restored = restore(archive, _stores(), credentials=credentials, passphrase=passphrase)
    except BackupError as exc:
        raise _usage(str(exc)) from None
    rows = sum(n for n, _ in restored.manifest.tables.values())
    print(
        f"Verified {archive}: {len(restored.manifest.files)} files and "
        f"{len(restored.manifest.tables)} tables ({rows:,} rows) match their checksums."
    )
    for path, previous in restored.replaced:
        kept = f" (previous copy: {previous})" if previous else ""
        print(f"  restored {path}{kept}")
    return 0


# -- doctor ----------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the instance profile, token, database, disk, daemon, sensors, last collection and
    budget; exit 1 on a FIX."""
    from expirytrack_dagster.cli import _dagster_home
    from expirytrack_dagster.definitions import defs
    from expirytrack_dagster.ops import doctor
    from expirytrack_dagster.ops.instance_profile import check_instance_profile

    stores = _stores()
    upstox = defs.resources["upstox"]
    profile = check_instance_profile(_dagster_home())
    sensors = [(s.name, s.default_status.value == "RUNNING") for s in defs.sensors or []]
    limits = upstox.client_settings().limits
    # An instance that cannot load (its Postgres unset or silent) has no daemon, sensors or runs
    # to report: the profile's own line says what to fix.
    instance = _instance() if profile.level != "FIX" else None
    findings = [
        profile,
        doctor.check_token(upstox),
        *doctor.check_database(stores.database),
        doctor.check_disk(stores.database, stores.landing_dir),
        doctor.check_storage(
            stores.database, stores.landing_dir, defs.resources["collection"].landing_retention
        ),
        *(
            [
                doctor.check_daemon(instance),
                doctor.check_sensors(instance, sensors),
                doctor.check_last_collection(instance),
            ]
            if instance is not None
            else []
        ),
        *doctor.check_budget(stores.state_dir, limits, upstox.client_settings().ledger_url),
    ]
    print(f"expirytrack doctor — {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    for finding in findings:
        print(finding.line())
    chart = doctor.usage_lines(stores.database)
    if chart:
        print("\n30-minute budget in use at the end of recent runs:")
        for line in chart:
            print(f"  {line}")
    return 1 if any(f.level == "FIX" for f in findings) else 0


# -- delete ----------------------------------------------------------------------------------------


def cmd_delete(args: argparse.Namespace) -> int:
    """Show what a partition holds, then delete it everywhere (asks first; --yes for scripts)."""
    from expirytrack_dagster.cli import _confirm
    from expirytrack_dagster.definitions import defs
    from expirytrack_dagster.ops.delete import DeletionRefused, delete_partition, plan_deletion
    from expirytrack_dagster.partitions import parse_partition_key

    try:
        parse_partition_key(args.partition)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    stores = _stores()
    instance = _instance()
    asset_keys = [
        key
        for assets in defs.assets or []
        if getattr(assets, "partitions_def", None) is not None
        for key in assets.keys
    ]
    plan = plan_deletion(
        args.partition,
        database=stores.database,
        landing_dir=stores.landing_dir,
        instance=instance,
        asset_keys=asset_keys,
    )
    if plan.empty:
        raise _usage(
            f"nothing is stored for {args.partition}: no rows, landing files or Dagster "
            "partition (list keys with `expirytrack partitions SYMBOL`)"
        )
    print("\n".join(plan.describe()))
    if not _confirm(f"Delete {args.partition} for good?", "delete a partition", args):
        print("Nothing deleted.")
        return 1
    try:
        delete_partition(plan, database=stores.database, instance=instance)
    except DeletionRefused as exc:
        raise _usage(str(exc)) from None
    rows = sum(plan.rows.values())
    print(
        f"Deleted {args.partition}: {rows:,} rows, {plan.landing_files:,} landing files, "
        f"{len(plan.runs)} Dagster runs and the partition key. Collecting it again costs API "
        "budget."
    )
    return 0


# -- prune-landing ---------------------------------------------------------------------------------


def cmd_prune_landing(args: argparse.Namespace) -> int:
    """Verify partitions, show which landing files may go and why others stay, then prune (asks)."""
    from expirytrack_dagster.cli import _confirm
    from expirytrack_dagster.definitions import defs
    from expirytrack_dagster.ops.delete import runs_in_progress
    from expirytrack_dagster.ops.prune import PruneCheck, plan_prune, prune_partition
    from expirytrack_dagster.partitions import parse_partition_key
    from expirytrack_dagster.storage.database import DatabaseLocked
    from expirytrack_dagster.storage.landing import CandleLanding

    for key in args.partitions:
        try:
            parse_partition_key(key)
        except ValueError as exc:
            raise _usage(str(exc)) from None
    collection = defs.resources["collection"]
    landing = CandleLanding(collection.landing_dir, collection.interval)
    if unknown := [k for k in args.partitions if k not in landing.partitions()]:
        raise _usage(
            f"nothing landed for {', '.join(unknown)} under {landing.root / landing.interval}"
        )
    instance = _instance()
    try:
        checks = plan_prune(collection, args.partitions)
    except DatabaseLocked as exc:
        raise _usage(f"{exc}; run prune-landing again when the write ends") from None
    for i, check in enumerate(checks):
        if check.prunable and (busy := runs_in_progress(instance, check.partition_key)):
            reason = f"run {busy[0][:8]} of it is queued or running: prune once it ends"
            checks[i] = PruneCheck(check.partition_key, reason)
    prunable = [c for c in checks if c.prunable]
    kept = [c for c in checks if not c.prunable]
    if prunable:
        print("Verified complete, every candle in the database: their landing files can go")
        for check in prunable:
            print(
                f"  {check.partition_key:<24} {check.candle_rows:>12,} candles, "
                f"{_mb(check.landing_bytes)} of landing files"
            )
    if kept:
        print("Kept:")
        for check in kept:
            print(f"  {check.partition_key:<24} {check.reason}")
    if not prunable:
        print("Nothing to prune.")
        return 1 if args.partitions else 0
    freed = sum(c.landing_bytes for c in prunable)
    print(
        "Their day records stay (a re-run asks for nothing), but their candles will live only in "
        f"{collection.database}: `expirytrack rebuild` cannot restore them; `expirytrack backup` "
        "copies them."
    )
    question = f"Remove the landing files of {len(prunable)} partition(s), {_mb(freed)}?"
    if not _confirm(question, "prune the landing zone", args):
        print("Nothing pruned.")
        return 1
    done, freed = 0, 0
    for check in prunable:
        try:
            prune_partition(collection, check.partition_key, check)
        except ValueError as exc:
            print(f"expirytrack prune-landing: {exc}", file=sys.stderr)
            continue
        done, freed = done + 1, freed + check.landing_bytes
    print(f"Pruned {done} partition(s), {_mb(freed)} freed; day records kept.")
    return 0 if done == len(prunable) and not (kept and args.partitions) else 1


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def _keep(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def add_ops_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``migrate``, ``backup``, ``restore``, ``doctor``, ``delete`` and ``prune-landing``."""
    migrate = commands.add_parser(
        "migrate", help="upgrade the database's schema in place (runs also do it on open)"
    )
    migrate.set_defaults(func=_one_line_errors(cmd_migrate))

    backup = commands.add_parser(
        "backup", help="archive database, landing zone, learned state and settings (compressed)"
    )
    backup.add_argument(
        "--dir", type=Path, default=DEFAULT_BACKUP_DIR, help=f"where (default {DEFAULT_BACKUP_DIR})"
    )
    backup.add_argument("--keep", type=_keep, help="then delete all but the newest N backups")
    backup.add_argument(
        "--include-credentials",
        action="store_true",
        help=f"add the Upstox login, encrypted with a passphrase (${ENV_PASSPHRASE} or asked)",
    )
    backup.set_defaults(func=_one_line_errors(cmd_backup))

    restore = commands.add_parser(
        "restore", help="verify a backup, then restore it (the current files are kept aside)"
    )
    restore.add_argument("archive", help="an expirytrack-backup-….tar.gz file")
    restore.add_argument(
        "--include-credentials",
        action="store_true",
        help="restore the Upstox login too (needs the backup's passphrase)",
    )
    restore.set_defaults(func=_one_line_errors(cmd_restore))

    doctor = commands.add_parser(
        "doctor", help="check token, database, disk, daemon, sensors, last run and budget"
    )
    doctor.set_defaults(func=_one_line_errors(cmd_doctor))

    delete = commands.add_parser(
        "delete", help="delete one partition's rows, landing files and Dagster status (asks)"
    )
    delete.add_argument("partition", help="a partition key, e.g. NIFTY_2025-08-28")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_one_line_errors(cmd_delete))

    prune = commands.add_parser(
        "prune-landing",
        help="remove landing files of partitions verified complete in the database (asks)",
        description="Verify each partition (every contract-day final, the database holding "
        "exactly the landed candles, blocking checks passing) and remove its landing candle "
        "files, keeping its day records. Its candles then live only in the database.",
    )
    prune.add_argument(
        "partitions", nargs="*", metavar="PARTITION", help="e.g. NIFTY_2025-08-28; default: all"
    )
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    prune.set_defaults(func=_one_line_errors(cmd_prune_landing))
