"""The PostgreSQL ledger beyond the shared limiter tests: two machines against the real sandbox,
the choice of back end from the settings, and the URL's password kept out of everything shown."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import traceback
from pathlib import Path

import psycopg2
import pytest

from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.upstox import ledger_postgres
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient, token_fingerprint
from expirytrack_dagster.upstox.ledger import ledger_path, mask_url, open_ledger
from expirytrack_dagster.upstox.ledger_postgres import SCHEMA, LedgerUnavailable, PostgresLedger
from expirytrack_dagster.upstox.ledger_sqlite import SqliteLedger
from expirytrack_dagster.upstox.limiter import RateLimits, SharedRateLimiter
from expirytrack_dagster.upstox.resilience import RetryPolicy

NIFTY = "NSE_INDEX|Nifty 50"
PASSWORD = "Pw-never-shown-7f3a"


def _machine(
    base_url: str,
    token: str,
    ca: str,
    state_dir: str,
    ledger_url: str,
    limits: RateLimits,
    n: int,
    out: str,
    barrier: multiprocessing.synchronize.Barrier,
) -> None:
    """One "machine": its own state directory, the shared ledger URL, ``n`` real requests."""
    settings = ClientSettings(
        ca_cert_path=Path(ca),
        state_dir=Path(state_dir),
        limits=limits,
        retry=RetryPolicy(max_attempts=8),
        ledger_url=ledger_url,
    )

    async def work() -> dict[str, int]:
        async with UpstoxClient(base_url, token, settings) as client:
            gate = asyncio.Semaphore(16)

            async def one() -> None:
                async with gate:
                    await client.get_expiries(NIFTY)

            await one()  # connect (TLS, HTTP/2) before the race: a handshake is not jitter
            barrier.wait(timeout=30)
            await asyncio.gather(*(one() for _ in range(n - 1)))
            return {"requests": client.stats.total, "429s": client.stats.rate_limited}

    Path(out).write_text(json.dumps(asyncio.run(work())))


def test_two_machines_share_the_postgres_ledger_and_the_sandbox_sees_no_429(
    postgres_dsn: str, tmp_path: Path
) -> None:
    # One binding window, the same on both sides: 60 requests per 2 s (Upstox's 30 minutes at
    # 1/900; the sandbox's other two windows off, the client's far away). 100 requests from two
    # machines: 60 go at once, the other 40 wait ~3 s for the window. Two separate ledgers
    # would each allow 50 at once: 429s (checked when this test was written).
    scale, per_machine = 1 / 900, 50
    # A generous latency allowance: on a loaded 2-core machine the in-process sandbox may stamp a
    # request's arrival a good fraction of a second after its grant.
    limits = RateLimits(
        per_second=10_000,
        per_minute=10_000,
        per_30_minutes=60,
        time_scale=scale,
        latency_allowance_s=1.0,
    )
    config = SandboxConfig(per_second=None, per_minute=None, per_30_minutes=60, time_scale=scale)
    ctx = multiprocessing.get_context("spawn")
    with run_sandbox(config) as sb:
        barrier = ctx.Barrier(2)
        outs = [tmp_path / f"machine-{i}.json" for i in range(2)]
        machines = [
            ctx.Process(
                target=_machine,
                args=(
                    sb.base_url,
                    sb.access_token,
                    str(sb.ca_cert_path),
                    str(tmp_path / f"machine-{i}" / "state"),  # nothing shared on disk
                    postgres_dsn,
                    limits,
                    per_machine,
                    str(out),
                    barrier,
                ),
            )
            for i, out in enumerate(outs)
        ]
        for machine in machines:
            machine.start()
        for machine in machines:
            machine.join(timeout=120)
        for machine in machines:
            if machine.is_alive():
                machine.kill()
        assert [m.exitcode for m in machines] == [0, 0]
        stats = sb.stats()

    assert stats["rate_limited"] == 0
    assert stats["by_status"].get(200) == 2 * per_machine
    results = [json.loads(out.read_text()) for out in outs]
    assert results == [{"requests": per_machine, "429s": 0}] * 2
    # Every grant is in the one Postgres ledger of the token; no machine wrote a SQLite ledger.
    conn = psycopg2.connect(postgres_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT t FROM {SCHEMA}.grants WHERE ledger = %s ORDER BY t",
                (token_fingerprint(sb.access_token),),
            )
            grants = [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
    # Grants leave the ledger once older than the longest window; the 40 that waited remain.
    assert 2 * per_machine - 60 <= len(grants) <= 2 * per_machine
    # The ledger itself, whatever the network did: never 61 grants within the window.
    window = limits.windows()[2].seconds
    assert all(b - a >= window for a, b in zip(grants, grants[60:], strict=False))
    assert not list(tmp_path.glob("machine-*/state/ratelimit/*.sqlite"))


def test_the_ledger_url_chooses_the_back_end(postgres_dsn: str, tmp_path: Path) -> None:
    sqlite = open_ledger(None, tmp_path, "USER:1")
    assert isinstance(sqlite, SqliteLedger)
    assert sqlite.path == ledger_path(tmp_path, "USER:1") == tmp_path / "ratelimit/USER_1.sqlite"
    assert isinstance(open_ledger("", tmp_path, "USER:1"), SqliteLedger)
    pg = open_ledger(postgres_dsn, tmp_path, "USER:1")
    assert isinstance(pg, PostgresLedger) and pg.ledger == "USER_1"  # the same name as the file
    with pytest.raises(ValueError, match=r"'mysql://u:\*\*\*@h/d': must be empty"):
        open_ledger("mysql://u:secret@h/d", tmp_path, "x")


def test_the_password_never_reaches_logs_errors_repr_or_metadata(
    postgres_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The test server trusts loopback, so the password is accepted and ignored: the URL is used.
    url = postgres_dsn.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []

    limits = RateLimits(per_second=2, per_minute=100, per_30_minutes=100)
    limiter = SharedRateLimiter(open_ledger(url, tmp_path, "USER1"), limits)
    for _ in range(3):
        limiter.acquire()
    limiter.pause(0.01, reason="429 from Upstox")
    shown += [repr(limiter), repr(limiter.ledger), json.dumps(limiter.snapshot())]
    shown.append(limiter.budget_wait(2).describe())
    assert limiter.snapshot()["ledger"] == "postgresql://postgres:***@" + url.split("@", 1)[1] + (
        "#USER1"
    )
    shown.append(repr(ClientSettings(ledger_url=url)))

    # Failures: a database that does not exist, a port nobody listens on, a password parameter.
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    bad_urls = [
        url.rsplit("/", 1)[0] + "/no_such_database",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x",
        f"postgresql://postgres@{host_port}/no_such_database?password={PASSWORD}",
    ]
    for bad in bad_urls:
        with pytest.raises(LedgerUnavailable) as info:
            open_ledger(bad, tmp_path, "USER1")
        error = info.value
        assert error.__cause__ is None and error.__context__ is None  # no driver error attached
        shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
    with pytest.raises(ValueError) as info:
        open_ledger(f"mysql://u:{PASSWORD}@h/d", tmp_path, "x")
    shown.append("".join(traceback.format_exception(info.value)))

    shown += [record.getMessage() for record in caplog.records]
    assert "no_such_database" in "\n".join(shown)  # the errors say what is wrong…
    for text in shown:
        assert PASSWORD not in text  # …and never the password
    assert mask_url(bad_urls[2]).endswith("password=***")


def test_a_password_in_the_settings_file_is_refused_and_the_variable_is_read_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from expirytrack_dagster.project_settings import load_settings
    from expirytrack_dagster.settings_errors import SettingsError

    env = {"EXPIRYTRACK_CONFIG": str(tmp_path / "absent.yaml")}
    secret_url = f"postgresql://ledger:{PASSWORD}@db.example/expirytrack"
    with pytest.raises(SettingsError) as info:
        load_settings({"upstox": {"ledger_url": secret_url}}, env=env)
    assert "upstox.ledger_url holds a password" in str(info.value)
    assert PASSWORD not in str(info.value)
    with pytest.raises(SettingsError, match="must be empty"):
        load_settings({"upstox": {"ledger_url": "sqlite:///x"}}, env=env)
    plain = load_settings({"upstox": {"ledger_url": "postgresql://ledger@db/x"}}, env=env)
    assert plain.upstox.client_settings().ledger_url == "postgresql://ledger@db/x"
    assert load_settings(env=env).upstox.client_settings().ledger_url is None  # SQLite default

    # From the environment the URL (password and all) stays an EnvVar in the configuration …
    monkeypatch.setenv("EXPIRYTRACK_LEDGER_URL", secret_url)
    settings = load_settings(env={**env, "EXPIRYTRACK_LEDGER_URL": secret_url})
    assert PASSWORD not in repr(settings.upstox) and PASSWORD not in repr(settings)
    # … and is read only when a client is made.
    client_settings = settings.upstox.client_settings()
    assert client_settings.ledger_url == secret_url
    assert PASSWORD not in repr(client_settings)


def test_a_grant_stopped_halfway_does_not_hold_the_ledger_for_ever(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_postgres, "IDLE_IN_GRANT_S", 1)
    stuck = PostgresLedger(postgres_dsn, "USER1")
    # As if its process stopped (SIGSTOP, a debugger) between taking the lock and committing.
    with stuck._conn.cursor() as cur:
        cur.execute("BEGIN; SELECT pg_advisory_xact_lock(%s)", (stuck._key,))
    limits = RateLimits(per_second=5, per_minute=100, per_30_minutes=100)
    # The server ends the idle session after a second, which frees the lock for everyone else.
    assert SharedRateLimiter(PostgresLedger(postgres_dsn, "USER1"), limits).try_acquire() == 0.0
    # The stopped one, resumed, finds its session gone, reconnects and goes on.
    assert SharedRateLimiter(stuck, limits).try_acquire() == 0.0
    assert SharedRateLimiter(stuck, limits).snapshot()["windows"][0]["count"] == 2
