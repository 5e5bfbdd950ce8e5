"""A small fleet for the access and API tests: one real capture pushed through the ingest path."""
from django.utils import timezone

from agent.paths import Root
from agent.snapshot import build
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import AddressSpace, Change, Device, Group, Holder, Host


def import_capture(root) -> Host:
    doc = build(Root.of(root), seq=1)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    result = snapshot_receive_document(host=host, document=doc)
    assert result.http_status == 202, result
    # The task runs on commit, which a test transaction never reaches: apply it the way the task does.
    snapshot_apply(snapshot_id=result.body["id"])
    return Host.objects.get(pk=host.pk)


def a_violation(host, *, rule="group-mixed-ownership", severity="critical", subject_kind="group", subject_id="5"):
    """A hand-made open violation (the policy engine is tested on its own; here we only need a row)."""
    from fleet.policy.models import Violation

    now = timezone.now()
    return Violation.objects.create(
        host=host, rule=rule, severity=severity, subject_kind=subject_kind, subject_id=subject_id,
        message=f"{rule} on {subject_kind} {subject_id}", opened_at=now, updated_at=now, last_seen_at=now,
        fingerprint=f"{host.pk}-{rule}-{subject_kind}-{subject_id}".ljust(64, "0")[:64],
    )


def sample_objects(host) -> dict:
    """One object of each kind the URL patterns take an id of, creating a holder if the capture has none."""
    holder = Holder.objects.filter(host=host).first() or Holder.objects.create(host=host, pid=4242, name="qemu-system-x86")
    change = Change.objects.filter(host=host).first() or Change.objects.create(host=host, at=timezone.now(), kind="other")
    space = AddressSpace.objects.filter(host=host).first() or AddressSpace.objects.create(
        host=host, key=f"{holder.pid}:7", pid=holder.pid, fd=7, kind="vfio-container", backend="legacy")
    return {
        "host": host,
        "address-space": space,
        "device": Device.objects.filter(host=host).first(),
        "group": Group.objects.filter(host=host).first(),
        "holder": holder,
        "change": change,
        "violation": a_violation(host),
    }
