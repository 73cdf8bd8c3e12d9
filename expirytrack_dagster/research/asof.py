"""The option chain as of a minute: each contract's last candle of the same session, never carried.

Only minutes that traded have a candle, so "the chain at 10:30" is, per contract, the last candle at
or before 10:30 *of the session that contains 10:30*. A contract that last traded yesterday has no
price at 10:30 today (``close`` NaN), not yesterday's close.
"""

from __future__ import annotations

import pandas as pd

from expirytrack_dagster.calendar import IST, Session, session_for, sessions_between

CANDLE_COLUMNS = ("expired_instrument_key", "timestamp", "close", "volume", "open_interest")
"""Columns :func:`chain_asof` needs; ``open``, ``high``, ``low`` and any per-contract column
(``strike``, ``option_type``…) are carried when present."""

PRICE_COLUMNS = ("open", "high", "low", "close")


def session_at(at: pd.Timestamp) -> Session:
    """The session containing minute ``at`` (IST); ``ValueError`` on a closed day or outside hours."""
    at = to_ist(at)
    session = session_for(at.date())
    if session is None:
        raise ValueError(f"{at.date()} is not a trading day (weekend or exchange holiday)")
    if not session.open <= at < session.close:
        raise ValueError(
            f"{at:%Y-%m-%d %H:%M} is outside the session "
            f"({session.open:%H:%M}-{session.close:%H:%M} IST)"
        )
    return session


def previous_session(session: Session) -> Session | None:
    """The trading session before ``session`` (looking back up to 30 days), or None."""
    day = session.trading_date
    earlier = sessions_between(day - pd.Timedelta(days=30), day - pd.Timedelta(days=1))
    return earlier[-1] if earlier else None


def to_ist(at: pd.Timestamp | str) -> pd.Timestamp:
    """``at`` as a tz-aware IST timestamp (a naive one is read as IST)."""
    at = pd.Timestamp(at)
    return at.tz_localize(IST) if at.tzinfo is None else at.tz_convert(IST)


def chain_asof(candles: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Per contract, the state of the market at minute ``at``, from its own session only.

    Input ``candles``: one row per contract and traded minute, columns ``expired_instrument_key``,
    ``timestamp`` (tz-aware, candle start), ``close``, ``volume``, ``open_interest`` (optionally
    ``open``, ``high``, ``low`` and per-contract columns such as ``strike`` and ``option_type``,
    which are carried). Rows of other sessions are allowed (the previous one is used for
    ``prev_session_oi``; others are ignored).

    Output: one row per contract found in ``candles``, sorted by key, columns

    - ``expired_instrument_key`` and the carried per-contract columns;
    - ``timestamp``: start of the last candle at or before ``at`` in ``at``'s session (NaT if none);
    - ``open``/``high``/``low``/``close``: that candle's prices (NaN if none; ``close`` is the LTP);
    - ``age_minutes``: whole minutes from that candle to ``at`` (0 when it traded at ``at``);
    - ``session_volume``: volume summed over the session's candles up to and including ``at``;
    - ``oi``: open interest of that candle (the last known OI in the session; NaN if none);
    - ``prev_session_oi``: OI of the contract's last candle of the previous trading session;
    - ``oi_change``: ``oi − prev_session_oi`` (NaN when either is unknown).

    ``ValueError`` when ``at`` is not inside a trading session.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"chain_asof: candles lack columns {missing}")
    at = to_ist(at)
    session = session_at(at)
    key = "expired_instrument_key"
    stamps = pd.to_datetime(candles["timestamp"])
    extra = [c for c in candles.columns if c not in (*CANDLE_COLUMNS, "open", "high", "low")]
    contracts = (
        candles[[key, *extra]].drop_duplicates(key).sort_values(key).set_index(key)
        if extra
        else pd.DataFrame(index=pd.Index(sorted(candles[key].unique()), name=key))
    )
    now = candles[(stamps >= session.open) & (stamps <= at)].sort_values("timestamp")
    groups = now.groupby(key, sort=False)
    prices = [c for c in PRICE_COLUMNS if c in candles.columns]
    last = groups[["timestamp", *prices, "open_interest"]].last()
    out = contracts.join(last.rename(columns={"open_interest": "oi"}))
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).dt.tz_convert(IST)
    out["age_minutes"] = (at - out["timestamp"]).dt.total_seconds() // 60
    out["session_volume"] = groups["volume"].sum().reindex(out.index).fillna(0).astype("int64")
    before = previous_session(session)
    if before is None:
        out["prev_session_oi"] = float("nan")
    else:
        prior = candles[(stamps >= before.open) & (stamps < before.close)]
        prior = prior.sort_values("timestamp").groupby(key, sort=False)["open_interest"].last()
        out["prev_session_oi"] = prior.reindex(out.index).astype(float)
    out["oi"] = out["oi"].astype(float)
    out["oi_change"] = out["oi"] - out["prev_session_oi"]
    return out.reset_index()
