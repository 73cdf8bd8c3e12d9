"""The ``contracts`` asset: every CE, PE and FUT of the partition's expiry, with full metadata."""

import dataclasses
from datetime import date

import pandas as pd
from dagster import AssetExecutionContext, Failure

from expirytrack_dagster.assets.partitioned import expiry_asset
from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.partitions import parse_partition_key
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.upstream import require_upstream_row
from expirytrack_dagster.upstox.models import Contract

CONTRACT_COLUMNS = [f.name for f in dataclasses.fields(Contract)]


async def _fetch_contracts(
    upstox: UpstoxApi, instrument_key: str, expiry: date, types: list[str]
) -> tuple[list[Contract], dict]:
    async with upstox.client() as client:
        found: list[Contract] = []
        if "CE" in types or "PE" in types:
            found += await client.get_option_contracts(instrument_key, expiry)
        if "FUT" in types:
            found += await client.get_future_contracts(instrument_key, expiry)
        return found, client.stats.as_metadata()


def contracts_frame(partition_key: str, contracts: list[Contract]) -> pd.DataFrame:
    """Contracts as rows of the ``contracts`` table, sorted by type and strike."""
    frame = pd.DataFrame([dataclasses.asdict(c) for c in contracts], columns=CONTRACT_COLUMNS)
    frame.insert(0, "partition_key", partition_key)
    frame["strike_price"] = frame["strike_price"].astype("float64")
    frame["weekly"] = frame["weekly"].astype("boolean")
    for column in ("freeze_quantity", "minimum_lot"):
        frame[column] = frame[column].astype("Int64")
    order = frame["instrument_type"].map({"FUT": 0, "CE": 1, "PE": 2})
    return (
        frame.assign(_order=order)
        .sort_values(["_order", "strike_price", "expired_instrument_key"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


@expiry_asset(deps=["expiries"])
def contracts(
    context: AssetExecutionContext, upstox: UpstoxApi, collection: CollectionSettings
) -> pd.DataFrame:
    """Every expired option and future of the expiry (only the configured contract types).

    A weekly expiry has no future: that is a real, empty answer and not an error. An expiry with
    no contracts at all fails the step and keeps what is stored.
    """
    partition = parse_partition_key(context.partition_key)
    require_upstream_row(collection.database, "expiries", context.partition_key, "contracts")
    underlying = collection.underlying(partition.symbol)
    found, stats = run_async(
        _fetch_contracts(
            upstox, underlying.instrument_key, partition.expiry, collection.contract_types
        )
    )
    found = [c for c in found if c.instrument_type in collection.contract_types]
    if not found:
        raise Failure(
            description=(
                f"Upstox listed no {'/'.join(collection.contract_types)} contracts for "
                f"{partition.symbol} {partition.expiry}; stored contracts are unchanged."
            )
        )
    mismatched = sorted({str(c.expiry) for c in found if c.expiry != partition.expiry})
    if mismatched:
        context.log.warning(f"contracts with another expiry than the partition's: {mismatched}")
    frame = contracts_frame(context.partition_key, found)
    counts = frame["instrument_type"].value_counts().to_dict()
    context.add_output_metadata(
        {
            "data_source": upstox.describe_source(),
            "options": int(counts.get("CE", 0) + counts.get("PE", 0)),
            "futures": int(counts.get("FUT", 0)),
            "strikes": int(frame["strike_price"].nunique()),
            "api_requests": stats["api_requests"],
        }
    )
    return frame
