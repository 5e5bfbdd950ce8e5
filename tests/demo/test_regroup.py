"""The demo host whose second snapshot regroups (issue 13): a held GPU's group absorbs a free sibling's."""
from agent.topology import upstream
from fleet.demo.regroup import REGROUPED_HOST, merged_groups
from fleet.demo.synth import fleet


def test_the_regrouped_demo_host_merges_a_held_gpus_group_with_a_free_siblings_under_the_same_switch():
    doc = next(d for d in fleet(2) if d["host"]["hostname"] == REGROUPED_HOST)
    second = merged_groups(doc)
    before = {g["id"]: g["devices"] for g in doc["groups"]}
    after = {g["id"]: g["devices"] for g in second["groups"]}
    assert second["seq"] == doc["seq"] + 1 and len(after) == len(before) - 1
    (gid,) = [g for g in after if after[g] != before.get(g)]
    held, free = sorted(after[gid], key=lambda b: b not in before[gid])
    devices = {d["bdf"]: d for d in doc["devices"]}
    assert any(held in h["devices"] for h in doc["holders"]) and not any(free in h["devices"] for h in doc["holders"])
    assert upstream(held, devices)[1] == upstream(free, devices)[1]  # one switch above both
    assert next(d for d in second["devices"] if d["bdf"] == free)["iommu_group"] == gid
