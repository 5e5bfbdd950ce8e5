"""Importing each capture as a host (inventory apply, then violation sync) opens exactly what its ground truth implies."""
from datetime import datetime, timezone

import pytest

from agent.paths import Root
from agent.snapshot import build
from tests.conftest import CAPTURE_NAMES

from .dbhosts import apply_and_sync, host_named, open_keys
from .oracle import expected_findings
from .truth import parse

AT = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)


@pytest.mark.django_db
@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_importing_a_capture_opens_exactly_the_violations_its_topology_implies(name, capture):
    truth = parse(capture(name))
    host = host_named(truth.hostname)
    apply_and_sync(host, build(Root.of(capture(name))), AT)
    assert open_keys(host) == expected_findings(truth)
