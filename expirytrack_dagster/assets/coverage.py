"""The ``coverage_report`` asset: every partition's collection and check status, as a table and a picture.

Unpartitioned and below ``candles`` by a plain dependency: it aggregates in DuckDB instead of
loading partitions through the IO manager, and reads the latest check result per partition from
the Dagster instance. It refreshes itself (see ``COVERAGE_REFRESH``). The picture is an expiry ×
underlying grid, newest expiry first, in plain text: as markdown in the asset's metadata (the
Dagster UI renders it on the asset page) and as an SVG next to the database. A partition key that
is not ``SYMBOL_YYYY-MM-DD`` (say ``nifty-test`` added by hand in the UI) is reported once in the
run log and the metadata, and left out.
"""

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from expirytrack_dagster.assets.candles import candles
from expirytrack_dagster.assets.expiries import WRITER_POOL
from expirytrack_dagster.checks import ALL_CHECKS, RULE_SEVERITY
from expirytrack_dagster.partitions import (
    expiry_partitions,
    parse_partition_key,
    split_partition_keys,
)
from expirytrack_dagster.settings import CollectionSettings
from expirytrack_dagster.storage.database import connect

GREEN_AT = 99.0
"""Completeness (%) at or above which a partition is green."""
YELLOW_AT = 90.0
"""Completeness (%) at or above which a partition is yellow rather than red."""

VERDICTS: tuple[str, ...] = ("complete", "partial", "incomplete", "failed", "not_collected")
"""Every verdict a partition can get, best first (see ``verdict``)."""

GRID_ROWS = 60
"""Expiry dates shown in the grid and the picture, newest first; the table has every partition."""

COLOURS: dict[str, str] = {
    "complete": "#2f9e55",
    "partial": "#f0b429",
    "incomplete": "#d64541",
    "failed": "#d64541",
    "not_collected": "#e3e6ea",
}
"""The SVG fill of each verdict (the colours of the squares)."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("complete", f">= {GREEN_AT:g} % complete"),
    ("partial", f">= {YELLOW_AT:g} %"),
    ("failed", f"< {YELLOW_AT:g} % or a blocking check failed"),
    ("not_collected", "not collected yet"),
)

REPORT_COLUMNS: list[str] = [
    "partition_key",
    "underlying_symbol",
    "expiry",
    "is_monthly",
    "data_source",
    "contracts",
    "candles",
    "contract_days",
    "days_complete",
    "days_no_trades",
    "days_failed",
    "failed_contracts",
    "completeness_pct",
    "check_status",
    "failed_checks",
    "verdict",
    "collected_at",
    "reported_at",
]
"""Columns of the ``coverage_report`` table, in order (DDL in ``storage.schema``)."""

_COUNT_COLUMNS = [
    "contracts",
    "candles",
    "contract_days",
    "days_complete",
    "days_no_trades",
    "days_failed",
    "failed_contracts",
]

COVERAGE_REFRESH = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
"""Refresh after any ``candles`` partition updates, once no partition is being collected.

Eager, minus its "no dependency missing" clause: with dynamic partitions some partition is
often registered but not (yet, or ever) collected, and the report exists to show exactly that.
Like every condition, it starts quietly: the first report follows the first ``candles`` update
after deployment (or a click on Materialize).
"""


# -- Check status --------------------------------------------------------------------------


def partition_check_status(statuses: Mapping[str, str]) -> tuple[str, str | None]:
    """A partition's overall check status from each rule's latest status, and the failed rules.

    Rule statuses are ``passed``, ``failed``, ``running`` or ``not_run`` (planned in a run that
    ended without a result). Overall, worst first: ``failed`` (an ERROR rule failed),
    ``running``, ``not_run``, ``warn`` (only WARN rules failed), ``passed``; ``not_checked``
    when no rule ever ran on the partition.
    """
    if not statuses:
        return "not_checked", None
    failed = [rule for rule in RULE_SEVERITY if statuses.get(rule) == "failed"]
    listed = ", ".join(failed) or None
    if any(RULE_SEVERITY[rule] == "ERROR" for rule in failed):
        return "failed", listed
    for state in ("running", "not_run"):
        if state in statuses.values():
            return state, listed
    return ("warn" if failed else "passed"), listed


def latest_check_statuses(
    instance: DagsterInstance, check_keys: Sequence[AssetCheckKey]
) -> dict[str, dict[str, str]]:
    """partition key -> rule -> latest status, from the instance's check history.

    Results recorded without a partition (from a multi-partition run) are left out: they cannot
    be placed. A result still ``PLANNED`` is ``running`` while its run is, else ``not_run``.
    The per-partition lookup lives on the event log storage, not the public instance API (as
    of Dagster 1.13); statuses are compared by value to stay off its private enum's import path.
    """
    infos = instance.event_log_storage.get_asset_check_partition_info(list(check_keys))
    run_finished: dict[str, bool] = {}
    statuses: dict[str, dict[str, str]] = {}
    for info in infos:
        if info.partition_key is None:
            continue
        status = info.latest_execution_status.value
        if status == "SUCCEEDED":
            state = "passed"
        elif status == "FAILED":
            state = "failed"
        else:
            run_id = info.latest_planned_run_id
            if run_id not in run_finished:
                run = instance.get_run_by_id(run_id)
                run_finished[run_id] = run is None or run.is_finished
            state = "not_run" if run_finished[run_id] else "running"
        statuses.setdefault(info.partition_key, {})[info.check_key.name] = state
    return statuses


# -- The report ----------------------------------------------------------------------------


def verdict(contract_days: int, completeness_pct: float | None, check_status: str) -> str:
    """``not_collected``, ``failed`` (blocking check), ``incomplete``, ``partial`` or ``complete``."""
    if not contract_days or completeness_pct is None or np.isnan(completeness_pct):
        return "not_collected"
    if check_status == "failed":
        return "failed"
    if completeness_pct < YELLOW_AT:
        return "incomplete"
    if completeness_pct < GREEN_AT:
        return "partial"
    return "complete"


_STORED = {
    "expiries": """
        SELECT partition_key, is_monthly, data_source FROM main.expiries""",
    "contracts": """
        SELECT partition_key, count(*) AS contracts FROM main.contracts GROUP BY ALL""",
    "candles": """
        SELECT partition_key, count(*) AS candles FROM main.candles GROUP BY ALL""",
    "candle_fetch_status": """
        SELECT
            partition_key,
            count(*) AS contract_days,
            count(*) FILTER (WHERE status = 'complete') AS days_complete,
            count(*) FILTER (WHERE status = 'no_trades') AS days_no_trades,
            count(*) FILTER (WHERE status = 'failed') AS days_failed,
            count(DISTINCT expired_instrument_key) FILTER (WHERE status = 'failed')
                AS failed_contracts,
            max(fetched_at) AS collected_at
        FROM main.candle_fetch_status
        GROUP BY ALL""",
}


def stored_partitions(database: Path | str) -> list[pd.DataFrame]:
    """Per-partition aggregates of each table; a missing file or table counts as empty."""
    if not Path(database).exists():
        return []
    with connect(database, read_only=True) as db:
        present = {
            name
            for (name,) in db.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
            ).fetchall()
        }
        return [db.execute(sql).df() for table, sql in _STORED.items() if table in present]


def build_report(
    partition_keys: Sequence[str],
    stored: Sequence[pd.DataFrame],
    check_statuses: Mapping[str, Mapping[str, str]],
    reported_at: datetime,
) -> pd.DataFrame:
    """One row per partition (registered or stored), sorted by underlying and expiry.

    Keys that are not ``SYMBOL_YYYY-MM-DD`` are left out (``split_partition_keys`` finds them).
    """
    every = set(partition_keys).union(*(frame["partition_key"] for frame in stored))
    ours, _ = split_partition_keys(sorted(every))
    keys = sorted(ours, key=parse_partition_key)
    report = pd.DataFrame({"partition_key": pd.Series(keys, dtype=object)})
    for frame in stored:
        report = report.merge(frame, on="partition_key", how="left")
    for column in REPORT_COLUMNS:
        if column not in report:
            report[column] = 0 if column in _COUNT_COLUMNS else None
    parsed = [parse_partition_key(key) for key in keys]
    report["underlying_symbol"] = [p.symbol for p in parsed]
    report["expiry"] = [p.expiry for p in parsed]
    report["is_monthly"] = report["is_monthly"].astype("boolean")
    for column in _COUNT_COLUMNS:
        report[column] = report[column].fillna(0).astype("int64")
    answered = report["days_complete"] + report["days_no_trades"]
    report["completeness_pct"] = (
        (100.0 * answered / report["contract_days"]).where(report["contract_days"] > 0).round(3)
    )
    checks = [partition_check_status(check_statuses.get(key, {})) for key in keys]
    report["check_status"] = [status for status, _ in checks]
    report["failed_checks"] = [failed for _, failed in checks]
    report["verdict"] = [
        verdict(days, pct, status)
        for days, pct, status in zip(
            report["contract_days"], report["completeness_pct"], report["check_status"], strict=True
        )
    ]
    report["collected_at"] = pd.to_datetime(report["collected_at"], utc=True)
    report["reported_at"] = pd.Timestamp(reported_at)
    return report[REPORT_COLUMNS]


# -- Pictures ------------------------------------------------------------------------------


def newest_first(report: pd.DataFrame, rows: int = GRID_ROWS) -> tuple[pd.DataFrame, int]:
    """The partitions of the newest ``rows`` expiry dates, newest first; and how many dates
    were left out."""
    dates = sorted(set(report["expiry"]), reverse=True)
    shown = set(dates[:rows])
    recent = report[report["expiry"].isin(shown)]
    return recent.sort_values(["expiry", "underlying_symbol"], ascending=[False, True]), max(
        0, len(dates) - rows
    )


def cell_text(r: Any) -> str:
    """A partition's grid cell in plain text: completeness and, unless complete, the verdict.

    ``100 %`` · ``95.0 % partial`` · ``40.2 % low`` · ``FAILED`` (a blocking check failed) ·
    ``not collected``. ``r`` is a row of the report (from ``itertuples``).
    """
    if r.verdict == "not_collected":
        return "not collected"
    if r.verdict == "failed":
        return "FAILED"
    pct = float(r.completeness_pct)
    figure = "100 %" if pct >= 99.95 else f"{pct:.1f} %"
    return {"partial": f"{figure} partial", "incomplete": f"{figure} low"}.get(r.verdict, figure)


GRID_LEGEND = (
    f"Each cell: % of contract-days answered. {GREEN_AT:g} % or more is complete; "
    f"*partial* from {YELLOW_AT:g} %; *low* below {YELLOW_AT:g} %; *FAILED*: a blocking check "
    "failed; *not collected*: registered, not collected yet; empty: no such expiry. "
    "**Bold**: monthly expiry."
)


def coverage_grid_markdown(report: pd.DataFrame) -> str:
    """Expiry × underlying in plain text, newest expiry first (the UI renders it as a table).

    No emoji or colour: each cell says its completeness and verdict in words, so it reads the
    same in any font. Only the newest ``GRID_ROWS`` expiry dates are shown.
    """
    if report.empty:
        return "No partitions yet."
    recent, older = newest_first(report)
    symbols = sorted(set(report["underlying_symbol"]))
    lines = [
        "| expiry | " + " | ".join(symbols) + " |",
        "|---|" + "|".join(":-:" for _ in symbols) + "|",
    ]
    for expiry, rows in recent.groupby("expiry", sort=False):
        cells = {}
        for r in rows.itertuples(index=False):
            text = cell_text(r)
            monthly = r.is_monthly is not pd.NA and bool(r.is_monthly)
            cells[r.underlying_symbol] = f"**{text}**" if monthly else text
        row = [cells.get(symbol, "") for symbol in symbols]
        lines.append(f"| {expiry:%Y-%m-%d %a} | " + " | ".join(row) + " |")
    notes = [GRID_LEGEND]
    if older:
        notes.append(f"{older} older expiry dates are in the coverage_table metadata.")
    return "\n".join(lines) + "\n\n" + " ".join(notes) + _synthetic_note(report, "\n\n_{}_")


def _synthetic_note(report: pd.DataFrame, template: str) -> str:
    if (report["data_source"] == "sandbox").any():
        return template.format("Synthetic data from the built-in sandbox, not market data.")
    return ""


@dataclass(frozen=True)
class _Layout:
    cell_w: int = 64
    cell_h: int = 20
    gap: int = 4
    left: int = 124
    font: str = "DejaVu Sans, Helvetica, Arial, sans-serif"

    @property
    def col_pitch(self) -> int:
        return self.cell_w + self.gap

    @property
    def row_pitch(self) -> int:
        return self.cell_h + self.gap


def _text_width(text: str, size: int) -> float:
    """A generous estimate of rendered width: the SVG must fit its text without a font."""
    return 0.62 * size * len(text)


def coverage_svg(report: pd.DataFrame, reported_at: datetime) -> str:
    """A hand-drawn SVG: expiries down (newest first), underlyings across, one cell each.

    Each cell is coloured by verdict and says its completeness in figures ("!" for a blocking
    check that failed), so it reads without colour too; a bold outline marks a monthly expiry;
    hovering shows the partition's figures. Only the newest ``GRID_ROWS`` expiry dates are
    drawn, so the picture stays a readable size. Synthetic (sandbox) data says so under the title.
    """
    lay = _Layout()
    recent, older = newest_first(report)
    expiries = list(dict.fromkeys(recent["expiry"]))
    symbols = sorted(set(report["underlying_symbol"]))
    lay = _Layout(
        cell_w=max(lay.cell_w, int(max((_text_width(s, 11) for s in symbols), default=0)) + 6)
    )
    row = {day: i for i, day in enumerate(expiries)}
    column = {symbol: i for i, symbol in enumerate(symbols)}
    title = "ExpiryTrack coverage, newest expiry first"
    subtitle = _subtitle(report, reported_at)
    synthetic = _synthetic_note(report, "{}")
    head = 66 + (16 if synthetic else 0)  # where the underlying names go
    top = head + 12  # the first row of cells
    bottom = top + max(len(expiries), 1) * lay.row_pitch
    legend_y = bottom + (40 if older else 22)
    width = int(
        max(
            lay.left + max(len(symbols), 1) * lay.col_pitch + 16,
            32 + max(_text_width(title, 17), _text_width(subtitle, 11)),
            560,
        )
    )
    height = legend_y + 70
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{lay.font}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(16, 28, title, 17, weight="bold"),
        _text(16, 48, subtitle, 11, fill="#555"),
    ]
    if synthetic:
        out.append(_text(16, 64, synthetic, 11, fill="#b45309", weight="bold"))
    for symbol, i in column.items():
        x = lay.left + i * lay.col_pitch + lay.cell_w / 2
        out.append(_text(x, head + 4, symbol, 11, anchor="middle", weight="bold"))
    for day, i in row.items():
        y = top + i * lay.row_pitch + lay.cell_h / 2 + 4
        out.append(_text(lay.left - 10, y, f"{day:%Y-%m-%d %a}", 11, anchor="end"))
    for record in recent.itertuples(index=False):
        out.append(_cell(lay, top, record, row[record.expiry], column[record.underlying_symbol]))
    if report.empty:
        out.append(_text(lay.left, top + 18, "No partitions yet.", 12, fill="#555"))
    if older:
        note = f"{older} older expiry dates not drawn: see the coverage_report table."
        out.append(_text(16, bottom + 16, note, 11, fill="#555"))
    out.extend(_legend(legend_y))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _subtitle(report: pd.DataFrame, reported_at: datetime) -> str:
    counts = report["verdict"].value_counts()
    parts = [f"{len(report)} partitions"]
    parts += [f"{counts[kind]} {kind.replace('_', ' ')}" for kind in VERDICTS if kind in counts]
    parts.append(f"as of {reported_at:%Y-%m-%d %H:%M} UTC")
    return " · ".join(parts)


def _cell(lay: _Layout, top: int, r: Any, row: int, col: int) -> str:
    """One partition's cell; ``r`` is a row of the report (from ``itertuples``)."""
    x = lay.left + col * lay.col_pitch
    y = top + row * lay.row_pitch
    monthly = bool(r.is_monthly) if r.is_monthly is not pd.NA else False
    stroke = (
        'stroke="#1f2933" stroke-width="2.5"' if monthly else 'stroke="#ffffff" stroke-width="0"'
    )
    pct = r.completeness_pct
    label = "" if pd.isna(pct) else ("100" if pct >= 99.95 else f"{pct:.1f}")
    if r.verdict == "failed":
        label = "! check"
    ink = "#1f2933" if r.verdict in ("partial", "not_collected") else "#ffffff"
    tip = (
        f"{r.partition_key}: {r.verdict.replace('_', ' ')}"
        + ("" if pd.isna(pct) else f", {pct:.1f} % of contract-days answered")
        + f", {r.contracts} contracts, {r.candles:,} candles, {r.failed_contracts} failed"
        + f"; checks {r.check_status}"
        + (f" ({r.failed_checks})" if r.failed_checks else "")
    )
    return (
        f"<g><title>{html.escape(tip)}</title>"
        f'<rect x="{x}" y="{y}" width="{lay.cell_w}" height="{lay.cell_h}" rx="3" '
        f'fill="{COLOURS[r.verdict]}" {stroke}/>'
        + _text(x + lay.cell_w / 2, y + lay.cell_h / 2 + 4, label, 10, fill=ink, anchor="middle")
        + "</g>"
    )


def _legend(y: int) -> list[str]:
    out = []
    x = 16
    for kind, text in LEGEND:
        out.append(f'<rect x="{x}" y="{y}" width="14" height="14" rx="3" fill="{COLOURS[kind]}"/>')
        out.append(_text(x + 20, y + 11, text, 11))
        x += 40 + 6 * len(text)
    y2 = y + 26
    out.append(
        f'<rect x="16" y="{y2}" width="14" height="14" rx="3" fill="#e3e6ea" '
        'stroke="#1f2933" stroke-width="2.5"/>'
    )
    out.append(_text(36, y2 + 11, "monthly expiry", 11))
    out.append(
        _text(
            150,
            y2 + 11,
            "number = % of contract-days answered · ! check = a blocking check failed",
            11,
        )
    )
    return out


def _text(
    x: float,
    y: float,
    text: str,
    size: int,
    *,
    fill: str = "#1f2933",
    anchor: str = "start",
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:g}" y="{y:g}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{html.escape(text)}</text>'
    )


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a viewer never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _table(report: pd.DataFrame) -> MetadataValue:
    """Every partition as a table the UI can sort, newest expiry first."""
    shown = {
        "status": "string",
        "partition_key": "string",
        "contracts": "int",
        "candles": "int",
        "completeness_pct": "float",
        "failed_contracts": "int",
        "check_status": "string",
        "failed_checks": "string",
    }
    records = [
        TableRecord(
            {
                "status": r.verdict.replace("_", " "),
                "partition_key": r.partition_key,
                "contracts": int(r.contracts),
                "candles": int(r.candles),
                "completeness_pct": None if pd.isna(r.completeness_pct) else r.completeness_pct,
                "failed_contracts": int(r.failed_contracts),
                "check_status": r.check_status,
                "failed_checks": r.failed_checks or "",
            }
        )
        for r in report.sort_values(
            ["expiry", "underlying_symbol"], ascending=[False, True]
        ).itertuples(index=False)
    ]
    return MetadataValue.table(
        records, TableSchema([TableColumn(name, kind) for name, kind in shown.items()])
    )


# -- The asset -----------------------------------------------------------------------------


def report_path(database: str) -> Path:
    """Where the coverage picture goes: ``reports/coverage.svg`` beside the database."""
    return Path(database).parent / "reports" / "coverage.svg"


@asset(
    deps=[candles],
    pool=WRITER_POOL,  # reads DuckDB, and its output is written there
    group_name="expired_fno",
    kinds={"duckdb"},
    automation_condition=COVERAGE_REFRESH,
)
def coverage_report(context: AssetExecutionContext, collection: CollectionSettings) -> pd.DataFrame:
    """Every partition: contracts, candles, contract-days answered, failed contracts, checks.

    A partition is complete when at least 99 % of its (contract, trading day) requests were
    answered (with candles or "no trades") and no blocking check failed, partial from 90 %, low
    below that, failed when a blocking check failed, not collected when registered only.
    Partition keys that are not ``SYMBOL_YYYY-MM-DD`` are named once in the log and skipped.
    """
    reported_at = datetime.now(UTC)
    check_keys = [spec.key for checks in ALL_CHECKS for spec in checks.check_specs]
    registered = context.instance.get_dynamic_partitions(expiry_partitions.name)
    stored = stored_partitions(collection.database)
    _, foreign = split_partition_keys(
        sorted(set(registered).union(*(frame["partition_key"] for frame in stored)))
    )
    if foreign:
        context.log.warning(
            f"Skipping {len(foreign)} partition key(s) not of the form SYMBOL_YYYY-MM-DD "
            f"(added by hand?): {', '.join(foreign)}; `expirytrack partitions --remove-foreign` "
            "removes them."
        )
    report = build_report(
        registered, stored, latest_check_statuses(context.instance, check_keys), reported_at
    )
    svg = report_path(collection.database)
    write_atomically(svg, coverage_svg(report, reported_at))
    counts = report["verdict"].value_counts()
    context.add_output_metadata(
        {
            "coverage_grid": MetadataValue.md(coverage_grid_markdown(report)),
            "coverage_table": _table(report),
            "coverage_svg": MetadataValue.path(str(svg.resolve())),
            "partitions": len(report),
            **{f"partitions_{kind}": int(counts.get(kind, 0)) for kind in VERDICTS},
            "candles_total": int(report["candles"].sum()),
            "skipped_partition_keys": MetadataValue.text(", ".join(foreign) or "none"),
        }
    )
    return report


coverage_report_sensor = AutomationConditionSensorDefinition(
    "coverage_report_automation",
    target=AssetSelection.assets(coverage_report),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes coverage_report when candles change (see COVERAGE_REFRESH).",
)
"""Evaluates ``coverage_report``'s automation condition; on from the start, unlike the default
automation sensor, so the report keeps up without a click in the UI."""
