"""Which Dagster instance profile ``DAGSTER_HOME`` selects, and whether its database answers.

The single-machine default (``data/dagster_home``) keeps runs, events and schedules in SQLite
files beside its ``dagster.yaml``; the production profile (``deploy/dagster_home``, README "Beyond
one machine") keeps them in PostgreSQL at the URL in ``EXPIRYTRACK_DAGSTER_PG_URL``. Nothing in the
code chooses: the ``dagster.yaml`` in ``DAGSTER_HOME`` does. ``expirytrack doctor`` reports the
profile first, because the daemon, sensor and run checks after it read that instance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy
import yaml

from expirytrack_dagster.ops.doctor import Finding
from expirytrack_dagster.upstox.ledger import mask_url

CONNECT_TIMEOUT_S = 5
PG_URL_VARIABLE = "EXPIRYTRACK_DAGSTER_PG_URL"
"""The variable deploy/dagster_home/dagster.yaml reads its database URL from."""
TOPIC = "dagster instance"


class MissingVariable(LookupError):
    """A variable the instance configuration reads (``{env: NAME}``) is not set."""


def _resolve(node: Any, environ: Mapping[str, str]) -> Any:
    """``node`` with each ``{env: NAME}`` replaced by that variable's value."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            if node["env"] not in environ:
                raise MissingVariable(node["env"])
            return environ[node["env"]]
        return {key: _resolve(value, environ) for key, value in node.items()}
    return node


def postgres_url(dagster_home: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The SQLAlchemy URL of the instance's Postgres storage, or None for SQLite (the default).

    Raises :class:`MissingVariable` when the configuration reads a variable that is not set.
    """
    path = dagster_home / "dagster.yaml"
    config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    storage = (config.get("storage") or {}).get("postgres")
    if storage is None:
        return None
    from dagster_postgres.utils import pg_url_from_config  # the `production` extra

    return pg_url_from_config(_resolve(storage, os.environ if environ is None else environ))


def check_instance_profile(dagster_home: Path, environ: Mapping[str, str] | None = None) -> Finding:
    """OK with the active profile (a Postgres URL shown with its password masked) when the
    instance can load; FIX when its variable is unset, its driver missing or its server silent."""
    try:
        url = postgres_url(dagster_home, environ)
    except ModuleNotFoundError:
        return Finding(
            TOPIC,
            "FIX",
            f"{dagster_home} stores runs in PostgreSQL, but dagster-postgres is not installed",
            "pip install 'expirytrack-dagster[production]'",
        )
    except MissingVariable as exc:
        return Finding(
            TOPIC,
            "FIX",
            f"{dagster_home} stores runs in PostgreSQL, but {exc.args[0]} is not set",
            f"set {exc.args[0]}=postgresql+psycopg2://USER:PASSWORD@HOST:5432/DATABASE",
        )
    if url is None:
        return Finding(TOPIC, "OK", f"single machine: SQLite files in {dagster_home}")
    shown = mask_url(url)
    password = sqlalchemy.engine.make_url(url).password
    try:
        engine = sqlalchemy.create_engine(
            url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=sqlalchemy.NullPool
        )
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    except ModuleNotFoundError as exc:
        return Finding(
            TOPIC,
            "FIX",
            f"production: {shown} needs the Python module {exc.name!r}, which is not installed",
            "name the installed driver in the URL: postgresql+psycopg2://…",
        )
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if password:
            reason = reason.replace(password, "***")
        return Finding(
            TOPIC,
            "FIX",
            f"production: {shown} does not answer ({reason})",
            "start the server or correct the URL; the daemon, UI and runs need it",
        )
    return Finding(TOPIC, "OK", f"production: PostgreSQL {version} at {shown}")
