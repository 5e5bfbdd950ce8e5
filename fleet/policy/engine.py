"""Runs every rule on one host's state: pure, no database (services apply the findings)."""
from __future__ import annotations

from datetime import datetime

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
    facts = HostFacts.build(state, intent, context)
    findings: list[Finding] = []
    for rule in ALL_RULES:
        findings.extend(rule(facts))
    return sorted(findings, key=lambda f: f.key)
