"""The ``expiries`` asset: the partition's expiry record, confirmed against the Upstox expiry list."""

from datetime import UTC, date, datetime

import pandas as pd
from dagster import AssetExecutionContext, Failure, MetadataValue

from expirytrack_dagster.assets.partitioned import expiry_asset
from expirytrack_dagster.async_runner import run_async
from expirytrack_dagster.partitions import parse_partition_key
from expirytrack_dagster.resources import UpstoxApi
from expirytrack_dagster.settings import CollectionSettings


async def _expiry_facts(
    upstox: UpstoxApi, instrument_key: str, expiry: date
) -> tuple[list[date], bool, dict]:
    """The underlying's listed expiries, and whether ``expiry`` has a future (monthly)."""
    async with upstox.client() as client:
        listed = await client.get_expiries(instrument_key)
        has_future = False
        if expiry in listed:
            has_future = bool(await client.get_future_contracts(instrument_key, expiry))
        return listed, has_future, client.stats.as_metadata()


@expiry_asset()
def expiries(
    context: AssetExecutionContext, upstox: UpstoxApi, collection: CollectionSettings
) -> pd.DataFrame:
    """One row per partition: underlying, expiry date, monthly or weekly, and the data source.

    Monthly means Upstox lists a future for the expiry: weekly expiries have none. (The last
    listed expiry of a month is not a safe test: in the current month the monthly expiry may
    not have happened yet.)

    Fails, keeping what is stored, when Upstox does not list the partition's date as an expiry of
    the underlying (a typo in a partition key, or an expiry that has aged out of Upstox's list).
    """
    partition = parse_partition_key(context.partition_key)
    underlying = collection.underlying(partition.symbol)
    listed, is_monthly, stats = run_async(
        _expiry_facts(upstox, underlying.instrument_key, partition.expiry)
    )
    if partition.expiry not in listed:
        window = f"{listed[0]} … {listed[-1]}" if listed else "nothing"
        raise Failure(
            description=(
                f"Upstox does not list {partition.expiry} as an expiry of {partition.symbol} "
                f"({underlying.instrument_key}); it lists {window}. Stored data is unchanged."
            )
        )
    context.add_output_metadata(
        {
            "data_source": upstox.describe_source(),
            "is_monthly": is_monthly,
            "listed_expiries": len(listed),
            **{k: v for k, v in stats.items() if isinstance(v, int | float)},
            "api_requests_by_kind": MetadataValue.json(stats["api_requests_by_kind"]),
        }
    )
    return pd.DataFrame(
        {
            "partition_key": [context.partition_key],
            "underlying_symbol": [partition.symbol],
            "underlying_key": [underlying.instrument_key],
            "expiry": [partition.expiry],
            "is_monthly": [is_monthly],
            "data_source": [upstox.resolved_source()],
            "checked_at": [pd.Timestamp(datetime.now(UTC))],
        }
    )
