"""The heartbeat's one SQL statement leaves the rows its ORM reference leaves, in every case a heartbeat meets."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fleet.ingest.models import HostToken
from fleet.ingest.services.receive import HEARTBEAT_TOKEN_TOUCH_EVERY, _heartbeat_seen_orm
from fleet.ingest.statements import heartbeat_seen
from fleet.ingest.tokens import token_hash
from fleet.inventory.models import Host

pytestmark = pytest.mark.django_db

HELD, OTHER = "a" * 64, "b" * 64
# (name, token last used this long ago or None, revoked, host enrollment, hash sent)
CASES = [
    ("holds the state, token unused for long", timedelta(hours=1), False, "active", HELD),
    ("holds the state, token used a minute ago", timedelta(minutes=1), False, "active", HELD),
    ("holds the state, token never used", None, False, "pending", HELD),
    ("another state", timedelta(hours=1), False, "active", OTHER),
    ("revoked token", timedelta(hours=1), True, "active", HELD),
    ("retired host", timedelta(hours=1), False, "retired", HELD),
]


def played(seen, hostname, used_ago, revoked, enrollment, sent):
    now = timezone.now()
    long_ago = now - timedelta(days=2)
    host = Host.objects.create(hostname=hostname, content_hash=HELD, enrollment=enrollment, last_seen=long_ago, stale=True)
    secret = f"iof_{hostname}"
    HostToken.objects.create(host=host, token_hash=token_hash(secret), revoked_at=long_ago if revoked else None,
                             last_used_at=None if used_ago is None else now - used_ago)
    found = seen(token_digest=token_hash(secret), content_digest=sent, now=now, touch_before=now - HEARTBEAT_TOKEN_TOUCH_EVERY)
    host.refresh_from_db()
    token = HostToken.objects.get(host=host)
    return found, host.last_seen == now, host.stale, token.last_used_at == now


@pytest.mark.parametrize("name, used_ago, revoked, enrollment, sent", CASES, ids=[c[0] for c in CASES])
def test_the_heartbeat_statement_writes_what_the_orm_writes(name, used_ago, revoked, enrollment, sent):
    if connection.vendor != "postgresql":
        pytest.skip("the statement is PostgreSQL's")
    raw = played(heartbeat_seen, "raw", used_ago, revoked, enrollment, sent)
    orm = played(_heartbeat_seen_orm, "orm", used_ago, revoked, enrollment, sent)
    assert raw == orm
    if name == "holds the state, token unused for long":
        assert raw == (True, True, False, True)
    if name == "revoked token":
        assert raw == (False, False, True, False)
