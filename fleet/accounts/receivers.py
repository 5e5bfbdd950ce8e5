"""Audit receivers: logins, and writes to other apps' audited models.

Audit is the one cross-cutting concern where signal receivers are acceptable: the models
belong to other apps, and every write path (admin, pages, management commands) must be
covered without each of them remembering to call `audit_record`. Receivers are connected
without a sender and filter on the model label, because some audited models (policy) may not
exist yet when this app loads; bulk writes (the snapshot apply path) send no signals and are
not audited, by design: they are machine facts, recorded as inventory changes.
"""
import json

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from .context import client_addr
from .services import audit_record

# label -> fields whose change is audited (None: every field). Intent edits are audited through
# the policy app's IntentChange rows (one per edit, import or baseline acceptance, with the whole
# intent as TOML before and after), not row by row: an import replaces every table in bulk.
AUDITED_FIELDS: dict[str, set[str] | None] = {
    "ingest.hosttoken": {"revoked_at"},
    "inventory.host": {"role", "enrollment", "hostname"},
    "inventory.label": None,
}
# Waivers, acknowledgements and intent changes are audited by the policy services themselves.
MACHINE_WRITTEN: dict[str, tuple[str, ...]] = {}
SECRET_FIELDS = {"token_hash", "password", "secret"}
ACTOR_FIELDS = ("actor", "created_by", "updated_by", "waived_by", "acknowledged_by", "revoked_by", "author", "by")


def _audited(sender) -> bool:
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return False
    return meta.label_lower in AUDITED_FIELDS or meta.label_lower in MACHINE_WRITTEN


def _watched_fields(instance) -> set[str] | None:
    label = instance._meta.label_lower
    if label in MACHINE_WRITTEN:
        prefixes = MACHINE_WRITTEN[label]
        return {f.attname for f in instance._meta.concrete_fields if f.name.startswith(prefixes)}
    return AUDITED_FIELDS.get(label)


def _values(instance) -> dict:
    raw = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields if f.name not in SECRET_FIELDS}
    # Round-trip through the encoder so dates, decimals and UUIDs become JSON values.
    return json.loads(json.dumps(raw, cls=DjangoJSONEncoder))


def _actor(instance):
    for name in ACTOR_FIELDS:
        field = next((f for f in instance._meta.concrete_fields if f.name == name), None)
        if field is None:
            continue
        value = getattr(instance, name, None)
        if value is not None and hasattr(value, "get_username"):
            return value
        if isinstance(value, str) and value:
            return value
    return None


def _subject(instance) -> str:
    # Name the host in words: "token 3 of host 12" means nothing in an exported trail.
    host = getattr(instance, "host", None) if any(f.name == "host" for f in instance._meta.concrete_fields) else None
    where = f" of host {host.hostname}" if host is not None else ""
    return f"{instance._meta.label_lower} {instance.pk}{where}: {instance}"


def _action(instance, verb: str) -> str:
    label = instance._meta.label_lower
    if label == "ingest.hosttoken":
        return {"create": "host_token.issue", "update": "host_token.revoke", "delete": "host_token.delete"}[verb]
    return f"{instance._meta.model_name}.{verb}"


@receiver(pre_save, dispatch_uid="audit-pre-save")
def _remember_before(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or not _audited(sender) or instance.pk is None:
        return
    watched = _watched_fields(instance)
    if update_fields is not None and watched is not None and not (set(update_fields) & watched):
        return
    old = sender._default_manager.filter(pk=instance.pk).first()
    instance._audit_before = _values(old) if old is not None else None


@receiver(post_save, dispatch_uid="audit-post-save")
def _record_save(sender, instance, created, raw=False, **kwargs):
    if raw or not _audited(sender):
        return
    watched = _watched_fields(instance)
    after = _values(instance)
    if created:
        if instance._meta.label_lower in MACHINE_WRITTEN or instance._meta.label_lower == "inventory.host":
            return  # the engine opening a violation, ingest enrolling a host: facts, not decisions
        audit_record(actor=_actor(instance), action=_action(instance, "create"), subject=_subject(instance), after=after)
        return
    before = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if before is None:
        return
    keys = watched if watched is not None else set(after)
    changed = sorted(k for k in keys if before.get(k) != after.get(k))
    if not changed:
        return
    audit_record(
        actor=_actor(instance),
        action=_action(instance, "update"),
        subject=_subject(instance),
        before={k: before.get(k) for k in changed},
        after={k: after.get(k) for k in changed},
    )


@receiver(post_delete, dispatch_uid="audit-post-delete")
def _record_delete(sender, instance, **kwargs):
    if not _audited(sender) or instance._meta.label_lower in MACHINE_WRITTEN or instance._meta.label_lower == "inventory.host":
        return
    audit_record(actor=None, action=_action(instance, "delete"), subject=_subject(instance), before=_values(instance))


@receiver(m2m_changed, dispatch_uid="audit-host-labels")
def _record_host_labels(sender, instance, action, reverse, pk_set, **kwargs):
    if getattr(sender._meta, "label_lower", "") != "inventory.host_labels" or action not in {"post_add", "post_remove", "post_clear"}:
        return
    if reverse:  # label.hosts.add(...): instance is the Label
        subject = f"label {instance}"
    else:
        subject = f"inventory.host {instance.pk}: {instance}"
    audit_record(action=f"host.labels_{action[5:]}", subject=subject, after={"ids": sorted(pk_set or [])})


@receiver(user_logged_in, dispatch_uid="audit-login")
def _record_login(sender, request, user, **kwargs):
    audit_record(actor=user, action="login", subject=f"user {user.get_username()}", remote_addr=client_addr(request) if request else None)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _record_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="logout", subject=f"user {user.get_username()}", remote_addr=client_addr(request) if request else None)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _record_login_failed(sender, credentials, request=None, **kwargs):
    # Django already masks the password in `credentials`; keep only the username.
    username = str(credentials.get("username", ""))[:150]
    audit_record(actor="anonymous", action="login_failed", subject=f"user {username}", remote_addr=client_addr(request) if request else None)
