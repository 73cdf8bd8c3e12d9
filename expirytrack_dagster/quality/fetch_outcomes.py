"""Fetch outcomes: every listed contract has a final outcome for every trading day, and its candles.

Data lost on the way in (a failed request, an outcome never recorded, an answer at an unverified
request span, candles fetched but not stored) is an ERROR: the rule reads the day grid of
contract_days.py.
"""

from __future__ import annotations

import pandas as pd

from expirytrack_dagster.quality._frames import KEY
from expirytrack_dagster.quality.result import Verdict, percent, top_rows
from expirytrack_dagster.quality.settings import QualitySettings


def check_fetch_outcomes(days: pd.DataFrame, settings: QualitySettings | None = None) -> Verdict:
    """ERROR when data was lost on the way in, or is not final.

    Counts (contract, day) slots with no recorded outcome (``missing_outcomes``), with a failed
    request (``failed``), answered at a request span not verified (``unconfirmed``: the API may
    have cut the answer short, so the day is asked again next run), and where the stored candles differ from the count the fetch recorded
    (``count_mismatches``: written partly, twice, or not at all). ``worst`` lists the affected
    contracts with their first error message; ``samples`` the failed and missing days.
    """
    settings = settings or QualitySettings()
    fetch = days["fetch_status"]
    failed = (fetch == "failed").to_numpy()
    missing = fetch.isna().to_numpy()
    unconfirmed = (fetch == "unconfirmed").to_numpy()
    answered = fetch.isin(("complete", "no_trades")).to_numpy()
    mismatch = answered & (
        days["fetched_candles"].fillna(-1).to_numpy() != days["stored_candles"].to_numpy()
    )
    flagged = days.assign(
        failed=failed, missing=missing, unconfirmed=unconfirmed, mismatch=mismatch
    )[failed | missing | unconfirmed | mismatch]
    counts = {
        "contracts": int(days[KEY].nunique()),
        "contract_days": len(days),
        "missing_outcomes": int(missing.sum()),
        "failed": int(failed.sum()),
        "unconfirmed": int(unconfirmed.sum()),
        "count_mismatches": int(mismatch.sum()),
        "contracts_affected": int(flagged[KEY].nunique()),
    }
    worst = samples = None
    if not flagged.empty:
        per_contract = (
            flagged.groupby(KEY, sort=False)
            .agg(
                trading_symbol=("trading_symbol", "first"),
                failed_days=("failed", "sum"),
                missing_days=("missing", "sum"),
                unconfirmed_days=("unconfirmed", "sum"),
                mismatched_days=("mismatch", "sum"),
                first_error=("error", "first"),
            )
            .reset_index()
        )
        per_contract["lost_days"] = per_contract[
            ["failed_days", "missing_days", "unconfirmed_days", "mismatched_days"]
        ].sum(axis=1)
        worst = top_rows(
            per_contract.sort_values(["lost_days", KEY], ascending=[False, True], kind="stable"),
            settings.worst_contracts,
        )
        samples = top_rows(
            flagged[
                [KEY, "trading_date", "fetch_status", "error", "fetched_candles", "stored_candles"]
            ],
            settings.sample_rows,
        )
    lost = (
        counts["missing_outcomes"]
        + counts["failed"]
        + counts["unconfirmed"]
        + counts["count_mismatches"]
    )
    return Verdict(
        passed=lost == 0,
        description="every listed contract has a final fetch outcome (asked at a verified "
        "request span) for every trading day, and the stored candles match what was fetched",
        counts=counts,
        metrics={"lost_contract_days_pct": percent(lost, len(days))},
        worst=worst,
        samples=samples,
    )
