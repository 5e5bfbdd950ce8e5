"""The README's main command: `python manage.py demo` on the embedded default (SQLite, tasks in process)."""
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.conftest import CAPTURES_DIR

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = 40 + 1  # the command's defaults: --synthetic 40 --large 1


def capture_truth() -> dict[str, set[str]]:
    """hostname -> BDFs listed by `lspci -Dnn` in the same boot, read straight from each tarball."""
    out = {}
    for archive in sorted(CAPTURES_DIR.glob("*.tar.gz")):
        files = {}
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("./")
                if name in ("etc/hostname", "ground-truth/lspci-Dnn.txt") and member.isfile():
                    files[name] = tar.extractfile(member).read().decode()
        bdfs = {line.split()[0] for line in files["ground-truth/lspci-Dnn.txt"].splitlines() if line and not line[0].isspace()}
        out[files["etc/hostname"].strip()] = bdfs
    return out


def check_password(password: str, encoded: str) -> bool:
    # The test settings swap in a fast hasher; the demo ran with the real settings' default (PBKDF2).
    return PBKDF2PasswordHasher().verify(password, encoded)


def run_demo(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "FLEET_BROKER_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", FLEET_VAR_DIR=str(tmp_path))
    return subprocess.run([sys.executable, "manage.py", "demo", *(args or ("--no-serve",))], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def printed_password(result: subprocess.CompletedProcess) -> str:
    return re.search(r"^login: demo  password: (\S+)$", result.stdout, re.M).group(1)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    first = run_demo(tmp)
    return tmp, first


@pytest.mark.slow
def test_demo_exits_zero_shows_progress_and_prints_the_login(demo_db):
    _, result = demo_db
    assert result.returncode == 0, result.stderr[-3000:]
    total = len(capture_truth()) + SYNTHETIC
    assert f"loading demo fleet: {total}/{total} hosts" in result.stdout
    assert re.search(r"^login: demo  password: \S+$", result.stdout, re.M)
    assert "http://127.0.0.1:8000/" in result.stdout


@pytest.mark.slow
def test_the_printed_password_logs_the_demo_user_in(demo_db):
    tmp, result = demo_db
    password = re.search(r"^login: demo  password: (\S+)$", result.stdout, re.M).group(1)
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        (encoded,) = db.execute("SELECT password FROM auth_user WHERE username = 'demo'").fetchone()
    assert check_password(password, encoded)


@pytest.mark.slow
def test_every_capture_host_has_exactly_the_devices_lspci_listed(demo_db):
    tmp, _ = demo_db
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        rows = db.execute("SELECT h.hostname, d.bdf FROM inventory_host h JOIN inventory_device d ON d.host_id = h.id").fetchall()
        host_count = db.execute("SELECT COUNT(*) FROM inventory_host WHERE applied_snapshot_id IS NOT NULL").fetchone()[0]
    stored: dict[str, set[str]] = {}
    for hostname, bdf in rows:
        stored.setdefault(hostname, set()).add(bdf)
    for hostname, bdfs in capture_truth().items():
        assert stored.get(hostname) == bdfs, hostname
    assert host_count == len(capture_truth()) + SYNTHETIC


@pytest.mark.slow
def test_running_the_demo_again_keeps_the_fleet_and_still_prints_a_working_login(demo_db):
    tmp, _ = demo_db
    again = run_demo(tmp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "demo fleet already loaded" in again.stdout
    password = re.search(r"^login: demo  password: (\S+)$", again.stdout, re.M).group(1)
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        (encoded,) = db.execute("SELECT password FROM auth_user WHERE username = 'demo'").fetchone()
        (hosts,) = db.execute("SELECT COUNT(*) FROM inventory_host").fetchone()
    assert check_password(password, encoded)
    assert hosts == len(capture_truth()) + SYNTHETIC
    # The same login as the first run: a browser tab logged in before stays usable.
    assert password == printed_password(demo_db[1])


@pytest.mark.slow
def test_every_role_and_label_the_demo_files_is_in_the_audit_log(demo_db):
    tmp, _ = demo_db
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        roles = db.execute("SELECT hostname FROM inventory_host WHERE role != ''").fetchall()
        labelled = db.execute("SELECT DISTINCT h.hostname FROM inventory_host h "
                              "JOIN inventory_host_labels hl ON hl.host_id = h.id").fetchall()
        audited = db.execute("SELECT action, subject FROM accounts_auditentry").fetchall()
    role_subjects = {subject for action, subject in audited if action == "host.update"}
    label_subjects = {subject for action, subject in audited if action == "host.labels_add"}
    assert roles and labelled
    assert {f"host {h}" for (h,) in roles} <= role_subjects
    assert {f"host {h}" for (h,) in labelled} <= label_subjects


@pytest.mark.slow
def test_the_demo_prints_no_task_log_lines(demo_db):
    _, result = demo_db
    assert "celery" not in result.stderr.lower() and " INFO " not in result.stderr, result.stderr[-2000:]


def test_a_taken_port_is_refused_before_anything_is_loaded(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(tmp_path, "--port", str(port), "--synthetic", "0", "--large", "0", timeout=60)
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and f"PORT={port + 1}" in result.stderr, result.stderr
    assert not (tmp_path / "demo.sqlite3").exists() or _hosts(tmp_path / "demo.sqlite3") == 0


def test_make_demo_passes_port_and_address_to_the_command():
    dry = subprocess.run(["make", "-n", "demo", "PORT=8123", "ADDR=0.0.0.0"], cwd=REPO, capture_output=True, text=True, check=True)
    line = next(line for line in dry.stdout.splitlines() if "manage.py demo" in line)
    assert "--port 8123" in line and "--addr 0.0.0.0" in line
    plain = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "--port" not in next(line for line in plain.stdout.splitlines() if "manage.py demo" in line)


def _hosts(database: Path) -> int:
    with sqlite3.connect(database) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM inventory_host").fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def _plain_tenant_pasids() -> dict[str, int]:
    """PASID-enabled devices per tenant in the synthetic documents, read plainly: a device counts for the tenant
    (the VM or DPDK prefix before its first '-') of every holder naming it or holding its group."""
    from fleet.demo.services import synthetic_documents

    out: dict[str, int] = {}
    for doc in synthetic_documents(40, large=1):
        members = {g["id"]: set(g["devices"]) for g in doc["groups"]}
        for user in doc["pasid"]["users"]:
            tenants = {(h["vm"] or h["workload"]).split("-")[0] for h in doc["holders"]
                       if (h["vm"] or h["workload"]) and (user["device"] in h["devices"]
                                                          or any(user["device"] in members.get(g, ()) for g in h["groups"]))}
            for tenant in tenants:
                out[tenant] = out.get(tenant, 0) + 1
    return out


@pytest.mark.slow
def test_pasid_quota_fires_for_exactly_the_tenants_over_the_demo_intents_quota(demo_db):
    import tomllib

    from fleet.demo.services import INTENT_FILE

    tmp, _ = demo_db
    quotas = {t["name"]: t["pasid_quota"] for t in tomllib.loads(INTENT_FILE.read_text())["tenants"] if "pasid_quota" in t}
    used = _plain_tenant_pasids()
    want = {t for t, q in quotas.items() if used.get(t, 0) > q}
    assert want and set(quotas) - want  # the demo shows both sides
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        got = {s for (s,) in db.execute("SELECT DISTINCT subject_id FROM policy_violation "
                                        "WHERE rule = 'pasid-quota' AND subject_kind = 'tenant' AND status = 'open'")}
    assert got == want


@pytest.mark.slow
def test_the_demo_has_hosts_on_iommufd_on_the_legacy_path_and_on_both(demo_db):
    tmp, _ = demo_db
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        rows = db.execute("SELECT h.hostname, a.backend FROM inventory_addressspace a JOIN inventory_host h ON h.id = a.host_id").fetchall()
    backends: dict[str, set] = {}
    for hostname, backend in rows:
        backends.setdefault(hostname, set()).add(backend)
    kinds = {frozenset(b) for b in backends.values()}
    assert {frozenset({"legacy"}), frozenset({"iommufd"}), frozenset({"legacy", "iommufd"})} <= kinds


@pytest.mark.slow
def test_the_demo_has_a_host_whose_second_snapshot_merged_groups_and_says_so(demo_db):
    from fleet.demo.regroup import REGROUPED_HOST

    tmp, _ = demo_db
    with sqlite3.connect(tmp / "demo.sqlite3") as db:
        seqs = [s for (s,) in db.execute("SELECT s.seq FROM ingest_snapshot s JOIN inventory_host h ON h.id = s.host_id "
                                         "WHERE h.hostname = ? AND s.status = 'applied' ORDER BY s.seq", (REGROUPED_HOST,))]
        changed = db.execute("SELECT v.evidence FROM policy_violation v JOIN inventory_host h ON h.id = v.host_id "
                             "WHERE h.hostname = ? AND v.rule = 'group-changed' AND v.status = 'open'", (REGROUPED_HOST,)).fetchall()
        accepted = db.execute("SELECT accepted_by FROM policy_groupbaseline WHERE hostname = ?", (REGROUPED_HOST,)).fetchall()
    assert seqs == [1, 2] and accepted == [("policy",)]
    assert [json.loads(e)["change"] for (e,) in changed] == ["merged"]
