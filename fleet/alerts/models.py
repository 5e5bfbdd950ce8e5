"""Outbound webhooks: where violation events are sent, and the log of every delivery.

- `Endpoint`: a receiver configured in the admin. `kind` picks the body: `alertmanager` is the
  Alertmanager v2 API's list of alerts (POST it to `…/api/v2/alerts`), `generic` one JSON object.
  `secret` signs every body (HMAC-SHA256, header `X-Fleet-Signature`, docs/deploy.md).
- `Delivery`: one event for one endpoint. `payload` is frozen when the event is raised, so every
  attempt posts the same bytes; `attempts`, `next_attempt_at`, `response_status` and `error` say how
  sending went. Written only by `fleet.alerts.services`.
"""
from django.core.validators import URLValidator
from django.db import models

from .events import EVENTS


class Endpoint(models.Model):
    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Alertmanager (POST /api/v2/alerts)"
        GENERIC = "generic", "generic JSON"

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(max_length=500, validators=[URLValidator(schemes=["http", "https"])],
                           help_text="Full URL the events are POSTed to, e.g. https://alertmanager.example.net/api/v2/alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GENERIC)
    secret = models.CharField(max_length=200, help_text="Key of the HMAC-SHA256 signature the receiver checks (X-Fleet-Signature).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=[(e, e) for e in EVENTS], db_index=True)
    violation_count = models.IntegerField(default=0)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event} to {self.endpoint.name}"
