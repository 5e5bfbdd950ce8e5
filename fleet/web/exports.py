"""Downloads of what a page lists: CSV whose cells a spreadsheet will not run, JSON safe to embed.

Every string in an export may have come from a host, so each CSV cell goes through `spreadsheet_cell`.
"""
import csv

from django.http import HttpResponse

from fleet.security.spreadsheet import spreadsheet_cell
from fleet.web.json_response import SafeJsonResponse


def csv_download(filename: str, fields: list[str], rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([spreadsheet_cell(row.get(f)) for f in fields])
    return response


def json_download(filename: str, data) -> HttpResponse:
    response = SafeJsonResponse(data)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
