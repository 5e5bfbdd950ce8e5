"""The sync's plan: every finding's violation opened, kept, updated or reopened, the rest resolved; decided without a database."""
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.inventory.models import Host
from fleet.policy.findings import Finding
from fleet.policy.models import Violation
from fleet.policy.services.sync import SyncPlan, fingerprint, violations_sync_for_host

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=1)
HOST = Host(pk=7, hostname="hv-7")


def _finding(gid: str, message: str = "group shares DMA") -> Finding:
    return Finding("group-shared-p2p", "group", gid, message, evidence={"group": int(gid)}, remediation="move it")


def _stored(gid: str, *, status: str = "open", message: str = "group shares DMA", pk: int) -> Violation:
    f = _finding(gid, message)
    return Violation(pk=pk, host=HOST, rule=f.rule, severity=f.severity, subject_kind="group", subject_id=gid, message=message,
                     evidence={"group": int(gid)}, remediation="move it", status=status, opened_at=T0, updated_at=T0,
                     last_seen_at=T0, fingerprint=fingerprint(HOST, f.rule, "group", gid))


def test_a_plan_opens_keeps_updates_reopens_and_resolves_each_once():
    # Stored: group 1 unchanged, group 2 now worded differently, group 3 fixed earlier and back, group 4 fixed now.
    stored = {v.fingerprint: v for v in (_stored("1", pk=1), _stored("2", pk=2), _stored("3", status="resolved", pk=3),
                                          _stored("4", pk=4))}
    findings = [(HOST, _finding("1")), (HOST, _finding("2", "group now has three endpoints")), (HOST, _finding("3")),
                (HOST, _finding("5")), (HOST, _finding("5"))]  # a rule naming one subject twice: one row
    plan = SyncPlan.between(stored, findings, T1)
    assert plan.kept == [1]
    assert [v.pk for v in plan.rewritten] == [2, 3] and all(v.last_seen_at == T1 and v.status == "open" for v in plan.rewritten)
    assert plan.rewritten[0].message == "group now has three endpoints" and plan.rewritten[1].opened_at == T1
    assert [v.pk for v in plan.resolved] == [4]
    assert [v.subject_id for v in plan.opened] == ["5"]
    assert [(e.violation.pk, e.kind) for e in plan.events] == [(2, "updated"), (3, "reopened"), (4, "resolved")]
    assert plan.counts() == {"opened": 1, "reopened": 1, "updated": 1, "resolved": 1, "open": 4}


def test_an_already_resolved_violation_that_stays_quiet_is_left_alone():
    stored = {v.fingerprint: v for v in (_stored("3", status="resolved", pk=3),)}
    plan = SyncPlan.between(stored, [], T1)
    assert (plan.resolved, plan.rewritten, plan.events) == ([], [], [])


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_the_sync_locks_the_hosts_violation_rows_and_not_the_host_row_an_apply_already_holds():
    host = Host.objects.create(hostname="hv-lock", enrollment=Host.Enrollment.ACTIVE)
    with CaptureQueriesContext(connection) as queries:
        violations_sync_for_host(host=host, state={"host": {"hostname": "hv-lock"}}, now=T0)
    [locking] = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert 'FROM "policy_violation"' in locking and locking.endswith('FOR UPDATE OF "policy_violation"')
