"""A host string made safe as one CSV cell: no control characters, never a spreadsheet formula."""
import csv

from django.http import HttpResponse

from agent.terminal import clean

# A cell starting with one of these is evaluated by spreadsheets (=HYPERLINK(...), +cmd|...): OWASP's CSV injection list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value) -> str:
    """`value` as text for a CSV cell: control characters (escapes, bidi overrides) removed, a formula prefixed with '."""
    text = clean(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_attachment(filename: str, fields: list[str], rows) -> HttpResponse:
    """A CSV download: a header of `fields`, then each row's (dict) values as safe cells."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(fields)
    for r in rows:
        writer.writerow([spreadsheet_cell(r.get(f)) for f in fields])
    return response
