"""Host token lifecycle: issue (enrolling the host, pending), revoke, rotate. Secrets are returned once, never stored.

Each is an operator's decision and goes to the audit log here, with the role and labels given at issue.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host

from ..models import HostToken
from ..tokens import token_generate, token_hash
from .hosts import host_labels_add, host_role_set


def _token_issue(host: Host) -> str:
    secret = token_generate()
    token = HostToken.objects.create(host=host, token_hash=token_hash(secret))
    audit_record(action="host_token.issue", subject=f"token {token.pk} of host {host.hostname}",
                 after={"id": token.pk, "host": host.hostname})
    return secret


@transaction.atomic
def host_token_create(*, hostname: str, role: str | None = None, labels: list[str] | None = None) -> tuple[Host, str]:
    """A new token for `hostname` (creating the host, pending enrollment). The secret is returned, never stored."""
    host, _ = Host.objects.get_or_create(hostname=hostname)
    if role is not None:
        host_role_set(host, role)
    if labels:
        host_labels_add(host, labels)
    return host, _token_issue(host)


@transaction.atomic
def host_token_revoke(*, hostname: str) -> int:
    """Revoke every active token of the host; returns how many."""
    tokens = list(HostToken.objects.select_for_update().filter(host__hostname=hostname, revoked_at__isnull=True).order_by("pk"))
    now = timezone.now()
    HostToken.objects.filter(pk__in=[token.pk for token in tokens]).update(revoked_at=now)
    for token in tokens:
        audit_record(action="host_token.revoke", subject=f"token {token.pk} of host {hostname}",
                     before={"revoked_at": None}, after={"revoked_at": now.isoformat()})
    return len(tokens)


@transaction.atomic
def host_token_rotate(*, hostname: str) -> str:
    """Revoke the host's tokens and issue a new one; `Host.DoesNotExist` for an unknown host."""
    host = Host.objects.get(hostname=hostname)
    host_token_revoke(hostname=hostname)
    return _token_issue(host)
