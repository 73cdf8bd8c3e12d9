"""The Upstox resource outside a Dagster run: the embedded sandbox works from a notebook or CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from expirytrack_dagster.resources import UpstoxResource


def test_embedded_sandbox_answers_outside_a_run(tmp_path: Path) -> None:
    resource = UpstoxResource(source="sandbox", state_dir=str(tmp_path / "state"))
    assert resource.describe_source() == "embedded Upstox sandbox (synthetic data)"

    async def expiries() -> list:
        async with resource.client() as client:
            listed = await client.get_expiries("NSE_INDEX|Nifty 50")
            assert client.stats.http_versions == {"HTTP/2": 1}
            return listed

    listed = asyncio.run(expiries())
    assert listed == sorted(listed) and len(listed) > 20
    resource.teardown_after_execution(None)  # stops the embedded sandbox
