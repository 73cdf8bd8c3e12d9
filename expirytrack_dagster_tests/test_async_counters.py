"""Shared counters are never updated with ``x += await ...``.

Python reads ``x`` before the await and writes ``x + result`` after it, so whatever other
coroutines added to ``x`` while this one waited is lost. Under load that undercounted the
duplicates a collection collapsed (seen in CI) and the client's rate-limiter wait.
"""

from __future__ import annotations

import ast
from pathlib import Path

import expirytrack_dagster

PACKAGE = Path(expirytrack_dagster.__file__).parent


def _read_await_write(node: ast.AST) -> bool:
    """``attr += await ...`` or ``item += await ...``: state other coroutines can see."""
    return (
        isinstance(node, ast.AugAssign)
        and not isinstance(node.target, ast.Name)
        and any(isinstance(inner, ast.Await) for inner in ast.walk(node.value))
    )


def test_no_shared_counter_is_updated_across_an_await() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if _read_await_write(node):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == [], f"read-await-write on shared state: {offenders}"


def test_the_scan_sees_the_pattern() -> None:
    code = "async def f(self):\n    self.n += await g()\n    local = 0\n    local += await g()\n"
    hits = [node for node in ast.walk(ast.parse(code)) if _read_await_write(node)]
    assert [node.lineno for node in hits] == [2]
