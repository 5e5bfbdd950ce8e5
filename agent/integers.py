"""The one integer parser for numbers a host writes: sysfs attributes, procfs fields, link and
directory names, libvirt XML attributes, HTTP headers.

`str.isdigit()` and `int()` are both wrong for hostile input: `isdigit()` accepts `²`, which `int()`
then refuses with ValueError (one such file once emptied the whole PCI section), and `int()` accepts
every Unicode decimal digit (`٣`, `３`), underscores (`1_0`) and surrounding Unicode whitespace, so a
garbled file would silently read as another number. The kernel prints numbers with ASCII digits only.
"""
from __future__ import annotations

import re

# A u64 has 20 decimal or 16 hex digits; nothing the agent reads is wider.
MAX_DIGITS = 20

_DIGITS = {8: "[0-7]", 10: "[0-9]", 16: "[0-9a-fA-F]"}
_SPACE = " \t\n"  # what a sysfs file ends with; Unicode spaces are not
_FORMS: dict[tuple[int, bool, int], re.Pattern] = {}


def _form(base: int, signed: bool, max_digits: int) -> re.Pattern:
    key = (base, signed, max_digits)
    form = _FORMS.get(key)
    if form is None:
        prefix = "(?:0[xX])?" if base == 16 else ""
        sign = "(-)?" if signed else "()"
        form = _FORMS[key] = re.compile(f"[{_SPACE}]*{sign}{prefix}({_DIGITS[base]}{{1,{max_digits}}})[{_SPACE}]*")
    return form


def parse_int(text: str | None, *, base: int = 10, signed: bool = False, max_digits: int = MAX_DIGITS) -> int | None:
    """`text` as an integer, or None when it is not exactly one in the given format.

    base 10 or 8: ASCII digits only. base 16: hex digits, with or without `0x` (sysfs prints ids as
    `0x8086`, IOMMU registers without the prefix). base 0: `0x` means hex, anything else decimal, as
    libvirt writes its XML attributes; a decimal with a leading zero is refused (C would read it as
    octal). `signed` allows a leading `-` (`numa_node` prints -1). Surrounding ASCII whitespace (a
    sysfs file's newline) is ignored; at most `max_digits` digits.
    """
    if text is None:
        return None
    if base == 0:
        body = text.strip(_SPACE).lstrip("-")
        if body[:2] in ("0x", "0X"):
            base = 16
        elif len(body) > 1 and body.startswith("0"):
            return None  # C would read it as octal
        else:
            base = 10
    m = _form(base, signed, max_digits).fullmatch(text)
    if m is None:
        return None
    value = int(m.group(2), base)
    return -value if m.group(1) else value


def parse_bool01(text: str | None) -> bool | None:
    """A flag the kernel prints as `0` or `1` (`sriov_drivers_autoprobe`, idxd `pasid_enabled`)."""
    return {0: False, 1: True}.get(parse_int(text, max_digits=1))
