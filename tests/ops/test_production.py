"""FLEET_PRODUCTION=1 passes Django's deployment checks; logs are JSON lines; every response carries the CSP."""
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(code_or_args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    # A private SQLite file: these children check settings and headers, not the database.
    env.update({"DJANGO_SETTINGS_MODULE": "fleet.settings", "FLEET_VAR_DIR": str(tmp_path)}, **env_extra)
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


PROD = {
    "FLEET_PRODUCTION": "1",
    "FLEET_SECRET_KEY": "k" * 20 + "9Xq!v2#Lm8@pR4$wT6^yU0&iO3*aS5(dF7)gH1_jK",
    "FLEET_ALLOWED_HOSTS": "fleet.example.net",
}


def test_production_settings_pass_the_deploy_checks(tmp_path):
    done = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PROD, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_refuses_the_embedded_secret_key(tmp_path):
    done = _run(["manage.py", "check"], {"FLEET_PRODUCTION": "1"}, tmp_path)
    assert done.returncode != 0 and "FLEET_SECRET_KEY" in done.stderr


def test_production_logs_are_json_lines(tmp_path):
    code = "import django; django.setup(); import logging; logging.getLogger('fleet.test').warning('hello %s', 'json')"
    done = _run(["-c", code], PROD, tmp_path)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    record = next(r for r in lines if r.get("logger") == "fleet.test")
    assert record["message"] == "hello json" and record["level"] == "WARNING"


@pytest.mark.django_db
def test_every_response_carries_a_csp_without_unsafe_inline(client, users):
    client.force_login(users["viewer"])
    for url in ("/accounts/login/", "/api/docs/", "/api/v1/hosts/", "/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy, url


def test_production_serves_pages_over_https_only_with_hsts_and_hashed_static_files(tmp_path):
    env = {**PROD, "FLEET_STATIC_ROOT": str(tmp_path / "static"), "FLEET_ALLOWED_HOSTS": "testserver"}
    done = _run(["manage.py", "collectstatic", "--noinput"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    code = """
import django, json; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
c = Client()
plain = c.get("/accounts/login/")
tls = c.get("/accounts/login/", secure=True)
print(json.dumps({"plain": plain.status_code, "location": plain.get("Location"), "tls": tls.status_code,
                  "hsts": tls.get("Strict-Transport-Security"), "csp": tls.get("Content-Security-Policy"),
                  "html": tls.content.decode()}))
"""
    done = _run(["-c", code], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["plain"] == 301 and answer["location"].startswith("https://")
    assert answer["tls"] == 200 and answer["hsts"].startswith("max-age=31536000") and "script-src 'self'" in answer["csp"]
    # Manifest storage: static references carry a content hash, so browsers may cache them for ever.
    assert re.search(r'/static/[^"]+\.[0-9a-f]{12}\.(css|js)"', answer["html"]), "no hashed static file referenced"
