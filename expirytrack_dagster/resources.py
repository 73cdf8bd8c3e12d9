"""The Upstox API resources' one interface (``UpstoxApi``) and the real Upstox resource.

Assets and sensors ask for ``upstox`` and get one of two resources with the same methods, chosen
explicitly per deployment by ``definitions.build_definitions`` from the settings' ``source``:

- :class:`UpstoxResource` (``source: upstox``, the default; ``auto`` means the same): the real API
  at ``base_url`` with ``access_token`` (``UPSTOX_ACCESS_TOKEN``) or the token ``expirytrack
  login`` stored (see ``credentials``). Never a fallback to synthetic data;
- ``sandbox_resource.SandboxResource`` (``source: sandbox``): the built-in synthetic Upstox
  simulator, only ever chosen on purpose (``expirytrack demo``, ``source: sandbox`` or
  ``EXPIRYTRACK_SOURCE=sandbox``); it needs the ``sandbox`` extra.

With ``upstox.accounts`` (see ``upstox.accounts``) each run uses one account of a pool, each with
its own token and budget; without it, the one token as above.

Before any request the token's deadline is checked (``check_token_deadline``): Upstox tokens die
at 03:30 IST after login, so a run refuses to start with a missing, dead or nearly dead token.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext, get_dagster_logger
from pydantic import Field, PrivateAttr, field_validator

from expirytrack_dagster.credentials.guard import (
    DEFAULT_MARGIN,
    ENV_ANALYTICS_TOKEN,
    LOGIN_FIX,
    ActiveToken,
    active_token,
    has_stored_token,
    live_token_for_run,
    token_for_run,
)
from expirytrack_dagster.credentials.store import CredentialStore, CredentialStoreError
from expirytrack_dagster.upstox.accounts import (
    DEFAULT_ACCOUNT,
    AccountChoice,
    AccountPool,
    AccountToken,
    Candidate,
    DagsterRuns,
    PooledClient,
    UpstoxAccount,
    accounts_from_setting,
    candidate,
    listed_account_token,
)
from expirytrack_dagster.upstox.client import UPSTOX_BASE_URL, ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.limiter import RateLimits
from expirytrack_dagster.upstox.resilience import RetryPolicy

# The defaults below are the client's own (RateLimits, RetryPolicy, ClientSettings) and the
# token guard's margin: each is written once, where the code that uses it lives.


class UpstoxApi(ConfigurableResource):
    """The interface both Upstox resources share: a client, its pacing, and a token guard.

    The three Upstox rate windows (per second, per minute, per 30 minutes) are enforced across
    every process using the same token, through a ledger: SQLite under ``state_dir`` (one
    machine), or the PostgreSQL database of ``ledger_url`` (every machine using it).
    """

    token_margin_minutes: int = Field(
        default=int(DEFAULT_MARGIN.total_seconds() // 60),
        description="Refuse to start when the token dies within this many minutes.",
    )
    ca_cert_path: str | None = Field(
        default=None, description="Extra CA certificate to trust (the sandbox's self-signed one)."
    )
    state_dir: str = Field(
        default=str(ClientSettings.state_dir),
        description="Rate-limit ledger and learned request spans.",
    )
    ledger_url: str | None = Field(
        default=None,
        description="Where the rate-limit ledger lives: empty = SQLite under state_dir (one "
        "machine); postgresql://user@host/db = shared by every machine using it. Set from "
        "EnvVar('EXPIRYTRACK_LEDGER_URL'); a password goes there, in PGPASSWORD or ~/.pgpass.",
    )
    per_second: int = RateLimits.per_second
    per_minute: int = RateLimits.per_minute
    per_30_minutes: int = RateLimits.per_30_minutes
    time_scale: float = Field(
        default=RateLimits.time_scale, description="Multiplies every rate window (tests)."
    )
    safety_margin: float = Field(
        default=RateLimits.safety_margin, description="Fraction added to each window."
    )
    latency_allowance_s: float = Field(
        default=RateLimits.latency_allowance_s,
        description="Seconds added to each window for arrival jitter.",
    )
    max_connections: int = ClientSettings.max_connections
    timeout_s: float = ClientSettings.timeout_s
    max_attempts: int = RetryPolicy.max_attempts
    retry_base_delay_s: float = RetryPolicy.base_delay_s
    circuit_min_failing_s: float = Field(
        default=RetryPolicy.circuit_min_failing_s,
        description="An outage must last this long before the circuit opens.",
    )
    max_span_days: int | None = Field(
        default=None,
        description="Never ask for more days than this in one candle request. Empty: the "
        "span is learned and verified (the whole lookback window if the API answers it).",
    )
    accounts: list[UpstoxAccount] = Field(
        default=[],
        description="More Upstox accounts beside 'default', each with its own token and budget: "
        "names and where their tokens are (never tokens). Runs spread over them.",
    )

    _choice: AccountChoice | None = PrivateAttr(default=None)

    @field_validator("accounts", mode="before")
    @classmethod
    def _account_entries(cls, value: object) -> object:
        return accounts_from_setting(value)

    def resolved_source(self) -> str:
        """'upstox' or 'sandbox': what the stores record as the data's source."""
        raise NotImplementedError

    def describe_source(self) -> str:
        """A one-line, secret-free statement of where data comes from, for logs and metadata."""
        raise NotImplementedError

    def check_token_deadline(self, now: datetime | None = None) -> ActiveToken | None:
        """The token runs would use, or ``TokenExpired`` naming what to do."""
        raise NotImplementedError

    def client(self) -> UpstoxClient:
        """A new client, after the token deadline check; ``async with resource.client() as c:``."""
        raise NotImplementedError

    def live_client(self) -> UpstoxClient:
        """A client for the live endpoints (option chain, current contracts); the same as
        ``client()`` unless a resource has a token meant for them (the Analytics Token)."""
        return self.client()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        log = context.log if context.log is not None else get_dagster_logger()
        log.info(f"Data source: {self.describe_source()}")
        if self.accounts:  # the run's account, chosen once per run and tagged on it
            run = context.run
            runs = DagsterRuns(context.instance, run.run_id) if run and context.instance else None
            self._choice = self.account_pool().choose(
                self.account_candidates(), runs, run.run_id if run else ""
            )
            log.info(self._choice.describe())

    def account_candidates(self) -> list[Candidate]:
        """Every account of the pool, 'default' first, each with its token or why it has none."""
        raise NotImplementedError

    def account_pool(self) -> AccountPool:
        """The accounts' shared state (dead tokens, the choice lock) under ``state_dir``."""
        return AccountPool(self.state_dir, self.rate_limits(), self.client_settings().ledger_url)

    @property
    def account_name(self) -> str | None:
        """The name of the account this run uses; None without ``accounts``."""
        return self._choice.name if self._choice is not None else None

    def pooled_client(self, base_url: str, transport: Any = None) -> UpstoxClient:
        """A client on the run's account (outside a run: the best live account now)."""
        pool = self.account_pool()
        if self._choice is None:
            self._choice = pool.choose(self.account_candidates())
        account = self._choice.account
        settings = self.client_settings(account.ledger_id)
        return PooledClient(base_url, account, settings, pool, transport=transport)

    def rate_limits(self) -> RateLimits:
        """The rate windows and margins; ``ValueError`` naming the field when one is not allowed."""
        return RateLimits(
            per_second=self.per_second,
            per_minute=self.per_minute,
            per_30_minutes=self.per_30_minutes,
            time_scale=self.time_scale,
            safety_margin=self.safety_margin,
            latency_allowance_s=self.latency_allowance_s,
        )

    def client_settings(
        self, ledger_id: str | None = None, ca_cert_path: str | Path | None = None
    ) -> ClientSettings:
        """The client settings this configuration describes (``ledger_id``: whose budget)."""
        ca = ca_cert_path or self.ca_cert_path
        return ClientSettings(
            timeout_s=self.timeout_s,
            max_connections=self.max_connections,
            ca_cert_path=Path(ca) if ca else None,
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                base_delay_s=self.retry_base_delay_s,
                circuit_min_failing_s=self.circuit_min_failing_s,
            ),
            limits=self.rate_limits(),
            max_span_days=self.max_span_days,
            state_dir=Path(self.state_dir),
            ledger_id=ledger_id,
            ledger_url=_resolved(self.ledger_url),
        )

    def token_margin(self) -> timedelta:
        """How long before its deadline a token is refused."""
        return timedelta(minutes=self.token_margin_minutes)


def _resolved(value: str | EnvVar | None) -> str | None:
    """A field's value; an ``EnvVar`` (outside a run Dagster has not resolved it) is read now."""
    if isinstance(value, EnvVar):
        return value.get_value() or None
    return value or None


UPSTOX_SOURCES = ("auto", "upstox")
"""The ``source`` values that mean the real API (``auto`` is kept for older settings files)."""


class UpstoxResource(UpstoxApi):
    """The real Upstox expired-instruments API, shared by every asset and the new-expiry sensor."""

    source: str = Field(
        default="upstox",
        description="'upstox' ('auto' means the same); the sandbox is SandboxResource.",
    )
    access_token: str | None = Field(
        default=None, description="Upstox access token; set from EnvVar('UPSTOX_ACCESS_TOKEN')."
    )
    base_url: str = Field(default=UPSTOX_BASE_URL, description="The Upstox API host.")
    credentials_dir: str | None = Field(
        default=None,
        description="The `expirytrack login` store; default EXPIRYTRACK_CREDENTIALS_DIR or "
        "~/.config/expirytrack.",
    )
    upstox_user_id: str | None = Field(
        default=None,
        description="The Upstox user whose budget the requests count against; default: the "
        "user `expirytrack login` recorded, else a hash of the token.",
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in UPSTOX_SOURCES:
            raise ValueError(
                f"must be one of {', '.join(UPSTOX_SOURCES)} (the sandbox is "
                "expirytrack_dagster.sandbox_resource.SandboxResource)"
            )
        return value

    def resolved_source(self) -> str:
        return "upstox"

    def describe_source(self) -> str:
        return f"Upstox API at {self.base_url}"

    def check_token_deadline(self, now: datetime | None = None) -> ActiveToken | None:
        """The token runs would use, or ``TokenExpired`` naming ``expirytrack login``.

        Refuses a missing token, a dead one, and one that dies within ``token_margin_minutes``.
        """
        if not self.access_token and not has_stored_token(self.credentials_dir):
            # Never a fallback to synthetic data: say how to log in, and how to ask for it.
            raise TokenExpired(
                f"no Upstox access token is configured or stored — {LOGIN_FIX}. Nothing "
                "was requested. For synthetic data instead, run `expirytrack demo` or set "
                "EXPIRYTRACK_SOURCE=sandbox (its data goes to data/sandbox/)."
            )
        return token_for_run(
            self.access_token,
            credentials_dir=self.credentials_dir,
            base_url=self.base_url,
            margin=self.token_margin(),
            now=now,
        )

    def account_candidates(self) -> list[Candidate]:
        def default() -> AccountToken:
            token = self.check_token_deadline()
            assert token is not None
            user = token.stored.user_id if token.stored is not None else None
            return AccountToken(DEFAULT_ACCOUNT, token.access_token, self.upstox_user_id or user)

        def listed(account: UpstoxAccount) -> Candidate:
            return candidate(
                account.name,
                lambda: listed_account_token(
                    account, base_url=self.base_url, margin=self.token_margin()
                ),
            )

        return [candidate(DEFAULT_ACCOUNT, default), *(listed(a) for a in self.accounts)]

    def client(self) -> UpstoxClient:
        if self.accounts:
            return self.pooled_client(self.base_url)
        token = self.check_token_deadline()
        assert token is not None
        user = token.stored.user_id if token.stored is not None else None
        settings = self.client_settings(self.upstox_user_id or user)
        return UpstoxClient(self.base_url, token.access_token, settings)

    def live_client(self) -> UpstoxClient:
        """A client for the live endpoints with the Analytics Token (``UPSTOX_ANALYTICS_TOKEN``
        or ``expirytrack login --analytics-token``), else the daily token; each is checked
        against its own expiry. Requests count in the same user's ledger."""
        token = live_token_for_run(
            os.environ.get(ENV_ANALYTICS_TOKEN),
            self.access_token,
            credentials_dir=self.credentials_dir,
            base_url=self.base_url,
            margin=self.token_margin(),
        )
        stored = token.stored
        user = stored.user_id if stored is not None and stored.user_id else None
        if user is None:  # the Analytics Token's user is the daily login's: one budget
            with contextlib.suppress(CredentialStoreError):
                daily = active_token(None, CredentialStore(self.credentials_dir))
                user = daily.stored.user_id if daily is not None and daily.stored else None
        settings = self.client_settings(self.upstox_user_id or user)
        return UpstoxClient(self.base_url, token.access_token, settings)
