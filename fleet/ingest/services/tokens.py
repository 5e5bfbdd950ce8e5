"""Host token lifecycle: issue (enrolling the host, pending), revoke, rotate. Secrets are returned once, never stored."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from fleet.inventory.models import Host, Label

from ..models import HostToken
from ..tokens import token_generate, token_hash


@transaction.atomic
def host_token_create(*, hostname: str, role: str | None = None, labels: list[str] | None = None) -> tuple[Host, str]:
    """A new token for `hostname` (creating the host, pending enrollment). The secret is returned, never stored."""
    host, _ = Host.objects.get_or_create(hostname=hostname)
    if role is not None:
        host.role = role
        host.save(update_fields=["role"])
    for name in labels or []:
        label, _ = Label.objects.get_or_create(name=name)
        host.labels.add(label)
    secret = token_generate()
    HostToken.objects.create(host=host, token_hash=token_hash(secret))
    return host, secret


@transaction.atomic
def host_token_revoke(*, hostname: str) -> int:
    """Revoke every active token of the host; returns how many."""
    tokens = list(HostToken.objects.select_for_update().filter(host__hostname=hostname, revoked_at__isnull=True))
    for token in tokens:  # save(), not update(): the audit log (fleet.accounts) records each revocation from post_save
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return len(tokens)


@transaction.atomic
def host_token_rotate(*, hostname: str) -> str:
    host = Host.objects.get(hostname=hostname)
    host_token_revoke(hostname=hostname)
    secret = token_generate()
    HostToken.objects.create(host=host, token_hash=token_hash(secret))
    return secret
