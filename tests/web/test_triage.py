"""Acknowledge and waive: POST with CSRF, only for users allowed to triage, through the policy services."""
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fleet.policy.models import Violation, ViolationEvent, Waiver
from tests.accounts.fleet_data import a_violation
from fleet.inventory.models import Host

pytestmark = pytest.mark.django_db


@pytest.fixture
def violation(db):
    return a_violation(Host.objects.create(hostname="triage-web"), subject_id="4")


def _waive(client, violation, **extra):
    expires = (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    data = {"justification": "lab host, tenant accepted the risk", "expires_at": expires, **extra}
    return client.post(reverse("web:violation-waive", args=[violation.pk]), data)


def test_a_viewer_cannot_waive_or_acknowledge(client, viewer, violation):
    client.force_login(viewer)
    assert _waive(client, violation).status_code == 403
    assert client.post(reverse("web:violation-acknowledge", args=[violation.pk])).status_code == 403
    assert not Waiver.objects.filter(violation=violation).exists()
    assert "Waive</button>" not in client.get(reverse("web:violations")).content.decode()


def test_a_reviewer_waives_with_justification_and_expiry_and_it_leaves_the_open_list(client, reviewer, violation):
    client.force_login(reviewer)
    assert "Waive</button>" in client.get(reverse("web:violations")).content.decode()
    assert _waive(client, violation).status_code == 302
    waiver = Waiver.objects.get(violation=violation)
    assert waiver.created_by == reviewer.username and "tenant accepted" in waiver.justification
    html = client.get(reverse("web:violations")).content.decode()
    assert f'id="violation-{violation.pk}"' not in html
    assert f'id="violation-{violation.pk}"' in client.get(reverse("web:violations") + "?status=waived").content.decode()


def test_a_waiver_without_justification_or_in_the_past_is_refused(client, reviewer, violation):
    client.force_login(reviewer)
    _waive(client, violation, justification="")
    _waive(client, violation, expires_at="2001-01-01T00:00")
    assert not Waiver.objects.filter(violation=violation).exists()


def test_acknowledge_records_who(client, reviewer, violation):
    client.force_login(reviewer)
    client.post(reverse("web:violation-acknowledge", args=[violation.pk]))
    violation.refresh_from_db()
    assert violation.acknowledged_by == reviewer.username
    assert ViolationEvent.objects.filter(violation=violation, kind="acknowledged").exists()


def test_waive_needs_the_csrf_token(reviewer, violation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert _waive(client, violation).status_code == 403
    assert Violation.objects.get(pk=violation.pk).waived_until is None


def test_the_acknowledgement_note_reaches_the_event_and_shows_on_the_page(client, reviewer, violation):
    client.force_login(reviewer)
    note = "paged at 03:10, tenant migrates off tomorrow"
    assert 'name="note"' in client.get(reverse("web:violations")).content.decode()
    client.post(reverse("web:violation-acknowledge", args=[violation.pk]), {"note": note})
    event = ViolationEvent.objects.get(violation=violation, kind="acknowledged")
    assert event.detail == {"note": note}
    html = client.get(reverse("web:violations")).content.decode()
    events = html.split(f'id="violation-{violation.pk}"', 1)[1].split('class="events"', 1)[1].split("</ul>", 1)[0]
    assert note in events


def test_an_overlong_acknowledgement_note_is_refused_with_a_message_not_truncated(client, reviewer, violation):
    client.force_login(reviewer)
    response = client.post(reverse("web:violation-acknowledge", args=[violation.pk]), {"note": "x" * 501}, follow=True)
    assert "not acknowledged" in response.content.decode()
    violation.refresh_from_db()
    assert violation.acknowledged_at is None


def test_the_page_shows_a_violations_latest_events_not_every_one(client, reviewer, violation):
    # Stands for a violation that flapped (resolved, reopened) every few minutes for weeks.
    from fleet.web.selectors.violations import EVENTS_SHOWN

    start = timezone.now() - timedelta(days=30)
    ViolationEvent.objects.bulk_create([
        ViolationEvent(violation=violation, kind="reopened" if i % 2 else "resolved", at=start + timedelta(minutes=i),
                       by="policy", detail={"note": f"flap {i:04d}"}) for i in range(3 * EVENTS_SHOWN)])
    client.force_login(reviewer)
    html = client.get(reverse("web:violations")).content.decode()
    events = html.split(f'id="violation-{violation.pk}"', 1)[1].split('class="events"', 1)[1].split("</ul>", 1)[0]
    shown = [f"flap {i:04d}" for i in range(3 * EVENTS_SHOWN) if f"flap {i:04d}" in events]
    assert shown == [f"flap {i:04d}" for i in range(2 * EVENTS_SHOWN, 3 * EVENTS_SHOWN)]  # the newest, oldest first
