"""Reads of the accounts app."""
from django.utils import timezone

from .models import ApiToken, AuditEntry
from .services import token_hash


def api_token_user(secret: str):
    """The active token matching `secret` (with its user loaded), or None."""
    token = ApiToken.objects.select_related("user").filter(token_hash=token_hash(secret), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Refresh last use at most once a minute: a busy script should not turn reads into writes.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def audit_entries(*, action: str = "", actor: str = "", subject: str = ""):
    qs = AuditEntry.objects.all()
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_name=actor)
    if subject:
        qs = qs.filter(subject__icontains=subject)
    return qs
