"""Isolation policy: the rule catalogue (DOMAIN.md §6), declared intent, violations with a lifecycle.

- `rules/` pure rule functions, `facts.py` the per-host indexes they read, `engine.evaluate()`
  runs them all without a database; why devices share a group is the agent's explanation
  (`agent.explain.group_reasons`), so the server and `fleet-agent show` say the same sentences.
- `intent.py` the declared intent as a value and its TOML form; `models.py` its editable
  tables, violations, waivers, history and the intent audit.
- `services/` writes: `sync` (violation lifecycle per host / fleet), `triage` (waive, revoke,
  acknowledge, expiry), `intent` (imports, baselines, admin edits), `quotas` (tenant PASIDs);
  `selectors.py` reads, `tasks.py` thin Celery adapters, `management/commands` the CLI.

Decisions worth knowing:
- group-changed compares on stable identity (`drift.py`, `agent.identity`): renumbered buses are no change, one finding
  per changed group. A host's first applied snapshot is its baseline (accepted by the engine); without one it is silent.
- group-shared-p2p is not reported for a mixed (non-viable) group: group-mixed-ownership is.
- unknown-holder: with tenants declared a holder must match one; without, a named VM or
  workload counts as known. UIO-only holders are left to uio-driver.
- pasid-quota: `settings.host_pasid_quota` bounds one host (the PASID allocator is per host);
  a tenant's `pasid_quota` is fleet-wide (its PASIDs summed over every host, counts kept in
  TenantPasidUsage) and is reported on each host where the tenant holds PASIDs.
- device-node-permissions does not count a root holder as an owner mismatch (root opens anything).
"""
