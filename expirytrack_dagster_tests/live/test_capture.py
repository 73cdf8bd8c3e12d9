"""The capture loop against the in-process sandbox, on virtual time (a stepped clock)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import IST, session_for
from expirytrack_dagster.instruments import Underlying
from expirytrack_dagster.live.capture import CaptureReport, capture_minutes, capture_session
from expirytrack_dagster.live.clock import SteppedClock
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox.faults import FaultConfig
from expirytrack_dagster.sandbox.inprocess import transport_for
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.resilience import RetryPolicy

DAY = date(2026, 11, 20)
NIFTY = Underlying("NIFTY", "NSE_INDEX|Nifty 50")


def _at(hh: int, mm: int) -> datetime:
    return datetime(2026, 11, 20, hh, mm, tzinfo=IST)


def test_restart_and_outage_lose_nothing_else_and_store_nothing_twice(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "live", DAY)
    with run_sandbox(SandboxConfig(today=DAY), in_process=True) as sb:
        live = sb.state.live
        live.clock.set(_at(15, 22), speed=0)
        clock = SteppedClock(live.clock.now, lambda moment: live.clock.set(moment, speed=0))
        settings = ClientSettings(
            state_dir=tmp_path / "state",
            retry=RetryPolicy(max_attempts=1, circuit_failures=1000),
        )

        def client() -> UpstoxClient:
            return UpstoxClient(
                sb.base_url, sb.access_token, settings, transport=transport_for(sb.base_url)
            )

        async def play() -> tuple[CaptureReport, CaptureReport]:
            first = CaptureReport(DAY)
            task = asyncio.create_task(
                capture_session(client, store, [NIFTY], clock=clock, report=first)
            )
            while first.chains_stored < 2 * 2:  # 15:22 and 15:23 stored, then the run dies
                await asyncio.sleep(0)
            task.cancel()
            second = CaptureReport(DAY)
            task = asyncio.create_task(
                capture_session(client, store, [NIFTY], clock=clock, report=second)
            )
            while clock.now() < _at(15, 25) + timedelta(seconds=30):
                await asyncio.sleep(0)
            sb.set_faults(FaultConfig(server_error=1.0, only_paths=("/v2/option/chain",)))
            while clock.now() < _at(15, 28) + timedelta(seconds=30):
                await asyncio.sleep(0)
            sb.set_faults(FaultConfig())
            await task
            return first, second

        first, second = asyncio.run(asyncio.wait_for(play(), timeout=60))

    stored = store.snapshots()
    expected = [m for m in capture_minutes(session_for(DAY)) if m >= _at(15, 22)]
    down = {_at(15, 26), _at(15, 27), _at(15, 28)}
    per_minute = stored.groupby(["captured_at", "expiry"]).size()
    minutes = sorted({ts.to_pydatetime() for ts in stored["captured_at"]})
    assert minutes == [m for m in expected if m not in down]  # 3 minutes down: exactly 3 missing
    assert len(first.targets) == 2 and second.targets == first.targets
    assert len(per_minute) == 2 * len(minutes)  # both expiries every stored minute
    assert not stored.duplicated(["captured_at", "expiry", "instrument_key"]).any()
    assert second.chains_already_stored >= 4 and second.chains_missed >= 2 * 3
    outage = [line for line in second.missed if line.startswith(("15:26", "15:27", "15:28"))]
    assert len(outage) == 6
    assert first.minutes_expected == 375
    # each stored chain equals what the sandbox serves for that minute
    late = stored[stored["captured_at"] == _at(15, 30)]
    assert late["volume"].sum() > stored[stored["captured_at"] == _at(15, 22)]["volume"].sum()
