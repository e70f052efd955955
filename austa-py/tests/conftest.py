"""Fixtures: every test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `AUSTA_TEST_DATABASE_URL` (an admin URL): the session creates a database of its
own with `psql`, migrates it as the owner and runs the tests as the runtime role `austa_app` (under
row-level security, as in production), then drops it. Without the variable the PostgreSQL tests are
skipped, except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import austa

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def _psql(url: str, sql: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is needed to create the PostgreSQL test database")
    done = subprocess.run([psql, url, "-v", "ON_ERROR_STOP=1", "-qc", sql], capture_output=True, text=True)
    if done.returncode != 0:
        # Not CalledProcessError: its message would print the URL, password included.
        pytest.fail(f"psql failed ({sql.split()[0]} ...): {done.stderr.strip()}")


def _with_database(url: str, name: str, user: str = "") -> str:
    scheme, rest = url.split("://", 1)
    credentials, _, host_and_path = rest.rpartition("@")
    host = host_and_path.split("/", 1)[0].split("?", 1)[0]
    who = f"{user}@" if user else (f"{credentials}@" if credentials else "")
    return f"{scheme}://{who}{host}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = os.environ.get("AUSTA_TEST_DATABASE_URL", "")
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but AUSTA_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        pytest.skip("AUSTA_TEST_DATABASE_URL not set (set CI=true to fail instead)")
    name = f"austa_py_test_{uuid.uuid4().hex}"
    _psql(admin, f"CREATE DATABASE {name}")
    owner_url = _with_database(admin, name)
    with austa.Database(owner_url, master_key=MASTER_KEY) as owner:
        owner.migrate()
    _psql(owner_url, "ALTER ROLE austa_app LOGIN")
    app_url = _with_database(admin, name, "austa_app")
    os.environ["AUSTA_PY_TEST_URL"] = app_url
    try:
        yield app_url
    finally:
        _psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[austa.Database]:
    """A migrated database on each backend."""
    if request.param == "sqlite":
        database = austa.Database(f"sqlite://{tmp_path / 'test.db'}", master_key=MASTER_KEY)
        database.migrate()
    else:
        database = austa.Database(request.getfixturevalue("postgres_url"), master_key=MASTER_KEY)
    with database:
        yield database


def new_org(db: austa.Database, name: str = "Clínica Teste") -> austa.Organization:
    return db.organizations.create(name=name, organization_type=austa.OrganizationType.CLINIC)


@pytest.fixture
def scope(db: austa.Database) -> austa.Scope:
    """The platform acting in a fresh organization."""
    return db.scope(new_org(db).id, austa.Actor.platform())


@pytest.fixture
def org_scope(db: austa.Database) -> Tuple[austa.Database, austa.Scope]:
    return db, db.scope(new_org(db).id, austa.Actor.platform())


_counter = iter(range(10_000_000))


def phone() -> str:
    """A unique valid Brazilian mobile number."""
    return f"+55119{70_000_000 + next(_counter) % 29_999_999:08d}"


def patient_row(**extra: object) -> dict:
    row = {"first_name": "Paciente", "last_name": "Teste", "phone": phone()}
    row.update(extra)
    return row
