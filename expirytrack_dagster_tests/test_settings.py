"""Every setting is checked when the definitions load: one line naming the key, value and choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from expirytrack_dagster.definitions import build_definitions
from expirytrack_dagster.instruments import load_user_config
from expirytrack_dagster.settings import SettingsError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a settings file, point EXPIRYTRACK_CONFIG at it, load the definitions from it."""
    path = tmp_path / "expirytrack.yaml"
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    for var in ("EXPIRYTRACK_SOURCE", "EXPIRYTRACK_TIME_SCALE", "EXPIRYTRACK_DATABASE"):
        monkeypatch.delenv(var, raising=False)

    def load(text: str) -> str:
        path.write_text(text)
        with pytest.raises(SettingsError) as caught:
            build_definitions()
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: ")
        return message.removeprefix(f"{path}: ")

    return load


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "colection:\n  interval: 5minute\n",
            "unknown key 'colection' (did you mean 'collection'?); "
            "allowed: underlyings, collection, upstox",
        ),
        (
            "collection:\n  intervall: 5minute\n",
            "unknown key 'collection.intervall' (did you mean 'interval'?); allowed: interval, ",
        ),
        (
            "upstox:\n  per_30_minute: 1000\n",
            "unknown key 'upstox.per_30_minute' (did you mean 'per_30_minutes'?); allowed: ",
        ),
        (
            'underlyings:\n  - symbol: TCS\n    instrumentkey: "NSE_EQ|INE467B01029"\n',
            "unknown key 'underlyings[0].instrumentkey' (did you mean 'instrument_key'?)",
        ),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_name(settings_file, text, expected) -> None:
    assert settings_file(text).startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "collection:\n  lookback_months: -1\n",
            "collection.lookback_months = -1: must be a whole number >= 0",
        ),
        (
            "collection:\n  interval: 2minute\n",
            "collection.interval = '2minute': must be one of 1minute, 3minute, 5minute, "
            "15minute, 30minute, day",
        ),
        (
            "collection:\n  lookback_months: three\n",
            "collection.lookback_months = 'three': Input should be a valid integer",
        ),
        (
            "collection:\n  contract_types: [CE, XX]\n",
            "collection.contract_types = ['CE', 'XX']: must be a non-empty list of CE, PE, FUT",
        ),
        (
            "collection:\n  max_in_flight: 0\n",
            "collection.max_in_flight = 0: must be a whole number >= 1",
        ),
        ("collection: 5\n", "collection = 5: must be a mapping of settings"),
        ("upstox:\n  per_second: 0\n", "upstox.per_second = 0: must be a positive int"),
        (
            "upstox:\n  source: nonsense\n",
            "upstox.source = 'nonsense': must be one of auto, upstox, sandbox",
        ),
        (
            "underlyings:\n  - symbol: tcs\n    instrument_key: x\n",
            "underlyings[0].symbol = 'tcs': ",
        ),
        (
            "underlyings:\n  - symbol: TCS\n",
            "underlyings[0] = {'symbol': 'TCS'}: needs both 'symbol' and 'instrument_key'",
        ),
        ("underlyings: RELIANCE\n", "underlyings = 'RELIANCE': must be a list"),
    ],
)
def test_values_that_are_not_allowed_name_key_value_and_choices(
    settings_file, text, expected
) -> None:
    assert settings_file(text).startswith(expected)


def test_bad_yaml_is_one_line_with_its_place(settings_file) -> None:
    message = settings_file("collection:\n  interval: [1minute\n  lookback_months: 3\n")
    assert message.startswith("not valid YAML: ")
    assert "at line 3" in message


def test_a_list_at_the_top_is_refused(settings_file) -> None:
    assert settings_file("- collection\n").startswith("expected a mapping of underlyings")


def test_a_valid_file_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "expirytrack.yaml"
    path.write_text(
        'underlyings:\n  - symbol: RELIANCE\n    instrument_key: "NSE_EQ|INE002A01018"\n'
        "collection:\n  interval: 5minute\n  lookback_months: 0\n"
        "upstox:\n  per_30_minutes: 1000\n  safety_margin: 0.05\n"
    )
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    monkeypatch.delenv("EXPIRYTRACK_SOURCE", raising=False)
    built = build_definitions()
    assert built.resources["collection"].lookback_months == 0
    assert built.resources["upstox"].per_30_minutes == 1000
    assert set(load_user_config()) == {"underlyings", "collection", "upstox"}


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "EXPIRYTRACK_SOURCE",
            "nonsense",
            "EXPIRYTRACK_SOURCE = 'nonsense': must be one of auto, upstox, sandbox",
        ),
        (
            "EXPIRYTRACK_TIME_SCALE",
            "fast",
            "EXPIRYTRACK_TIME_SCALE = 'fast': Input should be a valid number",
        ),
        ("EXPIRYTRACK_TIME_SCALE", "0", "EXPIRYTRACK_TIME_SCALE = 0.0: must be a number > 0"),
    ],
)
def test_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as caught:
        build_definitions()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_dagster_definitions_validate_fails_on_bad_settings(tmp_path: Path) -> None:
    """Dagster's own command, in its own process, stops on the one-line error: here a settings
    file (named by EXPIRYTRACK_CONFIG, so the environment reaches it too) with a misspelt key.
    Every other bad value goes through the same loader; the tests above name each in-process."""
    settings = tmp_path / "expirytrack.yaml"
    settings.write_text("collection:\n  intervall: 5minute\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EXPIRYTRACK_")},
        "DAGSTER_HOME": str(home),
        "EXPIRYTRACK_CONFIG": str(settings),
        "PYTHONPATH": str(REPO),
    }
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "expirytrack_dagster.definitions"],
        env=full_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown key 'collection.intervall'" in result.stdout + result.stderr


@pytest.mark.parametrize("argv", [["partitions", "NIFTY", "--missing"], ["backfill", "NIFTY"]])
def test_the_cli_answers_a_bad_setting_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, argv
) -> None:
    from expirytrack_dagster.cli import main

    path = tmp_path / "expirytrack.yaml"
    path.write_text("colection:\n  interval: 5minute\n")
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.endswith(
        f"{path}: unknown key 'colection' (did you mean 'collection'?); "
        "allowed: underlyings, collection, upstox, notifications, research, live"
    )


def test_the_environment_wins_over_the_file_and_the_file_over_the_defaults(
    tmp_path: Path,
) -> None:
    from expirytrack_dagster.project_settings import load_settings
    from expirytrack_dagster.upstox.limiter import RateLimits

    path = tmp_path / "expirytrack.yaml"
    path.write_text(
        "collection:\n  database: from-file.duckdb\n  landing_dir: file-landing\n"
        "upstox:\n  per_30_minutes: 1000\n  state_dir: file-state\n"
    )
    env = {
        "EXPIRYTRACK_CONFIG": str(path),
        "EXPIRYTRACK_DATABASE": "from-env.duckdb",
        "EXPIRYTRACK_STATE_DIR": "env-state",
    }
    settings = load_settings(env=env)
    assert settings.settings_file == path
    assert settings.collection.database == "from-env.duckdb"  # environment over file
    assert settings.collection.landing_dir == "file-landing"  # file over default
    assert settings.upstox.state_dir == "env-state"
    assert settings.upstox.per_30_minutes == 1000
    assert settings.upstox.per_second == RateLimits().per_second  # the client's own default
    assert "EXPIRYTRACK_DATABASE" not in os.environ  # a mapping, not this process's variables


def test_the_watched_underlyings_are_a_field_of_the_collection_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from expirytrack_dagster.project_settings import load_settings

    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(tmp_path / "absent.yaml"))
    settings = load_settings({"underlyings": [{"symbol": "RELIANCE", "instrument_key": "K"}]})
    collection = settings.collection
    assert collection.underlying("RELIANCE").instrument_key == "K"
    assert collection.underlying("NIFTY").instrument_key == "NSE_INDEX|Nifty 50"
    assert collection.watched() == settings.underlyings and len(settings.underlyings) == 8
    with pytest.raises(KeyError, match="add it under 'underlyings:'"):
        collection.underlying("TCS")
    # Resource configuration, so a run sees the list the definitions were loaded with.
    assert build_definitions(settings).resources["collection"].underlyings["RELIANCE"] == "K"


def test_underlyings_are_listed_at_the_top_not_under_collection(settings_file) -> None:
    message = settings_file("collection:\n  underlyings: {TCS: x}\n")
    assert message.startswith("unknown key 'collection.underlyings'")


def test_the_source_picks_the_resource_class(tmp_path: Path) -> None:
    from expirytrack_dagster.project_settings import load_settings
    from expirytrack_dagster.resources import UpstoxResource
    from expirytrack_dagster.sandbox_resource import SandboxResource

    env = {"EXPIRYTRACK_CONFIG": str(tmp_path / "absent.yaml"), "UPSTOX_ACCESS_TOKEN": "secret"}
    real = load_settings(env=env).upstox
    assert type(real) is UpstoxResource
    assert real.access_token != "secret"  # passed as EnvVar: read at run time, never stored
    # The file's sandbox keys are kept for when the source is the sandbox; the token is not its.
    config = {"upstox": {"sandbox_url": "https://127.0.0.1:1", "base_url": "https://x"}}
    sandbox = load_settings(config, env={**env, "EXPIRYTRACK_SOURCE": "sandbox"}).upstox
    assert type(sandbox) is SandboxResource
    assert sandbox.describe_source() == "Upstox sandbox (synthetic data) at https://127.0.0.1:1"
    assert sandbox.state_dir == "data/sandbox/state"


def test_a_research_section_in_the_settings_file_reaches_the_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "expirytrack.yaml"
    path.write_text("research:\n  rate: 0.07\n  roll: {sessions_before: 2}\n")
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    research = build_definitions().resources["research"]
    assert research.rate == 0.07 and research.roll_sessions_before == 2
    path.write_text("research:\n  roll: weekly\n")
    with pytest.raises(SettingsError, match=r"research\.roll = 'weekly': must be on_expiry"):
        build_definitions()


def test_a_live_section_in_the_settings_file_reaches_the_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "expirytrack.yaml"
    monkeypatch.setenv("EXPIRYTRACK_CONFIG", str(path))
    path.write_text(
        "underlyings:\n  - {symbol: RELIANCE, instrument_key: 'NSE_EQ|INE002A01018'}\n"
        "live:\n  underlyings: [NIFTY, RELIANCE]\n  expiries: [nearest, next_monthly]\n"
    )
    live = build_definitions().resources["live"]
    assert live.underlyings == ["NIFTY", "RELIANCE"] and live.expiries == [
        "nearest",
        "next_monthly",
    ]
    path.write_text("")  # no section: the defaults
    live = build_definitions().resources["live"]
    assert live.underlyings == ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"]
    assert live.expiries == ["nearest_weekly", "current_monthly"]
    for text, message in (
        ("live:\n  underlying: [NIFTY]\n", r"unknown key 'live\.underlying'"),
        ("live:\n  underlyings: [RELIANCE]\n", r"live\.underlyings: 'RELIANCE' is not one of"),
        ("live:\n  expiries: [weekly]\n", r"live\.expiries: 'weekly' is not one of the expiry"),
        ("live:\n  expiries: []\n", r"live\.expiries = \[\]: must be a non-empty list"),
    ):
        path.write_text(text)
        with pytest.raises(SettingsError, match=message):
            build_definitions()
