"""Links from Dagster to the explorer: each collected partition's metadata points at its pages.

The explorer serves on ``http://127.0.0.1:8050`` by default (``expirytrack explore``, and
``make dev`` beside the Dagster UI). Where it runs elsewhere (another port, a desk server), set
``EXPIRYTRACK_EXPLORER_URL`` in the environment of the Dagster processes. Nothing here imports the
explorer's web stack, so the collection works without the ``explorer`` extra installed.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode

from dagster import MetadataValue

from expirytrack_dagster.partitions import parse_partition_key

DEFAULT_PORT = 8050
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
URL_VARIABLE = "EXPIRYTRACK_EXPLORER_URL"

PAGES: dict[str, str] = {
    "explorer_chain": "chain",
    "explorer_oi": "oi",
    "explorer_tracker": "tracker",
}
"""Metadata key → explorer page, for each partition's underlying and expiry."""


def explorer_url() -> str:
    """Where the explorer serves: ``EXPIRYTRACK_EXPLORER_URL``, or the default on loopback."""
    return (os.environ.get(URL_VARIABLE) or DEFAULT_URL).rstrip("/")


def partition_links(partition_key: str) -> dict[str, MetadataValue]:
    """URL metadata for a partition (``NIFTY_2025-08-28``): its chain, OI analysis and tracker."""
    key = parse_partition_key(partition_key)
    query = urlencode({"underlying": key.symbol, "expiry": key.expiry.isoformat()})
    base = explorer_url()
    return {name: MetadataValue.url(f"{base}/{page}?{query}") for name, page in PAGES.items()}
