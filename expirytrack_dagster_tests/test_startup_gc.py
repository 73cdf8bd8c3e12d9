"""The garbage collector at start-up: paused while a block imports and builds, then frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from expirytrack_dagster.cli import main
from expirytrack_dagster.startup_gc import long_lived_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen at the start of the test (the suite's collection froze its imports), and
    everything frozen again after it, as the suite had it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.enable()
        gc.freeze()


def test_the_collector_is_paused_inside_and_running_after(unfrozen) -> None:
    with long_lived_objects():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_the_block_made_is_frozen(unfrozen) -> None:
    assert gc.get_freeze_count() == 0
    with long_lived_objects():
        made = [[] for _ in range(1000)]
    assert gc.get_freeze_count() >= len(made)


def test_a_collector_turned_off_stays_off(unfrozen) -> None:
    gc.disable()
    with long_lived_objects():
        pass
    assert not gc.isenabled()


def test_an_error_in_the_block_still_turns_the_collector_back_on(unfrozen) -> None:
    with pytest.raises(RuntimeError), long_lived_objects():
        raise RuntimeError("import failed")
    assert gc.isenabled()


def test_the_cli_builds_its_parser_with_the_collector_paused(unfrozen, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert "invalid choice" in capsys.readouterr().err
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
