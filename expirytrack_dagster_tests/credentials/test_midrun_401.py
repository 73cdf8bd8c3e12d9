"""A token that dies mid-partition: the run stops with TokenExpired naming the fix, keeps every
contract that landed and records the rest failed with the reason, so the next run (after
``expirytrack login``) only fetches the rest."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from expirytrack_dagster.calendar import trading_days_between
from expirytrack_dagster.collection import ContractToFetch, collect_candles, pending_days
from expirytrack_dagster.sandbox import Sandbox
from expirytrack_dagster.sandbox.tokens import new_token
from expirytrack_dagster.storage.landing import CandleLanding
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.resilience import RetryPolicy
from expirytrack_dagster_tests.credentials.conftest import NIFTY

EXPIRY = date(2025, 8, 28)
WINDOW = (date(2025, 8, 22), EXPIRY)
PARTITION = "NIFTY_2025-08-28"


class RevokingLanding(CandleLanding):
    """Lands normally; after ``after`` contracts the sandbox stops accepting ``token`` (it died)."""

    def __init__(self, root: Path, sandbox: Sandbox, token: str, after: int) -> None:
        super().__init__(root, "1minute")
        self.sandbox, self.token, self.after, self.saves = sandbox, token, after, 0

    def save(self, *args: Any, **kwargs: Any):
        landed = super().save(*args, **kwargs)
        self.saves += 1
        if self.saves == self.after:
            self.sandbox.remove_token(self.token)
        return landed


async def collect(sandbox: Sandbox, token: str, landing: CandleLanding, state: Path, todo):
    settings = ClientSettings(
        ca_cert_path=sandbox.ca_cert_path,
        state_dir=state,
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.01),
    )
    async with UpstoxClient(sandbox.base_url, token, settings) as client:
        return await collect_candles(
            client, landing, PARTITION, todo, *WINDOW, underlying_key=NIFTY, max_in_flight=1
        )


def test_401_mid_run_keeps_what_landed(sandbox: Sandbox, tmp_path: Path) -> None:
    contracts = sandbox.market.option_contracts(NIFTY, EXPIRY)[:6]
    todo = [ContractToFetch(c["instrument_key"], c["instrument_type"]) for c in contracts]
    token = new_token()
    sandbox.add_token(token)
    landing = RevokingLanding(tmp_path / "landing", sandbox, token, after=2)

    with pytest.raises(TokenExpired) as caught:
        asyncio.run(collect(sandbox, token, landing, tmp_path / "state", todo))
    message = str(caught.value)
    assert "HTTP 401" in message and "UDAPI100050" in message
    assert "expirytrack login" in message and token not in message
    days = trading_days_between(*WINDOW)
    records = {c: landing.load(PARTITION, c.expired_instrument_key, days) for c in todo}
    landed = [c for c, item in records.items() if not pending_days(item, days)]
    assert len(landed) == 2
    # The four it did not finish say so, day by day, with the reason and the fix.
    for contract in todo:
        if contract not in landed:
            errors = {r.error for r in records[contract].days.values()}
            assert {r.status for r in records[contract].days.values()} == {"failed"}
            (error,) = errors
            assert error.startswith("run stopped by TokenExpired: HTTP 401")
            assert "expirytrack login" in error and token not in error

    fresh = new_token()  # after `expirytrack login`
    sandbox.add_token(fresh)
    report = asyncio.run(
        collect(
            sandbox, fresh, CandleLanding(tmp_path / "landing", "1minute"), tmp_path / "state", todo
        )
    )
    assert sorted(report.reused) == sorted(c.expired_instrument_key for c in landed)
    assert len(report.fetched) == 4 and not report.failed
