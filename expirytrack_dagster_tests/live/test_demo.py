"""``expirytrack demo --live``: capture and tracker frames against the sandbox."""

from __future__ import annotations

from pathlib import Path

from expirytrack_dagster.live.demo import run_live_demo


def test_live_demo_prints_a_tracker_frame_per_captured_minute(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_live_demo(minutes=2, speed=60, strikes=1, live_dir=tmp_path, out=lines.append) == 0
    frames = [text for text in lines if " live " in text and "max pain" in text]
    assert len(frames) == 2 and "SANDBOX" in lines[0]
    assert "captured" in lines[-1] and list(tmp_path.glob("*.duckdb"))
