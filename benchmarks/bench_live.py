"""Live OI capture: per-minute cost of one capture, and the tracker view's latency on a full day.

    python -m benchmarks.bench_live [--minutes 20]

Five underlyings × their two tracked expiries (nearest weekly, current monthly) from the
sandbox's live chain. "Our work" is what the capture does per minute once the answers are in:
parse the ten chains and commit them to the day's snapshot file (one transaction). "End to end"
adds the ten requests through the client, in-process, including the sandbox computing its
chains (Upstox's share in production). The view is timed on a full session day (375 minutes ×
the ten chains) in one file; it reads only that day's file, so more days beside it (a month)
change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.live.store import LOG_TABLE, SNAPSHOT_TABLE, SnapshotStore, connect
from expirytrack_dagster.live.targets import tracked_expiries
from expirytrack_dagster.live.view import read_history, tracker
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox.inprocess import transport_for
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.live import CurrentExpiry, parse_option_chain

DAY = date(2026, 11, 20)
OPEN = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX")
SELECTORS = ("nearest", "next")  # two expiries each (the sandbox lists no 2026 weeklies for some)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=20)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench_live_"))
    with run_sandbox(SandboxConfig(today=DAY), in_process=True) as sb:
        live = sb.state.live
        live.clock.set(OPEN + timedelta(minutes=60), speed=0)
        targets = []
        for symbol in SYMBOLS:
            current = [
                CurrentExpiry(e, not sb.market.is_monthly(symbol, e))
                for e in live.current_expiries(symbol)
            ]
            targets += [(symbol, t.expiry) for t in tracked_expiries(current, SELECTORS)]
        key = {s: sb.market.profile(s).instrument_key for s in SYMBOLS}
        store = SnapshotStore(folder, DAY)
        ours, ours_cpu, end_to_end, rows = [], [], [], 0
        for k in range(args.minutes):
            minute = OPEN + timedelta(minutes=60 + k)
            live.clock.set(minute + timedelta(seconds=1), speed=0)
            answers = [live.option_chain(s, e) for s, e in targets]
            start, cpu = time.perf_counter(), time.process_time()
            frames = [
                (s, e, parse_option_chain(data, minute, s))
                for (s, e), data in zip(targets, answers, strict=True)
            ]
            rows = store.write_minute(frames, minute)
            ours.append(time.perf_counter() - start)
            ours_cpu.append(time.process_time() - cpu)

        async def one_minute(minute: datetime) -> None:
            settings = ClientSettings(state_dir=folder / "state")
            transport = transport_for(sb.base_url)
            async with UpstoxClient(
                sb.base_url, sb.access_token, settings, transport=transport
            ) as c:
                start = time.perf_counter()
                chains = await asyncio.gather(
                    *(c.get_option_chain(key[s], e, underlying_symbol=s, captured_at=minute)
                      for s, e in targets)
                )  # fmt: skip
                store.write_minute(
                    list(
                        zip([s for s, _ in targets], [e for _, e in targets], chains, strict=True)
                    ),
                    minute,
                )
                end_to_end.append(time.perf_counter() - start)

        for k in range(5):
            minute = OPEN + timedelta(minutes=60 + args.minutes + k)
            live.clock.set(minute + timedelta(seconds=1), speed=0)
            asyncio.run(one_minute(minute))
    print(
        f"{len(targets)} chains a minute ({rows:,} rows): {', '.join(f'{s} {e}' for s, e in targets)}"
    )
    print(
        f"our work per minute (parse + commit), median of {args.minutes}: {statistics.median(ours) * 1000:.0f} ms wall, {statistics.median(ours_cpu) * 1000:.0f} ms CPU"
    )
    print(
        f"end to end per minute incl. in-process sandbox, median of 5: {statistics.median(end_to_end) * 1000:.0f} ms"
    )

    full = _full_day(store)
    at = OPEN + timedelta(minutes=300, seconds=20)
    times, cpu_times = [], []
    for _ in range(7):
        start, cpu = time.perf_counter(), time.process_time()
        view = tracker(read_history(folder, "NIFTY", at), "NIFTY", 3)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    print(f"tracker view (read + compute, ATM ± 3, 5 windows) on a full day ({full:,} rows, "
          f"{store.path.stat().st_size / 1e6:.0f} MB): median of 7 {statistics.median(times) * 1000:.1f} ms wall, {statistics.median(cpu_times) * 1000:.1f} ms CPU"
          f" ({len(view.rows)} rows shown)")  # fmt: skip


def _full_day(store: SnapshotStore) -> int:
    """Fill the day's file to 375 minutes by copying the stored minute with shifted stamps and
    drifting OI (the view's cost depends on the row count, not on the values)."""
    with connect(store.path) as conn:
        first = conn.execute(f"SELECT min(captured_at) FROM {SNAPSHOT_TABLE}").fetchone()[0]
        conn.execute(
            f"""INSERT INTO {SNAPSHOT_TABLE}
            SELECT * EXCLUDE (m) REPLACE (?::TIMESTAMPTZ + INTERVAL (m) MINUTE AS captured_at,
                                          oi + m * 75 AS oi)
            FROM {SNAPSHOT_TABLE}, range(1, 376) AS r(m)
            WHERE captured_at = ? ON CONFLICT DO NOTHING""",
            [OPEN, first],
        )
        conn.execute(
            f"""INSERT INTO {LOG_TABLE} SELECT * EXCLUDE (m) REPLACE
                (?::TIMESTAMPTZ + INTERVAL (m) MINUTE AS captured_at)
            FROM {LOG_TABLE}, range(1, 376) AS r(m) WHERE captured_at = ? ON CONFLICT DO NOTHING""",
            [OPEN, first],
        )
        return conn.execute(f"SELECT count(*) FROM {SNAPSHOT_TABLE}").fetchone()[0]


if __name__ == "__main__":
    main()
