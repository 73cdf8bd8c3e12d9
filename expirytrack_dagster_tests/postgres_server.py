"""A real PostgreSQL server on loopback for the production-profile tests (no mocks of Postgres).

``.ci/run`` installs Debian's ``postgresql`` package; this module finds its binaries
(``/usr/lib/postgresql/<version>/bin``, or ``initdb`` on PATH), makes a throwaway cluster in a
private directory, starts ``postgres`` on ``127.0.0.1`` and a free port, and stops and deletes it
afterwards. Postgres refuses to run as root, so as root the cluster belongs to the ``postgres``
user the package creates and every server command runs through ``setpriv`` (which execs, so
the process we start *is* the server and our signals reach it).

Tests use the fixtures in ``conftest.py``: ``postgres_server`` (one server per xdist worker) and
``postgres_dsn`` (a fresh, empty database per test, so tests never see each other's tables).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"
"""The role tests connect as (trust authentication on loopback: the cluster is throwaway)."""

START_TIMEOUT_S = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (``.ci/run`` installs them)."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: newest Debian version first."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
        reverse=True,
    )
    if found:
        return Path(found[0]).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
        "install Debian's 'postgresql' package, as .ci/run does"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: connect to ``dsn(database)`` on ``127.0.0.1:port``."""

    port: int
    data_dir: Path

    host: str = "127.0.0.1"
    user: str = SERVER_USER

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL (what psycopg2, SQLAlchemy and dagster-postgres all take)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        import psycopg2

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(self.dsn())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix and owner ids for server commands (``setpriv`` when we are root)."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PostgresUnavailable(
            f"running as root and there is no {SERVER_USER!r} user to run the server as "
            "(Debian's postgresql package creates it)"
        ) from exc
    prefix = [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--init-groups",
        "--",
    ]
    return prefix, account.pw_uid, account.pw_gid


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL server on loopback; stop and delete it on exit."""
    bin_dir = find_bin_dir()
    prefix, uid, gid = _as_server_user()
    # Not under pytest's tmp_path: its parents are private to root, and the server user must
    # be able to reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="expirytrack-pg-"))
    data_dir = root / "data"
    data_dir.mkdir()
    if uid is not None:
        os.chown(root, uid, gid)
        os.chown(data_dir, uid, gid)
    try:
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        server, port = None, 0
        for _ in range(5):  # a free port can be taken between choosing and binding it
            port = _free_port()
            server = subprocess.Popen(
                [
                    *prefix,
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data_dir),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={data_dir}",
                    # A throwaway cluster: durability off, so tests spend no time in fsync.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if _wait_ready(server, port):
                break
            server.kill()
            server.wait()
            server = None
        if server is None:
            raise PostgresUnavailable(f"postgres did not start within {START_TIMEOUT_S} s")
        try:
            yield PostgresServer(port=port, data_dir=data_dir)
        finally:
            server.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, stop
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            # Accepting TCP is not yet accepting queries (startup may still be recovering).
            if _accepts_queries(port):
                return True
        time.sleep(0.05)
    return False


def _accepts_queries(port: int) -> bool:
    import psycopg2

    try:
        psycopg2.connect(f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres").close()
    except psycopg2.OperationalError:
        return False
    return True
