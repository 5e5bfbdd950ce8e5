from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from fleet.policy import services as policy_services
from fleet.policy.models import Violation, Waiver
from fleet.web import params
from fleet.web.access import can_accept_baseline, can_triage, triage_required, viewer_required
from fleet.web.exports import csv_download, json_download
from fleet.web.forms import AcknowledgeForm, BulkForm, ExpiryForm, WaiveForm
from fleet.web.selectors.violations import (
    EXPORT_FIELDS, SEVERITIES, ViolationFilters, active_waivers_for, violation_events_for, violation_export_row,
    violation_rules, violations_filtered,
)

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000  # rows in one download; the filters narrow it


@viewer_required
def violations_list(request):
    filters = ViolationFilters.from_querydict(request.GET)
    page = Paginator(violations_filtered(filters), PAGE_SIZE).get_page(params.page_number(request.GET.get("page")))
    violations = list(page.object_list)
    ids = [v.pk for v in violations]
    events, waivers = violation_events_for(ids), active_waivers_for(ids)
    others = request.GET.copy()
    others.pop("page", None)
    return render(request, "web/violations.html", {
        "page": page, "violations": [(v, events.get(v.pk, []), waivers.get(v.pk, [])) for v in violations],
        "filters": filters, "severities": SEVERITIES, "rules": violation_rules(),
        "can_triage": can_triage(request.user), "can_accept_baseline": can_accept_baseline(request.user), "waive_form": WaiveForm(), "query_string": others.urlencode(),
    })


def _export_rows(request):
    filters = ViolationFilters.from_querydict(request.GET)
    for v in violations_filtered(filters)[:EXPORT_LIMIT]:
        card = f"/violations/?{urlencode({'host': v.host.hostname, 'status': 'all'})}#violation-{v.pk}"
        yield violation_export_row(v, request.build_absolute_uri(card))


@viewer_required
def violations_export_csv(request):
    return csv_download("violations.csv", EXPORT_FIELDS, _export_rows(request))


@viewer_required
def violations_export_json(request):
    return json_download("violations.json", {"violations": list(_export_rows(request)), "limit": EXPORT_LIMIT})


def _back(request):
    # Only ever return to our own violations page: the referer is client-controlled.
    query = request.POST.get("return_query", "")
    return redirect(f"/violations/?{query}" if query and "//" not in query else "/violations/")


@require_POST
@triage_required
def violation_acknowledge(request, pk):
    violation = get_object_or_404(Violation, pk=pk)
    form = AcknowledgeForm(request.POST)
    if form.is_valid():
        policy_services.violation_acknowledge(violation=violation, by=request.user.get_username(),
                                              note=form.cleaned_data["note"])
        messages.success(request, f"acknowledged {violation.rule} on {violation.host.hostname}")
    else:
        messages.error(request, f"not acknowledged: {'; '.join(form.errors.get('note', []))}")
    return _back(request)


@require_POST
@triage_required
def violation_waive(request, pk):
    violation = get_object_or_404(Violation, pk=pk)
    form = WaiveForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"not waived: {errors}")
        return _back(request)
    try:
        policy_services.violation_waive(
            violation=violation, justification=form.cleaned_data["justification"],
            expires_at=form.cleaned_data["expires_at"], by=request.user.get_username())
    except policy_services.PolicyError as exc:
        messages.error(request, f"not waived: {exc}")
        return _back(request)
    messages.success(request, f"waived {violation.rule} on {violation.host.hostname} until {form.cleaned_data['expires_at']:%Y-%m-%d %H:%M} UTC")
    return _back(request)


@require_POST
@triage_required
def waiver_revoke(request, pk):
    waiver = get_object_or_404(Waiver.objects.select_related("violation__host"), pk=pk)
    policy_services.waiver_revoke(waiver=waiver, by=request.user.get_username())
    messages.success(request, f"waiver revoked: {waiver.violation.rule} on {waiver.violation.host.hostname} is open again")
    return _back(request)


@require_POST
@triage_required
def waiver_extend(request, pk):
    waiver = get_object_or_404(Waiver.objects.select_related("violation__host"), pk=pk)
    form = ExpiryForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"not extended: {' '.join(form.errors.get('expires_at', []))}")
        return _back(request)
    try:
        policy_services.waiver_extend(waiver=waiver, expires_at=form.cleaned_data["expires_at"], by=request.user.get_username())
    except policy_services.PolicyError as exc:
        messages.error(request, f"not extended: {exc}")
        return _back(request)
    messages.success(request, f"waiver on {waiver.violation.rule} ({waiver.violation.host.hostname}) now ends "
                              f"{form.cleaned_data['expires_at']:%Y-%m-%d %H:%M} UTC")
    return _back(request)


@require_POST
@triage_required
def violations_bulk(request):
    form = BulkForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"nothing changed: {errors}")
        return _back(request)
    data, by = form.cleaned_data, request.user.get_username()
    chosen = list(Violation.objects.filter(pk__in=data["ids"], status=Violation.Status.OPEN).select_related("host"))
    try:
        # All or none: a half-applied bulk waiver is worse than a refused one.
        with transaction.atomic():
            for violation in chosen:
                if data["action"] == "acknowledge":
                    policy_services.violation_acknowledge(violation=violation, by=by, note=data["note"])
                else:
                    policy_services.violation_waive(violation=violation, justification=data["justification"],
                                                    expires_at=data["expires_at"], by=by)
    except policy_services.PolicyError as exc:
        messages.error(request, f"nothing changed: {exc}")
        return _back(request)
    skipped = len(data["ids"]) - len(chosen)
    done = "acknowledged" if data["action"] == "acknowledge" else "waived"
    messages.success(request, f"{done} {len(chosen)} violation(s)" + (f"; {skipped} were not open and were left alone" if skipped else ""))
    return _back(request)
