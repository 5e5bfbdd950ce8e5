"""Filing a host: its role and labels, each change an operator's decision and audited here once.

Used when a token is issued and by the demo loader, which files its hosts the way an operator would.
"""
from __future__ import annotations

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host, Label


def host_role_set(host: Host, role: str) -> None:
    """File the host under `role`; a change is audited."""
    if host.role == role:
        return
    Host.objects.filter(pk=host.pk).update(role=role)
    audit_record(action="host.update", subject=f"host {host.hostname}", before={"role": host.role}, after={"role": role})
    host.role = role


def host_labels_add(host: Host, names: list[str]) -> None:
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
