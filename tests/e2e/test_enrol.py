"""Enrolment end to end: token from the management command, `fleet-agent run` against gunicorn,
a Celery worker on Redis applying the snapshot into PostgreSQL; the stored topology equals what
lspci and find printed in the same boot as the capture."""
from pathlib import Path

import pytest

from tests.agent.groundtruth import find_groups, lspci_dnn, lspci_drivers
from tests.e2e.processes import free_port, wait_until
from tests.e2e.stack import agent_args, enrol, hostname_of, snapshots_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("name", ["isolated-nics", "sriov-nvme", "no-iommu"])
def test_an_enrolled_agent_puts_the_captured_topology_in_the_database(procs, redis_port, capture, tmp_path, name):
    from fleet.inventory.models import Device, Group, Host

    root = capture(name)
    procs.redis(redis_port)
    procs.worker()
    port = free_port()
    procs.web(port)
    hostname = hostname_of(root)
    token_file = enrol(procs, hostname, tmp_path)

    agent = procs.agent(*agent_args(port, token_file, root, tmp_path / "spool"), "--once")
    assert agent.popen.wait(60) == 0, agent.tail()
    wait_until(lambda: [s.status for s in snapshots_of(hostname)] == ["applied"], timeout=30,
               what="the snapshot to be applied", proc=procs.children[1])

    devices = {d.bdf: d for d in Device.objects.filter(host__hostname=hostname)}
    assert set(devices) == set(lspci_dnn(root))
    assert {bdf: d.driver for bdf, d in devices.items()} == {bdf: v["driver"] for bdf, v in lspci_drivers(root).items()}
    truth_groups = find_groups(root)
    assert {(d.group_number, bdf) for bdf, d in devices.items() if d.group_number is not None} == truth_groups
    assert set(Group.objects.filter(host__hostname=hostname).values_list("number", flat=True)) == {g for g, _ in truth_groups}
    host = Host.objects.get(hostname=hostname)
    assert host.machine_id == Path(root, "etc/machine-id").read_text().strip()
    [stored] = snapshots_of(hostname)
    assert host.applied_seq == stored.seq

    # The next run finds the same state: a heartbeat the server recognises, no new snapshot.
    again = procs.agent(*agent_args(port, token_file, root, tmp_path / "spool"), "--once")
    assert again.popen.wait(60) == 0, again.tail()
    assert "unchanged" in again.text() and "heartbeat" in again.text()
    assert [s.pk for s in snapshots_of(hostname)] == [stored.pk]
    assert Host.objects.get(hostname=hostname).last_seen > host.last_seen
