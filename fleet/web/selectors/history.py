"""A host's timeline (inventory changes + violation events) and the snapshots it can be diffed between."""
from __future__ import annotations

import json
from itertools import islice

from fleet.ingest.models import Snapshot
from fleet.inventory.diff import snapshot_changes
from fleet.inventory.models import Change, Host
from fleet.policy.models import ViolationEvent

TIMELINE_LIMIT = 500


def shown(value) -> str | None:
    """A change value as compact JSON text for the page (None stays None: "absent")."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def host_timeline(host: Host, *, limit: int = TIMELINE_LIMIT) -> list[dict]:
    """Newest first: every Change row and every violation event of the host, merged by time."""
    changes = [{
        "at": c.at, "source": "inventory", "kind": c.kind, "kind_label": c.get_kind_display(),
        "subject": c.subject, "before": shown(c.before), "after": shown(c.after), "snapshot_id": c.snapshot_id,
    } for c in Change.objects.filter(host=host).order_by("-at", "-id")[:limit]]
    events = [{
        "at": e.at, "source": "policy", "kind": f"violation_{e.kind}",
        "kind_label": f"violation {e.get_kind_display()}",
        "subject": f"{e.violation.rule} · {e.violation.subject_kind} {e.violation.subject_id}",
        "severity": e.violation.severity, "by": e.by, "before": None, "after": None, "note": event_note(e.detail),
        "rule": e.violation.rule, "violation_id": e.violation_id,
    } for e in ViolationEvent.objects.filter(violation__host=host).select_related("violation").order_by("-at", "-id")[:limit]]
    merged = sorted(changes + events, key=lambda r: r["at"], reverse=True)
    return list(islice(merged, limit))


def event_note(detail) -> str | None:
    """A violation event's detail as a sentence: what was last said when it resolved, a waiver's reason and expiry."""
    if not detail:
        return None
    if not isinstance(detail, dict):
        return shown(detail)
    parts = []
    if detail.get("last_message"):
        parts.append(f"was: {detail['last_message']}")
    before = detail.get("before")
    if isinstance(before, dict) and before.get("message"):
        parts.append(f"was: {before['message']}")
    if detail.get("extended_from"):
        parts.append(f"term moved from {detail['extended_from']}")
    elif detail.get("justification"):
        parts.append(f"“{detail['justification']}”")
    if detail.get("expires_at"):
        parts.append(f"until {detail['expires_at']}")
    if detail.get("note"):
        parts.append(str(detail["note"]))
    known = {"last_message", "before", "justification", "expires_at", "note", "waiver", "extended_from"}
    rest = {k: v for k, v in detail.items() if k not in known}
    if rest:
        parts.append(shown(rest))
    return " · ".join(parts) or None


def host_snapshots(host: Host, *, limit: int = 100) -> list[Snapshot]:
    return list(Snapshot.objects.filter(host=host).defer("raw").order_by("-id")[:limit])


def snapshot_document(host: Host, snapshot_id) -> dict | None:
    snap = Snapshot.objects.filter(host=host, pk=snapshot_id).first()
    if snap is None:
        return None
    return json.loads(snap.document_bytes())


def snapshots_diff(host: Host, old_id: int, new_id: int) -> list[dict] | None:
    """The change facts from one stored snapshot of `host` to another; None when either is not this host's."""
    old, new = snapshot_document(host, old_id), snapshot_document(host, new_id)
    if old is None or new is None:
        return None
    labels = dict(Change.Kind.choices)
    return [{**fact, "before": shown(fact["before"]), "after": shown(fact["after"]),
             "kind_label": labels.get(fact["kind"], fact["kind"])} for fact in snapshot_changes(old, new)]
