"""The research tests' collected sandbox partition, reused by the explorer tests."""

from expirytrack_dagster_tests.research.conftest import EXPIRY, Collected, collected

__all__ = ["EXPIRY", "Collected", "collected"]
