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
