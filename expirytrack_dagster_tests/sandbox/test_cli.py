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

from expirytrack_dagster.sandbox.cli import build_parser, config_from_args

REPO = Path(__file__).resolve().parents[2]


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
            "truncate",
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
    assert config.range_behaviour == "truncate" and config.today == date(2025, 9, 20)
    assert config.access_token == "abc"
    assert [p.symbol for p in config.extra_profiles] == ["TCS"]


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
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "Stopping the sandbox" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
