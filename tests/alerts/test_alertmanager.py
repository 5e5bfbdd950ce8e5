"""The alertmanager payload against a real Alertmanager (Debian's prometheus-alertmanager, a private
process on a free port, never the system service): it accepts the alert, shows it active, and a
resolution ends it — no glue between the fleet and Alertmanager."""
import json
import subprocess
import urllib.request

import pytest
from django.utils import timezone

from fleet.alerts import events
from fleet.alerts.models import Delivery, Endpoint
from fleet.alerts.services import alerts_raise
from fleet.inventory.models import Host
from fleet.policy.services.sync import SyncPlan
from tests.accounts.fleet_data import a_violation
from tests.e2e.processes import free_port, wait_until
from tests.services import system_tool

from .conftest import SECRET

pytestmark = pytest.mark.django_db
CONFIG = "route: {receiver: nowhere, group_wait: 1s}\nreceivers: [{name: nowhere}]\n"


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read() or b"null") if response.status == 200 else None
    except (OSError, ValueError):
        return None


@pytest.fixture
def alertmanager(tmp_path):
    binary = system_tool("prometheus-alertmanager", "prometheus-alertmanager")
    (tmp_path / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{base}/api/v2/status"), timeout=30, what="alertmanager to answer")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _fleet_alerts(base: str) -> list | None:
    """The fleet's active alerts in Alertmanager, None while it does not answer."""
    alerts = _get(f"{base}/api/v2/alerts")
    return None if alerts is None else [a for a in alerts if a["labels"].get("alertname") == "IommuFleetViolation"]


def test_alertmanager_takes_the_alert_and_its_resolution(alertmanager, django_capture_on_commit_callbacks):
    Endpoint.objects.create(name="am", url=f"{alertmanager}/api/v2/alerts", kind="alertmanager", secret=SECRET)
    host = Host.objects.create(hostname="gpu-07", last_seen=timezone.now())
    v = a_violation(host, rule="group-mixed-ownership", severity="critical", subject_kind="group", subject_id="5")
    with django_capture_on_commit_callbacks(execute=True):
        alerts_raise(event=events.OPENED, violations=[v])
    assert Delivery.objects.get().status == "delivered"
    [alert] = wait_until(lambda: _fleet_alerts(alertmanager), timeout=10, what="the alert in alertmanager")
    assert alert["status"]["state"] == "active"
    assert alert["labels"] == {"alertname": "IommuFleetViolation", "host": "gpu-07", "rule": "group-mixed-ownership",
                               "severity": "critical", "subject_kind": "group", "subject_id": "5"}
    assert alert["annotations"]["summary"] == v.message

    with django_capture_on_commit_callbacks(execute=True):
        SyncPlan.between({v.fingerprint: v}, [], timezone.now()).write()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    wait_until(lambda: _fleet_alerts(alertmanager) == [], timeout=10, what="the resolved alert to leave the active list")
