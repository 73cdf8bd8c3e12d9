"""Where synthetic (sandbox) runs keep their data: ``data/sandbox/``, apart from real data.

A sandbox run gets its own database, landing zone, rate/span state (see ``settings.SANDBOX_PATHS``,
applied by ``project_settings`` whenever the source is ``sandbox``) and its own Dagster instance,
so synthetic runs and partitions never show up among real ones.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from expirytrack_dagster.settings import SANDBOX_DIR, SANDBOX_PATHS

REAL_DAGSTER_HOME = Path("data/dagster_home")


def use_sandbox_dagster_home() -> Path:
    """Point ``DAGSTER_HOME`` at the sandbox's instance and return it.

    Unless ``DAGSTER_HOME`` names some other instance on purpose (not the project's real one),
    it becomes ``data/sandbox/dagster_home``, with the project's ``dagster.yaml`` (writer pool,
    run monitoring) copied in when it has none.
    """
    given = os.environ.get("DAGSTER_HOME")
    real = REAL_DAGSTER_HOME.resolve()
    if given and Path(given).resolve() != real:
        home = Path(given)
    else:
        home = Path(SANDBOX_PATHS["dagster_home"]).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = real / "dagster.yaml"
    if settings.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(settings, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def describe_sandbox_stores(database: str, landing_dir: str, home: Path) -> str:
    """The lines the demo prints to say where the synthetic data went."""
    return (
        f"Synthetic data goes to its own stores, never the real ones ({SANDBOX_DIR}/ unless set):\n"
        f"        database {Path(database).resolve()}\n"
        f"        landing  {Path(landing_dir).resolve()}\n"
        f"        Dagster  {home}"
    )
