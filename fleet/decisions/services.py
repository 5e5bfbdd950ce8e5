"""The pre-flight run for one request: the host's current facts from the inventory, the stored intent,
the pure pre-flight, and one audit entry per call (allowed, denied or refused as invalid)."""
from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host
from fleet.inventory.selectors import host_state
from fleet.policy.selectors import intent_current
from fleet.policy.services import host_context

from .preflight import PreflightInvalid, preflight


@dataclass
class PreflightAnswer:
    status: int
    body: dict


def preflight_run(*, hostname: str, devices: list[str], vm: str, tenant: str | None, actor, token_prefix: str = "") -> PreflightAnswer:
    """Run a pre-flight and audit it; 404 for an unknown host, 400 (with the request path) for a device it cannot hand out."""
    request = {"host": hostname, "devices": devices, "owner": {"vm": vm, "tenant": tenant}, "token": token_prefix}
    host = Host.objects.filter(hostname=hostname).first()
    if host is None:
        answer = PreflightAnswer(404, {"host": [f"no host {hostname!r} in the fleet"]})
    else:
        now = timezone.now()
        intent = intent_current()
        try:
            result = preflight(host_state(host), devices, vm=vm, tenant=tenant, intent=intent,
                               context=host_context(host, now, intent=intent))
        except PreflightInvalid as exc:
            answer = PreflightAnswer(400, {exc.path: [str(exc)]})
        else:
            answer = PreflightAnswer(200, {"host": hostname, "owner": {"vm": vm, "tenant": tenant}, **result.as_dict()})
    decision = answer.body.get("decision", "invalid")
    audit_record(actor=actor, action="preflight", subject=f"host {hostname}"[:300],
                 after={**request, "decision": decision, "reasons": answer.body.get("reasons", answer.body)})
    return answer
