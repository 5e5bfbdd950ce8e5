"""Thin Celery adapters: one attempt per run, the next one scheduled with the backoff the service chose;
a beat task that queues again deliveries whose task was lost (worker or broker gone)."""
import logging

from celery import shared_task

from .delivery import deliveries_overdue, delivery_attempt

log = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True, max_retries=None)
def alert_deliver_task(self, delivery_id: int) -> None:
    attempt = delivery_attempt(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in)


def deliveries_queue(ids: list[int]) -> int:
    """Queue a task per delivery; a broker that refuses leaves the rest for `alert_requeue_task`."""
    for n, delivery_id in enumerate(ids):
        try:
            alert_deliver_task.delay(delivery_id)
        except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; committed events must not fail with them
            log.warning("could not queue %d webhook deliveries (%s); the requeue tick sends them", len(ids) - n, exc)
            return n
    return len(ids)


@shared_task(ignore_result=True)
def alert_requeue_task() -> None:
    deliveries_queue(deliveries_overdue())
