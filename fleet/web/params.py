"""What the dashboard accepts in a URL, one check per kind: a bad value is refused with a message saying why.

Query strings and paths are untrusted (a pasted link, a script, a hostile page's redirect). A
value that breaks a rule here raises BadRequest, which fleet.web.middleware answers with a 400 page
naming the parameter; nothing half-valid reaches a query. A NUL in any value is refused before the
view runs (PostgreSQL stores none, so such a value can match nothing).
"""
from __future__ import annotations

from django.core.exceptions import BadRequest

from agent.bdf import parse_bdf

MAX_TEXT = 253  # a filter value: the longest column one is compared with (a hostname)
MAX_PAGE = 100_000
MAX_ID_DIGITS = 18  # a bigint id; more digits cannot be one


def text(value: str | None, *, name: str, max_length: int = MAX_TEXT) -> str:
    """A free-text filter, stripped; refused when longer than `max_length` (never cut: a cut value filters wrongly)."""
    v = (value or "").strip()
    if len(v) > max_length:
        raise BadRequest(f"{name}: at most {max_length} characters (got {len(v)})")
    return v


def page_number(value: str | None) -> int | str:
    """A page of a list: a whole number from 1 (past the end shows the last page), or `last`."""
    if value in (None, "", "last"):
        return value or 1
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"page: a whole number from 1 to {MAX_PAGE}, or 'last'")
    return int(value)


def object_id(value: str, *, name: str) -> int:
    """A database id given in a query string (ASCII digits only: int() would also take '²' or '١')."""
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_ID_DIGITS:
        raise BadRequest(f"{name}: an id is a whole number")
    return int(value)


def bdf(value: str | None, *, name: str) -> str:
    """A PCI address, full (0000:02:00.0) or short (02:00.0), in the full lower-case form; empty when absent."""
    v = (value or "").strip()
    full = parse_bdf(v) if v else ""
    if full is None:
        raise BadRequest(f"{name}: a PCI address is dddd:bb:dd.f or bb:dd.f")
    return full


def choice(value: str | None, *, name: str, choices, default: str = "") -> str:
    """One of `choices`, or `default` when absent."""
    v = (value or "").strip()
    if not v:
        return default
    if v not in choices:
        raise BadRequest(f"{name}: one of {', '.join(choices)}")
    return v
