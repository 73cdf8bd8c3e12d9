"""Several Upstox accounts against the real sandbox over HTTP: one account per run, spread over the
accounts, each with its own rate windows, dead tokens skipped, names (never tokens) recorded."""

import asyncio
import base64
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox.stats import token_label
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.upstox.accounts import (
    ACCOUNT_TAG,
    AccountPool,
    AccountToken,
    Candidate,
    DagsterRuns,
    PooledClient,
    UpstoxAccount,
    listed_account_token,
)
from expirytrack_dagster.upstox.client import ClientSettings
from expirytrack_dagster.upstox.errors import TokenExpired
from expirytrack_dagster.upstox.limiter import RateLimits
from expirytrack_dagster_tests.pipeline import (
    SMALL_RELIANCE,
    STOCK_TODAY,
    Pipeline,
    pipeline,
    sandbox_config,
    with_reliance,
)

EXPIRIES = (date(2025, 6, 26), date(2025, 7, 31), date(2025, 8, 28))
TOKENS = {"default": "token-of-default-abc123", "b": "token-of-b-def456", "c": "token-of-c-ghi789"}
ACCOUNTS = [{"name": "b"}, {"name": "c"}]
NIFTY = "NSE_INDEX|Nifty 50"


def _one_month_of_futures() -> dict:
    """The collection a run of these tests makes: the subject is which account spends its
    requests, and the future alone spends some in every run (25 contracts would prove no more)."""
    return {"lookback_months": 1, "contract_types": ["FUT"], "underlyings": with_reliance()}


@pytest.fixture
def three_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sandbox served over TLS/HTTP/2 accepting three tokens; b's and c's in their variables."""
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN_B", TOKENS["b"])
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN_C", TOKENS["c"])
    config = sandbox_config(
        seed=21,
        today=STOCK_TODAY,
        extra_profiles=(SMALL_RELIANCE,),
        access_token=TOKENS["default"],
        extra_tokens=(TOKENS["b"], TOKENS["c"]),
    )
    with pipeline(tmp_path, config, served=True, **_one_month_of_futures()) as p:
        yield p


def _event_text(p: Pipeline, run_id: str) -> str:
    return "\n".join(str(e) for e in p.instance.all_logs(run_id))


def test_partitions_land_on_different_accounts_named_in_tags_and_metadata(
    three_accounts: Pipeline,
) -> None:
    p = three_accounts
    used = []
    for expiry in EXPIRIES:
        result = p.materialize(p.partition("RELIANCE", expiry), accounts=ACCOUNTS)
        assert result.success
        run = p.instance.get_run_by_id(result.run_id)
        meta = result.asset_materializations_for_node("candles")[0].metadata
        assert meta["upstox_account"].value == run.tags[ACCOUNT_TAG]
        used.append(run.tags[ACCOUNT_TAG])
        text = _event_text(p, result.run_id)
        assert f"Upstox account {run.tags[ACCOUNT_TAG]!r}" in text
        assert not any(token in text for token in TOKENS.values())
        assert not any(token in str(run.tags) + str(run.run_config) for token in TOKENS.values())
    # Each run went to the account with the most room left: all three accounts, one each.
    assert sorted(used) == ["b", "c", "default"]
    stats = p.sandbox.stats()
    assert stats["rate_limited"] == 0
    per_token = {name: stats["by_token"][token_label(t)]["ok"] for name, t in TOKENS.items()}
    assert all(count > 0 for count in per_token.values()), per_token  # every budget was spent


def test_windows_are_per_token_the_sum_may_exceed_one_accounts_limit(tmp_path: Path) -> None:
    """30 requests per 30 minutes per token: 3 accounts × 30 = 90 requests, no 429; a 31st on
    one token is refused by its own window while the others' are full too."""
    limit = 30
    config = SandboxConfig(
        per_second=50,
        per_minute=500,
        per_30_minutes=limit,
        access_token=TOKENS["default"],
        extra_tokens=(TOKENS["b"], TOKENS["c"]),
    )
    limits = RateLimits(per_30_minutes=limit)
    with run_sandbox(config) as sb:
        pool = AccountPool(tmp_path / "state", limits)
        settings = ClientSettings(
            ca_cert_path=sb.ca_cert_path, state_dir=tmp_path / "state", limits=limits
        )

        async def spend(name: str) -> int:
            account = AccountToken(name, TOKENS[name])
            async with PooledClient(sb.base_url, account, settings, pool) as client:
                await asyncio.gather(*(client.get_expiries(NIFTY) for _ in range(limit)))
                return client.stats.rate_limited

        async def all_accounts() -> list[int]:
            return await asyncio.gather(*(spend(name) for name in TOKENS))

        assert asyncio.run(all_accounts()) == [0, 0, 0]
        stats = sb.stats()
        assert stats["rate_limited"] == 0 and stats["by_status"] == {200: 3 * limit}
        for token in TOKENS.values():
            assert stats["by_token"][token_label(token)]["ok"] == limit
        # The window is real and per token: one more on b's token is refused with 429.
        with httpx.Client(verify=sb.ssl_context(), base_url=sb.base_url) as http:
            extra = http.get(
                "/v2/expired-instruments/expiries",
                params={"instrument_key": NIFTY},
                headers={"Authorization": f"Bearer {TOKENS['b']}"},
            )
        assert extra.status_code == 429
        # And the pool sees each ledger full: no room left on any account.
        assert [pool.room(AccountToken(n, t)) for n, t in TOKENS.items()] == [0, 0, 0]


def test_a_dead_token_fails_its_run_naming_the_account_and_is_skipped_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b's variable holds a token the sandbox refuses (401): the run that gets b fails naming
    'b' (never the token), b is marked dead, and every run after uses a live account."""
    dead = "token-the-sandbox-never-issued-xyz"
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN_B", dead)
    config = sandbox_config(
        seed=21, today=STOCK_TODAY, extra_profiles=(SMALL_RELIANCE,), access_token=TOKENS["default"]
    )
    with pipeline(tmp_path, config, served=True, **_one_month_of_futures()) as p:
        accounts = [{"name": "b"}]
        results = []
        for expiry in EXPIRIES:
            key = p.partition("RELIANCE", expiry)
            results.append(p.materialize(key, accounts=accounts, raise_on_error=False))
        runs = [p.instance.get_run_by_id(r.run_id) for r in results]
        failed = [(r, run) for r, run in zip(results, runs, strict=True) if not r.success]
        # b is chosen at most once: the first run on it fails, later ones skip it.
        assert len(failed) == 1
        result, run = failed[0]
        assert run.tags[ACCOUNT_TAG] == "b"
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = str(failure.event_specific_data)
        assert "Upstox account 'b'" in message and "marked dead" in message
        later = runs[runs.index(run) + 1 :]
        assert later and all(r.tags[ACCOUNT_TAG] == "default" for r in later)
        assert "'b': its token was refused: HTTP 401" in _event_text(p, later[0].run_id)
        for r in results:
            assert dead not in _event_text(p, r.run_id)
        assert (
            AccountPool(tmp_path / "state", RateLimits())
            .dead_reason(AccountToken("b", dead))
            .startswith("HTTP 401")
        )
        # A new token for b revives it: dead marks are per token, not per account.
        assert (
            AccountPool(tmp_path / "state", RateLimits()).dead_reason(
                AccountToken("b", "a-fresh-token")
            )
            is None
        )


def test_a_run_keeps_its_account_across_steps_and_skips_accounts_without_a_token(
    three_accounts: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later step of a run (another process, the same choice code) keeps the account the run's
    tag names, and moves on, re-tagging the run, once that token is dead; an account whose
    variable is unset is never chosen and is named with the variable to set."""
    p = three_accounts
    monkeypatch.delenv("UPSTOX_ACCESS_TOKEN_C")
    key = p.partition("RELIANCE", EXPIRIES[-1])
    result = p.materialize(key, accounts=ACCOUNTS)
    assert result.success
    account = p.instance.get_run_by_id(result.run_id).tags[ACCOUNT_TAG]
    assert account in ("default", "b")
    text = _event_text(p, result.run_id)
    assert "'c': no token: set UPSTOX_ACCESS_TOKEN_C" in text
    used = {t for t, s in p.sandbox.stats()["by_token"].items() if s["total"]}
    assert used == {token_label(TOKENS[account])}  # one budget for the whole partition

    upstox = p.upstox(accounts=ACCOUNTS)
    pool, runs = upstox.account_pool(), DagsterRuns(p.instance, result.run_id)
    # The other live account has more room now, yet the run's next step keeps its account.
    again = pool.choose(upstox.account_candidates(), runs, result.run_id)
    assert again.kept and again.name == account
    assert "(chosen earlier in this run)" in again.describe()
    pool.mark_dead(AccountToken(account, TOKENS[account]), "HTTP 401 UDAPI100050")
    moved = pool.choose(upstox.account_candidates(), runs, result.run_id)
    other = ({"default", "b"} - {account}).pop()
    assert moved.name == other and not moved.kept
    assert p.instance.get_run_by_id(result.run_id).tags[ACCOUNT_TAG] == other
    assert f"{account!r}: its token was refused: HTTP 401" in moved.describe()
    assert not any(token in moved.describe() for token in TOKENS.values())


def test_no_live_account_refuses_naming_each_without_requesting(tmp_path: Path) -> None:
    pool = AccountPool(tmp_path, RateLimits())
    pool.mark_dead(AccountToken("b", "tok-b"), "HTTP 401 UDAPI100050")
    candidates = [
        Candidate("default", None, "no Upstox access token is configured or stored"),
        Candidate("b", AccountToken("b", "tok-b")),
    ]
    with pytest.raises(TokenExpired) as caught:
        pool.choose(candidates)
    text = str(caught.value)
    assert "'default': no Upstox access token" in text and "'b': its token was refused" in text
    assert "tok-b" not in text


def test_accounts_setting_names_variables_never_tokens() -> None:
    settings = load_settings(
        {"upstox": {"accounts": ["desk-2", {"name": "desk3", "token_variable": "DESK3_TOKEN"}]}},
        env={},
    )
    desk2, desk3 = settings.upstox.accounts
    assert desk2.variable() == "UPSTOX_ACCESS_TOKEN_DESK_2"
    assert desk3.variable() == "DESK3_TOKEN"
    with pytest.raises(Exception, match="NAME of an environment variable, not a token"):
        load_settings({"upstox": {"accounts": [{"name": "x", "token_variable": "eyJ.a.b"}]}})
    with pytest.raises(Exception, match="always in the pool"):
        load_settings({"upstox": {"accounts": ["default"]}})
    with pytest.raises(Exception, match="unique"):
        load_settings({"upstox": {"accounts": ["a", "a"]}})


def _jwt(exp: datetime) -> str:
    def part(body: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(exp.timestamp())})}.c2ln"


def test_a_listed_accounts_token_passes_the_same_deadline_guard() -> None:
    account = UpstoxAccount(name="b")
    url, margin = "https://api.upstox.com", timedelta(minutes=30)
    with pytest.raises(TokenExpired, match="set UPSTOX_ACCESS_TOKEN_B"):
        listed_account_token(account, base_url=url, margin=margin, env={})
    expired = _jwt(datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(TokenExpired, match="environment variable UPSTOX_ACCESS_TOKEN_B") as caught:
        listed_account_token(
            account, base_url=url, margin=margin, env={account.variable(): expired}
        )
    assert expired not in str(caught.value)
    live = _jwt(datetime.now(UTC) + timedelta(hours=5))
    token = listed_account_token(
        account, base_url=url, margin=margin, env={account.variable(): live}
    )
    assert token.name == "b" and token.access_token == live and live not in repr(token)


def test_a_run_in_flight_counts_against_its_account_in_dagsters_run_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a run is going, Dagster's run records show it on its account: the next run's
    choice (fewest in flight first) goes to another account."""
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN_B", TOKENS["b"])
    seen: dict[str, Any] = {}

    @asset
    def probe(context: AssetExecutionContext, upstox: UpstoxApi) -> None:
        own = upstox.account_name
        runs = DagsterRuns(context.instance, "a-run-queued-after-this-one")
        seen["own"], seen["counts"] = own, runs.in_flight(["default", "b"])
        # What that next run's choice sees: this run on ``own``; it goes to the other account.
        book = _Peek(runs)
        seen["next"] = upstox.account_pool().choose(upstox.account_candidates(), book).name

    resource = SandboxResource(state_dir=str(tmp_path / "state"), accounts=[{"name": "b"}])
    with DagsterInstance.ephemeral() as instance:
        result = materialize([probe], instance=instance, resources={"upstox": resource})
        assert result.success
        tagged = instance.get_run_by_id(result.run_id).tags[ACCOUNT_TAG]
    assert seen["own"] == tagged
    assert seen["counts"] == {tagged: 1, ({"default", "b"} - {tagged}).pop(): 0}
    assert seen["next"] != tagged


class _Peek:
    """Dagster's run records as a run not yet tagged sees them, without tagging anything."""

    def __init__(self, runs: DagsterRuns) -> None:
        self.runs = runs

    def pinned(self) -> str | None:
        return None

    def in_flight(self, names: Sequence[str]) -> dict[str, int]:
        return self.runs.in_flight(names)

    def record(self, name: str) -> None:
        return None


def test_the_pool_reads_each_accounts_room_from_the_shared_postgres_ledger(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """With ``upstox.ledger_url`` the accounts' room comes from the same Postgres ledger the
    clients of every machine write."""
    limits = RateLimits(per_30_minutes=30)
    config = SandboxConfig(access_token=TOKENS["default"], extra_tokens=(TOKENS["b"],))
    with run_sandbox(config) as sb:
        settings = ClientSettings(
            ca_cert_path=sb.ca_cert_path,
            state_dir=tmp_path / "state",
            limits=limits,
            ledger_url=postgres_dsn,
        )
        pool = AccountPool(tmp_path / "state", limits, postgres_dsn)
        account = AccountToken("b", TOKENS["b"])

        async def spend() -> None:
            async with PooledClient(sb.base_url, account, settings, pool) as client:
                await asyncio.gather(*(client.get_expiries(NIFTY) for _ in range(5)))

        asyncio.run(spend())
    assert pool.room(account) == 25
    assert pool.room(AccountToken("default", TOKENS["default"])) == 30
    assert AccountPool(tmp_path / "state", limits).room(account) == 30  # SQLite: another ledger
