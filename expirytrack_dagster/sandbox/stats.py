"""Thread-safe request statistics: what was asked, how it was answered, over which HTTP version."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from typing import Any

PATH_KINDS: tuple[str, ...] = (
    "expiries",
    "option_contracts",
    "future_contracts",
    "candles",
    "index_candles",
    "other",
)

_PREFIX = "/v2/expired-instruments/"
_INDEX_CANDLES_PREFIX = "/v3/historical-candle/"
"""Active instruments' candles: the underlying's own (``index_candles``)."""


def path_kind(path: str) -> str:
    """Which endpoint a (decoded) request path belongs to."""
    if path.startswith(_INDEX_CANDLES_PREFIX):
        return "index_candles"
    if not path.startswith(_PREFIX):
        return "other"
    rest = path[len(_PREFIX) :]
    if rest == "expiries":
        return "expiries"
    if rest == "option/contract":
        return "option_contracts"
    if rest == "future/contract":
        return "future_contracts"
    if rest.startswith("historical-candle/"):
        return "candles"
    return "other"


def token_label(token: str) -> str:
    """How the stats name a token: the same one-way fingerprint the client keys its ledger by."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class RequestStats:
    """Counts per endpoint kind, status code, HTTP version, injected fault and token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._total = 0
            self._kinds: Counter[str] = Counter()
            self._statuses: Counter[int] = Counter()
            self._versions: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._dropped = 0
            self._by_token: dict[str, Counter[str]] = {}

    def record(
        self,
        kind: str,
        status: int | None,
        http_version: str,
        fault: str | None,
        token: str | None = None,
    ) -> None:
        """One finished request; ``status`` None means it was dropped without an answer;
        ``token`` the bearer token it carried (counted under its fingerprint)."""
        with self._lock:
            if token is not None:
                counts = self._by_token.setdefault(token_label(token), Counter())
                counts["total"] += 1
                counts["rate_limited"] += status == 429
                counts["ok"] += status == 200
            self._total += 1
            self._kinds[kind] += 1
            self._versions[http_version] += 1
            if status is None:
                self._dropped += 1
            else:
                self._statuses[status] += 1
            if fault:
                self._faults[fault] += 1

    def snapshot(self) -> dict[str, Any]:
        """A copy of the counters.

        Keys: ``total``, ``by_kind`` (every kind of ``PATH_KINDS``), ``by_status``,
        ``rate_limited`` (429s), ``http_versions`` (e.g. ``{"2": 10}``), ``faults`` (per fault
        kind, plus ``fail_key``), ``dropped`` and ``by_token``: per token fingerprint
        (``token_label``), its ``total``, ``ok`` (200) and ``rate_limited`` (429) requests.
        """
        with self._lock:
            return {
                "total": self._total,
                "by_kind": {kind: self._kinds.get(kind, 0) for kind in PATH_KINDS},
                "by_status": dict(self._statuses),
                "rate_limited": self._statuses.get(429, 0),
                "http_versions": dict(self._versions),
                "faults": dict(self._faults),
                "dropped": self._dropped,
                "by_token": {
                    label: {k: counts[k] for k in ("total", "ok", "rate_limited")}
                    for label, counts in self._by_token.items()
                },
            }
