"""Host strings made safe for a terminal or a spreadsheet cell: the one sanitiser for everything printed.

A hostile host names its VMs, drivers and devices as it likes; an escape sequence or a bidi
override in one would clear or rewrite the operator's terminal (`fleet-agent show`,
`manage.py violations`, `host_token list`) or hide text in an export.
"""
from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value) -> str:
    """`value` as text with control characters (escape sequences, bidi overrides) removed."""
    return _CONTROL.sub("", "" if value is None else str(value))


_STYLES = {"bold": "1", "dim": "2", "red": "31", "yellow": "33", "green": "32", "cyan": "36"}


class Painter:
    """`paint(text, *styles)`: SGR-coloured text when `color`, else the text as it is."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"
