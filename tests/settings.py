"""Test settings: the real PostgreSQL server when it answers (always under CI=true), else SQLite."""
import os

from tests.services import IN_CI, POSTGRES, reachable

if "DATABASE_URL" not in os.environ:
    if reachable(POSTGRES):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/fleet"
    elif IN_CI:
        raise RuntimeError("CI=true but PostgreSQL at 127.0.0.1:5432 is not reachable")

from fleet.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Several test runs may share one PostgreSQL server (parallel sessions, CI beside a developer):
# give each run its own test database.
DATABASES["default"]["TEST"] = {"NAME": f"test_fleet_{os.getpid()}"}  # noqa: F405
