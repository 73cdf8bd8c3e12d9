"""`expirytrack doctor`'s first line: which instance profile DAGSTER_HOME selects and whether its
PostgreSQL answers, on a real server, with the password never shown."""

from __future__ import annotations

import importlib.util
import shutil
import socket
from pathlib import Path

from expirytrack_dagster.ops.instance_profile import PG_URL_VARIABLE, check_instance_profile
from expirytrack_dagster_tests.cli_project import REPO
from expirytrack_dagster_tests.ops.conftest import Project
from expirytrack_dagster_tests.ops.test_doctor import lines

PASSWORD = "s3cret-Pw"


def home_with(root: Path, profile: str) -> Path:
    """A DAGSTER_HOME holding the dagster.yaml of ``profile`` (``data`` or ``deploy``)."""
    home = root / f"{profile}_home"
    home.mkdir()
    shutil.copy(REPO / profile / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def with_password(libpq_url: str, scheme: str = "postgresql+psycopg2") -> str:
    """The test server's URL with a password (trust authentication on loopback ignores it)."""
    user, rest = libpq_url.split("://", 1)[1].split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{rest}"


def test_the_single_machine_home_is_reported_as_sqlite(tmp_path: Path) -> None:
    home = home_with(tmp_path, "data")
    finding = check_instance_profile(home, environ={})
    assert (finding.level, finding.detail) == ("OK", f"single machine: SQLite files in {home}")


def test_the_production_home_names_its_server_with_the_password_masked(
    tmp_path: Path, postgres_dsn: str
) -> None:
    home = home_with(tmp_path, "deploy")
    finding = check_instance_profile(home, environ={PG_URL_VARIABLE: with_password(postgres_dsn)})
    assert finding.level == "OK", finding.line()
    host_and_database = postgres_dsn.split("@", 1)[1]
    assert finding.detail.startswith("production: PostgreSQL ")
    assert finding.detail.endswith(f"at postgresql+psycopg2://postgres:***@{host_and_database}")
    assert PASSWORD not in finding.line()


def test_an_unset_variable_a_missing_driver_and_a_silent_server_each_say_what_to_fix(
    tmp_path: Path, postgres_dsn: str
) -> None:
    home = home_with(tmp_path, "deploy")
    unset = check_instance_profile(home, environ={})
    assert unset.level == "FIX" and PG_URL_VARIABLE in unset.detail
    assert unset.fix.startswith(f"set {PG_URL_VARIABLE}=postgresql+psycopg2://")

    bare = check_instance_profile(
        home, environ={PG_URL_VARIABLE: with_password(postgres_dsn, "postgresql")}
    )
    if importlib.util.find_spec("psycopg") is None:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed.
        assert bare.level == "FIX" and "'psycopg'" in bare.detail
        assert "postgresql+psycopg2://" in bare.fix
    else:
        assert bare.level == "OK"
    assert PASSWORD not in bare.line()

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    silent = f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{port}/dagster"
    down = check_instance_profile(home, environ={PG_URL_VARIABLE: silent})
    assert down.level == "FIX" and "does not answer" in down.detail
    assert f"postgres:***@127.0.0.1:{port}/dagster" in down.detail
    assert PASSWORD not in down.line()


def test_doctor_reports_the_profile_and_stops_short_of_an_instance_it_cannot_load(
    project: Project, postgres_dsn: str
) -> None:
    shutil.copy(REPO / "deploy" / "dagster_home" / "dagster.yaml", project.home / "dagster.yaml")
    url = with_password(postgres_dsn)

    done = project.main("doctor", **{PG_URL_VARIABLE: url})
    report = lines(done.stdout)
    assert report["dagster instance"].startswith("OK production: PostgreSQL ")
    # The daemon is not running here; the instance it would beat in is the Postgres one.
    assert report["dagster daemon"].startswith("FIX not running")
    assert report["database"].startswith("OK ")
    assert PASSWORD not in done.stdout + done.stderr

    done = project.main("doctor")
    report = lines(done.stdout)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert report["dagster instance"].startswith(f"FIX {project.home} stores runs in PostgreSQL")
    assert "dagster daemon" not in report and "sensors" not in report
    assert report["token"].startswith("OK ") and report["database"].startswith("OK ")
