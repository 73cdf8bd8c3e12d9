"""The rate-limit ledger in PostgreSQL: one Upstox user's budget shared by every machine.

Set ``upstox.ledger_url`` (or ``EXPIRYTRACK_LEDGER_URL``) to ``postgresql://user@host/db`` and
every process on every machine using that database meters the same three windows, as every
process on one machine does with the SQLite ledger. Same rows, keyed by the ledger id (the Upstox
user id, else the token's fingerprint)::

    expirytrack_ratelimit.grants(ledger TEXT, seq BIGINT, t FLOAT8)  -- key (ledger, seq)
    expirytrack_ratelimit.counters(ledger TEXT PRIMARY KEY, seq BIGINT)  -- the last grant's seq
    expirytrack_ratelimit.pause(ledger TEXT PRIMARY KEY, until FLOAT8, reason TEXT, set_at FLOAT8)

Race-free across machines: a grant is one transaction that first takes
``pg_advisory_xact_lock(key)`` (``key``: a 64-bit hash of the ledger id), then — in a *later*
statement, so its READ COMMITTED snapshot includes every grant committed before the lock was ours
— reads ``now``, the pause and the grants, and inserts. The lock is released by COMMIT; other
ledgers (accounts) never wait for it. Waiting for the lock is the server's queue, not polling.
Grants are numbered per ledger, so "the L-th most recent grant" is one primary-key lookup; grants
older than the longest window are deleted in the same transaction (an index range seek on
``(ledger, t)``). The grant's statements are prepared once per session.

Clock — the database server's, ``clock_timestamp()``, read inside the lock. Machines' wall clocks
differ (NTP keeps them within milliseconds, a misconfigured one can be seconds off); if each
machine stamped grants with its own clock, a machine running late would count fewer grants in a
window than there are and overshoot. One clock for every writer makes ledger order grant order
and the window arithmetic exact whatever the clients' clocks say. The limiter only ever *sleeps*
the durations the ledger computes, so client clock offsets do not matter; the network round trip
after the grant is covered by the limiter's ``latency_allowance_s``, as on one machine. Tests may
pass a ``clock`` (a fake one) instead.

The URL's password never leaves this module: errors name the masked URL and carry no driver
exception (whose text could echo connection parameters). psycopg2 comes with the ``production``
extra (dagster-postgres needs it too).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from expirytrack_dagster.upstox.ledger import Decide, LedgerState, is_postgres_url, mask_url

if TYPE_CHECKING:
    from expirytrack_dagster.upstox.limiter import Clock

__all__ = ["LedgerUnavailable", "PostgresLedger"]

_T = TypeVar("_T")

SCHEMA = "expirytrack_ratelimit"
CONNECT_TIMEOUT_S = 10
IDLE_IN_GRANT_S = 10
"""A session idle this long inside a transaction is ended by the server (its lock freed)."""
_RECONNECT_ATTEMPTS = 3
"""A dropped connection (server restart, idle timeout) is reopened and the operation repeated;
a grant repeated after its COMMIT was lost in transit is counted twice, which only waits longer."""

_CONNECTION_ERRORS: tuple[type[Exception], ...] = ()
"""psycopg2's OperationalError and InterfaceError, filled in on first connect (lazy import)."""

_SERVER_NOW = "extract(epoch FROM clock_timestamp())::float8"

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.grants (
    ledger TEXT NOT NULL,
    seq BIGINT NOT NULL,
    t FLOAT8 NOT NULL,
    PRIMARY KEY (ledger, seq)
);
CREATE INDEX IF NOT EXISTS grants_ledger_t ON {SCHEMA}.grants (ledger, t);
CREATE TABLE IF NOT EXISTS {SCHEMA}.counters (ledger TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.pause (
    ledger TEXT PRIMARY KEY,
    until FLOAT8 NOT NULL,
    reason TEXT NOT NULL,
    set_at FLOAT8 NOT NULL
);
"""

_PAUSE_SQL = f"""
INSERT INTO {SCHEMA}.pause AS p (ledger, until, reason, set_at)
SELECT %(ledger)s, c.now + %(seconds)s, %(reason)s, c.now FROM (SELECT {{now}} AS now) AS c
ON CONFLICT (ledger) DO UPDATE SET
    reason = CASE WHEN excluded.until > p.until THEN excluded.reason ELSE p.reason END,
    set_at = CASE WHEN excluded.until > p.until THEN excluded.set_at ELSE p.set_at END,
    until = GREATEST(p.until, excluded.until)
"""


class LedgerUnavailable(RuntimeError):
    """The PostgreSQL ledger cannot be reached or used (the message names the masked URL)."""


def _lock_key(ledger: str) -> int:
    """A signed 64-bit advisory-lock key for ``ledger``: the same on every machine."""
    digest = hashlib.blake2b(f"expirytrack-ratelimit:{ledger}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _nth_sql(offsets: Sequence[int]) -> list[str]:
    # Grants are numbered per ledger, so the (k + 1)-th most recent is one primary-key lookup
    # (an OFFSET walk would visit up to 2000 rows, and their heap tuples, per decision). A row
    # already pruned is older than the longest window: it leaves the window no room to take.
    return [
        f"(SELECT t FROM {SCHEMA}.grants WHERE ledger = %(ledger)s AND seq = "
        f"(SELECT seq FROM {SCHEMA}.counters WHERE ledger = %(ledger)s) - {int(k)})"
        for k in offsets
    ]


# Connections inherited across fork() must never be used or closed (closing would end the
# parent's session on the shared socket), so a child parks them here and opens its own.
_abandoned_connections: list[Any] = []


class PostgresLedger:
    """The ledger ``ledger`` in the database at ``url`` (tables created on first use).

    One connection per object, used by one thread at a time; objects in other threads, processes
    and machines serialise their grants through the advisory lock.
    """

    def __init__(self, url: str, ledger: str, clock: Clock | None = None) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"not a postgresql:// URL: {mask_url(url)!r}")
        self._url = url
        self._masked = mask_url(url)
        self.ledger = ledger
        self.clock = clock
        self._now_sql = _SERVER_NOW if clock is None else "%(now)s"
        self._key = _lock_key(ledger)
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._conn: Any = None
        self._conn_pid = -1
        self._sql: dict[tuple[str, tuple[int, ...], int], str] = {}
        self._prepared: set[str] = set()
        self._run(lambda cur: None)  # connect and create the tables now: errors surface early

    def describe(self) -> str:
        return f"{self._masked}#{self.ledger}" if self.ledger else self._masked

    def __repr__(self) -> str:
        return f"PostgresLedger({self.describe()!r})"

    # -- connection -----------------------------------------------------------------------

    def _connect(self) -> Any:
        global _CONNECTION_ERRORS
        import psycopg2

        _CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)
        conn = psycopg2.connect(
            self._url, connect_timeout=CONNECT_TIMEOUT_S, application_name="expirytrack-ledger"
        )
        conn.autocommit = True  # transactions are explicit: BEGIN … COMMIT below
        try:
            with conn.cursor() as cur:
                # A process stopped inside a grant (SIGSTOP, a debugger) must not hold the
                # ledger's lock for ever: the server ends such a session, which frees it.
                cur.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_GRANT_S}s'")
                # A commit need not wait for the WAL flush: a server crash can lose the last few
                # milliseconds of grants, and it cannot come back within the windows they matter
                # to (the SQLite ledger makes the same trade with synchronous=NORMAL).
                cur.execute("SET synchronous_commit = off")
                # Several machines may create the tables at once; CREATE … IF NOT EXISTS can
                # still collide, so creation is serialised by an advisory lock of its own.
                cur.execute("BEGIN")
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"schema:{SCHEMA}"),))
                cur.execute(_DDL)
                cur.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> Any:
        pid = os.getpid()
        if self._conn is not None and self._conn_pid == pid and not self._conn.closed:
            return self._conn
        if self._conn is not None and self._conn_pid != pid:
            _abandoned_connections.append(self._conn)
        self._conn = None
        self._conn, self._conn_pid = self._connect(), pid
        self._prepared = set()  # prepared statements belong to a session
        return self._conn

    def _run(self, body: Callable[[Any], _T]) -> _T:
        """``body(cursor)`` on this object's connection; a lost connection is reopened and the
        body repeated. Any driver error becomes ``LedgerUnavailable`` naming the masked URL."""
        import psycopg2

        failure = ""
        with self._guard():
            for _attempt in range(_RECONNECT_ATTEMPTS):
                try:
                    conn = self._connection()
                    with conn.cursor() as cur:
                        try:
                            return body(cur)
                        except BaseException:
                            if not conn.closed:
                                # The original error is the one worth seeing. Outside a
                                # transaction ROLLBACK is only a warning.
                                with contextlib.suppress(psycopg2.Error):
                                    cur.execute("ROLLBACK")
                            raise
                except psycopg2.Error as exc:
                    failure = _describe_error(exc, self._url)
                    lost = self._conn is None or bool(self._conn.closed)
                    if not (lost and isinstance(exc, _CONNECTION_ERRORS)):
                        break
                    self._conn = None
        # Raised outside the except block: the driver's exception is not attached as context.
        raise LedgerUnavailable(f"rate-limit ledger {self.describe()}: {failure}")

    def _guard(self) -> threading.Lock:
        """This object's lock; a forked child gets a new one (another thread of the parent may
        have held it at the fork, and would never release it in the child)."""
        if self._lock_pid != os.getpid():
            self._lock, self._lock_pid = threading.Lock(), os.getpid()
        return self._lock

    def close(self) -> None:
        with self._guard():
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _params(self, **params: Any) -> dict[str, Any]:
        """Query parameters, with ``now`` from the test clock when there is one."""
        params["ledger"] = self.ledger
        if self.clock is not None:
            params["now"] = self.clock.now()
        return params

    # -- the ledger operations --------------------------------------------------------------

    def _prepare(self, cur: Any, offsets: Sequence[int]) -> str:
        """Prepare the grant's statements on this connection (once): the decision for these
        offsets, the record and the prune. Returns the decision's name. Prepared statements are
        planned once, which halves the server's work per grant."""
        name = f"expirytrack_decide_{len(offsets)}_{'_'.join(str(int(k)) for k in offsets)}"
        if name in self._prepared:
            return name
        decision = (
            f"WITH c AS (SELECT {self._now_sql} AS now) SELECT c.now, "
            + ", ".join(
                [
                    f"(SELECT until FROM {SCHEMA}.pause WHERE ledger = %(ledger)s)",
                    *_nth_sql(offsets),
                ]
            )
            + " FROM c"
        ).replace("%(ledger)s", "$1")
        if self.clock is None:
            cur.execute(f"PREPARE {name} (text) AS {decision}")
        else:
            cur.execute(f"PREPARE {name} (text, float8) AS {decision.replace('%(now)s', '$2')}")
        if "record" not in self._prepared:
            cur.execute(
                "PREPARE expirytrack_record (text, float8) AS "
                f"WITH n AS (INSERT INTO {SCHEMA}.counters AS c (ledger, seq) VALUES ($1, 1) "
                "ON CONFLICT (ledger) DO UPDATE SET seq = c.seq + 1 RETURNING seq) "
                f"INSERT INTO {SCHEMA}.grants (ledger, seq, t) SELECT $1, n.seq, $2 FROM n"
            )
            cur.execute(
                "PREPARE expirytrack_prune (text, float8) AS "
                f"DELETE FROM {SCHEMA}.grants WHERE ledger = $1 AND t < $2"
            )
            self._prepared.add("record")
        self._prepared.add(name)
        return name

    def grant(self, decide: Decide, offsets: Sequence[int], horizon: float) -> float:
        def body(cur: Any) -> float:
            decision = self._prepare(cur, offsets)
            # The decision is a statement *after* the lock's: in READ COMMITTED each statement
            # takes a new snapshot, so it sees every grant committed before the lock was ours.
            lock = "BEGIN; SELECT pg_advisory_xact_lock(%s)"
            if self.clock is None:
                # Server clock: now is read by the decision itself. One round trip carries all
                # three statements (a simple query; each statement still has its own snapshot).
                cur.execute(f"{lock}; EXECUTE {decision}(%s)", (self._key, self.ledger))
            else:
                # A client clock must be read after the lock is ours: a separate round trip.
                cur.execute(lock, (self._key,))
                cur.execute(f"EXECUTE {decision}(%s, %s)", (self.ledger, self.clock.now()))
            row = cur.fetchone()
            now = float(row[0])
            wait = decide(now, row[1], row[2:])
            if wait > 0.0:
                cur.execute("COMMIT")
                return wait
            # Recorded, and grants older than the longest window pruned (an index range seek).
            cur.execute(
                "EXECUTE expirytrack_record(%s, %s); EXECUTE expirytrack_prune(%s, %s); COMMIT",
                (self.ledger, now, self.ledger, now - horizon),
            )
            return 0.0

        return self._run(body)

    def state(self, offsets: Sequence[int], lengths: Sequence[float]) -> LedgerState:
        key = ("state", tuple(offsets), len(lengths))
        sql = self._sql.get(key)
        if sql is None:
            counts = [
                f"(SELECT COUNT(*) FROM {SCHEMA}.grants WHERE ledger = %(ledger)s "
                f"AND t > c.now - %(w{i})s)"
                for i in range(len(lengths))
            ]
            sql = self._sql[key] = (
                f"WITH c AS (SELECT {self._now_sql} AS now) SELECT c.now, "
                + ", ".join(
                    [
                        f"(SELECT until FROM {SCHEMA}.pause WHERE ledger = %(ledger)s)",
                        f"(SELECT reason FROM {SCHEMA}.pause WHERE ledger = %(ledger)s)",
                        *_nth_sql(offsets),
                        *counts,
                    ]
                )
                + " FROM c"
            )
        params = self._params(**{f"w{i}": float(w) for i, w in enumerate(lengths)})

        def body(cur: Any) -> LedgerState:
            # One statement: one consistent snapshot, no lock needed.
            cur.execute(sql, params)
            row = cur.fetchone()
            k = len(offsets)
            return LedgerState(
                now=float(row[0]),
                pause_until=row[1],
                pause_reason=row[2],
                nth_recent=tuple(row[3 : 3 + k]),
                counts=tuple(int(c) for c in row[3 + k :]),
            )

        return self._run(body)

    def names(self) -> list[str]:
        """Every ledger this database holds grants or a pause for (this one's included), sorted:
        what ``expirytrack doctor`` reports on."""
        sql = (
            f"SELECT ledger FROM {SCHEMA}.counters UNION SELECT ledger FROM {SCHEMA}.pause "
            "ORDER BY 1"
        )

        def body(cur: Any) -> list[str]:
            cur.execute(sql)
            return [row[0] for row in cur.fetchall()]

        return self._run(body)

    def pause(self, seconds: float, reason: str) -> None:
        # One upsert is atomic on its own: no advisory lock needed.
        sql = _PAUSE_SQL.replace("{now}", self._now_sql)
        params = self._params(seconds=float(seconds), reason=reason)
        self._run(lambda cur: cur.execute(sql, params))


def _describe_error(exc: Exception, url: str) -> str:
    """The driver's message, first line, with the URL and its password scrubbed out."""
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    text = text.splitlines()[0] if text else ""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _secrets(url: str) -> list[str]:
    """The URL and every spelling of its password, longest first (what must never be shown)."""
    found = {url}
    try:
        parts = urlsplit(url)
        passwords = [parts.password or ""]
        passwords += [
            v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"
        ]
    except ValueError:
        passwords = []
    for password in passwords:
        found.update({password, unquote(password)})
    return sorted((s for s in found if s), key=len, reverse=True)
