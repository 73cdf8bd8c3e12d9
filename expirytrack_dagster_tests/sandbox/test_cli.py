"""The sandbox command line: a real process serving until interrupted, and its argument handling."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

from expirytrack_dagster.sandbox import DEFAULT_MAX_SPAN_DAYS
from expirytrack_dagster.sandbox.cli import build_parser, config_from_args

REPO = Path(__file__).resolve().parents[2]
INTRADAY = ("1minute", "3minute", "5minute", "15minute")


def test_arguments_become_a_config(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.json"
    profiles.write_text('[{"symbol": "TCS", "instrument_key": "NSE_EQ|INE467B01029"}]')
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--seed",
            "3",
            "--time-scale",
            "0.5",
            "--range-behaviour",
            "keep-earliest",
            "--max-span-days",
            "20",
            "--no-plus-plan",
            "--today",
            "2025-09-20",
            "--token",
            "abc",
            "--profiles",
            str(profiles),
        ]
    )
    config = config_from_args(args)
    assert (config.port, config.seed, config.time_scale) == (0, 3, 0.5)
    assert config.range_behaviour == "keep_earliest" and config.today == date(2025, 9, 20)
    assert config.max_span_days == {**DEFAULT_MAX_SPAN_DAYS, **dict.fromkeys(INTRADAY, 20)}
    assert config.access_token == "abc" and config.plus_plan is False
    assert [p.symbol for p in config.extra_profiles] == ["TCS"]


def test_range_flags_default_and_choices() -> None:
    parser = build_parser()
    config = config_from_args(parser.parse_args([]))
    assert config.range_behaviour == "error" and config.plus_plan is True
    assert config.max_span_days == dict(DEFAULT_MAX_SPAN_DAYS)
    recent = config_from_args(parser.parse_args(["--range-behaviour", "keep-recent"]))
    assert recent.range_behaviour == "keep_recent"
    for bad in (["--range-behaviour", "sometimes"], ["--max-span-days", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_top_level_cli_takes_the_range_flags() -> None:
    # `expirytrack sandbox` builds its parser from the same add_arguments.
    from expirytrack_dagster.cli import build_parser as top_level_parser

    args = top_level_parser().parse_args(
        ["sandbox", "--max-span-days", "3650", "--range-behaviour", "keep-recent"]
    )
    config = config_from_args(args)
    assert config.span_limit("1minute") == 3650 and config.span_limit("day") == 366
    assert config.range_behaviour == "keep_recent"


def test_module_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "expirytrack_dagster.sandbox",
            "--port",
            "0",
            "--today",
            "2025-09-20",
            "--max-span-days",
            "5",
            "--range-behaviour",
            "keep-earliest",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner: list[str] = []
        lines: dict[str, str] = {}
        assert process.stdout is not None
        for line in process.stdout:
            banner.append(line)
            if line.startswith("  ") and ":" in line:
                name, _, value = line.strip().partition(":")
                lines[name.strip()] = value.strip()
            if line.startswith("Serving until Ctrl-C"):
                break
        assert "SYNTHETIC" in banner[0], banner
        context = ssl.create_default_context(cafile=lines["CA cert"])
        with httpx.Client(http2=True, verify=context) as client:
            response = client.get(
                f"{lines['base URL']}/v2/expired-instruments/expiries",
                params={"instrument_key": "NSE_INDEX|Nifty 50"},
                headers={"Authorization": f"Bearer {lines['token']}"},
            )
            assert response.status_code == 200 and response.headers["x-sandbox"] == "synthetic"
            assert response.json()["data"][-1] <= "2025-09-20"
            # --max-span-days 5 --range-behaviour keep-earliest: a 28-day request keeps 1..5 Aug.
            future = client.get(
                f"{lines['base URL']}/v2/expired-instruments/future/contract",
                params={"instrument_key": "NSE_INDEX|Nifty 50", "expiry_date": "2025-08-28"},
                headers={"Authorization": f"Bearer {lines['token']}"},
            ).json()["data"][0]["instrument_key"]
            candles = client.get(
                f"{lines['base URL']}/v2/expired-instruments/historical-candle/"
                f"{future.replace('|', '%7C')}/1minute/2025-08-28/2025-08-01",
                headers={"Authorization": f"Bearer {lines['token']}"},
            )
        assert candles.status_code == 200
        days = sorted({row[0][:10] for row in candles.json()["data"]["candles"]})
        assert days == ["2025-08-01", "2025-08-04", "2025-08-05"]
        assert "longer: keep-earliest" in lines["ranges"]
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "Stopping the sandbox" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
