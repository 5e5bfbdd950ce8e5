"""schemathesis against the OpenAPI document the app serves, on a live server with a real capture imported:
no 5xx, every response matches the schema, auth is enforced. Bounded: a few examples per operation."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.accounts.services import api_token_issue
from tests.accounts.fleet_data import a_violation, import_capture, sample_objects

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "ignored_auth",
])


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(live_server, capture, users, tmp_path):
    host = import_capture(capture("shared-bridge-group"))
    sample_objects(host)
    a_violation(host, rule="pasid-quota", severity="medium", subject_kind="host", subject_id=host.hostname)
    _, secret = api_token_issue(user=users["viewer"], name="schemathesis")
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st, "schemathesis' st command is not installed (pip install '.[test]')"
    done = subprocess.run(
        [st, "run", f"{live_server.url}/api/schema/?format=json", "--url", live_server.url,
         "-H", f"Authorization: Bearer {secret}", "--checks", CHECKS, "--max-examples", "5", "--seed", "6",
         "--phases", "examples,coverage,fuzzing", "--workers", "2", "--request-timeout", "20", "--no-color",
         "--generation-database", "none"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "/api/v1/devices/" in done.stdout
