"""The ``research:`` settings (roll rule, rate, buckets, staleness): defaults and one-line errors."""

from __future__ import annotations

import pytest

from expirytrack_dagster.project_settings import load_settings
from expirytrack_dagster.research.continuous import RollRule
from expirytrack_dagster.research.settings import ResearchSettings, research_settings
from expirytrack_dagster.settings_errors import SettingsError

SOURCE = "data/expirytrack.yaml"


def test_defaults_reach_the_project_settings() -> None:
    research = load_settings({}, env={}).research
    assert isinstance(research, ResearchSettings)
    assert (research.rate, research.bucket_minutes, research.max_age_minutes) == (0.065, 15, 5)
    assert research.roll == RollRule(sessions_before=0)
    assert research.roll.describe() == "on_expiry"


def test_the_section_sets_each_value_and_the_roll_rule() -> None:
    research = research_settings(
        {
            "research": {
                "rate": 0.07,
                "bucket_minutes": 5,
                "max_age_minutes": 2,
                "roll": {"sessions_before": 2},
            }
        },
        SOURCE,
    )
    assert (research.rate, research.bucket_minutes, research.max_age_minutes) == (0.07, 5, 2)
    assert research.roll == RollRule(sessions_before=2)
    assert research_settings({"research": {"roll": "on_expiry"}}, SOURCE).roll == RollRule()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"rol": "on_expiry"}, "unknown key 'research.rol' (did you mean 'roll'?)"),
        ({"roll": "weekly"}, "research.roll = 'weekly': must be on_expiry or {sessions_before: N}"),
        ({"roll": {"sessions_before": -1}}, "research.roll = {'sessions_before': -1}"),
        ({"rate": 6.5}, "research.rate = 6.5: must be an annual rate between -0.05 and 0.5"),
        ({"bucket_minutes": 0}, "research.bucket_minutes = 0: must be a whole number of minutes"),
        ({"max_age_minutes": -1}, "research.max_age_minutes = -1: must be a whole number >= 0"),
        ({"roll_sessions_before": 1}, "unknown key 'research.roll_sessions_before'"),
    ],
)
def test_a_wrong_value_is_one_line_naming_file_key_value_and_what_is_allowed(
    section: dict, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        research_settings({"research": section}, SOURCE)
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(SOURCE) and message in text
