"""Policy writes, by job: `sync` (the violation lifecycle), `triage` (waive, revoke, acknowledge, expiry),
`intent` (imports, baselines, admin edits), `quotas` (fleet-wide tenant PASID counts). Re-exports only."""
from .intent import baseline_accept, baseline_accept_first, intent_edit, intent_record_change, intent_replace, intent_version_bump
from .sync import fingerprint, host_context, stale_hosts_sync, violations_sync_fleet, violations_sync_for_host
from .triage import PolicyError, violation_acknowledge, violation_waive, waiver_extend, waiver_revoke, waivers_expire

__all__ = [
    "PolicyError", "baseline_accept", "baseline_accept_first", "fingerprint", "host_context", "intent_edit", "intent_record_change", "intent_replace",
    "intent_version_bump", "stale_hosts_sync", "violation_acknowledge", "violation_waive", "violations_sync_fleet",
    "violations_sync_for_host", "waiver_extend", "waiver_revoke", "waivers_expire",
]
