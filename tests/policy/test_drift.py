"""Drift on stable identity: renumbered buses are no change, a split group is one finding, the first snapshot is the baseline."""
import copy

import pytest

from agent.identity import SERIAL_MARK, without_serial
from agent.paths import Root
from agent.snapshot import build
from fleet.accounts.models import AuditEntry
from fleet.ingest.services import snapshot_apply, snapshot_receive_document
from fleet.inventory.selectors import host_state
from fleet.policy.models import GroupBaseline, Violation
from fleet.policy.services import intent_version_bump

from ..accounts.fleet_data import import_capture
from ..agent.renumber import renumbered
from .truth import parse

pytestmark = pytest.mark.django_db
def _apply(host, doc):
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])


def _changed(host):
    return list(Violation.objects.filter(host=host, rule="group-changed", status="open"))


def _shared_group(capture):
    truth = parse(capture("shared-bridge-group"))
    # The bridge group (the chipset's multi-function 00:1f group is on the root bus, which renumbering keeps).
    return next(sorted(m) for m in truth.groups.values() if len(m) > 1 and any(b[5:7] != "00" for b in m))


def test_the_first_snapshot_is_accepted_by_the_engine_and_audited(capture):
    host = import_capture(capture("shared-bridge-group"))
    baseline = GroupBaseline.objects.get(hostname=host.hostname)
    truth = parse(capture("shared-bridge-group"))
    assert sorted(map(sorted, baseline.groups)) == sorted(sorted(m) for m in truth.groups.values())
    assert baseline.accepted_by == "policy" and set(baseline.identities) == {b for m in truth.groups.values() for b in m}
    entry = AuditEntry.objects.get(action="baseline.accept")
    assert entry.actor_name == "policy" and host.hostname in entry.subject
    assert _changed(host) == []


def test_renumbered_buses_are_no_change(capture):
    root = capture("shared-bridge-group")
    host = import_capture(root)
    moved = renumbered(build(Root.of(root), seq=2))
    behind_root = [b for b in _shared_group(capture) if b[5:7] != "00"]
    assert behind_root and set(behind_root).isdisjoint(d["bdf"] for d in moved["devices"])
    _apply(host, moved)
    assert sorted(d["bdf"] for d in host_state(host)["devices"]) == sorted(d["bdf"] for d in moved["devices"])
    assert _changed(host) == []


def test_a_bdf_only_baseline_still_alarms_on_renumbering_until_accepted_again(capture):
    # A row migrated from before identities: compared on BDFs as it was accepted (documented).
    root = capture("shared-bridge-group")
    host = import_capture(root)
    GroupBaseline.objects.filter(hostname=host.hostname).update(identities={})
    intent_version_bump()
    _apply(host, renumbered(build(Root.of(root), seq=2)))
    compared = [v.evidence["compared_on"] for v in _changed(host)]
    assert compared and set(compared) == {"bdf"}


def test_a_split_group_is_exactly_one_finding_naming_old_and_new_members(capture):
    # Stands for the isolated-nics host's layout (each NIC its own group) reached by the shared-bridge-group
    # host after a firmware change gave the second conventional NIC a group of its own.
    root = capture("shared-bridge-group")
    host = import_capture(root)
    shared = _shared_group(capture)
    split = copy.deepcopy(build(Root.of(root), seq=2))
    group = next(g for g in split["groups"] if sorted(g["devices"]) == shared)
    moved = shared[-1]
    group["devices"] = [b for b in group["devices"] if b != moved]
    split["groups"].append({**group, "id": 99, "devices": [moved]})
    next(d for d in split["devices"] if d["bdf"] == moved)["iommu_group"] = 99
    _apply(host, split)
    (finding,) = _changed(host)
    assert finding.evidence["change"] == "split" and finding.evidence["compared_on"] == "identity"
    assert [[m["bdf"] for m in g] for g in finding.evidence["baseline_groups"]] == [shared]
    assert sorted(sorted(m["bdf"] for m in g["members"]) for g in finding.evidence["current_groups"]) == sorted(
        [[b for b in shared if b != moved], [moved]])
    assert all(m["identity"] for g in finding.evidence["current_groups"] for m in g["members"])
    assert all(b in finding.message for b in shared)


def test_a_baseline_from_an_agent_without_serial_numbers_sees_no_change_when_the_agent_reads_them(capture):
    # The server is upgraded before the agents: a baseline accepted from an old agent's snapshot has no serials.
    root = capture("shared-bridge-group")
    host = import_capture(root)
    old = GroupBaseline.objects.get(hostname=host.hostname)
    assert any(SERIAL_MARK in i for i in old.identities.values())
    GroupBaseline.objects.filter(pk=old.pk).update(identities={b: without_serial(i) for b, i in old.identities.items()})
    intent_version_bump()
    _apply(host, build(Root.of(root), seq=2))
    assert _changed(host) == []
