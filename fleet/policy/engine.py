"""Runs every rule on one host's state: pure, no database (services apply the findings), bounded in
work and output by `limits` whatever the host sent."""
from __future__ import annotations

from datetime import datetime

from . import limits
from .facts import HostContext, HostFacts
from .findings import Finding
from .intent import EMPTY, Intent
from .rules import ALL_RULES


def evaluate(state: dict, intent: Intent = EMPTY, *, now: datetime | None = None,
             context: HostContext | None = None) -> list[Finding]:
    """Every finding for `state` under `intent`, sorted by (rule, subject)."""
    context = context or HostContext()
    if now is not None and context.now is None:
        context = HostContext(**{**context.__dict__, "now": now})
    bounded, cut = limits.holders_bounded(state)
    facts = HostFacts.build(bounded, intent, context)
    findings: list[Finding] = []
    for rule in ALL_RULES:
        found = rule(facts)
        if found:
            findings.extend(limits.findings_bounded(found[0].rule, found))
    if cut:
        findings.append(limits.holders_left_out_finding(facts.hostname, cut, len(state.get("holders") or [])))
    return sorted(findings, key=lambda f: f.key)
