"""The Upstox sandbox: a simulator of the expired-instruments API, served over HTTP/2 on loopback.

Its data is synthetic (deterministic from a seed) and labelled so: every response carries
``X-Sandbox: synthetic``. Start one with ``run_sandbox(SandboxConfig(...))``.
"""

from expirytrack_dagster.sandbox.config import DEFAULT_MAX_SPAN_DAYS, SandboxConfig
from expirytrack_dagster.sandbox.faults import CORRUPTION_KINDS, FAULT_KINDS, FaultConfig
from expirytrack_dagster.sandbox.market import SyntheticMarket, UnknownInstrument
from expirytrack_dagster.sandbox.profiles import (
    DEFAULT_PROFILES,
    ExpiryEra,
    UnderlyingProfile,
    generic_profile,
)
from expirytrack_dagster.sandbox.server import Sandbox, run_sandbox

__all__ = [
    "CORRUPTION_KINDS",
    "DEFAULT_MAX_SPAN_DAYS",
    "DEFAULT_PROFILES",
    "FAULT_KINDS",
    "ExpiryEra",
    "FaultConfig",
    "Sandbox",
    "SandboxConfig",
    "SyntheticMarket",
    "UnderlyingProfile",
    "UnknownInstrument",
    "generic_profile",
    "run_sandbox",
]
