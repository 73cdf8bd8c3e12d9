"""The Upstox resource: builds the rate-limited HTTP/2 client from configuration for assets and sensors.

Where the data comes from is decided here and nowhere else:
- ``source="upstox"`` (default): the real API at ``base_url`` with ``access_token``
  (``UPSTOX_ACCESS_TOKEN``), or else the token ``expirytrack login`` stored (see ``credentials``);
- ``source="sandbox"``: the built-in synthetic Upstox simulator, either one already running
  (``sandbox_url``, as the demo and ``expirytrack sandbox`` start) or one embedded in the process.
  Only ever chosen on purpose: ``expirytrack demo``, ``source: sandbox`` or
  ``EXPIRYTRACK_SOURCE=sandbox``; its data goes to its own stores under ``data/sandbox/``;
- ``source="auto"``: kept for older settings files; the same as ``upstox`` (it never falls back
  to synthetic data).

Before any request the token's deadline is checked (``check_token_deadline``): Upstox tokens die
at 03:30 IST after login, so a run refuses to start with a missing, dead or nearly dead token.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, InitResourceContext, get_dagster_logger
from pydantic import Field, PrivateAttr

from expirytrack_dagster.credentials.guard import (
    LOGIN_FIX,
    ActiveToken,
    has_stored_token,
    token_for_run,
    token_with_deadline,
)
from expirytrack_dagster.upstox.client import UPSTOX_BASE_URL, ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.limiter import RateLimits
from expirytrack_dagster.upstox.resilience import RetryPolicy

EMBEDDED_SANDBOX_TOKEN = "expirytrack-embedded-sandbox"
"""The token an embedded sandbox accepts. Fixed, so every process shares one rate-limit ledger."""

SOURCES = ("auto", "upstox", "sandbox")


class UpstoxResource(ConfigurableResource):
    """Upstox expired-instruments API access, shared by every asset and the new-expiry sensor.

    The three Upstox rate windows (per second, per minute, per 30 minutes) are enforced across
    every process using the same token, through a ledger under ``state_dir``.
    """

    source: str = Field(
        default="upstox",
        description="'upstox' (needs a token) or 'sandbox' (synthetic data); 'auto' = 'upstox'.",
    )
    access_token: str | None = Field(
        default=None, description="Upstox access token; set from EnvVar('UPSTOX_ACCESS_TOKEN')."
    )
    base_url: str = Field(default=UPSTOX_BASE_URL, description="The Upstox API host.")
    sandbox_url: str | None = Field(
        default=None, description="A running sandbox to use; empty: embed one in the process."
    )
    sandbox_token: str | None = Field(default=None, description="The running sandbox's token.")
    sandbox_token_expires_at: str | None = Field(
        default=None, description="ISO-8601 deadline of the sandbox token; guarded like Upstox's."
    )
    credentials_dir: str | None = Field(
        default=None,
        description="The `expirytrack login` store; default EXPIRYTRACK_CREDENTIALS_DIR or "
        "~/.config/expirytrack.",
    )
    token_margin_minutes: int = Field(
        default=30, description="Refuse to start when the token dies within this many minutes."
    )
    ca_cert_path: str | None = Field(
        default=None, description="Extra CA certificate to trust (the sandbox's self-signed one)."
    )
    state_dir: str = Field(
        default="data/state", description="Rate-limit ledger and learned request spans."
    )
    per_second: int = 50
    per_minute: int = 500
    per_30_minutes: int = 2000
    time_scale: float = Field(default=1.0, description="Multiplies every rate window (tests).")
    safety_margin: float = Field(default=0.02, description="Fraction added to each window.")
    latency_allowance_s: float = Field(
        default=0.25, description="Seconds added to each window for arrival jitter."
    )
    max_connections: int = 8
    timeout_s: float = 30.0
    max_attempts: int = 6
    retry_base_delay_s: float = 0.5
    circuit_min_failing_s: float = Field(
        default=10.0, description="An outage must last this long before the circuit opens."
    )
    max_span_days: int | None = Field(
        default=None,
        description="Never ask for more days than this in one candle request. Empty: the "
        "span is learned and verified (the whole lookback window if the API answers it).",
    )
    upstox_user_id: str | None = Field(
        default=None,
        description="The Upstox user whose budget the requests count against; default: the "
        "user `expirytrack login` recorded, else a hash of the token.",
    )

    _stack: ExitStack | None = PrivateAttr(default=None)
    _embedded: Any = PrivateAttr(default=None)

    def resolved_source(self) -> str:
        """'upstox' or 'sandbox' ('auto' is 'upstox': synthetic data is never a fallback)."""
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        return "sandbox" if self.source == "sandbox" else "upstox"

    def describe_source(self) -> str:
        """A one-line, secret-free statement of where data comes from, for logs and metadata."""
        if self.resolved_source() == "upstox":
            return f"Upstox API at {self.base_url}"
        if self.sandbox_url:
            return f"Upstox sandbox (synthetic data) at {self.sandbox_url}"
        return "embedded Upstox sandbox (synthetic data)"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        log = context.log if context.log is not None else get_dagster_logger()
        source = self.resolved_source()
        if source == "sandbox" and not self.sandbox_url:
            self._start_embedded_sandbox()
        log.info(f"Data source: {self.describe_source()}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self._embedded = None

    def _start_embedded_sandbox(self) -> None:
        from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox

        stack = ExitStack()
        sandbox = stack.enter_context(run_sandbox(SandboxConfig()))
        sandbox.add_token(EMBEDDED_SANDBOX_TOKEN)
        self._stack, self._embedded = stack, sandbox

    def client_settings(self, ledger_id: str | None = None) -> ClientSettings:
        """The client settings this configuration describes (``ledger_id``: whose budget)."""
        ca = self.ca_cert_path
        if self._embedded is not None:
            ca = str(self._embedded.ca_cert_path)
        return ClientSettings(
            timeout_s=self.timeout_s,
            max_connections=self.max_connections,
            ca_cert_path=Path(ca) if ca else None,
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                base_delay_s=self.retry_base_delay_s,
                circuit_min_failing_s=self.circuit_min_failing_s,
            ),
            limits=RateLimits(
                per_second=self.per_second,
                per_minute=self.per_minute,
                per_30_minutes=self.per_30_minutes,
                time_scale=self.time_scale,
                safety_margin=self.safety_margin,
                latency_allowance_s=self.latency_allowance_s,
            ),
            max_span_days=self.max_span_days,
            state_dir=Path(self.state_dir),
            ledger_id=self.upstox_user_id or ledger_id,
        )

    def check_token_deadline(self, now: datetime | None = None) -> ActiveToken | None:
        """The token runs would use, or ``TokenExpired`` naming ``expirytrack login``.

        Refuses a missing token, a dead one, and one that dies within ``token_margin_minutes``.
        The sandbox is exempt (None) unless ``sandbox_token_expires_at`` gives it a deadline.
        """
        margin = timedelta(minutes=self.token_margin_minutes)
        if self.resolved_source() == "upstox":
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
                margin=margin,
                now=now,
            )
        if self.sandbox_token_expires_at:
            token = self.sandbox_token or EMBEDDED_SANDBOX_TOKEN
            return token_with_deadline(
                token, self.sandbox_token_expires_at, source="sandbox", margin=margin, now=now
            )
        return None

    def client(self) -> UpstoxClient:
        """A new client, after the token deadline check; ``async with resource.client() as c:``."""
        token = self.check_token_deadline()
        if self.resolved_source() == "upstox":
            assert token is not None
            user = token.stored.user_id if token.stored is not None else None
            return UpstoxClient(self.base_url, token.access_token, self.client_settings(user))
        if self.sandbox_url:
            return UpstoxClient(
                self.sandbox_url,
                self.sandbox_token or "",
                self.client_settings(),
                transport=_sandbox_transport(self.sandbox_url),
            )
        if self._embedded is None:
            self._start_embedded_sandbox()  # outside a Dagster run (CLI, notebook)
        # Settings after the start: they name the embedded sandbox's CA certificate.
        return UpstoxClient(self._embedded.base_url, EMBEDDED_SANDBOX_TOKEN, self.client_settings())


def _sandbox_transport(url: str) -> Any:
    """The in-process sandbox's transport for its ``….sandbox.invalid`` address, else None."""
    from expirytrack_dagster.sandbox import inprocess

    return inprocess.transport_for(url) if inprocess.is_in_process(url) else None
