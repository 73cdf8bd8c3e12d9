"""``expirytrack chain`` and ``expirytrack oi``: the option chain and the OI tracker at a minute.

Both read the collection database of the settings (``EXPIRYTRACK_SOURCE=sandbox`` reads the
sandbox's under ``data/sandbox/``), or ``--database PATH``. An unanswerable question (partition
not collected, a time outside the session, a non-trading day) is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported when a command runs: `expirytrack status` starts fast
    import pandas as pd


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _signed(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:+,.0f}"


def _percent(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * value:.2f}%"


def _around_atm(frame: pd.DataFrame, strikes: int | None) -> pd.DataFrame:
    """``strikes`` rows either side of the ATM row (all rows when None or no ATM)."""
    if strikes is None or not frame["is_atm"].any():
        return frame
    centre = int(frame.index[frame["is_atm"]][0])
    return frame.iloc[max(0, centre - strikes) : centre + strikes + 1]


CHAIN_SIDE = ("OI", "OI chg", "Volume", "IV", "LTP")


def format_chain(chain: pd.DataFrame, title: str, strikes: int | None = None) -> str:
    """The classic layout: CE columns | strike | PE columns mirrored; the ATM row marked ``>``."""
    a = chain.attrs
    lines = [
        f"{title}   forward {_number(a['forward'], 2)}   future {_number(a['future_price'], 2)}"
        f"   spot {_number(a['spot'], 2)}",
        f"ATM {_number(a['atm_strike'])}   ATM IV {_percent(a['atm_iv'])}   "
        f"PCR OI {_number(a['pcr_oi'], 2)}   PCR volume {_number(a['pcr_volume'], 2)}   "
        f"max pain {_number(a['max_pain'])}",
    ]
    widths = (11, 10, 11, 8, 10)
    ce_head = " ".join(f"{h:>{w}}" for h, w in zip(CHAIN_SIDE, widths, strict=True))
    pe_head = " ".join(f"{h:>{w}}" for h, w in zip(reversed(CHAIN_SIDE), widths[::-1], strict=True))
    ce_title, pe_title = "CALLS (CE)", "PUTS (PE)"
    lines.append(f"{ce_title:^{len(ce_head)}} | {'':^11} | {pe_title:^{len(pe_head)}}")
    lines.append(f"{ce_head} | {'Strike':^11} | {pe_head}")
    for _, row in _around_atm(chain, strikes).iterrows():
        ce = (
            _number(row["CE_oi"]),
            _signed(row["CE_oi_change"]),
            _number(row["CE_session_volume"]),
            _percent(row["CE_iv"]),
            _number(row["CE_ltp"], 2),
        )
        pe = (
            _number(row["PE_ltp"], 2),
            _percent(row["PE_iv"]),
            _number(row["PE_session_volume"]),
            _signed(row["PE_oi_change"]),
            _number(row["PE_oi"]),
        )
        strike = _number(row["strike"])
        mark = f"> {strike} <" if row["is_atm"] else strike
        left = " ".join(f"{v:>{w}}" for v, w in zip(ce, widths, strict=True))
        right = " ".join(f"{v:>{w}}" for v, w in zip(pe, widths[::-1], strict=True))
        lines.append(f"{left} | {mark:^11} | {right}")
    return "\n".join(line.rstrip() for line in lines)


def format_tracker(tracker: pd.DataFrame, title: str, windows: tuple[int, ...]) -> str:
    """One row per contract: OI, then per window the OI change and its percentage."""
    a = tracker.attrs
    lines = [
        f"{title}   forward {_number(a['forward'], 2)}   ATM {_number(a['atm_strike'])}",
        "OI change over the last N minutes (as of the minute, same session; - = not yet traded"
        " or before the open)",
    ]
    head = f"{'Strike':>9} {'Type':<5} {'OI':>12}" + "".join(
        f" {f'{w}m chg':>10} {f'{w}m %':>8}" for w in windows
    )
    lines.append(head)
    for _, row in tracker.iterrows():
        mark = "*" if row["is_atm"] else " "
        text = (
            f"{_number(row['strike']):>9} {row['option_type'] + mark:<5} {_number(row['oi']):>12}"
        )
        for w in windows:
            pct = row[f"oi_chg_pct_{w}m"]
            pct_text = "-" if not math.isfinite(pct) else f"{pct:+.2f}%"
            text += f" {_signed(row[f'oi_chg_{w}m']):>10} {pct_text:>8}"
        lines.append(text)
    lines.append("* ATM strike")
    return "\n".join(line.rstrip() for line in lines)


def _one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        from expirytrack_dagster.research.api import ResearchError
        from expirytrack_dagster.storage.database import DatabaseLocked

        try:
            return command(args)
        except (ResearchError, DatabaseLocked) as exc:
            print(f"expirytrack {args.command}: error: {exc}", file=sys.stderr)
            return 2

    return run


@_one_line_errors
def cmd_chain(args: argparse.Namespace) -> int:
    """Print the option chain at a minute."""
    from expirytrack_dagster.research.api import option_chain

    chain = option_chain(
        args.symbol,
        args.expiry,
        args.at,
        database=args.database,
        max_age_minutes=args.max_age,
    )
    title = f"{args.symbol.upper()} {args.expiry} at {chain.attrs['at']:%Y-%m-%d %H:%M} IST"
    print(format_chain(chain, title, args.strikes))
    return 0


@_one_line_errors
def cmd_oi(args: argparse.Namespace) -> int:
    """Print the OI tracker at a minute."""
    from expirytrack_dagster.research.api import oi_tracker

    windows = (3, 5, 10, 15, 30)
    tracker = oi_tracker(
        args.symbol,
        args.expiry,
        args.at,
        windows,
        args.strikes,
        database=args.database,
        max_age_minutes=args.max_age,
    )
    title = f"{args.symbol.upper()} {args.expiry} at {tracker.attrs['at']:%Y-%m-%d %H:%M} IST"
    print(format_tracker(tracker, title, windows))
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("symbol", help="underlying, e.g. NIFTY")
    sub.add_argument("expiry", help="expiry date of the partition, YYYY-MM-DD")
    sub.add_argument("--at", required=True, help='the minute, IST, e.g. "2025-08-14 10:30"')
    sub.add_argument(
        "--max-age",
        type=_count,
        default=5,
        help="minutes after which a leg's last trade is too old for the forward and IV",
    )
    sub.add_argument(
        "--database", default=None, help="DuckDB file (default: the settings' database)"
    )


def add_research_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``expirytrack chain`` and ``expirytrack oi``."""
    chain = commands.add_parser(
        "chain",
        help="print the option chain of a collected partition at a minute",
        description="The option chain as of a minute: per strike, CE and PE OI, OI change, "
        "volume, IV and LTP; the ATM strike marked; forward, PCR and max pain in the header.",
    )
    _common(chain)
    chain.add_argument(
        "--strikes", type=_count, default=None, help="strikes each side of ATM (default: all)"
    )
    chain.set_defaults(func=cmd_chain)
    oi = commands.add_parser(
        "oi",
        help="print the OI tracker (OI change over 3/5/10/15/30 minutes) at a minute",
        description="OI change of the strikes around the money over 3, 5, 10, 15 and 30 minutes.",
    )
    _common(oi)
    oi.add_argument("--strikes", type=_count, default=3, help="strikes each side of ATM")
    oi.set_defaults(func=cmd_oi)
