from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from .access import require_capability
from .export import entries_csv, entries_json
from .roles import user_can_read_audit
from .selectors import audit_entries

EXPORT_LIMIT = 100_000


@require_capability(user_can_read_audit)
def audit_list(request):
    filters = {k: request.GET.get(k, "").strip() for k in ("action", "actor", "subject")}
    entries = audit_entries(**filters)
    fmt = request.GET.get("format", "")
    if fmt == "csv":
        response = HttpResponse(entries_csv(entries[:EXPORT_LIMIT]), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response
    if fmt == "json":
        response = HttpResponse(entries_json(entries[:EXPORT_LIMIT]), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="audit.json"'
        return response
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {"page": page, "filters": filters})
