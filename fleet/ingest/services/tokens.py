"""Host token lifecycle: issue (enrolling the host, pending), revoke, rotate. Secrets are returned once, never stored.

Each is an operator's decision and goes to the audit log here, with the role and labels given at issue.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host, Label

from ..models import HostToken
from ..tokens import token_generate, token_hash


def _token_issue(host: Host) -> str:
    secret = token_generate()
    token = HostToken.objects.create(host=host, token_hash=token_hash(secret))
    audit_record(action="host_token.issue", subject=f"token {token.pk} of host {host.hostname}",
                 after={"id": token.pk, "host": host.hostname})
    return secret


def _host_role_set(host: Host, role: str) -> None:
    if host.role == role:
        return
    Host.objects.filter(pk=host.pk).update(role=role)
    audit_record(action="host.update", subject=f"host {host.hostname}", before={"role": host.role}, after={"role": role})
    host.role = role


def _host_labels_add(host: Host, names: list[str]) -> None:
    """Attach labels by name (creating the missing ones); writes without signals, each write audited here once."""
    names = sorted(set(names))
    labels = {label.name: label for label in Label.objects.filter(name__in=names)}
    created = Label.objects.bulk_create([Label(name=name) for name in names if name not in labels])
    for label in created:
        audit_record(action="label.create", subject=f"label {label.name}", after={"id": label.pk, "name": label.name})
        labels[label.name] = label
    held = set(host.labels.filter(pk__in=[label.pk for label in labels.values()]).values_list("pk", flat=True))
    added = [label for label in labels.values() if label.pk not in held]
    if added:
        Host.labels.through.objects.bulk_create([Host.labels.through(host_id=host.pk, label_id=label.pk) for label in added])
        audit_record(action="host.labels_add", subject=f"host {host.hostname}",
                     after={"ids": sorted(label.pk for label in added), "names": sorted(label.name for label in added)})


@transaction.atomic
def host_token_create(*, hostname: str, role: str | None = None, labels: list[str] | None = None) -> tuple[Host, str]:
    """A new token for `hostname` (creating the host, pending enrollment). The secret is returned, never stored."""
    host, _ = Host.objects.get_or_create(hostname=hostname)
    if role is not None:
        _host_role_set(host, role)
    if labels:
        _host_labels_add(host, labels)
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
