"""Fleet-wide tenant PASID quotas: each host's per-tenant counts, kept so one host's sync sees the others'.

A tenant's quota bounds its PASIDs over the whole fleet, so evaluating one host needs the other
hosts' counts (`TenantPasidUsage`, written here by each sync) instead of their whole states.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from fleet.inventory.models import Host, PasidUser

from .. import selectors
from ..intent import Intent
from ..models import TenantPasidUsage
from ..rules.pasid import tenant_pasid_usage

FLEET_CHUNK = 200  # hosts whose states are built at once (one query per inventory table per chunk)


def quotas(intent: Intent) -> dict[str, int]:
    return {t.name: t.pasid_quota for t in intent.tenants if t.pasid_quota is not None}


def tenant_pasids_elsewhere(*, host: Host, intent: Intent) -> dict[str, int]:
    """PASIDs each quota-bound tenant uses on the other hosts, as of their last evaluation."""
    bound = quotas(intent)
    if not bound:
        return {}
    rows = (TenantPasidUsage.objects.filter(tenant__in=bound).exclude(host=host)
            .values("tenant").annotate(n=Sum("count")).values_list("tenant", "n"))
    return {tenant: n for tenant, n in rows if n}


def pasid_usage_store(*, host: Host, usage: dict[str, int], now: datetime) -> dict[str, int]:
    """Replace `host`'s per-tenant PASID counts; returns the previous ones."""
    previous = dict(TenantPasidUsage.objects.filter(host=host).values_list("tenant", "count"))
    if previous != usage:
        TenantPasidUsage.objects.filter(host=host).delete()
        TenantPasidUsage.objects.bulk_create(TenantPasidUsage(host=host, tenant=t, count=n, updated_at=now) for t, n in usage.items())
    return previous


def hosts_to_recheck(*, host: Host, intent: Intent, before: dict, after: dict, elsewhere: dict) -> list[int]:
    """Other hosts whose tenant quota finding this host's change affects (crossed, or an over-quota total moved)."""
    tenants = []
    for tenant, quota in quotas(intent).items():
        old, new = before.get(tenant, 0) + elsewhere.get(tenant, 0), after.get(tenant, 0) + elsewhere.get(tenant, 0)
        if old != new and (old > quota or new > quota):
            tenants.append(tenant)
    if not tenants:
        return []
    return sorted(set(TenantPasidUsage.objects.filter(tenant__in=tenants).exclude(host=host).values_list("host_id", flat=True)))


@transaction.atomic
def fleet_pasid_usage_refresh(*, hosts, intent: Intent, now: datetime) -> dict[int, dict[str, int]]:
    """Recount every host's tenant PASIDs under `intent` (its patterns may have changed) before any host is
    evaluated, so each sees the exact fleet totals; returns host pk -> the other hosts' counts per tenant."""
    usage: dict[int, dict[str, int]] = {}
    bound = quotas(intent)
    if bound:
        with_users = sorted(set(PasidUser.objects.filter(host__in=hosts).values_list("host_id", flat=True)))
        for i in range(0, len(with_users), FLEET_CHUNK):
            chunk = list(hosts.filter(pk__in=with_users[i:i + FLEET_CHUNK]))
            for pk, state in selectors.host_states(chunk).items():
                if counted := tenant_pasid_usage(state, intent):
                    usage[pk] = counted
    TenantPasidUsage.objects.all().delete()
    TenantPasidUsage.objects.bulk_create(TenantPasidUsage(host_id=pk, tenant=t, count=n, updated_at=now)
                                         for pk, counted in usage.items() for t, n in counted.items())
    totals = {t: sum(c.get(t, 0) for c in usage.values()) for t in bound}
    # Only hosts where a tenant has PASIDs can report its quota, so only they need the others' counts.
    return {pk: {t: totals[t] - c.get(t, 0) for t in bound if totals[t] - c.get(t, 0)} for pk, c in usage.items()}
