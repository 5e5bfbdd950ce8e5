"""Downloads of what a page lists: CSV whose cells a spreadsheet will not run, JSON safe to embed.

Every string in an export may have come from a host, so each CSV cell goes through `spreadsheet_cell`.
"""
from django.http import HttpResponse

from fleet.security.spreadsheet import csv_write
from fleet.web.json_response import SafeJsonResponse


def csv_download(filename: str, fields: list[str], rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csv_write(response, fields, rows)
    return response


def json_download(filename: str, data) -> HttpResponse:
    response = SafeJsonResponse(data)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
