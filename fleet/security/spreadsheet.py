"""A host string made safe as one CSV cell: no control characters, never a spreadsheet formula."""
from agent.terminal import clean

# A cell starting with one of these is evaluated by spreadsheets (=HYPERLINK(...), +cmd|...): OWASP's CSV injection list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value) -> str:
    """`value` as text for a CSV cell: control characters (escapes, bidi overrides) removed, a formula prefixed with '."""
    text = clean(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
