"""Fixtures for multi-process tests: a private Redis, the per-run PostgreSQL test database shared
with child processes, and a `Processes` handle that stops every child at the end of the test."""
import shutil
from pathlib import Path

import pytest

from tests.e2e.processes import Processes, free_port
from tests.services import IN_CI


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: starts real web, worker, Redis and agent processes (select with -m e2e)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents and "procs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.redis)


@pytest.fixture
def database_url(postgres_service, transactional_db) -> str:
    """The per-run test database, committed-visible to children (the test runs with transaction=True)."""
    from django.db import connection

    settings = connection.settings_dict
    if not settings["ENGINE"].endswith("postgresql"):
        if IN_CI:
            pytest.fail("CI=true but the test database is not PostgreSQL")
        pytest.skip("multi-process tests need the PostgreSQL test database")
    return f"{postgres_service}/{settings['NAME']}"


@pytest.fixture
def redis_port(redis_service) -> int:
    """A port for a private redis-server: tests stop it at will and never touch the shared one."""
    if not shutil.which("redis-server"):
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    return free_port()


@pytest.fixture
def procs(tmp_path, database_url, redis_port, request):
    p = Processes(tmp_path / "logs", database_url=database_url, broker_url=f"redis://127.0.0.1:{redis_port}/0")
    yield p
    p.close()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(p.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
