"""``expirytrack demo --live``: the live capture and tracker view against the built-in sandbox.

The sandbox's live clock starts at 11:00 IST on the latest trading day and runs ``speed`` times
faster than real time; the capture polls NIFTY's tracked expiries every session minute into
``data/sandbox/live/`` and the tracker is printed after each captured minute. Synthetic data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import IST, session_for
from expirytrack_dagster.instruments import Underlying
from expirytrack_dagster.live.capture import CaptureReport, capture_session
from expirytrack_dagster.live.clock import SessionClock
from expirytrack_dagster.live.store import SnapshotStore
from expirytrack_dagster.live.view import LiveViewError, format_tracker, read_history, tracker

DEMO_LIVE_DIR = Path("data/sandbox/live")
NIFTY = Underlying("NIFTY", "NSE_INDEX|Nifty 50")


def _latest_session_day() -> datetime:
    day = datetime.now(IST).date()
    while session_for(day) is None:
        day -= timedelta(days=1)
    return datetime.combine(day, time(11, 0), tzinfo=IST)


def run_live_demo(
    minutes: int = 10,
    speed: float = 20.0,
    strikes: int = 3,
    live_dir: Path = DEMO_LIVE_DIR,
    out: Callable[[str], None] = print,
) -> int:
    """Capture ``minutes`` session minutes and print the tracker after each; returns 0."""
    from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
    from expirytrack_dagster.sandbox.inprocess import transport_for
    from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient

    start = _latest_session_day()
    with run_sandbox(SandboxConfig(today=start.date()), in_process=True) as sb:
        live = sb.state.live
        live.clock.set(start, speed=speed)
        clock = SessionClock(now=live.clock.now, speed=speed)
        store = SnapshotStore(live_dir, start.date())
        settings = ClientSettings(state_dir=live_dir / "state")

        def client() -> UpstoxClient:
            return UpstoxClient(
                sb.base_url, sb.access_token, settings, transport=transport_for(sb.base_url)
            )

        out(
            f"Live OI tracker against the SANDBOX (synthetic data), {speed:g}x real time, "
            f"session {start:%Y-%m-%d} from {start:%H:%M} IST; snapshots in {store.path}"
        )

        async def play() -> CaptureReport:
            report = CaptureReport(start.date())
            task = asyncio.create_task(
                capture_session(client, store, [NIFTY], clock=clock, report=report)
            )
            shown = 0
            while shown < minutes and not task.done():
                before = report.chains_stored + report.chains_already_stored
                while report.chains_stored + report.chains_already_stored == before:
                    if task.done():
                        break
                    await asyncio.sleep(0.02)
                try:
                    view = tracker(read_history(live_dir, "NIFTY", clock.now()), "NIFTY", strikes)
                except LiveViewError:
                    continue
                out(format_tracker(view, clock.now()) + "\n")
                shown += 1
            task.cancel()
            return report

        report = asyncio.run(play())
    out(
        f"captured {report.chains_stored} chains ({report.rows_stored:,} rows), "
        f"{report.requests} API requests; `expirytrack oi live NIFTY --live-dir {live_dir} "
        f'--at "{start:%Y-%m-%d} 11:05"` replays a minute.'
    )
    return 0
