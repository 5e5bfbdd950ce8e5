"""POST /api/v1/snapshots and /api/v1/heartbeat: who may push, what is refused, what is stored."""
import copy
import gzip
import json

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from agent.snapshot import content_hash
from agent.upgrade import upgrade
from fleet.ingest.models import HostToken, Snapshot
from fleet.ingest.services import host_token_create, host_token_revoke, host_token_rotate
from fleet.inventory.models import Change, Host

pytestmark = pytest.mark.django_db

ISOLATED = "isolated-nics"


def problems(response):
    body = response.json()
    assert "errors" in body and body["errors"], body
    return body["errors"]


def test_an_unknown_token_is_refused_with_401_and_nothing_stored(enrolled, push):
    _, _, doc = enrolled(ISOLATED)
    for token in (None, "iof_not-a-token", "x" * 500):
        assert push(token, doc).status_code == 401
    assert Snapshot.objects.count() == 0


def test_a_revoked_token_is_refused_and_a_rotated_one_works(enrolled, push):
    host, token, doc = enrolled(ISOLATED)
    host_token_revoke(hostname=host.hostname)
    assert push(token, doc).status_code == 401
    fresh = host_token_rotate(hostname=host.hostname)
    assert push(fresh, doc).status_code == 202
    assert HostToken.objects.filter(host=host, revoked_at__isnull=True).count() == 1


def test_another_hosts_token_cannot_push_this_hosts_snapshot(enrolled, push):
    _, _, doc = enrolled(ISOLATED)
    _, other_token = host_token_create(hostname="someone-else")
    response = push(other_token, doc)
    assert response.status_code == 403
    assert problems(response)[0]["path"] == "$.host.hostname"
    assert Snapshot.objects.count() == 0


def test_the_first_report_pins_the_machine_id_and_a_different_one_is_refused(enrolled, push):
    host, token, doc = enrolled(ISOLATED)
    assert push(token, doc).status_code == 202
    host.refresh_from_db()
    assert host.machine_id == doc["host"]["machine_id"]
    impostor = json.loads(json.dumps(doc))
    impostor["seq"] = 2
    impostor["host"]["machine_id"] = "0" * 32
    response = push(token, impostor)
    assert response.status_code == 403
    assert problems(response)[0]["path"] == "$.host.machine_id"
    assert Snapshot.objects.count() == 1


def test_oversized_bodies_are_refused_with_413(enrolled, push, settings):
    _, token, doc = enrolled(ISOLATED)
    settings.FLEET_MAX_BODY_BYTES = 4096
    assert push(token, doc).status_code == 413
    assert push(token, doc, gzipped=True).status_code == 202


def test_a_gzip_bomb_is_refused_with_413(enrolled, push):
    _, token, _ = enrolled(ISOLATED)
    bomb = gzip.compress(b"\0" * (40 * 1024 * 1024))  # inflates past FLEET_MAX_SNAPSHOT_BYTES (32 MB)
    response = push(token, bomb, encoding="gzip")
    assert response.status_code == 413
    assert Snapshot.objects.count() == 0


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b"[1, 2]", b"null", b'"text"', b"{}" * 3, b"[" * 100000])
def test_malformed_json_is_a_400_with_a_list_of_problems(enrolled, push, body):
    _, token, _ = enrolled(ISOLATED)
    response = push(token, body)
    assert response.status_code == 400
    assert problems(response)
    assert Snapshot.objects.count() == 0


def test_every_wrongly_typed_field_is_named_by_its_json_path(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    doc["seq"] = "seven"
    doc["devices"][0]["driver"] = 5
    doc["groups"][1]["id"] = "one"
    doc["holders"][0]["pid"] = None
    response = push(token, doc)
    assert response.status_code == 400
    paths = {p["path"] for p in problems(response)}
    assert {"$.seq", "$.devices[0].driver", "$.groups[1].id", "$.holders[0].pid"} <= paths
    assert Snapshot.objects.count() == 0


def test_an_unknown_schema_version_is_refused(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    doc["schema"] = 3
    response = push(token, doc)
    assert response.status_code == 400
    assert problems(response)[0]["path"] == "$.schema"
    assert "versions 1 and 2" in problems(response)[0]["message"]


def test_a_schema_2_document_is_accepted_and_checked_against_schema_2(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    v2 = upgrade(doc)
    incomplete = copy.deepcopy(v2)
    del incomplete["holders"][0]["claims"]  # required in schema 2
    response = push(token, incomplete)
    assert response.status_code == 400 and problems(response)[0]["path"] == "$.holders[0]"
    assert push(token, v2).status_code == 202


def test_strings_postgresql_cannot_hold_are_refused_not_crashed_on(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    doc["holders"][0]["name"] = "qemu\x00evil"
    doc["devices"][1]["driver"] = "e1000\x00"
    response = push(token, doc)
    assert response.status_code == 400
    assert {"$.holders[0].name", "$.devices[1].driver"} <= {p["path"] for p in problems(response)}
    doc["devices"][1]["driver"] = "\ud800"  # a lone surrogate: not even JSON the parser accepts
    doc["holders"][0]["name"] = "qemu"
    assert push(token, doc).status_code == 400
    assert Snapshot.objects.count() == 0


def test_a_duplicate_bdf_is_refused(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    doc["devices"].append(dict(doc["devices"][0]))
    response = push(token, doc)
    assert response.status_code == 400
    assert Snapshot.objects.count() == 0


def test_an_accepted_snapshot_is_queued_by_id_and_applied(enrolled, push, queued):
    host, token, doc = enrolled(ISOLATED)
    response = push(token, doc, gzipped=True)
    assert response.status_code == 202
    snapshot = Snapshot.objects.get()
    assert response.json() == {"id": snapshot.pk, "status": "received"}
    assert queued == [snapshot.pk]
    assert json.loads(snapshot.document_bytes()) == doc
    assert snapshot.content_hash == content_hash(doc) and snapshot.seq == 1


def test_the_same_seq_sent_twice_is_answered_without_a_second_row_or_task(enrolled, push, queued):
    _, token, doc = enrolled(ISOLATED)
    first = push(token, doc)
    again = push(token, doc, gzipped=True)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert Snapshot.objects.count() == 1 and len(queued) == 1


def test_the_same_content_under_a_new_seq_while_pending_is_a_duplicate(enrolled, push, queued):
    _, token, doc = enrolled(ISOLATED)
    first = push(token, doc)
    doc["seq"] = 2
    doc["collected_at"] = "2030-01-01T00:00:00Z"
    again = push(token, doc)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Snapshot.objects.count() == 1 and len(queued) == 1


def test_an_unchanged_snapshot_only_touches_last_seen(enrolled, push):
    host, token, doc = enrolled(ISOLATED)
    assert push(token, doc).status_code == 202
    Host.objects.filter(pk=host.pk).update(stale=True)
    before = Host.objects.filter(pk=host.pk).values().get()
    doc["seq"] = 2
    doc["collected_at"] = "2030-01-01T00:00:00Z"
    doc["holders"][0]["vm_pinned_kb"] = 12345  # volatile: not part of the content hash
    response = push(token, doc)
    assert response.status_code == 200 and response.json()["status"] == "unchanged"
    after = Host.objects.filter(pk=host.pk).values().get()
    assert after["last_seen"] > before["last_seen"] and after["stale"] is False
    assert {k: v for k, v in after.items() if k not in ("last_seen", "stale")} == {k: v for k, v in before.items() if k not in ("last_seen", "stale")}
    assert Snapshot.objects.count() == 1 and Change.objects.count() == 1


def test_a_change_back_is_stored_even_when_the_host_row_was_read_before_a_concurrent_apply(enrolled, capture):
    # The race behind a lost snapshot: the push authenticated its host (applied hash A) just before
    # the worker committed pending snapshot B; the push of A again must be stored, not called unchanged.
    from fleet.ingest.services import snapshot_apply, snapshot_receive_document
    from tests.inventory.documents import document_of

    host, _token, doc_a = enrolled(ISOLATED)
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc_a).body["id"])
    read_before_apply = Host.objects.get(pk=host.pk)
    doc_b = document_of(capture("iommu-passthrough"), seq=2, hostname=host.hostname)
    doc_b["host"]["machine_id"] = doc_a["host"]["machine_id"]
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc_b).body["id"])
    again = snapshot_receive_document(host=read_before_apply, document=dict(doc_a, seq=3))
    assert again.http_status == 202 and again.body["status"] == "received"
    snapshot_apply(snapshot_id=again.body["id"])
    assert Host.objects.get(pk=host.pk).content_hash == Snapshot.objects.get(pk=again.body["id"]).content_hash


def test_going_back_to_an_earlier_state_is_applied_again(enrolled, push, capture):
    from tests.inventory.documents import document_of

    host, token, doc = enrolled(ISOLATED)
    other = document_of(capture("iommu-passthrough"), seq=2, hostname=host.hostname)
    other["host"]["machine_id"] = doc["host"]["machine_id"]
    doc3 = dict(doc, seq=3)
    assert [push(token, d).status_code for d in (doc, other, doc3)] == [202, 202, 202]
    host.refresh_from_db()
    assert host.content_hash == content_hash(doc) and host.applied_seq == 3


def test_a_heartbeat_with_the_current_hash_is_200_and_an_unknown_one_409(enrolled, push):
    host, token, doc = enrolled(ISOLATED)
    assert push(token, doc).status_code == 202
    Host.objects.filter(pk=host.pk).update(last_seen=timezone.now() - timezone.timedelta(hours=1), stale=True)
    ok = push(token, {"content_hash": content_hash(doc), "seq": 2}, path="/api/v1/heartbeat")
    assert ok.status_code == 200
    host.refresh_from_db()
    assert not host.stale and timezone.now() - host.last_seen < timezone.timedelta(minutes=1)
    assert push(token, {"content_hash": "0" * 64, "seq": 3}, path="/api/v1/heartbeat").status_code == 409
    assert push(token, {"content_hash": 5}, path="/api/v1/heartbeat").status_code == 400
    assert push("iof_wrong", {"content_hash": "0" * 64, "seq": 3}, path="/api/v1/heartbeat").status_code == 401



def test_an_unchanged_heartbeat_refreshes_its_tokens_last_use_now_and_then(enrolled, push):
    from fleet.ingest.services.receive import HEARTBEAT_TOKEN_TOUCH_EVERY

    host, token, doc = enrolled(ISOLATED)
    assert push(token, doc).status_code == 202
    beat = {"content_hash": content_hash(doc), "seq": 2}
    long_ago = timezone.now() - HEARTBEAT_TOKEN_TOUCH_EVERY - timezone.timedelta(minutes=5)
    HostToken.objects.filter(host=host).update(last_used_at=long_ago)
    assert push(token, beat, path="/api/v1/heartbeat").status_code == 200
    touched = HostToken.objects.get(host=host).last_used_at
    assert timezone.now() - touched < timezone.timedelta(minutes=1)
    # Within the interval the row is left alone (no write per heartbeat).
    assert push(token, dict(beat, seq=3), path="/api/v1/heartbeat").status_code == 200
    assert HostToken.objects.get(host=host).last_used_at == touched
    # A heartbeat the server cannot answer "unchanged" still counts as a use (through the full path).
    HostToken.objects.filter(host=host).update(last_used_at=long_ago)
    assert push(token, {"content_hash": "0" * 64, "seq": 4}, path="/api/v1/heartbeat").status_code == 409
    assert HostToken.objects.get(host=host).last_used_at > long_ago
    # A revoked token is refused and its record left as it was.
    host_token_revoke(hostname=host.hostname)
    revoked = HostToken.objects.get(host=host)
    HostToken.objects.filter(pk=revoked.pk).update(last_used_at=long_ago)
    assert push(token, beat, path="/api/v1/heartbeat").status_code == 401
    assert HostToken.objects.get(pk=revoked.pk).last_used_at == long_ago

def test_only_post_is_allowed(client):
    assert client.get("/api/v1/snapshots").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_is_committed_before_its_id_is_queued_and_202_returned(enrolled, push, monkeypatch):
    from fleet.ingest import tasks

    _, token, doc = enrolled(ISOLATED)
    seen_by_other_connection = []
    params = connection.get_connection_params()
    dsn = {k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}

    def from_outside(snapshot_id):
        with psycopg.connect(**dsn) as other:
            seen_by_other_connection.append(other.execute("SELECT status FROM ingest_snapshot WHERE id = %s", [snapshot_id]).fetchone())

    monkeypatch.setattr(tasks.snapshot_apply_task, "apply_async", lambda args, **options: from_outside(args[0]))
    response = push(token, doc)
    assert response.status_code == 202
    assert seen_by_other_connection == [("received",)]


def test_a_broker_outage_still_answers_202_and_leaves_the_snapshot_for_the_sweeper(enrolled, push, monkeypatch):
    from kombu.exceptions import OperationalError

    from fleet.ingest import tasks

    def broker_down(*args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.snapshot_apply_task, "apply_async", broker_down)
    _, token, doc = enrolled(ISOLATED)
    response = push(token, doc)
    assert response.status_code == 202
    assert Snapshot.objects.get(pk=response.json()["id"]).status == Snapshot.Status.RECEIVED


def test_after_a_late_snapshot_was_superseded_the_current_state_is_still_recognised_as_unchanged(enrolled, push, capture):
    from tests.inventory.documents import document_of

    host, token, current = enrolled(ISOLATED)
    current["seq"] = 3
    late = document_of(capture("iommu-passthrough"), seq=2, hostname=host.hostname)
    late["host"]["machine_id"] = current["host"]["machine_id"]
    assert [push(token, d).status_code for d in (current, late)] == [202, 202]
    assert Snapshot.objects.get(seq=2).status == Snapshot.Status.SUPERSEDED
    again = push(token, dict(current, seq=4))
    assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    assert Snapshot.objects.count() == 2
