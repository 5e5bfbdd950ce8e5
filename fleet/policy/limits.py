"""What one host's snapshot may cost the policy engine, whatever the host sent (issue 10 item 5).

The engine's work grows with holders × the groups, devices and nodes each one names; its output with
the findings each rule returns and the evidence each carries. A hostile host can make all of them
huge with a few hundred KB of JSON, so one evaluation is bounded here. Real hosts sit far below
(the 480-device bench host: 23 holders). Past a cap nothing is dropped silently: a finding says
how much was left out.
"""
from __future__ import annotations

import json
from dataclasses import replace

from .findings import Finding

MAX_HOLDERS = 2_000  # holders evaluated per host, in the snapshot's order
MAX_REFS_PER_HOLDER = 1_024  # groups, devices and nodes each one holder may name
MAX_HOLDER_REFS = 20_000  # groups + devices + nodes over all evaluated holders: the holders × groups work
MAX_FINDINGS_PER_RULE = 200  # per host; past it one summarising finding
MAX_EVIDENCE_BYTES = 16 * 1024  # JSON of one finding's evidence
MAX_TEXT_CHARS = 2_000  # a message or remediation
EVIDENCE_LIST_ITEMS = (50, 10, 3)  # what a shrunk evidence list keeps, tried in turn until the evidence fits
LEFT_OUT_LISTED = 20  # subjects a summarising finding names
HOLDER_REFS = ("groups", "devices", "nodes")


def holders_bounded(state: dict) -> tuple[dict, dict[str, int]]:
    """`state` with at most the capped holders and references (the same dict when within the caps), and
    what was cut: {"holders": left out, "references": cut from the evaluated ones}; {} when nothing."""
    holders = state.get("holders") or []
    sizes = [sum(len(h.get(k) or ()) for k in HOLDER_REFS) for h in holders]
    if (len(holders) <= MAX_HOLDERS and sum(sizes) <= MAX_HOLDER_REFS
            and all(len(h.get(k) or ()) <= MAX_REFS_PER_HOLDER for h in holders for k in HOLDER_REFS)):
        return state, {}
    kept, budget, cut_refs = [], MAX_HOLDER_REFS, 0
    for holder, size in zip(holders, sizes):
        trimmed = {k: list((holder.get(k) or ())[:MAX_REFS_PER_HOLDER]) for k in HOLDER_REFS}
        used = sum(len(v) for v in trimmed.values())
        if len(kept) == MAX_HOLDERS or used > budget:
            break  # this one and the rest: left out, in order, so the cut is the same on every evaluation
        kept.append({**holder, **trimmed})
        budget -= used
        cut_refs += size - used
    return {**state, "holders": kept}, {"holders": len(holders) - len(kept), "references": cut_refs}


def holders_left_out_finding(hostname: str, cut: dict[str, int], total: int) -> Finding:
    """The one finding saying the engine did not look at all of this host's holders."""
    return Finding(
        "unknown-holder", "host", hostname,
        f"{cut['holders']} of this host's {total} holders were not evaluated and {cut['references']} group/device/node "
        f"references of the others were cut: one host may show at most {MAX_HOLDERS} holders naming {MAX_HOLDER_REFS} "
        f"references in all ({MAX_REFS_PER_HOLDER} each).",
        evidence={"holders_left_out": cut["holders"], "references_cut": cut["references"], "holders": total,
                  "caps": {"holders": MAX_HOLDERS, "references": MAX_HOLDER_REFS, "per_holder": MAX_REFS_PER_HOLDER}},
        remediation="find out why the host reports so many VFIO/iommufd holders (a compromised or broken agent, or a "
                    "fork storm); processes the engine did not evaluate are unattributed DMA-capable access.",
    )


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS - 1] + "…"


def _shrunk(value, items: int):
    """Lists cut to their first `items` with a note of how many went; long strings cut."""
    if isinstance(value, dict):
        return {k: _shrunk(v, items) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        kept = [_shrunk(v, items) for v in value[:items]]
        return kept + ([f"… {len(value) - items} more"] if len(value) > items else [])
    if isinstance(value, str):
        return _text(value)
    return value


def _size(evidence: dict) -> int:
    return len(json.dumps(evidence, default=str))


def finding_bounded(f: Finding) -> Finding:
    """`f` with its message, remediation and evidence within the caps (the same finding when they are)."""
    size = _size(f.evidence)
    if size <= MAX_EVIDENCE_BYTES and len(f.message) <= MAX_TEXT_CHARS and len(f.remediation) <= MAX_TEXT_CHARS:
        return f
    evidence = f.evidence
    if size > MAX_EVIDENCE_BYTES:
        shrunk = (_shrunk(evidence, items) for items in EVIDENCE_LIST_ITEMS)
        evidence = next((e for e in shrunk if _size(e) < MAX_EVIDENCE_BYTES - 100), None)  # room for the marker
        if evidence is None:
            evidence = {"keys": sorted(map(str, f.evidence))[:LEFT_OUT_LISTED]}
        evidence = {**evidence, "truncated": True, "bytes": size}
    return replace(f, message=_text(f.message), remediation=_text(f.remediation), evidence=evidence)


def findings_bounded(rule: str, findings: list[Finding]) -> list[Finding]:
    """At most MAX_FINDINGS_PER_RULE of one rule's findings (the first by subject), each within the caps,
    plus one finding naming how many were left out."""
    if len(findings) <= MAX_FINDINGS_PER_RULE:
        return [finding_bounded(f) for f in findings]
    ordered = sorted(findings, key=lambda f: f.key)
    kept, rest = ordered[:MAX_FINDINGS_PER_RULE], ordered[MAX_FINDINGS_PER_RULE:]
    summary = Finding(
        rule, "rule", rule,
        f"{len(rest)} more {rule} findings on this host are not listed: one host opens at most {MAX_FINDINGS_PER_RULE} per rule.",
        evidence={"left_out": len(rest), "cap": MAX_FINDINGS_PER_RULE, "listed": len(kept),
                  "first_left_out": [f"{f.subject_kind} {f.subject_id}"[:200] for f in rest[:LEFT_OUT_LISTED]]},
        remediation="fix the listed ones first; the rest are listed as those resolve (the host page shows the whole inventory).",
    )
    return [finding_bounded(f) for f in kept] + [summary]
