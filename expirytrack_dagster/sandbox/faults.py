"""Switchable fault injection: server errors, slow answers, dropped streams, broken bodies, bad candles."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from expirytrack_dagster.calendar import is_trading_day

FAULT_KINDS: tuple[str, ...] = ("drop", "server_error", "malformed", "corrupt_candles", "slow")
"""Every fault a request can get, in the order they are drawn."""

CORRUPTION_KINDS: tuple[str, ...] = ("ohlc", "duplicate", "out_of_session", "missing_day")
"""How ``corrupt_candles`` spoils a candle response:

- ``ohlc``: one row with high below low and one with a negative price;
- ``duplicate``: one row repeated right after itself;
- ``out_of_session``: an extra candle at 08:00 (a day candle on a non-trading date);
- ``missing_day``: every candle of one trading day removed.
"""


def _as_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class FaultConfig:
    """Which faults the sandbox injects, how often, and where.

    Rates are probabilities in [0, 1] drawn per request from a generator seeded by ``seed``, so a
    sequential test sees the same faults on every run. At most one fault hits a request.
    ``only_paths`` limits faults to requests whose path contains one of the substrings;
    ``max_count`` stops injecting after that many faults. Candle requests for a key in
    ``fail_keys`` always answer 500, whatever the rates and counts (one contract that fails).

    Two deterministic candle defects for named contracts, independent of the rates, the seed,
    ``only_paths`` and ``max_count`` (every non-empty candle response for the key has it, the
    same row for the same request; see ``double_candle``):

    - ``duplicate_keys``: the newest candle of the response is sent twice, identical;
    - ``conflict_keys``: the newest candle's minute is sent twice with different values (the
      copy has ``close`` set to its ``open`` and twice the volume, so it is still a valid bar).

    A key in both gets the conflict. They are recorded in the stats' ``faults`` as
    ``duplicate_key`` / ``conflict_key``.
    """

    server_error: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 1.0
    drop: float = 0.0
    malformed: float = 0.0
    corrupt_candles: float = 0.0
    corruption_kinds: tuple[str, ...] = ("ohlc",)
    seed: int = 0
    only_paths: tuple[str, ...] = ()
    max_count: int | None = None
    fail_keys: frozenset[str] = field(default_factory=frozenset)
    duplicate_keys: frozenset[str] = field(default_factory=frozenset)
    conflict_keys: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            rate = getattr(self, kind)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {kind}={rate} is not in [0, 1]")
        object.__setattr__(self, "only_paths", _as_tuple(self.only_paths))
        object.__setattr__(self, "corruption_kinds", _as_tuple(self.corruption_kinds))
        for name in ("fail_keys", "duplicate_keys", "conflict_keys"):
            object.__setattr__(self, name, frozenset(_as_tuple(getattr(self, name))))
        unknown = set(self.corruption_kinds) - set(CORRUPTION_KINDS)
        if unknown or not self.corruption_kinds:
            raise ValueError(
                f"corruption_kinds must be some of {CORRUPTION_KINDS}, got {unknown or '()'}"
            )

    @property
    def active(self) -> bool:
        """True when any rate is non-zero or any key is set to fail or repeat a candle."""
        keyed = self.fail_keys or self.duplicate_keys or self.conflict_keys
        return bool(keyed) or any(getattr(self, kind) > 0 for kind in FAULT_KINDS)

    def doubled_candle(self, expired_key: str) -> str | None:
        """``"conflict"``, ``"duplicate"`` or None: how candle answers for the key repeat a row."""
        if expired_key in self.conflict_keys:
            return "conflict"
        if expired_key in self.duplicate_keys:
            return "duplicate"
        return None


class FaultInjector:
    """Draws the faults of a ``FaultConfig`` request by request and spoils candle rows."""

    def __init__(self, config: FaultConfig):
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self.injected = 0

    def decide(self, path: str, is_candles: bool) -> str | None:
        """The fault for a request to ``path`` (None for a normal answer)."""
        cfg = self.config
        if not any(getattr(cfg, kind) > 0 for kind in FAULT_KINDS):
            return None
        if cfg.only_paths and not any(part in path for part in cfg.only_paths):
            return None
        with self._lock:
            if cfg.max_count is not None and self.injected >= cfg.max_count:
                return None
            # One draw per kind on every request, so what happens to request N depends only on
            # the seed and N, not on which faults earlier requests happened to get.
            draws = [self._rng.random() for _ in FAULT_KINDS]
            for kind, u in zip(FAULT_KINDS, draws, strict=True):
                if kind == "corrupt_candles" and not is_candles:
                    continue
                if u < getattr(cfg, kind):
                    self.injected += 1
                    return kind
        return None

    def refund(self) -> None:
        """Un-count a fault that turned out not to apply (corruption of an empty answer)."""
        with self._lock:
            self.injected = max(0, self.injected - 1)

    def server_error_status(self) -> int:
        """500 or 503, as a gateway in trouble answers."""
        with self._lock:
            return 503 if self._rng.random() < 0.3 else 500

    def corrupt(self, rows: list[list]) -> tuple[str, list[list]]:
        """``rows`` (newest first) spoilt by one of the configured corruption kinds."""
        with self._lock:
            kind = self._rng.choice(self.config.corruption_kinds)
            pick = self._rng.random()
        return kind, corrupt_rows(rows, kind, pick)


DOUBLED_KINDS: tuple[str, ...] = ("duplicate", "conflict")
"""How ``double_candle`` repeats a candle (``FaultConfig.duplicate_keys`` / ``conflict_keys``)."""


def double_candle(rows: list[list], kind: str) -> list[list]:
    """A copy of candle ``rows`` (newest first, non-empty) with the newest candle sent twice.

    ``"duplicate"``: an identical copy right after it. ``"conflict"``: a copy of the same minute
    with ``close`` replaced by ``open`` and the volume doubled (still a valid bar, but different).
    """
    if kind not in DOUBLED_KINDS:
        raise ValueError(f"unknown doubling {kind!r}: use one of {DOUBLED_KINDS}")
    rows = list(rows)
    copy = list(rows[0])
    if kind == "conflict":
        copy[4] = copy[1]
        copy[5] = copy[5] * 2
    rows.insert(1, copy)
    return rows


def _is_day_candle(stamp: str) -> bool:
    return stamp[10:19] == "T00:00:00"


def corrupt_rows(rows: list[list], kind: str, pick: float = 0.5) -> list[list]:
    """A copy of candle ``rows`` (newest first, non-empty) with one defect of ``kind``.

    ``pick`` in [0, 1) chooses where the defect goes.
    """
    rows = [list(r) for r in rows]
    where = min(int(pick * len(rows)), len(rows) - 1)
    if kind == "ohlc":
        row = rows[where]
        row[2] = round(row[3] - 1.0, 2)  # high below low
        other = rows[(where + 1) % len(rows)] if len(rows) > 1 else row
        other[4] = -abs(other[4]) or -0.05  # a negative close
        return rows
    if kind == "duplicate":
        rows.insert(where, list(rows[where]))
        return rows
    if kind == "out_of_session":
        stamp = rows[where][0]
        day = date.fromisoformat(stamp[:10])
        if _is_day_candle(stamp):
            closed = day - timedelta(days=1)
            while is_trading_day(closed):
                closed -= timedelta(days=1)
            bad_stamp = f"{closed.isoformat()}T00:00:00+05:30"
        else:
            bad_stamp = f"{day.isoformat()}T08:00:00+05:30"
        # Keep the newest-first order: the bad row goes before the first older row.
        position = next((i for i, r in enumerate(rows) if r[0] < bad_stamp), len(rows))
        rows.insert(position, [bad_stamp, *rows[where][1:]])
        return rows
    if kind == "missing_day":
        days = sorted({r[0][:10] for r in rows})
        # An interior day when there is one, so the gap cannot pass for the range's edge.
        inner = days[1:-1] or days
        victim = inner[min(int(pick * len(inner)), len(inner) - 1)]
        return [r for r in rows if r[0][:10] != victim]
    raise ValueError(f"unknown corruption kind {kind!r}")
