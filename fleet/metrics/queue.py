"""How many task messages wait in the broker: Redis LLEN of the Celery queue."""
import logging

from django.conf import settings

log = logging.getLogger(__name__)


def queue_depth(queue: str | None = None) -> int | None:
    """Messages waiting in `queue`, or None when there is no Redis broker or it cannot be reached."""
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    name = queue or getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return int(client.llen(name))
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("queue depth unavailable: %s", exc)
        return None
