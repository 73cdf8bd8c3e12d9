"""Where the rate-limit ledger of one Upstox user lives, and what a ledger back end must do.

The limiter (``upstox.limiter.SharedRateLimiter``) does the window arithmetic; a *ledger* only
stores grant times and the shared pause, and runs the limiter's decision inside a transaction that
excludes every other grant on the same ledger. Two back ends hold the same rows:

- ``ledger_sqlite.SqliteLedger`` — one SQLite file per user under ``state_dir/ratelimit/``: every
  process on one machine shares it. The default; nothing to set up.
- ``ledger_postgres.PostgresLedger`` — rows keyed by the ledger id in a PostgreSQL database:
  every process on every machine that reaches the database shares it.

:func:`open_ledger` chooses from ``upstox.ledger_url`` (or ``EXPIRYTRACK_LEDGER_URL``): empty means
SQLite under ``state_dir``, ``postgresql://…`` means that database. The URL may hold a password, so
it is only ever shown through :func:`mask_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from expirytrack_dagster.upstox.limiter import Clock

__all__ = [
    "POSTGRES_SCHEMES",
    "Decide",
    "Ledger",
    "LedgerState",
    "has_password",
    "is_postgres_url",
    "known_ledgers",
    "ledger_name",
    "ledger_path",
    "mask_url",
    "open_ledger",
]

POSTGRES_SCHEMES = ("postgresql", "postgres")
"""URL schemes of the PostgreSQL ledger (libpq accepts both)."""

Decide = Callable[[float, "float | None", Sequence["float | None"]], float]
"""``decide(now, pause_until, nth_recent) -> wait``: the limiter's verdict; 0.0 means grant."""


@dataclass(frozen=True)
class LedgerState:
    """One consistent reading of a ledger at ``now`` (seconds since the epoch, ledger's clock).

    ``nth_recent[i]`` is the ``offsets[i] + 1``-th most recent grant time (None: fewer grants);
    ``counts[i]`` the number of grants later than ``now - lengths[i]``.
    """

    now: float
    pause_until: float | None
    pause_reason: str | None
    nth_recent: tuple[float | None, ...]
    counts: tuple[int, ...]


class Ledger(Protocol):
    """What the limiter needs from a back end. Times are seconds since the epoch on the ledger's
    own clock, read by the back end *inside* its lock, so ledger order is grant order."""

    def grant(self, decide: Decide, offsets: Sequence[int], horizon: float) -> float:
        """In one transaction that excludes every other ``grant`` on this ledger: read ``now``,
        the pause's end and, per offset, the ``offset + 1``-th most recent grant; call
        ``decide``; when it returns 0.0 record a grant at ``now`` and delete grants older than
        ``now - horizon``. Returns what ``decide`` returned."""
        ...

    def state(self, offsets: Sequence[int], lengths: Sequence[float]) -> LedgerState:
        """A consistent reading, nothing written (see :class:`LedgerState`)."""
        ...

    def pause(self, seconds: float, reason: str) -> None:
        """Pause every user until ``now + seconds``; a later existing pause is kept."""
        ...

    def close(self) -> None:
        """Close this object's connection (the ledger and its other users are unaffected)."""
        ...

    def describe(self) -> str:
        """Where the ledger is, free of secrets (for logs, metadata and repr)."""
        ...


def ledger_name(ledger_id: str) -> str:
    """``ledger_id`` reduced to letters, digits, ``-`` and ``_``: the SQLite file's stem and the
    PostgreSQL ledger's key, so one user has the same name in either back end."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in ledger_id)


def ledger_path(state_dir: Path, ledger_id: str) -> Path:
    """The SQLite rate-limit ledger of one Upstox user (or, when the user is unknown, one token).

    Upstox counts requests per user, so a re-login inside a 30-minute window must keep counting
    in the same ledger: ``ledger_id`` is the user id that login reported.
    """
    return Path(state_dir) / "ratelimit" / f"{ledger_name(ledger_id)}.sqlite"


def mask_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` query parameter) replaced
    by ``***``: the only form of a ledger URL that logs, errors and repr may show."""
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<unparsable ledger URL>"
    if password:
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}")
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)


def has_password(url: str) -> bool:
    """True when ``url`` carries a password (in the user part or a ``password=`` parameter)."""
    return mask_url(url) != url


def is_postgres_url(url: str | None) -> bool:
    """True when ``url`` names a PostgreSQL ledger (``postgresql://`` or ``postgres://``)."""
    return bool(url) and urlsplit(str(url)).scheme.lower() in POSTGRES_SCHEMES


def open_ledger(
    ledger_url: str | None, state_dir: Path, ledger_id: str, clock: Clock | None = None
) -> Ledger:
    """The ledger of ``ledger_id``: SQLite under ``state_dir`` when ``ledger_url`` is empty,
    else the PostgreSQL database it names. ``ValueError`` (URL masked) for any other scheme.

    ``clock`` is for tests (a fake clock): by default the SQLite ledger reads this machine's
    clock and the PostgreSQL ledger the database server's (see ``ledger_postgres``).
    """
    if not ledger_url:
        from expirytrack_dagster.upstox.ledger_sqlite import SqliteLedger

        return SqliteLedger(ledger_path(state_dir, ledger_id), clock)
    if not is_postgres_url(ledger_url):
        raise ValueError(
            f"ledger URL {mask_url(ledger_url)!r}: must be empty (SQLite under state_dir) or "
            "start with postgresql://"
        )
    from expirytrack_dagster.upstox.ledger_postgres import PostgresLedger

    return PostgresLedger(ledger_url, ledger_name(ledger_id), clock)


def known_ledgers(ledger_url: str | None, state_dir: Path) -> list[str]:
    """The ledger ids that have been used, sorted: the SQLite files under ``state_dir`` when
    ``ledger_url`` is empty, else every ledger in that PostgreSQL database (every machine's).
    ``LedgerUnavailable`` (URL masked) when the database does not answer."""
    if not ledger_url:
        return sorted(path.stem for path in (Path(state_dir) / "ratelimit").glob("*.sqlite"))
    from expirytrack_dagster.upstox.ledger_postgres import PostgresLedger

    ledger = open_ledger(ledger_url, state_dir, "")  # validates the URL as a grant would
    assert isinstance(ledger, PostgresLedger)
    try:
        return [name for name in ledger.names() if name]
    finally:
        ledger.close()
