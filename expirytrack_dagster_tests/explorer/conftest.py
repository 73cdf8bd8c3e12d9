"""The research tests' collected sandbox partition and the live tests' captured session, reused
by the explorer tests."""

from expirytrack_dagster_tests.live.conftest import live_dir
from expirytrack_dagster_tests.research.conftest import EXPIRY, Collected, collected

__all__ = ["EXPIRY", "Collected", "collected", "live_dir"]
