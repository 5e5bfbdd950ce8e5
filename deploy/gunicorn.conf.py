"""gunicorn settings for the fleet web process: `gunicorn -c deploy/gunicorn.conf.py fleet.wsgi`.

Every value can be overridden from the environment (FLEET_BIND, FLEET_WEB_WORKERS, …) so the
same file serves systemd, the compose file and the burst test.
"""
import os
import tempfile

bind = os.environ.get("FLEET_BIND", "127.0.0.1:8000").split(",")
# gthread: agent requests are short and mostly wait on PostgreSQL; threads let the admission
# gate (fleet/ingest/admission.py) answer "retry later" at once instead of leaving agents in the backlog.
# Sizes measured with bench/ingest.py on 2 cores (heartbeats/s, 16 keep-alive clients on the same
# machine): 3x8 1,345, 2x8 1,230; before the lean agent handler and the heartbeat's skipped WAL
# flush, 2x4 541, 2x8 560, 4x4 527, 3x8 520 - the worker count matters less than the work per request.
worker_class = "gthread"
workers = int(os.environ.get("FLEET_WEB_WORKERS", "3"))
threads = int(os.environ.get("FLEET_WEB_THREADS", "8"))
backlog = int(os.environ.get("FLEET_WEB_BACKLOG", "2048"))
timeout = int(os.environ.get("FLEET_WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("FLEET_WEB_MAX_REQUESTS", "0"))
max_requests_jitter = 100
# Behind a reverse proxy: trust its X-Forwarded-* headers only from the addresses listed.
forwarded_allow_ips = os.environ.get("FLEET_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Optional TLS in gunicorn itself, for deployments without a proxy.
certfile = os.environ.get("FLEET_TLS_CERT") or None
keyfile = os.environ.get("FLEET_TLS_KEY") or None
accesslog = "-" if os.environ.get("FLEET_ACCESS_LOG", "1") == "1" else None
errorlog = "-"

# Prometheus counters from several worker processes: each writes to files in this directory and
# /metrics sums them. It must be empty at start and shared with nothing but this server (and the
# Celery workers of the same machine).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fleet-prometheus-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
