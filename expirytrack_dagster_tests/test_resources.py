"""The two Upstox resources: one interface, the client's own defaults, the sandbox kept apart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from expirytrack_dagster.resources import UpstoxApi, UpstoxResource
from expirytrack_dagster.sandbox_resource import SandboxResource
from expirytrack_dagster.upstox.client import ClientSettings

REPO = Path(__file__).resolve().parents[1]


def test_embedded_sandbox_answers_in_process_outside_a_run(tmp_path: Path) -> None:
    resource = SandboxResource(state_dir=str(tmp_path / "state"))
    assert resource.describe_source() == "embedded Upstox sandbox (synthetic data)"

    async def expiries() -> list:
        async with resource.client() as client:
            return await client.get_expiries("NSE_INDEX|Nifty 50")

    listed = asyncio.run(expiries())
    assert listed == sorted(listed) and len(listed) > 20
    # Served without a socket: an address that never resolves, and no certificate to trust.
    assert resource.base_url.endswith(".sandbox.invalid")
    assert resource.client_settings().ca_cert_path is None
    resource.teardown_after_execution(None)  # stops the embedded sandbox
    assert resource.base_url == ""


def test_both_resources_share_one_interface_and_the_clients_defaults() -> None:
    real, sandbox = UpstoxResource(), SandboxResource()
    assert isinstance(real, UpstoxApi) and isinstance(sandbox, UpstoxApi)
    assert (real.resolved_source(), sandbox.resolved_source()) == ("upstox", "sandbox")
    # Every pacing, retry and timeout default is the client's own, written once.
    assert real.client_settings() == ClientSettings()
    assert sandbox.client_settings() == ClientSettings()


def test_each_resource_refuses_the_other_source() -> None:
    with pytest.raises(ValidationError, match="SandboxResource"):
        UpstoxResource(source="nonsense")
    with pytest.raises(ValidationError, match="UpstoxResource"):
        SandboxResource(source="upstox")
    assert UpstoxResource(source="auto").resolved_source() == "upstox"


WITHOUT_SANDBOX_EXTRA = """
import sys
for name in ("hypercorn", "starlette", "trustme"):
    sys.modules[name] = None  # as if the sandbox extra were not installed
from expirytrack_dagster.definitions import defs
from expirytrack_dagster.sandbox_resource import SandboxResource
print(defs.resources["upstox"].describe_source())
try:
    SandboxResource().client()
except ImportError as exc:
    print(exc)
from expirytrack_dagster.cli import main
print(main(["sandbox"]))
"""


def test_the_real_api_and_the_cli_need_no_sandbox_extra_and_the_sandbox_names_it(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX_EXTRA],
        cwd=tmp_path,
        env={"PATH": "", "PYTHONPATH": str(REPO), "EXPIRYTRACK_CONFIG": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    described, error, exit_code = result.stdout.strip().splitlines()
    hint = 'install the optional sandbox extra: pip install -e ".[sandbox]"'
    assert described == "Upstox API at https://api.upstox.com"
    assert error.endswith(hint)
    # The command works without the extra, and `expirytrack sandbox` says how to get it.
    assert exit_code == "2"
    assert result.stderr.strip().endswith(hint)
