"""The "before you upgrade" report: per host, the mappings a changed IOMMU layout would break.

A mapping is a VM (a holder the ownership model lets reach a device) or a declared intent device
expectation that names a driver or an owner. It is at risk when its device's group differs from the
accepted baseline (`fleet.policy.drift`: a split, merge, replaced member…) or when the device is not
in a group of its own (other endpoints share it: a BIOS or kernel that changes ACS handling regroups
it). Read from the stored host states and intent, a page of hosts at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from fleet.inventory.models import Host
from fleet.inventory.selectors import host_states
from fleet.policy.drift import group_drift
from fleet.policy.facts import HostFacts
from fleet.policy.rules.drivers import host_expectations
from fleet.policy.selectors import intent_current
from fleet.policy.services import host_context

HOSTS_PER_PAGE = 100


@dataclass
class UpgradeReport:
    hosts: list[dict] = field(default_factory=list)  # only hosts with at least one mapping at risk
    scanned: int = 0
    total: int = 0
    offset: int = 0


def _risks(facts: HostFacts, changed: dict[str, str], bdf: str) -> list[str]:
    out = []
    if bdf in changed:
        out.append(f"its group {changed[bdf]} since the accepted baseline")
    gid = (facts.devices.get(bdf) or {}).get("iommu_group")
    others = [b for b in facts.group_view(gid).endpoints if b != bdf] if gid in facts.groups else []
    if others:
        out.append(f"not in a group of its own: group {gid} also holds {', '.join(others)}")
    return out


def host_mappings_at_risk(facts: HostFacts) -> list[dict]:
    """The host's mappings whose device is in a changed group or shares its group, each with why."""
    baseline = facts.intent.baseline_for(facts.hostname)
    changed = {b: f"was {c.kind}" for c in (group_drift(baseline, facts.devices, facts.groups) if baseline else []) for b in c.bdfs}
    expectations = [e for e in host_expectations(facts) if e.owner or e.driver]
    out = []
    for bdf in sorted(facts.devices):
        vms = sorted({o.vm or o.workload or f"pid {o.pid}" for o in facts.owners_of(bdf)})
        intents = [e for e in expectations if e.matches_device(facts.devices[bdf])]
        if not (vms or intents):
            continue
        risks = _risks(facts, changed, bdf)
        if not risks:
            continue
        out += [{"bdf": bdf, "kind": "vm", "name": vm, "risks": risks} for vm in vms]
        out += [{"bdf": bdf, "kind": "intent", "name": e.name, "expects": e.owner or e.driver, "risks": risks} for e in intents]
    return out


def upgrade_report(*, offset: int = 0, hostname: str | None = None) -> UpgradeReport:
    hosts = Host.objects.exclude(enrollment=Host.Enrollment.RETIRED).filter(last_seen__isnull=False).order_by("hostname")
    if hostname:
        hosts = hosts.filter(hostname=hostname)
    report = UpgradeReport(total=hosts.count(), offset=offset)
    page = list(hosts.prefetch_related("labels")[offset:offset + HOSTS_PER_PAGE])
    states, intent, now = host_states(page), intent_current(), timezone.now()
    for host in page:
        facts = HostFacts.build(states[host.pk], intent, host_context(host, now, intent=intent))
        mappings = host_mappings_at_risk(facts)
        baseline = intent.baseline_for(host.hostname)
        if mappings:
            report.hosts.append({"host": host.hostname, "baseline_accepted_at": baseline.accepted_at if baseline else None,
                                 "baseline_accepted_by": baseline.accepted_by if baseline else None, "mappings": mappings})
    report.scanned = len(page)
    return report
