"""Which expiries of an underlying the live capture tracks: selectors over the current expiries."""

from __future__ import annotations

from collections.abc import Sequence

from expirytrack_dagster.upstox.live import CurrentExpiry

EXPIRY_SELECTORS: tuple[str, ...] = (
    "nearest",
    "next",
    "nearest_weekly",
    "current_monthly",
    "next_monthly",
)
"""``nearest``/``next``: the first/second current expiry; ``nearest_weekly``: the first weekly
one; ``current_monthly``/``next_monthly``: the first/second monthly one (the one with a future)."""

DEFAULT_SELECTORS: tuple[str, ...] = ("nearest_weekly", "current_monthly")


def tracked_expiries(
    current: Sequence[CurrentExpiry], selectors: Sequence[str] = DEFAULT_SELECTORS
) -> list[CurrentExpiry]:
    """The current expiries ``selectors`` pick, ascending, each once.

    A selector with nothing to pick (an underlying without weeklies has no ``nearest_weekly``)
    picks nothing; an unknown selector is a ``ValueError`` naming the allowed ones.
    """
    ordered = sorted(current, key=lambda e: e.expiry)
    weekly = [e for e in ordered if e.weekly]
    monthly = [e for e in ordered if not e.weekly]
    pools = {
        "nearest": ordered[:1],
        "next": ordered[1:2],
        "nearest_weekly": weekly[:1],
        "current_monthly": monthly[:1],
        "next_monthly": monthly[1:2],
    }
    picked: dict[object, CurrentExpiry] = {}
    for selector in selectors:
        if selector not in pools:
            raise ValueError(
                f"unknown expiry selector {selector!r}; use one of {', '.join(EXPIRY_SELECTORS)}"
            )
        for found in pools[selector]:
            picked[found.expiry] = found
    return sorted(picked.values(), key=lambda e: e.expiry)
