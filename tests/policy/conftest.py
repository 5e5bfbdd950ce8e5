import pytest

from fleet.policy import selectors


@pytest.fixture(autouse=True)
def _cold_intent_cache():
    # Tests write intent rows directly too (hand-made states); each starts like a freshly started worker.
    selectors._intent_cache = None
    yield
    selectors._intent_cache = None
