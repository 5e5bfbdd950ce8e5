import pytest

from tests.accounts.people import people


@pytest.fixture
def users(db):
    return people()
