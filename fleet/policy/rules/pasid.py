"""PASIDs: device/IOMMU capability mismatches and the quotas the kernel does not enforce (DOMAIN.md §7).

Two quotas, two scopes. The host quota bounds one host's PASID users: the PASID space is
one global allocator per host. A tenant's quota is fleet-wide: it bounds what the tenant
consumes wherever its VMs and workloads run, so it is compared with the tenant's PASIDs on
this host plus those on every other host (`HostContext.tenant_pasids_elsewhere`, which the
services fill from the other hosts' last evaluation). It is reported on each host where
the tenant holds PASIDs, so the fix can start on any of them.
"""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def _unit_gaps(unit: dict, pasid: dict, pri: dict) -> list[str]:
    features = unit.get("features") or {}
    vendor = unit.get("vendor")
    gaps = []
    if pasid.get("enabled"):
        if vendor == "intel" and features.get("pasid") is False:
            gaps.append("PASID is enabled but the IOMMU lacks PASID support (ecap PASID=0)")
        if vendor == "amd" and (features.get("gt") is False or features.get("ppr") is False):
            gaps.append("PASID is enabled but the IOMMU lacks GT/PPR")
        width, unit_width = pasid.get("width"), features.get("pasid_width")
        if width is not None and unit_width is not None and width > unit_width:
            gaps.append(f"device PASID width {width} exceeds the IOMMU's {unit_width}")
    if pri.get("enabled"):
        if vendor == "intel" and features.get("page_requests") is False:
            gaps.append("PRI is enabled but the IOMMU lacks page requests (ecap PRS=0)")
        if vendor == "amd" and features.get("ppr") is False:
            gaps.append("PRI is enabled but the IOMMU lacks PPR")
    return gaps


def pasid_unsupported_by_iommu(facts: HostFacts) -> list[Finding]:
    out = []
    for bdf in sorted(facts.devices):
        caps = facts.devices[bdf].get("capabilities") or {}
        pasid, pri = caps.get("pasid") or {}, caps.get("pri") or {}
        if not (pasid.get("enabled") or pri.get("enabled")):
            continue
        unit = facts.unit_of(bdf)
        if unit is None:
            continue
        gaps = _unit_gaps(unit, pasid, pri)
        if not gaps:
            continue
        out.append(Finding(
            "pasid-unsupported-by-iommu", "device", bdf, f"{bdf}: {'; '.join(gaps)}.",
            evidence={"bdf": bdf, "pasid": pasid, "pri": pri, "unit": unit.get("name"),
                      "unit_features": {k: (unit.get("features") or {}).get(k) for k in ("pasid", "page_requests", "gt", "ppr", "pasid_width")}},
            remediation=f"disable PASID/PRI on {bdf} or move it under an IOMMU that supports them (scalable mode, SVA).",
        ))
    return out


def _user_tenants(facts: HostFacts, user: dict) -> list[str]:
    tenant = facts.tenant_by_pid.get(user.get("pid"))
    if tenant:
        return [tenant.name]
    return sorted({o.tenant for o in facts.owners_of(user.get("device") or "") if o.tenant})


def _users_by_tenant(facts: HostFacts) -> dict[str, list[dict]]:
    by_tenant: dict[str, list[dict]] = {}
    for user in (facts.state.get("pasid") or {}).get("users") or []:
        for name in _user_tenants(facts, user):
            by_tenant.setdefault(name, []).append(user)
    return by_tenant


def tenant_pasid_usage(state: dict, intent) -> dict[str, int]:
    """PASID users per tenant on this host (what the other hosts' quota checks add up)."""
    if not intent.tenants or not (state.get("pasid") or {}).get("users"):
        return {}
    return {name: len(users) for name, users in _users_by_tenant(HostFacts.build(state, intent)).items()}


def pasid_quota(facts: HostFacts) -> list[Finding]:
    users = (facts.state.get("pasid") or {}).get("users") or []
    out = []
    quota = facts.intent.host_pasid_quota
    if quota is not None and len(users) > quota:
        out.append(Finding(
            "pasid-quota", "host", facts.hostname,
            f"{len(users)} PASID users on this host exceed the host quota of {quota}.",
            evidence={"quota": quota, "count": len(users), "users": users},
            remediation="stop PASID consumers (idxd work-queue openers, SVA users) or raise the host quota in the intent.",
        ))
    by_tenant = _users_by_tenant(facts) if users else {}
    elsewhere = facts.context.tenant_pasids_elsewhere
    for tenant in facts.intent.tenants:
        used = by_tenant.get(tenant.name, [])
        other = int(elsewhere.get(tenant.name, 0))
        total = len(used) + other
        # Reported where the tenant holds PASIDs: a host it does not use has nothing to fix.
        if tenant.pasid_quota is None or not used or total <= tenant.pasid_quota:
            continue
        where = "on this host" if not other else f"across the fleet ({len(used)} on this host, {other} on other hosts)"
        consumers = sorted({(f"pid {u['pid']}" if u.get("pid") is not None else "PASID enabled") + f" on {u.get('device')}"
                            for u in used})
        out.append(Finding(
            "pasid-quota", "tenant", tenant.name,
            f"tenant {tenant.name} uses {total} PASIDs {where}, over its fleet-wide quota of {tenant.pasid_quota}.",
            evidence={"tenant": tenant.name, "quota": tenant.pasid_quota, "fleet_total": total, "on_this_host": len(used),
                      "on_other_hosts": other, "users": used},
            remediation=f"stop {total - tenant.pasid_quota} of tenant {tenant.name}'s PASID consumers (here: "
                        f"{', '.join(consumers[:5])}{' …' if len(consumers) > 5 else ''}) or raise its pasid_quota in the intent.",
        ))
    return out


RULES = (pasid_unsupported_by_iommu, pasid_quota)
