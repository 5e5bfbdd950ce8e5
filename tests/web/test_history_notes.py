"""The history timeline says in words what a violation event carried, never as raw JSON."""
import pytest
from django.urls import reverse
from django.utils.html import escape

from agent.paths import Root
from agent.snapshot import build
from fleet.ingest.services import snapshot_apply, snapshot_receive_document
from fleet.policy.models import Violation
from tests.accounts.fleet_data import import_capture

pytestmark = pytest.mark.django_db


def test_a_resolved_violation_shows_what_it_said_as_text(viewer_client, capture):
    root = capture("shared-bridge-group")
    host = import_capture(root)
    mixed = Violation.objects.get(host=host, rule="group-mixed-ownership", status="open")
    # The operator's fix from the remediation: bind the host-driven member of the group to vfio-pci too.
    doc = build(Root.of(root), seq=2)
    host_driven = mixed.message.split(" while ", 1)[1].split(" on ", 1)[0]
    next(d for d in doc["devices"] if d["bdf"] == host_driven)["driver"] = "vfio-pci"
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    mixed.refresh_from_db()
    assert mixed.status == "resolved"

    html = viewer_client.get(reverse("web:host-history", args=[host.hostname])).content.decode()
    timeline = html.split('class="timeline"', 1)[1]
    resolved = next(li for li in timeline.split("<li")[1:] if "tl-violation_resolved" in li)
    assert f"was: {escape(mixed.message)}" in resolved
    assert "last_message" not in resolved and "{" not in resolved
