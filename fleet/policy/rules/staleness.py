"""Hosts that stopped reporting: what the dashboard shows for them may be false."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def stale_host(facts: HostFacts) -> list[Finding]:
    now, last_seen = facts.context.now, facts.context.last_seen
    if now is None or last_seen is None:
        return []
    threshold = facts.intent.stale_after_seconds or facts.context.default_stale_after_seconds
    age = (now - last_seen).total_seconds()
    if age <= threshold:
        return []
    # Message and evidence hold no "age so far": they must not change at every re-evaluation, or each
    # sync would record an `updated` event for a host that simply stays silent.
    return [Finding(
        "stale-host", "host", facts.hostname,
        f"no report since {last_seen.isoformat(timespec='seconds')} (threshold {threshold} s): what is shown for this host may be false.",
        evidence={"last_seen": last_seen.isoformat(), "threshold_seconds": threshold},
        remediation="check the agent (systemctl status iommu-fleet-agent), its token and the network path to the server.",
    )]


RULES = (stale_host,)
