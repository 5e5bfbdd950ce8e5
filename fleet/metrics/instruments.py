"""Per-process instruments: ingest requests, their latency, failures of tasks run in process.

Under gunicorn (several workers) and Celery (several processes) each process counts for
itself; set PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py does) to a directory shared by
the web and worker processes of one machine, and /metrics sums them.
"""
from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INGEST_REQUESTS = Counter(
    "fleet_ingest_requests",
    "Agent requests to the ingest endpoints, by endpoint and HTTP status.",
    ["endpoint", "status"],
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "fleet_ingest_request_seconds",
    "Time to answer an agent request (receive, validate, store), by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
# Only for tasks run in this process (no broker); with a broker, see task_failures.py.
TASK_FAILURES = Counter(
    "fleet_task_failures",
    "Celery tasks that raised, by task name.",
    ["task"],
    registry=REGISTRY,
)
