"""The pre-flight run for one request: the host's current facts from the inventory, the stored intent,
the pure pre-flight, and one audit entry per call (allowed, denied or refused as invalid)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host
from fleet.inventory.selectors import host_state
from fleet.policy.models import Violation
from fleet.policy.selectors import intent_current
from fleet.policy.services import host_context

from .preflight import PreflightInvalid, preflight


STATE_CACHE_HOSTS = 16
# (database, host id, applied snapshot, content hash) -> the host's state: a VM-start path asks about the same host
# again and again, and rebuilding a 504-device state from the tables (2,000 JSON cells) is most of a pre-flight's time.
# The key moves with every applied snapshot; the pre-flight and the engine never change the state they are given.
_states: OrderedDict = OrderedDict()


def _host_state(host: Host) -> dict:
    key = (connection.settings_dict["NAME"], host.pk, host.applied_snapshot_id, host.applied_seq, host.content_hash)
    state = _states.get(key)
    if state is None:
        state = _states[key] = host_state(host)
        while len(_states) > STATE_CACHE_HOSTS:
            _states.popitem(last=False)
    else:
        _states.move_to_end(key)
    return state


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
            # The stored open violations are the engine's findings on the current state (the sync writes them):
            # one query instead of a second engine run, which kept a 504-device host's pre-flight past 50 ms.
            open_keys = set(Violation.objects.filter(host=host, status=Violation.Status.OPEN)
                            .values_list("rule", "subject_kind", "subject_id"))
            result = preflight(_host_state(host), devices, vm=vm, tenant=tenant, intent=intent,
                               context=host_context(host, now, intent=intent), open_keys=open_keys)
        except PreflightInvalid as exc:
            answer = PreflightAnswer(400, {exc.path: [str(exc)]})
        else:
            answer = PreflightAnswer(200, {"host": hostname, "owner": {"vm": vm, "tenant": tenant}, **result.as_dict()})
    decision = answer.body.get("decision", "invalid")
    audit_record(actor=actor, action="preflight", subject=f"host {hostname}"[:300],
                 after={**request, "decision": decision, "reasons": answer.body.get("reasons", answer.body)})
    return answer
