"""Writes of the accounts app: audit entries and user API tokens."""
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from .context import current_actor
from .models import ApiToken, AuditEntry

TOKEN_PREFIX = "fleet_"


def audit_record(*, actor=None, action: str, subject: str, before=None, after=None, remote_addr: str | None = None) -> AuditEntry:
    """Append one audit entry. `actor` is a user, a name, or None for whoever is acting now."""
    ambient = current_actor()
    if actor is None:
        user, name = ambient.user, ambient.name
    elif isinstance(actor, str):
        # Other apps record who acted by username; link the user when it is the one making this request.
        same = ambient.user is not None and ambient.name == actor
        user, name = (ambient.user if same else None), actor
    else:
        user, name = actor, actor.get_username()
    if user is not None and not getattr(user, "pk", None):
        user = None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=name[:150],
        action=action[:64],
        subject=str(subject)[:300],
        before=before,
        after=after,
        remote_addr=remote_addr if remote_addr is not None else ambient.remote_addr,
    )


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user, name: str = "", write: bool = False, scopes: tuple[str, ...] = ()) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it with the secret, which is never stored and shown only once."""
    unknown = sorted(set(scopes) - set(ApiToken.SCOPES))
    if unknown:
        raise ValueError(f"unknown token scope {', '.join(unknown)} (known: {', '.join(ApiToken.SCOPES)})")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=secret[: len(TOKEN_PREFIX) + 6], token_hash=token_hash(secret),
                                    write=write, scopes=sorted(set(scopes)))
    audit_record(action="api_token.issue", subject=f"user {user.get_username()}",
                 after={"id": token.pk, "name": name, "prefix": token.prefix, "write": write, "scopes": token.scopes})
    return token, secret


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="api_token.revoke", subject=f"user {token.user.get_username()}", before={"id": token.pk, "prefix": token.prefix})
    return token
