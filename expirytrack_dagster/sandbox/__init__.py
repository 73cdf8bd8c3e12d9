"""The Upstox sandbox: a simulator of the expired-instruments API, served over HTTP/2 on loopback.

Its data is synthetic (deterministic from a seed) and labelled so: every response carries
``X-Sandbox: synthetic``. Start one with ``run_sandbox(SandboxConfig(...))``. It can play each
answer to a too-long candle request (``SandboxConfig.range_behaviour``, ``Sandbox.set_range``)
and gives the ground truth a collection must reach (``Sandbox.truth_candles``), computed from
its market model without any of the client's code.
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
from expirytrack_dagster.sandbox.ranges import ANY_SPAN_DAYS, RANGE_BEHAVIOURS, RangePolicy
from expirytrack_dagster.sandbox.server import Sandbox, run_sandbox
from expirytrack_dagster.sandbox.truth import TRUTH_COLUMNS

__all__ = [
    "ANY_SPAN_DAYS",
    "CORRUPTION_KINDS",
    "DEFAULT_MAX_SPAN_DAYS",
    "DEFAULT_PROFILES",
    "FAULT_KINDS",
    "RANGE_BEHAVIOURS",
    "TRUTH_COLUMNS",
    "ExpiryEra",
    "FaultConfig",
    "RangePolicy",
    "Sandbox",
    "SandboxConfig",
    "SyntheticMarket",
    "UnderlyingProfile",
    "UnknownInstrument",
    "generic_profile",
    "run_sandbox",
]
