"""The engine never fails on unknowns: any value of a real snapshot replaced by null (unknown) still evaluates."""
import copy
from datetime import datetime, timezone

import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.policy.engine import evaluate
from fleet.policy.facts import HostContext
from fleet.policy.intent import parse_toml

from .test_intent import EXAMPLE

IDENTITY_KEYS = {"bdf", "id", "pid", "path", "uuid", "name"}  # keys that identify a row; the schema never nulls them


def _value_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in IDENTITY_KEYS:
                yield prefix + (key,)
                yield from _value_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _value_paths(value, prefix + (i,))


@pytest.mark.parametrize("name", ["shared-group-all-vfio", "no-iommu"])
def test_every_value_of_a_capture_set_to_null_still_evaluates(name, capture):
    # Partial agents (non-root reads, old kernels) send null for whatever they could not read.
    doc = build(Root.of(capture(name)))
    intent = parse_toml(EXAMPLE.read_text())
    now = datetime.now(timezone.utc)
    context = HostContext(hostname="cap-x", role="hypervisor", now=now, last_seen=now)
    paths = list(_value_paths(doc))
    assert len(paths) > 300
    for path in paths:
        mutated = copy.deepcopy(doc)
        node = mutated
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = None
        findings = evaluate(mutated, intent, context=context)
        assert all(f.rule and f.message for f in findings), path
