"""Thin Celery adapter: one attempt per run, the next one scheduled with the backoff the service chose."""
from celery import shared_task

from .delivery import delivery_attempt


@shared_task(bind=True, ignore_result=True, max_retries=None)
def alert_deliver_task(self, delivery_id: int) -> None:
    attempt = delivery_attempt(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in)
