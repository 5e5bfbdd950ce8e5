"""A violation's card carries the whole waiver lifecycle: who waived it, why, until when; revoke and
extend; bulk acknowledge and waive; downloads of the filtered list; evidence as JSON; refusals audited."""
import csv
import io
import json
from datetime import timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse
from django.utils import timezone

from fleet.accounts.models import AuditEntry
from fleet.inventory.models import Host
from fleet.policy.models import Violation, ViolationEvent, Waiver
from fleet.policy.services import violation_waive
from fleet.web.forms import BULK_MAX
from tests.accounts.fleet_data import a_violation

pytestmark = pytest.mark.django_db


def _later(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def host(db):
    return Host.objects.create(hostname="lifecycle-01")


@pytest.fixture
def waived(host, reviewer):
    violation = a_violation(host, subject_id="7")
    waiver = violation_waive(violation=violation, justification="tenant accepted the shared group until the move",
                             expires_at=timezone.now() + timedelta(days=3), by="alice")
    return violation, waiver


def test_a_waived_card_shows_who_why_and_until_when_and_offers_revoke_and_extend_not_waive(client, reviewer, waived):
    violation, waiver = waived
    client.force_login(reviewer)
    html = client.get(reverse("web:violations") + "?status=waived").content.decode()
    card = html[html.index(f'id="violation-{violation.pk}"'):]
    card = card[:card.index("</ol>")]  # the only card on this page
    assert "alice" in card and "tenant accepted the shared group" in card
    assert f'{timezone.localtime(waiver.expires_at, dt_timezone.utc):%Y-%m-%d %H:%M}' in card
    assert "Revoke waiver" in card and "Extend" in card
    assert "Waive…" not in card


def test_revoking_puts_the_violation_back_in_the_open_list_and_is_audited(client, reviewer, waived):
    violation, waiver = waived
    client.force_login(reviewer)
    assert client.post(reverse("web:waiver-revoke", args=[waiver.pk])).status_code == 302
    waiver.refresh_from_db()
    assert waiver.revoked_by == reviewer.username
    assert f'id="violation-{violation.pk}"' in client.get(reverse("web:violations")).content.decode()
    assert AuditEntry.objects.filter(action="waiver.revoke", actor_name=reviewer.username).exists()


def test_extending_moves_the_expiry_records_it_and_refuses_the_past(client, reviewer, waived):
    violation, waiver = waived
    client.force_login(reviewer)
    client.post(reverse("web:waiver-extend", args=[waiver.pk]), {"expires_at": _later(30)})
    waiver.refresh_from_db()
    violation.refresh_from_db()
    assert waiver.expires_at > timezone.now() + timedelta(days=29)
    assert violation.waived_until == waiver.expires_at
    event = ViolationEvent.objects.filter(violation=violation, kind="waived").order_by("-id").first()
    assert "extended_from" in event.detail
    assert AuditEntry.objects.filter(action="waiver.extend").count() == 1
    client.post(reverse("web:waiver-extend", args=[waiver.pk]), {"expires_at": "2001-01-01T00:00"})
    waiver.refresh_from_db()
    assert waiver.expires_at > timezone.now() + timedelta(days=29)  # unchanged
    assert AuditEntry.objects.filter(action="waiver.extend").count() == 1


def test_bulk_acknowledge_keeps_the_note_on_every_ticked_violation(client, reviewer, host):
    chosen = [a_violation(host, subject_id=str(i)) for i in range(3)]
    other = a_violation(host, subject_id="99")
    client.force_login(reviewer)
    client.post(reverse("web:violations-bulk"), {"action": "acknowledge", "note": "ticket OPS-17",
                                                 "ids": [v.pk for v in chosen]})
    for v in chosen:
        v.refresh_from_db()
        assert v.acknowledged_by == reviewer.username
        assert ViolationEvent.objects.get(violation=v, kind="acknowledged").detail == {"note": "ticket OPS-17"}
    other.refresh_from_db()
    assert not other.acknowledged_at


def test_bulk_waive_needs_a_justification_and_a_future_expiry_and_is_all_or_nothing(client, reviewer, host):
    chosen = [a_violation(host, subject_id=str(i)) for i in range(2)]
    client.force_login(reviewer)
    ids = [v.pk for v in chosen]
    client.post(reverse("web:violations-bulk"), {"action": "waive", "ids": ids, "justification": "", "expires_at": _later(5)})
    client.post(reverse("web:violations-bulk"), {"action": "waive", "ids": ids, "justification": "maintenance window agreed",
                                                 "expires_at": "2001-01-01T00:00"})
    assert not Waiver.objects.exists()
    client.post(reverse("web:violations-bulk"), {"action": "waive", "ids": ids, "justification": "maintenance window agreed",
                                                 "expires_at": _later(5)})
    assert Waiver.objects.filter(violation__in=chosen).count() == 2


def test_bulk_past_its_bound_changes_nothing(client, reviewer, host):
    many = [a_violation(host, subject_id=f"{i:04d}") for i in range(BULK_MAX + 1)]
    client.force_login(reviewer)
    client.post(reverse("web:violations-bulk"), {"action": "acknowledge", "ids": [v.pk for v in many]})
    assert not Violation.objects.filter(acknowledged_at__isnull=False).exists()


def test_a_viewers_refused_change_is_audited(client, viewer, host):
    violation = a_violation(host)
    client.force_login(viewer)
    assert client.post(reverse("web:violations-bulk"), {"action": "acknowledge", "ids": [violation.pk]}).status_code == 403
    denied = AuditEntry.objects.get(action="access.denied")
    assert denied.actor_name == viewer.username and denied.subject == reverse("web:violations-bulk")
    client.get(reverse("web:violations"))  # reading is not a refused change
    assert AuditEntry.objects.filter(action="access.denied").count() == 1


def test_downloads_hold_exactly_the_filtered_violations_with_absolute_links(client, viewer, host):
    other = Host.objects.create(hostname="=other|'cmd'")
    mine = [a_violation(host, subject_id=str(i)) for i in range(3)]
    theirs = a_violation(other, subject_id="1", rule="unknown-holder", severity="high")
    client.force_login(viewer)
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("web:violations-export-csv") + "?host=lifecycle-01").content.decode())))
    assert sorted(int(r["id"]) for r in rows) == sorted(v.pk for v in mine)
    assert all(r["link"].startswith("http://testserver/violations/?host=lifecycle-01") for r in rows)
    data = client.get(reverse("web:violations-export-json") + "?severity=high").json()
    assert [v["id"] for v in data["violations"]] == [theirs.pk]
    body = client.get(reverse("web:violations-export-csv") + "?severity=high").content.decode()
    assert "'=other" in body  # a hostname that is a formula is defused


def test_evidence_reads_as_json_not_python(client, viewer, host):
    violation = a_violation(host)
    violation.evidence = {"members": ["0000:01:00.0"], "owners": {"vm": "tenant-a"}, "viable": False}
    violation.save()
    client.force_login(viewer)
    html = client.get(reverse("web:violations")).content.decode()
    evidence = html[html.index('class="evidence"'):]
    evidence = evidence[:evidence.index("</pre>")]
    assert "&quot;viable&quot;: false" in evidence and "False" not in evidence and "&#x27;" not in evidence
    assert json.loads(evidence.split(">", 1)[1].replace("&quot;", '"'))["owners"] == {"vm": "tenant-a"}
