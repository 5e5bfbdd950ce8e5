"""Host strings made safe as CSV cells: no control characters, never a spreadsheet formula; and the one CSV
writer every download uses."""
import csv

from agent.terminal import clean

# A cell starting with one of these is evaluated by spreadsheets (=HYPERLINK(...), +cmd|...): OWASP's CSV injection list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value) -> str:
    """`value` as text for a CSV cell: control characters (escapes, bidi overrides) removed, a formula prefixed with '."""
    text = clean(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_write(out, fields, rows) -> None:
    """A header of `fields`, then each row (a dict) as spreadsheet-safe cells, to the file-like `out`."""
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([spreadsheet_cell(row.get(f)) for f in fields])
