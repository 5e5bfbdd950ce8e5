from tests.accounts.people import users  # noqa: F401  (one user per role)
from tests.e2e.conftest import database_url, procs, redis_port  # noqa: F401  (real processes on the test database)
