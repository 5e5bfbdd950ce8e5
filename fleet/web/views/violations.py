from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from fleet.policy import services as policy_services
from fleet.policy.models import Violation
from fleet.web import params
from fleet.web.access import can_triage, triage_required, viewer_required
from fleet.web.forms import AcknowledgeForm, WaiveForm
from fleet.web.selectors.violations import (
    SEVERITIES, ViolationFilters, violation_events_for, violation_rules, violations_filtered,
)

PAGE_SIZE = 50


@viewer_required
def violations_list(request):
    filters = ViolationFilters.from_querydict(request.GET)
    page = Paginator(violations_filtered(filters), PAGE_SIZE).get_page(params.page_number(request.GET.get("page")))
    violations = list(page.object_list)
    events = violation_events_for([v.pk for v in violations])
    others = request.GET.copy()
    others.pop("page", None)
    return render(request, "web/violations.html", {
        "page": page, "violations": [(v, events.get(v.pk, [])) for v in violations],
        "filters": filters, "severities": SEVERITIES, "rules": violation_rules(),
        "can_triage": can_triage(request.user), "waive_form": WaiveForm(), "query_string": others.urlencode(),
    })


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
