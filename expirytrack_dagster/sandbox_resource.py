"""The sandbox resource: the ``UpstoxApi`` interface answered by the built-in synthetic simulator.

Chosen only on purpose (``expirytrack demo``, ``upstox: {source: sandbox}`` or
``EXPIRYTRACK_SOURCE=sandbox``); its data goes to its own stores under ``data/sandbox/``. Either
a sandbox already running elsewhere (``sandbox_url``, as ``expirytrack demo`` and ``expirytrack
sandbox`` start one) or, without ``sandbox_url``, one embedded in this process: served in-process
through httpx's ASGI transport, with no socket, TLS or server thread.

The simulator is imported only when this resource is used, and needs the optional ``sandbox``
extra (``pip install -e ".[sandbox]"``); the real Upstox resource never needs it.

With ``accounts``, each listed account's token is read from its environment variable, as for the
real API; an embedded sandbox accepts those tokens too, each with its own rate windows.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime
from typing import Any

from dagster import InitResourceContext
from pydantic import Field, PrivateAttr, field_validator

from expirytrack_dagster.credentials.guard import ActiveToken, token_with_deadline
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.upstox.accounts import (
    DEFAULT_ACCOUNT,
    AccountToken,
    Candidate,
    candidate,
    environment_token,
)
from expirytrack_dagster.upstox.client import UpstoxClient
from expirytrack_dagster.upstox.errors import TokenExpired

EMBEDDED_SANDBOX_TOKEN = "expirytrack-embedded-sandbox"
"""The token an embedded sandbox accepts. Fixed, so every process shares one rate-limit ledger."""

SANDBOX_EXTRA_HINT = 'install the optional sandbox extra: pip install -e ".[sandbox]"'


def import_sandbox() -> Any:
    """The ``expirytrack_dagster.sandbox`` package; ``ImportError`` naming the extra if missing."""
    try:
        from expirytrack_dagster import sandbox
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"the Upstox sandbox needs {exc.name!r}, which is not installed: {SANDBOX_EXTRA_HINT}"
        ) from exc
    return sandbox


class SandboxResource(UpstoxApi):
    """The built-in Upstox sandbox (synthetic data), with the interface of ``UpstoxResource``."""

    source: str = Field(default="sandbox", description="Always 'sandbox'.")
    sandbox_url: str | None = Field(
        default=None, description="A running sandbox to use; empty: embed one in this process."
    )
    sandbox_token: str | None = Field(default=None, description="The running sandbox's token.")
    sandbox_token_expires_at: str | None = Field(
        default=None, description="ISO-8601 deadline of the sandbox token; guarded like Upstox's."
    )

    _stack: ExitStack | None = PrivateAttr(default=None)
    _embedded: Any = PrivateAttr(default=None)

    @field_validator("source")
    @classmethod
    def _sandbox(cls, value: str) -> str:
        if value != "sandbox":
            raise ValueError("must be 'sandbox' (the real API is resources.UpstoxResource)")
        return value

    @property
    def base_url(self) -> str:
        """The sandbox's address: ``sandbox_url``, or the embedded one's once started."""
        if self.sandbox_url:
            return self.sandbox_url
        return self._embedded.base_url if self._embedded is not None else ""

    def resolved_source(self) -> str:
        return "sandbox"

    def describe_source(self) -> str:
        if self.sandbox_url:
            return f"Upstox sandbox (synthetic data) at {self.sandbox_url}"
        return "embedded Upstox sandbox (synthetic data)"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if not self.sandbox_url:
            self._start_embedded()
        super().setup_for_execution(context)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self._embedded = None

    def _start_embedded(self) -> None:
        sandbox = import_sandbox()
        stack = ExitStack()
        embedded = stack.enter_context(
            sandbox.run_sandbox(sandbox.SandboxConfig(), in_process=True)
        )
        embedded.add_token(EMBEDDED_SANDBOX_TOKEN)
        for account in self.accounts:  # each simulated account: its own token, its own windows
            token = environment_token(account)
            if token:
                embedded.add_token(token)
        self._stack, self._embedded = stack, embedded

    def check_token_deadline(self, now: datetime | None = None) -> ActiveToken | None:
        """None (the sandbox needs no login), unless ``sandbox_token_expires_at`` gives a deadline
        that has passed or falls within ``token_margin_minutes``: then ``TokenExpired``."""
        if not self.sandbox_token_expires_at:
            return None
        token = self.sandbox_token or EMBEDDED_SANDBOX_TOKEN
        return token_with_deadline(
            token,
            self.sandbox_token_expires_at,
            source="sandbox",
            margin=self.token_margin(),
            now=now,
        )

    def account_candidates(self) -> list[Candidate]:
        def default() -> AccountToken:
            self.check_token_deadline()
            token = (self.sandbox_token or "") if self.sandbox_url else EMBEDDED_SANDBOX_TOKEN
            if not token:
                raise TokenExpired(
                    "no sandbox token: set sandbox_token (EXPIRYTRACK_SANDBOX_TOKEN)"
                )
            return AccountToken(DEFAULT_ACCOUNT, token)

        def listed(name: str, token: str | None, variable: str) -> AccountToken:
            if not token:
                raise TokenExpired(f"no token: set {variable}")
            return AccountToken(name, token)

        return [
            candidate(DEFAULT_ACCOUNT, default),
            *(
                candidate(a.name, lambda a=a: listed(a.name, environment_token(a), a.variable()))
                for a in self.accounts
            ),
        ]

    def client(self) -> UpstoxClient:
        if self.accounts:
            if not self.sandbox_url and self._embedded is None:
                self._start_embedded()  # outside a Dagster run (CLI, notebook)
            return self.pooled_client(self.base_url, transport=_transport(self.base_url))
        self.check_token_deadline()
        if self.sandbox_url:
            url, token = self.sandbox_url, self.sandbox_token or ""
        else:
            if self._embedded is None:
                self._start_embedded()  # outside a Dagster run (CLI, notebook)
            url, token = self._embedded.base_url, EMBEDDED_SANDBOX_TOKEN
        return UpstoxClient(url, token, self.client_settings(), transport=_transport(url))


def _transport(url: str) -> Any:
    """The in-process sandbox's transport for its ``….sandbox.invalid`` address, else None."""
    import_sandbox()
    from expirytrack_dagster.sandbox import inprocess

    return inprocess.transport_for(url) if inprocess.is_in_process(url) else None
