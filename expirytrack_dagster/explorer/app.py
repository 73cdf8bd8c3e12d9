"""The explorer's web app: one Starlette route per page, Jinja2 templates, static charting files.

Starlette because the sandbox already uses it (no second framework); pages are rendered on the
server and every state is in the query string, so a view is a bookmarkable URL. The only
JavaScript is TradingView's lightweight-charts (served from ``static/``, no CDN) and the small
``static/explorer.js`` that draws its charts and moves the chain's time slider.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from expirytrack_dagster.explorer import data
from expirytrack_dagster.explorer.database import NoDatabaseYet, Reader
from expirytrack_dagster.research.api import ResearchError
from expirytrack_dagster.storage.database import DatabaseLocked

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _signed(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+,.0f}"


templates.env.filters["number"] = _number
templates.env.filters["signed"] = _signed


def create_app(database: Path, live_dir: Path | None = None) -> Starlette:
    """The explorer over the DuckDB file ``database`` (opened read-only for each request); the
    OI tracker's live mode reads the live capture's snapshots in ``live_dir`` (default: ``live/``
    beside the database, where the capture writes them: ``live.assets.live_dir``)."""
    reader = Reader(database)
    snapshots = Path(live_dir) if live_dir is not None else Path(database).parent / "live"
    history = data.LifeCache(database)

    def page(template: str, build: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            params = dict(request.query_params)
            started = time.perf_counter()
            try:
                if template == "tracker" and params.get("mode") == "live":
                    # Live mode reads the snapshot files, not the database: it works while
                    # nothing is collected yet (the picker and banner then come from nothing).
                    context = live_tracker(params)
                    context["partitions"], synthetic, snapshot = [], False, None
                    with suppress(NoDatabaseYet, DatabaseLocked), reader.read() as reading:
                        context["partitions"] = data.partitions(reading.connection)
                        synthetic = reading.synthetic
                else:
                    with reader.read() as reading:
                        context = build(reading.connection, params)
                        context["partitions"] = data.partitions(reading.connection)
                        synthetic, snapshot = reading.synthetic, reading.snapshot_taken
            except (ResearchError, ValueError, KeyError, DatabaseLocked, NoDatabaseYet) as exc:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                context = {
                    "message": message,
                    "page": template,
                    "params": params,
                    "partitions": [],
                    "server_ms": round(1000 * (time.perf_counter() - started)),
                }
                # No database yet is a state of the server (503: try again later), not a bad question.
                status = 503 if isinstance(exc, NoDatabaseYet) else 400
                return templates.TemplateResponse(
                    request, "error.html", context, status_code=status
                )
            context.update(
                {
                    "page": template,
                    "params": params,
                    "synthetic": synthetic,
                    "snapshot": datetime.fromtimestamp(snapshot).strftime("%H:%M:%S")
                    if snapshot
                    else None,
                    "server_ms": round(1000 * (time.perf_counter() - started)),
                }
            )
            return templates.TemplateResponse(request, f"{template}.html", context)

        return endpoint

    def underlying(params: dict[str, str]) -> tuple[str, str]:
        try:
            return params["underlying"], params["expiry"]
        except KeyError:
            raise ResearchError("choose an underlying and expiry (from the list above)") from None

    def chain(db: Any, params: dict[str, str]) -> dict[str, Any]:
        return data.chain_page(db, *underlying(params), params.get("at"))

    def chart(db: Any, params: dict[str, str]) -> dict[str, Any]:
        if "contract" not in params:
            raise ResearchError("choose a contract")
        return data.chart_page(
            db, params["contract"], params.get("interval", "1minute"), params.get("overlay") == "1"
        )

    def oi(db: Any, params: dict[str, str]) -> dict[str, Any]:
        side = params.get("side", "all")
        if side not in ("all", "CE", "PE"):
            raise ResearchError("side must be all, CE or PE")
        return data.oi_page(db, *underlying(params), params.get("at"), side, history=history)

    def tracker(db: Any, params: dict[str, str]) -> dict[str, Any]:
        strikes = int(params.get("strikes", "3"))
        return data.tracker_page(db, *underlying(params), params.get("at"), strikes)

    def live_tracker(params: dict[str, str]) -> dict[str, Any]:
        if "underlying" not in params:
            raise ResearchError("choose an underlying (and optionally an expiry)")
        strikes = int(params.get("strikes", "3"))
        return data.live_tracker_page(
            snapshots, params["underlying"], params.get("expiry"), params.get("at"), strikes
        )

    def coverage(db: Any, params: dict[str, str]) -> dict[str, Any]:
        return data.coverage_page(db)

    async def home(request: Request) -> Response:
        return RedirectResponse("/coverage")

    async def favicon(request: Request) -> Response:
        return HTMLResponse("", status_code=204)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        reader.close()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/favicon.ico", favicon),
            Route("/chain", page("chain", chain)),
            Route("/chart", page("chart", chart)),
            Route("/oi", page("oi", oi)),
            Route("/tracker", page("tracker", tracker)),
            Route("/coverage", page("coverage", coverage)),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        lifespan=lifespan,
    )
    return app
