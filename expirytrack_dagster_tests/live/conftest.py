"""The research tests' collected partition, for replaying the tracker from candles."""

from expirytrack_dagster_tests.research.conftest import collected

__all__ = ["collected"]
