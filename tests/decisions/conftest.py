from tests.accounts.people import users  # noqa: F401  (one user per role)
