"""Years to expiry: ACT/365 to the close of the expiry session."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from expirytrack_dagster.research.expiry_time import years_to_expiry
from expirytrack_dagster_tests.research.frames import ist


def test_seconds_to_the_expiry_close_over_365_days() -> None:
    stamps = pd.Series([ist("2025-08-28 15:29"), ist("2025-08-27 15:30"), ist("2025-08-28 15:30")])
    got = years_to_expiry(stamps, date(2025, 8, 28))
    assert got[0] == pytest.approx(60 / (365 * 86400))
    assert got[1] == pytest.approx(1 / 365)
    assert got[2] == 0.0


def test_a_special_session_closes_when_it_closes() -> None:
    # Muhurat trading of 21 Oct 2025 ran 13:45-14:45.
    got = years_to_expiry(pd.Series([ist("2025-10-21 13:45")]), date(2025, 10, 21))
    assert got[0] == pytest.approx(3600 / (365 * 86400))


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        years_to_expiry(pd.Series([pd.Timestamp("2025-08-28 10:00")]), date(2025, 8, 28))


def test_any_timestamp_resolution() -> None:
    stamps = pd.Series([ist("2025-08-27 15:30"), pd.NaT]).astype("datetime64[us, Asia/Kolkata]")
    got = years_to_expiry(stamps, date(2025, 8, 28))
    assert got[0] == pytest.approx(1 / 365) and np.isnan(got[1])
