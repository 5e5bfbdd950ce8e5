"""host_token and import_capture management commands."""
import io

import pytest
from django.core.management import CommandError, call_command

from fleet.ingest.models import HostToken, Snapshot
from fleet.ingest.services import host_authenticate
from fleet.ingest.tasks import snapshot_apply_task
from fleet.ingest.tokens import token_hash
from fleet.inventory.models import Device, Host
from tests.agent.groundtruth import lspci_drivers
from tests.conftest import CAPTURES_DIR

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_create_prints_a_token_once_and_stores_only_its_hash():
    token = run("host_token", "create", "gpu-17", "--role", "gpu-passthrough", "--label", "rack-4", "--label", "tenant-a")
    host = Host.objects.get(hostname="gpu-17")
    assert host.enrollment == Host.Enrollment.PENDING and host.role == "gpu-passthrough"
    assert sorted(host.labels.values_list("name", flat=True)) == ["rack-4", "tenant-a"]
    stored = HostToken.objects.get(host=host)
    assert stored.token_hash == token_hash(token) and token not in stored.token_hash
    assert host_authenticate(token)[0] == host
    assert token not in run("host_token", "list")


def test_rotate_revokes_the_old_token_and_revoke_revokes_all():
    old = run("host_token", "create", "web-1")
    new = run("host_token", "rotate", "web-1")
    assert host_authenticate(old)[0] is None and host_authenticate(new)[0] is not None
    run("host_token", "revoke", "web-1")
    assert host_authenticate(new)[0] is None
    with pytest.raises(CommandError):
        run("host_token", "rotate", "no-such-host")


@pytest.mark.parametrize("from_tarball", [False, True])
def test_import_capture_files_the_capture_under_a_host_and_applies_it(capture, from_tarball, queued, django_capture_on_commit_callbacks):
    source = CAPTURES_DIR / "sriov-nvme.tar.gz" if from_tarball else capture("sriov-nvme")
    with django_capture_on_commit_callbacks(execute=True):
        out = run("import_capture", str(source), "--host", "lab-nvme")
    host = Host.objects.get(hostname="lab-nvme")
    snapshot = Snapshot.objects.get(host=host)
    assert str(snapshot.pk) in out and queued == [snapshot.pk]
    assert snapshot_apply_task(snapshot.pk) == Snapshot.Status.APPLIED
    drivers = dict(Device.objects.filter(host=host).values_list("bdf", "driver"))
    assert drivers == {bdf: v["driver"] for bdf, v in lspci_drivers(capture("sriov-nvme")).items()}


def test_import_capture_of_a_missing_path_is_a_command_error(tmp_path):
    with pytest.raises(CommandError):
        run("import_capture", str(tmp_path / "nothing-here"))
