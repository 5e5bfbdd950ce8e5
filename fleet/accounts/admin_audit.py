"""Every write made in the Django admin lands in the audit log, through `audit_record`, without signals.

`AuditedAdmin` is the base of every ModelAdmin of the project. It hooks the places the admin itself
reports its writes (Django calls `log_addition` / `log_change` after every add and change — form,
list editing, the user password page — and `delete_model` / `delete_queryset` do every delete), and
takes the values before and after from the form that made the change. Admins whose writes go through
a service that audits them already (intent edits, host tokens) set `audited_by_service`.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from django.contrib import admin
from django.db import models, transaction

from .services import audit_record

SECRET_WORDS = ("password", "token_hash", "secret")


def _plain(value):
    """A form or model value as JSON: related objects by their names (a set of them sorted), dates as ISO text."""
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, models.QuerySet) or (isinstance(value, (list, tuple, set)) and value
                                              and all(isinstance(v, models.Model) for v in value)):
        return sorted(str(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def form_change(form, *, adding: bool) -> tuple[dict | None, dict]:
    """(before, after) of the fields the form changed; secrets appear as 'set', never as values."""
    fields = [f for f in form.changed_data if f in form.cleaned_data]
    after = {f: "set" if _secret(f) else _plain(form.cleaned_data[f]) for f in fields}
    if adding:
        return None, after
    before = {f: "(secret)" if _secret(f) else _plain(form.initial.get(f)) for f in fields}
    return before, after


def instance_values(obj) -> dict:
    """What a deleted row held (secrets left out)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in obj._meta.concrete_fields if not _secret(f.name)}


class AuditedAdmin(admin.ModelAdmin):
    audited_by_service = False  # True: the service this admin calls records the audit entry itself

    def audit_subject(self, obj) -> str:
        """The object in words for the audit trail; override where `str(obj)` does not name it well."""
        where = ""
        host = getattr(obj, "host", None) if any(f.name == "host" for f in obj._meta.concrete_fields) else None
        if host is not None and host.hostname not in str(obj):
            where = f" of host {host.hostname}"
        return f"{obj._meta.verbose_name} {obj}{where}"

    def audit_values(self, obj) -> dict:
        """What the audit keeps of a deleted object."""
        return instance_values(obj)

    def audit_action(self, obj, verb: str) -> str:
        return f"{obj._meta.model_name}.{verb}"

    def _audit(self, request, obj, verb: str, before, after) -> None:
        if not self.audited_by_service:
            audit_record(actor=request.user, action=self.audit_action(obj, verb), subject=self.audit_subject(obj),
                         before=before, after=after)

    def save_model(self, request, obj, form, change):
        obj._audit_change = form_change(form, adding=not change)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        rows = {"added": [str(o) for o in formset.new_objects], "changed": [str(o) for o, _ in formset.changed_objects],
                "deleted": [str(o) for o in formset.deleted_objects]}
        if any(rows.values()):
            form.instance.__dict__.setdefault("_audit_inlines", {})[formset.model._meta.verbose_name_plural] = rows

    def _logged(self, request, obj, verb: str, message) -> None:
        before, after = obj.__dict__.pop("_audit_change", (None, None))
        inlines = obj.__dict__.pop("_audit_inlines", None)
        if after is None:  # a change made outside the model form (e.g. the user password page)
            after = {"changed": _plain(message)}
        if inlines:
            after = {**after, "inlines": inlines}
        if after or verb == "create":
            self._audit(request, obj, verb, before, after)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._logged(request, obj, "create", message)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._logged(request, obj, "update", message)
        return entry

    def delete_model(self, request, obj):
        subject, values = self.audit_subject(obj), self.audit_values(obj)
        action = self.audit_action(obj, "delete")
        with transaction.atomic():
            super().delete_model(request, obj)
            if not self.audited_by_service:
                audit_record(actor=request.user, action=action, subject=subject, before=values)

    def delete_queryset(self, request, queryset):
        gone = [(self.audit_action(obj, "delete"), self.audit_subject(obj), self.audit_values(obj)) for obj in queryset]
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            if not self.audited_by_service:
                for action, subject, values in gone:
                    audit_record(actor=request.user, action=action, subject=subject, before=values)


class UndeletableAdmin(AuditedAdmin):
    """For records that are history (violations, changes, intent changes, the audit log): nobody deletes
    them here, superusers included; what they describe is changed through the services, which keep the trail."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
