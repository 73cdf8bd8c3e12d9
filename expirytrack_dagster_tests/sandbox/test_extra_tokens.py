"""The sandbox accepts several tokens (one per simulated Upstox account), counted per token."""

import httpx
import pytest

from expirytrack_dagster.sandbox import SandboxConfig, run_sandbox
from expirytrack_dagster.sandbox.cli import build_parser, config_from_args
from expirytrack_dagster.sandbox.stats import token_label

EXPIRIES = "/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty%2050"


def test_extra_tokens_from_the_command_line() -> None:
    args = build_parser().parse_args(["--extra-token", "tok-b", "--extra-token", "tok-c"])
    assert config_from_args(args).extra_tokens == ("tok-b", "tok-c")
    assert config_from_args(build_parser().parse_args([])).extra_tokens == ()
    with pytest.raises(ValueError, match="non-empty"):
        SandboxConfig(extra_tokens=("",))


def test_each_token_is_accepted_and_counted_under_its_fingerprint_only() -> None:
    config = SandboxConfig(access_token="tok-a", extra_tokens=("tok-b",), per_minute=2)
    with run_sandbox(config) as sb, httpx.Client(verify=sb.ssl_context()) as http:
        statuses = {
            token: [
                http.get(
                    sb.base_url + EXPIRIES, headers={"Authorization": f"Bearer {token}"}
                ).status_code
                for _ in range(3)
            ]
            for token in ("tok-a", "tok-b", "tok-unknown")
        }
        stats = sb.stats()
    # Each known token has its own 2-per-minute window; an unknown one is refused with 401.
    assert statuses == {
        "tok-a": [200, 200, 429],
        "tok-b": [200, 200, 429],
        "tok-unknown": [401] * 3,
    }
    assert stats["by_token"][token_label("tok-a")] == {"total": 3, "ok": 2, "rate_limited": 1}
    assert stats["by_token"][token_label("tok-b")] == {"total": 3, "ok": 2, "rate_limited": 1}
    assert "tok-a" not in str(stats) and "tok-b" not in str(stats)
