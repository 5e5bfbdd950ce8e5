import json
import os
import runpy
import subprocess
import sys

from django.conf import settings


def test_tasks_run_in_process_without_a_broker_setting():
    # The embedded default must need no service: no broker configured means eager tasks.
    assert settings.CELERY_TASK_ALWAYS_EAGER is (not settings.CELERY_BROKER_URL)


def _settings_in_a_child(env: dict) -> dict:
    """The ingest gate's values as fleet.settings computes them from `env` (a fresh interpreter: settings read env once)."""
    code = ("import json, fleet.settings as s; print(json.dumps({'threads': s.FLEET_WEB_THREADS, "
            "'inflight': s.FLEET_INGEST_MAX_INFLIGHT, 'deadline': s.FLEET_INGEST_BODY_DEADLINE}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_the_agent_in_flight_cap_stays_below_the_web_threads():
    """Issue 10 item 6: with 16 in flight and 8 threads, agents could take every thread and the dashboard none."""
    gunicorn_threads = runpy.run_path("deploy/gunicorn.conf.py")["threads"]
    default = _settings_in_a_child({})
    assert default["threads"] == gunicorn_threads and default["inflight"] < gunicorn_threads
    assert _settings_in_a_child({"FLEET_WEB_THREADS": "8", "FLEET_INGEST_MAX_INFLIGHT": "16"})["inflight"] == 7
    assert _settings_in_a_child({"FLEET_WEB_THREADS": "16", "FLEET_INGEST_MAX_INFLIGHT": "4"})["inflight"] == 4
    assert default["deadline"] > 0
