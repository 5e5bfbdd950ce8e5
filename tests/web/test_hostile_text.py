"""Host-supplied names printed by the server's CLI and written to its CSV exports: no control character
reaches the operator's terminal or spreadsheet, and no cell is a formula.

Hand-made hosts standing for a compromised agent that chose its hostname, VM names and driver names
to attack whoever reads them: an OSC title rewrite plus screen clear, a bidi override that reverses
what follows, a C1 CSI, and spreadsheet formulas (one hidden behind a tab).
"""
import csv
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from fleet.accounts.models import AuditEntry
from fleet.ingest.services import host_token_create
from fleet.inventory.models import Device
from tests.accounts.fleet_data import a_violation
from tests.accounts.people import make_user

pytestmark = pytest.mark.django_db

CLEAR_AND_RETITLE = "\x1b]0;root@prod\x07\x1b[2J\x1b[H"
BIDI = "\u202egnp.exe\u202c"
C1_CSI = "\x9b31m"
HOSTNAME = f"evil{CLEAR_AND_RETITLE}-host{BIDI}"
# Every character a terminal or spreadsheet acts on: C0 (tab and CR included), DEL, C1, bidi marks/overrides/isolates.
ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile_host():
    host, _ = host_token_create(hostname=HOSTNAME)
    violation = a_violation(host, subject_kind="device", subject_id="0000:02:00.0")
    violation.message = f"device bound to {C1_CSI}nvidia{CLEAR_AND_RETITLE}"
    violation.remediation = f"rebind {BIDI}"
    violation.save()
    Device.objects.create(host=host, bdf="0000:02:00.0", vendor_id="10de", device_id="1db4", class_code="030200",
                          driver="=HYPERLINK(\"http://x/\",\"ok\")", owner_kind="userspace",
                          owner_vm=f"\t=cmd|' /C calc'!A0{C1_CSI}", path="pci0000:00/0000:02:00.0")
    return host


def _lines(output: str) -> list[str]:
    return [line for line in output.split("\n") if line]


def test_manage_py_violations_prints_no_control_character_of_a_host(hostile_host):
    out = io.StringIO()
    call_command("violations", stdout=out)
    lines = _lines(out.getvalue())
    assert len(lines) == 2
    assert not [line for line in lines if ACTIVE.search(line)], lines
    assert "evil]0;root@prod[2J[H-hostgnp.exe" in lines[0]  # visible text kept, only the controls removed
    assert "device bound to 31mnvidia" in lines[0]


def test_host_token_list_prints_no_control_character_of_a_hostname(hostile_host):
    out = io.StringIO()
    call_command("host_token", "list", stdout=out)
    [line] = [line for line in _lines(out.getvalue()) if line.startswith("evil")]
    assert not ACTIVE.search(line.replace("\t", "")), line  # tabs are the command's own column separators
    assert line.split("\t")[0] == "evil]0;root@prod[2J[H-hostgnp.exe"


def test_the_search_csv_export_has_no_control_character_and_no_formula(client, hostile_host):
    user = make_user("csv-viewer", "viewer")
    client.force_login(user)
    body = client.get(reverse("web:search-export-csv") + "?q=vendor:10de").content.decode()
    assert not ACTIVE.search(body.replace("\r\n", "")), body
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["hostname"] == "evil]0;root@prod[2J[H-hostgnp.exe"
    assert row["driver"] == "'=HYPERLINK(\"http://x/\",\"ok\")"
    assert row["vm"] == "'=cmd|' /C calc'!A031m"  # the tab hid the formula; gone, it is a formula again: prefixed
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_the_audit_csv_export_has_no_control_character_and_no_formula(client, hostile_host):
    reviewer = make_user("csv-reviewer", "security-reviewer")
    client.force_login(reviewer)
    body = client.get("/audit/?format=csv").content.decode()
    assert not ACTIVE.search(body.replace("\r\n", "")), body
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == AuditEntry.objects.count()
    issued = next(r for r in rows if r["action"] == "host_token.issue")
    assert "evil]0;root@prod[2J[H-hostgnp.exe" in issued["subject"], issued
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
