"""The one integer parser for numbers a host writes: sysfs attributes, procfs fields, link and
directory names, libvirt XML attributes, HTTP headers.

`str.isdigit()` and `int()` are both wrong for hostile input: `isdigit()` accepts `²`, which `int()`
then refuses with ValueError (one such file once emptied the whole PCI section), and `int()` accepts
every Unicode decimal digit (`٣`, `３`), underscores (`1_0`) and surrounding Unicode whitespace, so a
garbled file would silently read as another number. The kernel prints numbers with ASCII digits only.
"""
from __future__ import annotations

# A u64 has 20 decimal or 16 hex digits; nothing the agent reads is wider.
MAX_DIGITS = 20

_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}
_SPACE = " \t\n"


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
    digits = text.strip(_SPACE)
    negative = signed and digits.startswith("-")
    if negative:
        digits = digits[1:]
    has_prefix = digits[:2] in ("0x", "0X")
    if base == 0:
        if not has_prefix and len(digits) > 1 and digits.startswith("0"):
            return None
        base = 16 if has_prefix else 10
    if base == 16 and has_prefix:
        digits = digits[2:]
    allowed = _DIGITS[base]
    if not 0 < len(digits) <= max_digits or not all(c in allowed for c in digits):
        return None
    value = int(digits, base)
    return -value if negative else value


def parse_bool01(text: str | None) -> bool | None:
    """A flag the kernel prints as `0` or `1` (`sriov_drivers_autoprobe`, idxd `pasid_enabled`)."""
    return {0: False, 1: True}.get(parse_int(text, max_digits=1))
