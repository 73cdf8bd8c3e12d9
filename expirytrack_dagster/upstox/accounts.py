"""Several Upstox accounts: each with its own token and budget, one per run, dead ones skipped.

Upstox meters each account (user) separately: 50 requests/second, 500/minute, 2000/30 minutes.
With ``upstox.accounts`` in the settings file, collection runs spread over several accounts and the
collection rate adds up. The pool is the **default account** (today's ``UPSTOX_ACCESS_TOKEN`` or
the ``expirytrack login`` store, named ``default``) plus every listed account; each listed account
names where its token is — an environment variable (``UPSTOX_ACCESS_TOKEN_<NAME>`` unless
``token_variable`` says otherwise) or its own ``expirytrack login`` store (``credentials_dir``).
Tokens are never in the settings file or in run configuration, and never in logs or metadata:
accounts are named by their ``name`` only.

**One run, one account.** A run's requests all go to one account, so a partition is paced by one
rate ledger (one per token, as always). The first step of a run that needs the API chooses the
account and tags the run ``expirytrack/upstox_account=<name>``; its later steps (other processes)
read the tag and use the same account. The choice, made under a lock so that runs starting at
the same moment see each other:

1. only *live* accounts: a token is present and passes the 03:30 IST deadline guard, and it was
   not refused with 401 before (a 401 marks that token dead for the pool; a new token for the
   account revives it);
2. the account with the **fewest runs in flight** (Dagster's own run records, by the tag), then
   the one with the **most room in its 30-minute window** (its rate ledger), then a stable hash
   of the run id and the account name (so ties spread evenly, not onto the first name).

Why this gives linear scaling for a backfill through Dagster's run queue: a long backfill is
bounded by each account's 30-minute budget, so the collection rate is ``accounts × budget`` only
if no account ever idles while partitions wait. The queue launches up to ``max_concurrent_runs``
runs; "fewest in flight" keeps the runs evenly split over the accounts (with as many concurrent
runs as accounts, or a multiple, every account always has the same number), and a run that ends
frees a slot that the next queued run takes on the account it left — whatever each partition's
size. A fixed hash of partition keys would not: 30 partitions over 3 accounts often split 13/9/8,
so the busiest account finishes ~45 % after the others while they idle, and a dead account's
share would stall.

A token refused with 401 during a run stops that run's step naming the account (never the token),
and marks the token dead; the run's later steps and every later run move on to a live account.
"""

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx
from dagster import Config, DagsterRunStatus, RunsFilter
from pydantic import field_validator

from expirytrack_dagster.credentials.guard import active_token, check_deadline, token_for_run
from expirytrack_dagster.upstox.client import (
    ClientSettings,
    UpstoxClient,
    token_fingerprint,
)
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.ledger import open_ledger
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter

ACCOUNT_TAG = "expirytrack/upstox_account"
"""The run tag naming the account a run uses (its name, never its token)."""
DEFAULT_ACCOUNT = "default"
"""The name of today's account: ``UPSTOX_ACCESS_TOKEN`` or the ``expirytrack login`` store."""
POOL_FILE = "accounts.sqlite"
"""Under ``state_dir``: tokens found dead (by fingerprint), and the lock the choice is made under."""
IN_FLIGHT = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def token_variable_for(name: str) -> str:
    """The environment variable an account's token is read from by default:
    ``UPSTOX_ACCESS_TOKEN_<NAME>`` (upper case, ``-`` as ``_``)."""
    return f"UPSTOX_ACCESS_TOKEN_{name.upper().replace('-', '_')}"


class UpstoxAccount(Config):
    """One more Upstox account for the pool: a name, and where its token is (never the token).

    In the settings file either a bare name (``- desk2``: token in ``UPSTOX_ACCESS_TOKEN_DESK2``)
    or ``{name: desk2, token_variable: DESK2_TOKEN}`` or ``{name: desk2, credentials_dir:
    ~/.config/expirytrack-desk2}`` (a store filled with ``EXPIRYTRACK_CREDENTIALS_DIR=… expirytrack
    login``).
    """

    name: str
    token_variable: str | None = None
    credentials_dir: str | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("an account name is 1-40 letters, digits, '-' or '_'")
        if value == DEFAULT_ACCOUNT:
            raise ValueError(
                f"'{DEFAULT_ACCOUNT}' is always in the pool (UPSTOX_ACCESS_TOKEN or the "
                "`expirytrack login` store); list only the other accounts"
            )
        return value

    @field_validator("token_variable")
    @classmethod
    def _valid_variable(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be the NAME of an environment variable, not a token")
        return value

    def variable(self) -> str:
        """The environment variable holding this account's token."""
        return self.token_variable or token_variable_for(self.name)


def accounts_from_setting(value: Any) -> Any:
    """``upstox.accounts`` as written (names or mappings) → mappings ``UpstoxAccount`` reads;
    two accounts with one name are refused."""
    if not isinstance(value, list | tuple):
        return value
    entries = [{"name": item} if isinstance(item, str) else item for item in value]
    names = [e.get("name") if isinstance(e, Mapping) else getattr(e, "name", None) for e in entries]
    duplicates = sorted({n for n in names if n is not None and names.count(n) > 1})
    if duplicates:
        raise ValueError(f"account names must be unique: {', '.join(duplicates)} repeated")
    return entries


@dataclass(frozen=True)
class AccountToken:
    """An account's name and token; ``ledger_id`` names its budget (None: the token's hash)."""

    name: str
    access_token: str = field(repr=False)
    ledger_id: str | None = None

    @property
    def fingerprint(self) -> str:
        return token_fingerprint(self.access_token)


@dataclass(frozen=True)
class Candidate:
    """An account as the pool sees it: its token, or why it has none usable (no secret in it)."""

    name: str
    token: AccountToken | None
    problem: str | None = None


@dataclass(frozen=True)
class AccountChoice:
    """The account a run uses, and what the choice saw."""

    account: AccountToken
    runs_in_flight: int
    room: int | None
    skipped: Mapping[str, str]
    kept: bool = False  # the run's tag already named it

    @property
    def name(self) -> str:
        return self.account.name

    def describe(self) -> str:
        """One secret-free line for the run log."""
        if self.kept:
            text = f"Upstox account {self.name!r} (chosen earlier in this run)"
        else:
            room = (
                "" if self.room is None else f", {self.room} requests free in its 30-minute window"
            )
            text = f"Upstox account {self.name!r} ({self.runs_in_flight} other runs on it{room})"
        if self.skipped:
            text += "; not used: " + "; ".join(f"{n!r}: {r}" for n, r in self.skipped.items())
        return text


class RunBook(Protocol):
    """Where runs and their accounts are recorded (the Dagster instance)."""

    def pinned(self) -> str | None:
        """The account this run's tag already names."""
        ...

    def in_flight(self, names: Sequence[str]) -> dict[str, int]:
        """Runs in flight on each account."""
        ...

    def record(self, name: str) -> None:
        """Tag this run with its account."""
        ...


class NoRun:
    """Outside a run (a sensor tick, the CLI): nothing pinned, nothing recorded."""

    def pinned(self) -> str | None:
        return None

    def in_flight(self, names: Sequence[str]) -> dict[str, int]:
        return dict.fromkeys(names, 0)

    def record(self, name: str) -> None:
        return None


class DagsterRuns:
    """The Dagster instance's run records: the run's tag and the in-flight runs per account."""

    def __init__(self, instance: Any, run_id: str) -> None:
        self.instance, self.run_id = instance, run_id

    def pinned(self) -> str | None:
        run = self.instance.get_run_by_id(self.run_id)  # fresh: another step may have tagged it
        return None if run is None else run.tags.get(ACCOUNT_TAG)

    def in_flight(self, names: Sequence[str]) -> dict[str, int]:
        counts = {}
        for name in names:
            runs = self.instance.get_run_ids(
                RunsFilter(statuses=IN_FLIGHT, tags={ACCOUNT_TAG: name})
            )
            counts[name] = sum(1 for run_id in runs if run_id != self.run_id)
        return counts

    def record(self, name: str) -> None:
        self.instance.add_run_tags(self.run_id, {ACCOUNT_TAG: name})


class AccountPool:
    """The accounts' shared state under ``state_dir``: dead tokens, and the lock choices take.

    ``ledger_url`` is the rate ledgers' back end (``upstox.ledger_url``; empty: SQLite under
    ``state_dir``), read for each account's room.
    """

    def __init__(
        self, state_dir: str | Path, limits: RateLimits, ledger_url: str | None = None
    ) -> None:
        self.state_dir = Path(state_dir)
        self.limits = limits
        self.ledger_url = ledger_url
        self.path = self.state_dir / POOL_FILE

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dead_tokens (account TEXT NOT NULL, fingerprint TEXT "
            "NOT NULL, marked_at REAL NOT NULL, reason TEXT, PRIMARY KEY (account, fingerprint))"
        )
        return conn

    def mark_dead(self, token: AccountToken, reason: str) -> None:
        """Never use this token again (a new token for the account is used as usual)."""
        conn = self._connect()
        try:
            conn.execute(
                "INSERT OR REPLACE INTO dead_tokens VALUES (?, ?, ?, ?)",
                (token.name, token.fingerprint, time.time(), reason),
            )
        finally:
            conn.close()

    def dead_reason(self, token: AccountToken) -> str | None:
        """Why this token was marked dead, or None."""
        conn = self._connect()
        try:
            return _dead_reason(conn, token)
        finally:
            conn.close()

    def room(self, token: AccountToken) -> int:
        """Requests free in the account's longest (30-minute) window now; 0 while paused."""
        ledger = open_ledger(self.ledger_url, self.state_dir, token.ledger_id or token.fingerprint)
        limiter = SharedRateLimiter(ledger, self.limits)
        try:
            snap = limiter.snapshot()
        finally:
            limiter.close()
        return 0 if snap["paused"] else int(snap["windows"][-1]["room"])

    def choose(
        self, candidates: Sequence[Candidate], runs: RunBook | None = None, run_id: str = ""
    ) -> AccountChoice:
        """The account a run uses (see the module docstring); ``TokenExpired`` naming every
        account and why, when none is live."""
        runs = runs or NoRun()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # one choice at a time on this machine
            try:
                choice = self._choose(conn, candidates, runs, run_id)
                if not choice.kept:
                    runs.record(choice.name)
            finally:
                conn.execute("COMMIT")
        finally:
            conn.close()
        return choice

    def _choose(
        self, conn: sqlite3.Connection, candidates: Sequence[Candidate], runs: RunBook, run_id: str
    ) -> AccountChoice:
        skipped: dict[str, str] = {}
        live: list[AccountToken] = []
        for candidate in candidates:
            if candidate.token is None:
                skipped[candidate.name] = candidate.problem or "no token"
            elif (dead := _dead_reason(conn, candidate.token)) is not None:
                skipped[candidate.name] = f"its token was refused: {dead}"
            else:
                live.append(candidate.token)
        if not live:
            raise TokenExpired(
                "no Upstox account of the pool has a live token: "
                + "; ".join(f"{n!r}: {r}" for n, r in skipped.items())
                + ". Nothing was requested."
            )
        pinned = runs.pinned()
        by_name = {token.name: token for token in live}
        if pinned in by_name:
            return AccountChoice(by_name[pinned], 0, None, skipped, kept=True)
        if pinned is not None:
            skipped.setdefault(pinned, "not live")
        counts = runs.in_flight([token.name for token in live])
        rooms = {token.name: self.room(token) for token in live}

        def rank(token: AccountToken) -> tuple[int, int, str]:
            spread = hashlib.sha256(f"{run_id}:{token.name}".encode()).hexdigest()
            return counts.get(token.name, 0), -rooms[token.name], spread

        best = min(live, key=rank)
        return AccountChoice(best, counts.get(best.name, 0), rooms[best.name], skipped)


def _dead_reason(conn: sqlite3.Connection, token: AccountToken) -> str | None:
    row = conn.execute(
        "SELECT reason, marked_at FROM dead_tokens WHERE account = ? AND fingerprint = ?",
        (token.name, token.fingerprint),
    ).fetchone()
    if row is None:
        return None
    at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row[1]))
    return f"{row[0]} (at {at})"


class PooledClient(UpstoxClient):
    """An ``UpstoxClient`` for one account of the pool: a 401 marks the token dead for the pool
    and is raised again naming the account (never the token)."""

    def __init__(
        self,
        base_url: str,
        account: AccountToken,
        settings: ClientSettings,
        pool: AccountPool,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, account.access_token, settings, transport=transport)
        self.account_name = account.name
        self._account, self._pool = account, pool

    def __repr__(self) -> str:
        return f"PooledClient(base_url={self.base_url!r}, account={self.account_name!r})"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if isinstance(exc, TokenExpired) and exc.status == 401:
            self._pool.mark_dead(self._account, f"HTTP 401 {exc.code or ''}".strip())
            raise TokenExpired(
                f"Upstox account {self.account_name!r}: {exc.message} — its token is marked dead "
                "for the pool: this run's later steps and later runs use the other live accounts",
                code=exc.code,
                status=exc.status,
            ) from exc


def environment_token(account: UpstoxAccount, env: Mapping[str, str] | None = None) -> str | None:
    """The account's token from its environment variable, or None."""
    return (env if env is not None else os.environ).get(account.variable()) or None


def candidate(name: str, resolve: Callable[[], AccountToken]) -> Candidate:
    """``resolve()``'s token, or the reason it has none (its ``TokenExpired`` message)."""
    try:
        return Candidate(name, resolve())
    except TokenExpired as exc:
        return Candidate(name, None, exc.message)


def listed_account_token(
    account: UpstoxAccount,
    *,
    base_url: str,
    margin: timedelta,
    env: Mapping[str, str] | None = None,
) -> AccountToken:
    """A listed account's token, from its variable or its own login store, past the same
    03:30 IST deadline guard as the default account's; ``TokenExpired`` naming what to set."""
    configured = environment_token(account, env)
    if account.credentials_dir:
        token = token_for_run(
            configured, credentials_dir=account.credentials_dir, base_url=base_url, margin=margin
        )
    elif not configured:
        raise TokenExpired(
            f"no token: set {account.variable()} (or give the account a credentials_dir "
            "filled by `EXPIRYTRACK_CREDENTIALS_DIR=<dir> expirytrack login`)"
        )
    else:
        source = f"environment variable {account.variable()}"
        found = active_token(configured, None, configured_source=source)
        token = check_deadline(found, margin=margin, base_url=base_url)
    user = token.stored.user_id if token.stored is not None else None
    return AccountToken(account.name, token.access_token, user)
