"""Celery task failures, counted where every web process can read them.

Workers run on other machines than the web processes, so an in-process counter in a worker would
never reach /metrics. With a Redis broker each failure is an HINCRBY on one hash in the broker;
without a broker (the embedded default, tasks run in the web process) the in-process counter is used.
"""
import logging

from django.conf import settings

from .instruments import TASK_FAILURES

log = logging.getLogger(__name__)
REDIS_KEY = "fleet:metrics:task_failures"


def _redis():
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def count_task_failure(sender=None, **kwargs) -> None:
    name = getattr(sender, "name", None) or "unknown"
    client = _redis()
    if client is None:
        TASK_FAILURES.labels(task=name).inc()
        return
    try:
        client.hincrby(REDIS_KEY, name, 1)
    except Exception as exc:  # a metrics hiccup must never mask the task's own failure
        log.warning("could not count the failure of %s: %s", name, exc)
    finally:
        client.close()


def task_failures_in_broker() -> dict[str, int] | None:
    """task name -> failures recorded in the broker, or None without a reachable Redis broker."""
    client = _redis()
    if client is None:
        return None
    import redis

    try:
        return {k.decode(): int(v) for k, v in client.hgetall(REDIS_KEY).items()}
    except redis.RedisError:
        return None
    finally:
        client.close()
