"""The collection loop against the sandbox, without Dagster: spans that change, old landed files,
unconfirmed days, duplicate and conflicting candles — always judged against ground truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expirytrack_dagster.collection import (
    CollectionReport,
    ContractToFetch,
    collect_candles,
    fetch_status,
)
from expirytrack_dagster.sandbox import FaultConfig, Sandbox, run_sandbox
from expirytrack_dagster.sandbox.inprocess import transport_for
from expirytrack_dagster.storage.landing import CANDLE_FILE_COLUMNS, CandleLanding
from expirytrack_dagster.upstox.client import ClientSettings, UpstoxClient
from expirytrack_dagster.upstox.resilience import RetryPolicy
from expirytrack_dagster.upstox.spans import SpanMemory
from expirytrack_dagster_tests.collection.conftest import MONTHLY, TINY, TINY_KEY, TODAY
from expirytrack_dagster_tests.pipeline import sandbox_config

WINDOW = (date(2025, 5, 28), MONTHLY)
JULY = date(2025, 7, 31)
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume", "open_interest"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    config = sandbox_config(seed=4, today=TODAY, extra_profiles=(TINY,))
    with run_sandbox(config, in_process=True) as sb:
        yield sb


def contracts(sb: Sandbox, expiry: date, types: tuple[str, ...] = ("CE", "PE", "FUT")):
    return [
        ContractToFetch(c["instrument_key"], c["instrument_type"])
        for c in sb.market.contracts(TINY_KEY, expiry)
        if c["instrument_type"] in types
    ]


def collect(
    sb: Sandbox,
    root: Path,
    expiry: date,
    todo: list[ContractToFetch],
    *,
    window: tuple[date, date] | None = None,
    underlying: str | None = TINY_KEY,
) -> tuple[CollectionReport, CandleLanding]:
    window = window or ((pd.Timestamp(expiry) - pd.DateOffset(months=3)).date(), expiry)
    landing = CandleLanding(root / "landing", "1minute")
    settings = ClientSettings(
        state_dir=root / "state",
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.01),
    )

    async def go() -> CollectionReport:
        transport = transport_for(sb.base_url)
        async with UpstoxClient(
            sb.base_url, sb.access_token, settings, transport=transport
        ) as client:
            return await collect_candles(
                client, landing, f"TINY_{expiry}", todo, *window, underlying_key=underlying
            )

    return asyncio.run(go()), landing


def landed_frame(landing: CandleLanding, expiry: date, window: tuple[date, date]) -> pd.DataFrame:
    files = landing.files(f"TINY_{expiry}")
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Asia/Kolkata")
    return frame.sort_values(["expired_instrument_key", "timestamp"]).reset_index(drop=True)


def assert_truth(sb: Sandbox, landing: CandleLanding, expiry: date, window) -> None:
    truth = sb.truth_candles("TINY", expiry, "1minute", *window)
    got = landed_frame(landing, expiry, window)
    assert not got.duplicated(["expired_instrument_key", "timestamp"]).any()
    pd.testing.assert_frame_equal(
        got[["expired_instrument_key", *COLUMNS]].reset_index(drop=True),
        truth[["expired_instrument_key", *COLUMNS]].reset_index(drop=True),
        check_dtype=False,
    )


def statuses(landing: CandleLanding, expiry: date, todo, window) -> dict[str, int]:
    status, _ = fetch_status(
        landing, f"TINY_{expiry}", [c.expired_instrument_key for c in todo], *window
    )
    return status["status"].value_counts().to_dict()


@pytest.mark.parametrize("behaviour", ["keep_recent", "keep_earliest", "error"])
def test_an_api_that_narrows_after_a_span_was_verified_is_caught(
    sandbox: Sandbox, tmp_path: Path, behaviour: str
) -> None:
    sandbox.set_range(3650, "error")
    july = contracts(sandbox, JULY)
    report, _ = collect(sandbox, tmp_path, JULY, july)
    assert report.span_verified and report.minimum_requests == len(july)  # one request each
    sandbox.set_range(20, behaviour)
    todo = contracts(sandbox, MONTHLY)
    report, landing = collect(sandbox, tmp_path, MONTHLY, todo)
    assert report.span_verified and report.span_days <= 20
    assert report.events, "the change must be reported"
    assert_truth(sandbox, landing, MONTHLY, WINDOW)
    assert set(statuses(landing, MONTHLY, todo, WINDOW)) <= {"complete", "no_trades"}
    facts = SpanMemory(tmp_path / "state" / "request_spans.sqlite").facts(
        sandbox.base_url.split("//")[1], "1minute"
    )
    assert facts.bad_days is not None and facts.bad_days <= 93 and facts.verified <= 20


def test_days_asked_at_an_unverified_span_are_unconfirmed_then_confirmed_without_a_request(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    options = contracts(sandbox, MONTHLY, ("CE", "PE"))
    # No future and no underlying to borrow one from: nothing can prove a span.
    report, landing = collect(sandbox, tmp_path, MONTHLY, options, underlying=None)
    assert not report.span_verified and report.events
    assert set(statuses(landing, MONTHLY, options, WINDOW)) == {"unconfirmed"}
    # With the underlying known, a future proves the span the days were asked at: no refetch.
    report, landing = collect(sandbox, tmp_path, MONTHLY, options)
    assert report.span_verified and report.promoted_days > 0
    assert report.fetched == []  # no option was asked for again
    assert set(statuses(landing, MONTHLY, options, WINDOW)) <= {"complete", "no_trades"}
    assert_truth_options(sandbox, landing)


def assert_truth_options(sb: Sandbox, landing: CandleLanding) -> None:
    truth = sb.truth_candles("TINY", MONTHLY, "1minute", *WINDOW)
    truth = truth[
        ~truth["expired_instrument_key"].isin(
            [c.expired_instrument_key for c in contracts(sb, MONTHLY, ("FUT",))]
        )
    ]
    got = landed_frame(landing, MONTHLY, WINDOW)
    assert len(got) == len(truth) > 0


def _write_version_1(landing: CandleLanding, key: str, candles: pd.DataFrame) -> None:
    """A contract as the landing zone wrote it before spans were verified (no day records)."""
    partition = f"TINY_{MONTHLY}"
    frame = candles.assign(partition_key=partition, expired_instrument_key=key, interval="1minute")[
        list(CANDLE_FILE_COLUMNS)
    ]
    outcome = {
        "expired_instrument_key": key,
        "from_date": WINDOW[0].isoformat(),
        "to_date": WINDOW[1].isoformat(),
        "candle_count": len(frame),
        "fetched_at": "2025-09-01T10:00:00+00:00",
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        {**table.schema.metadata, b"expirytrack.outcome": json.dumps(outcome).encode()}
    )
    path = landing.partition_dir(partition) / (key.replace("|", "__") + ".parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.mark.parametrize(("limit", "refetched"), [(3650, False), (20, True)])
def test_files_landed_before_verified_spans_are_rechecked(
    sandbox: Sandbox, tmp_path: Path, limit: int, refetched: bool
) -> None:
    """The old client lost the head of every long window at a keep-most-recent API and recorded
    the lost days as no trades. Its files are re-checked: kept (no request) when a span at
    least as long as the old one is verified, fetched again otherwise — and then complete."""
    sandbox.set_range(limit, "keep_recent")
    todo = contracts(sandbox, MONTHLY)
    landing = CandleLanding(tmp_path / "landing", "1minute")
    truth = sandbox.truth_candles("TINY", MONTHLY, "1minute", *WINDOW)
    cut_from = pd.Timestamp(MONTHLY - pd.Timedelta(days=19)).tz_localize("Asia/Kolkata")
    for contract in todo:
        mine = truth[truth["expired_instrument_key"] == contract.expired_instrument_key]
        if refetched:
            mine = mine[mine["timestamp"] >= cut_from]  # what a 20-day keep-recent API served
        doubled = pd.concat([mine, mine.iloc[:1]])  # and an old duplicate
        _write_version_1(landing, contract.expired_instrument_key, doubled[COLUMNS])
    report, landing = collect(sandbox, tmp_path, MONTHLY, todo, window=WINDOW)
    assert report.rechecked_contracts == len(todo)
    if refetched:
        assert report.window_requests >= len(todo)
    else:
        assert report.window_requests == 0 and report.promoted_days > 0
    assert_truth(sandbox, landing, MONTHLY, WINDOW)


def test_duplicates_are_collapsed_and_conflicts_fail_only_their_day(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    todo = contracts(sandbox, MONTHLY)
    options = [c.expired_instrument_key for c in todo if c.instrument_type != "FUT"]
    doubled, clashing = options[len(options) // 2], options[len(options) // 2 + 1]
    sandbox.set_range(3650, "error")
    sandbox.set_faults(FaultConfig(duplicate_keys={doubled}, conflict_keys={clashing}))
    report, landing = collect(sandbox, tmp_path, MONTHLY, todo, window=WINDOW)
    assert report.duplicates_collapsed >= 1
    assert report.conflict_days == 1
    assert clashing in report.failed and clashing in report.failed[clashing]
    status, _ = fetch_status(landing, f"TINY_{MONTHLY}", [clashing], *WINDOW)
    failed = status[status["status"] == "failed"]
    assert len(failed) == 1 and "+05:30" in failed["error"].iloc[0]

    sandbox.set_faults(FaultConfig())
    before = sandbox.stats()["by_kind"].get("candles", 0)
    report, landing = collect(sandbox, tmp_path, MONTHLY, todo, window=WINDOW)
    assert sandbox.stats()["by_kind"].get("candles", 0) - before == 1  # that one day, once
    assert_truth(sandbox, landing, MONTHLY, WINDOW)
