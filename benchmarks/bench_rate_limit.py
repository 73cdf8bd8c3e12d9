"""Rate-limit utilisation: how close the shared limiter gets to the fastest schedule Upstox allows.

N requests go through the real client against the sandbox (HTTP/2 on loopback) with every window
scaled by ``--time-scale``, from one process and from two processes sharing the token — first on
the SQLite ledger (one machine), then on the PostgreSQL ledger (``upstox.ledger_url``: shared by
machines), on a throwaway PostgreSQL server this benchmark starts on loopback. Printed: achieved
time over the ideal time the three windows allow (goal ≤ 1.05), the 429 count the sandbox saw
(goal 0), and requests per second. Medians over ``--repeat`` runs.

    python -m benchmarks.bench_rate_limit [--requests 2100] [--time-scale 0.01] [--repeat 3]
        [--ledger both|sqlite|postgres]

The PostgreSQL server comes from ``expirytrack_dagster_tests.postgres_server`` (Debian's
``postgresql`` package, as ``.ci/run`` installs): like ``benchmarks`` itself, that package is
importable from the repository root, where ``make bench`` runs. Without server binaries the
PostgreSQL rows say why they were skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.limiter import RateLimits, ideal_schedule
from expirytrack_dagster.upstox.resilience import RetryPolicy

NIFTY = "NSE_INDEX|Nifty 50"


def _client_process(
    base_url: str,
    token: str,
    ca: str,
    state: str,
    ledger_url: str | None,
    n: int,
    limits: RateLimits,
    out: mp.Queue,
) -> None:
    settings = ClientSettings(
        ca_cert_path=Path(ca),
        state_dir=Path(state),
        limits=limits,
        retry=RetryPolicy(max_attempts=8),
        ledger_url=ledger_url,
    )

    async def work() -> tuple[float, float, int]:
        async with UpstoxClient(base_url, token, settings) as client:
            gate = asyncio.Semaphore(16)

            async def one() -> None:
                async with gate:
                    await client.get_expiries(NIFTY)

            started = time.time()
            await asyncio.gather(*(one() for _ in range(n)))
            return started, time.time(), client.stats.rate_limited

    try:
        out.put(asyncio.run(work()))
    except Exception as exc:  # report, never leave the parent waiting
        out.put(exc)


def measure(
    n: int, processes: int, scale: float, allowance: float, ledger_url: str | None = None
) -> dict[str, float]:
    """One timed run: ``n`` requests split over ``processes`` client processes, on the SQLite
    ledger (``ledger_url`` None: a fresh state directory) or the PostgreSQL ledger at
    ``ledger_url`` (which must be empty: a fresh database)."""
    config = SandboxConfig(time_scale=scale)
    limits = RateLimits(time_scale=scale, latency_allowance_s=allowance)
    with run_sandbox(config) as sb, tempfile.TemporaryDirectory() as state:
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        shares = [n // processes + (i < n % processes) for i in range(processes)]
        workers = [
            ctx.Process(
                target=_client_process,
                args=(
                    sb.base_url,
                    sb.access_token,
                    str(sb.ca_cert_path),
                    state,
                    ledger_url,
                    share,
                    limits,
                    out,
                ),
            )
            for share in shares
        ]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=600) for _ in workers]
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise RuntimeError(f"a client process failed: {failures[0]!r}")
        for worker in workers:
            worker.join()
        stats = sb.stats()
    achieved = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    ideal = ideal_schedule(n, limits.server_windows())[-1]
    return {
        "ratio": achieved / ideal,
        "achieved_s": achieved,
        "ideal_s": ideal,
        "server_429s": stats["rate_limited"],
        "requests_per_s": n / achieved,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2100)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument(
        "--latency-allowance",
        type=float,
        default=0.01,
        help="seconds added per window; scaled runs use less than the real-time default 0.25",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--ledger", choices=("both", "sqlite", "postgres"), default="both", help="which back end"
    )
    args = parser.parse_args(argv)
    windows = RateLimits(time_scale=args.time_scale).server_windows()
    print(
        f"rate-limit utilisation: {args.requests} requests, windows "
        + ", ".join(f"{w.limit}/{w.seconds:g}s" for w in windows)
        + f" (Upstox's ×{args.time_scale:g}), medians of {args.repeat}"
    )
    for processes in (1, 2) if args.ledger != "postgres" else ():
        _report(
            f"SQLite, {processes} process{'es' if processes > 1 else ''}",
            [
                measure(args.requests, processes, args.time_scale, args.latency_allowance)
                for _ in range(args.repeat)
            ],
        )
    if args.ledger == "sqlite":
        return
    try:
        from expirytrack_dagster_tests.postgres_server import PostgresUnavailable, running_postgres
    except ImportError as exc:  # not run from the repository root
        print(f"  PostgreSQL ledger: skipped ({exc})")
        return
    try:
        with running_postgres() as server:
            for processes in (1, 2):
                runs = [
                    measure(
                        args.requests,
                        processes,
                        args.time_scale,
                        args.latency_allowance,
                        server.dsn(server.create_database()),  # an empty ledger per run
                    )
                    for _ in range(args.repeat)
                ]
                _report(f"PostgreSQL, {processes} process{'es' if processes > 1 else ''}", runs)
    except PostgresUnavailable as exc:
        print(f"  PostgreSQL ledger: skipped ({exc})")


def _report(label: str, runs: list[dict[str, float]]) -> None:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"  {label + ':':<26} achieved/ideal {med['ratio']:.3f} "
        f"({med['achieved_s']:.2f}s / {med['ideal_s']:.2f}s; runs "
        + ", ".join(f"{r['ratio']:.3f}" for r in runs)
        + f"), 429s {int(max(r['server_429s'] for r in runs))} (max over runs), "
        f"{med['requests_per_s']:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
