"""Issue 10 item 9: one garbled number costs that number, never other devices or a whole section.

The files come from the captures, not from a list typed here: a clean collection of each capture is
watched (Python's audit hook sees every file it opens), and every file whose content is a number, or
whose lines carry numeric fields (`/proc/<pid>/status`, `reserved_regions`, `dev-nodes.tsv`…), is
garbled in turn the way a broken or hostile host could: one ASCII digit replaced by a character that
`str.isdigit()` or `int()` accept (`²` made the PCI collector fail and the snapshot come back with
`devices: []`; `٣`, `３`, `𝟗` and `1_0` read as other numbers).
"""
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.paths import Root
from agent.snapshot import build
from tests.agent.captures import CAPTURE_NAMES

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
# A number fits in 64 bits; a longer hex word (the 128-bit /etc/machine-id) is an identifier.
WHOLE_NUMBER = re.compile(r"-?[0-9]+|(?:0x)?[0-9a-fA-F]{1,16}")
FIELD_NUMBER = re.compile(r"-?[0-9]+|0x[0-9a-fA-F]+")
REPLACEMENTS = ("²", "٣", "３", "𝟗", "_")

_opened: list[str] | None = None


def _audit(event, args):
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened.append(args[0])


_hooked = False


def files_read(root: Path) -> dict[str, list[str]]:
    """Real file under the root -> the kernel paths a clean collection opened it by."""
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed; idle unless _opened is a list
        _hooked = True
    _opened = []
    try:
        build(Root.of(root), now=NOW)
        seen = list(_opened)
    finally:
        _opened = None
    prefix = str(root) + "/"
    out: dict[str, list[str]] = {}
    for path in seen:
        if path.startswith(prefix) and os.path.isfile(path):
            kernel_path = "/" + path[len(prefix):]
            out.setdefault(os.path.realpath(path), [])
            if kernel_path not in out[os.path.realpath(path)]:
                out[os.path.realpath(path)].append(kernel_path)
    return out


def garble_token(token: str, n: int) -> str:
    """The token with its last digit replaced (or, every fifth time, split by `_`)."""
    positions = [i for i, c in enumerate(token) if c.isascii() and c.isdigit()] or \
                [i for i, c in enumerate(token) if c in "abcdefABCDEF"]
    i = positions[-1]
    kind = REPLACEMENTS[n % len(REPLACEMENTS)]
    if kind == "_":
        return token[:i] + "_" + token[i:] if len(positions) > 1 and i > positions[0] else token[:i] + "²" + token[i + 1:]
    return token[:i] + kind + token[i + 1:]


def numeric_cases(text: str, n: int) -> list[tuple[str, bool]]:
    """(garbled content, whole) for each number in the file: the whole content when it is one number
    (then the agent must warn), else the first numeric field of each line (then any effect must be
    warned about). `n` picks the replacement, so that the files of a capture see all of them."""
    stripped = text.strip()
    if WHOLE_NUMBER.fullmatch(stripped):
        start = text.index(stripped)
        return [(text[:start] + garble_token(stripped, n) + text[start + len(stripped):], True)]
    cases = []
    lines = text.split("\n")
    for number, line in enumerate(lines):
        for m in re.finditer(r"\S+", line):
            if FIELD_NUMBER.fullmatch(m.group()):
                garbled = line[:m.start()] + garble_token(m.group(), n + number) + line[m.end():]
                cases.append(("\n".join(lines[:number] + [garbled] + lines[number + 1:]), False))
                break
    return cases


def differences(clean, damaged, path=()):
    """(path, "lost" | "changed") for each leaf that differs; a leaf that became null, a key that went
    away, or a list that lost elements (a garbled line of a line-per-record file) is "lost"."""
    if clean == damaged:
        return []
    if isinstance(clean, dict) and isinstance(damaged, dict):
        out = []
        for key in clean.keys() | damaged.keys():
            if key not in damaged:
                out.append((path + (key,), "lost"))
            elif key not in clean:
                out.append((path + (key,), "changed"))
            else:
                out += differences(clean[key], damaged[key], path + (key,))
        return out
    if isinstance(clean, list) and isinstance(damaged, list):
        if len(clean) == len(damaged):
            return [d for i, (a, b) in enumerate(zip(clean, damaged)) for d in differences(a, b, path + (i,))]
        rest = iter(clean)
        kept_in_order = all(any(item == c for c in rest) for item in damaged)
        return [(path, "lost" if kept_in_order and len(damaged) < len(clean) else "changed")]
    return [(path, "lost" if damaged is None else "changed")]


def item_of(path: tuple) -> tuple:
    """The device, group, unit, holder… a path lies in: up to its first list index."""
    for i, part in enumerate(path):
        if isinstance(part, int):
            return path[: i + 1]
    return path[:2]


def judge(clean: dict, damaged: dict, kernel_paths: list[str], whole: bool) -> str | None:
    """Why this damage cost more than the garbled number, or None when it did not."""
    guards = [w for w in damaged["warnings"] if "failed (" in w]
    if guards:
        return f"an exception was caught: {guards}"
    diffs = differences({k: v for k, v in clean.items() if k != "warnings"},
                        {k: v for k, v in damaged.items() if k != "warnings"})
    changed = [p for p, kind in diffs if kind != "lost"]
    if changed:
        return f"values changed instead of becoming unknown: {changed[:5]}"
    items = {item_of(p) for p, _ in diffs}
    if len(items) > 1:
        return f"more than one item lost attributes: {sorted(items, key=str)[:5]}"
    named = [w for w in damaged["warnings"] if any(w.startswith(f"{k}: ") for k in kernel_paths)]
    if (whole or diffs) and not named:
        return f"no warning names the file (lost {[p for p, _ in diffs][:5]})"
    return None


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_one_garbled_number_costs_only_that_number_with_a_warning_naming_its_file(writable_capture, name):
    root = writable_capture(name)
    clean = build(Root.of(root), now=NOW)
    tried, failures = 0, []
    for n, (real, kernel_paths) in enumerate(sorted(files_read(root).items())):
        if kernel_paths == ["/proc/version"]:
            # Free text kept verbatim (`… #1 SMP PREEMPT_DYNAMIC Wed Dec  2 …` on the 6.12 captures):
            # a digit of its build date is the kernel's wording, not a number the agent reads.
            continue
        original = Path(real).read_bytes()
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            continue  # config space: binary, decoded by offsets, not a number
        for garbled, whole in numeric_cases(text, n):
            Path(real).write_text(garbled, encoding="utf-8")
            try:
                damaged = build(Root.of(root), now=NOW)
            finally:
                Path(real).write_bytes(original)
            tried += 1
            why = judge(clean, damaged, kernel_paths, whole)
            if why:
                failures.append(f"{kernel_paths[0]} = {garbled.strip()[:60]!r}: {why}")
    assert tried > 50, f"only {tried} numbers found in {name}: is the capture read at all?"
    assert failures == [], "\n".join(failures)


PF = "sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0"


@pytest.mark.parametrize("fname, key", [("sriov_numvfs", "num_vfs"), ("sriov_totalvfs", "total_vfs")])
def test_a_superscript_digit_in_one_pf_costs_its_vf_count_not_the_device_list(writable_capture, fname, key):
    # The reproduction: `²` passes str.isdigit(), then int() raised and devices came back [].
    root = writable_capture("sriov-nvme")
    clean = {d["bdf"]: d for d in build(Root.of(root), now=NOW)["devices"]}
    (root / PF / fname).write_text("²\n")
    doc = build(Root.of(root), now=NOW)
    devices = {d["bdf"]: d for d in doc["devices"]}
    assert devices.keys() == clean.keys()
    assert devices["0000:01:00.0"]["sriov"][key] is None
    assert devices["0000:01:00.0"]["sriov"]["vfs"] == clean["0000:01:00.0"]["sriov"]["vfs"]
    assert f"/sys/bus/pci/devices/0000:01:00.0/{fname}: not a count ('²')" in doc["warnings"]


@pytest.mark.parametrize("digit", ["²", "٣", "３"])
def test_a_garbled_group_number_in_a_device_link_is_taken_from_the_group_listing(writable_capture, digit):
    # A device's iommu_group link whose target ends in something that is not an ASCII number: the
    # group directory still lists the device, so only the link's witness is lost.
    root = writable_capture("sriov-nvme")
    clean = build(Root.of(root), now=NOW)
    link = root / PF / "iommu_group"
    link.unlink()
    link.symlink_to(f"../../../../kernel/iommu_groups/{digit}")
    doc = build(Root.of(root), now=NOW)
    assert doc["devices"] == clean["devices"] and doc["groups"] == clean["groups"]
    assert any(w.startswith("/sys/bus/pci/devices/0000:01:00.0/iommu_group: not a group number") for w in doc["warnings"])


@pytest.mark.parametrize("name", ["²", "٣", "04"])
def test_a_group_directory_not_named_as_the_kernel_names_groups_is_skipped(writable_capture, name):
    # /sys/kernel/iommu_groups/<N> with N garbled: that directory is left out; every other group and
    # device is read as before (the members' own links still name their group).
    root = writable_capture("sriov-nvme")
    clean = build(Root.of(root), now=NOW)
    os.rename(root / "sys/kernel/iommu_groups/4", root / f"sys/kernel/iommu_groups/{name}")
    doc = build(Root.of(root), now=NOW)
    assert doc["devices"] == clean["devices"]
    assert [g for g in doc["groups"] if g["id"] != 4] == [g for g in clean["groups"] if g["id"] != 4]
    assert any(w.startswith(f"/sys/kernel/iommu_groups/{name}: not") for w in doc["warnings"])
    assert not [w for w in doc["warnings"] if "failed (" in w]


def test_a_process_with_deeply_nested_json_in_its_argv_keeps_the_holders_section(writable_capture):
    # Any local user may start a process holding a VFIO fd with `-device [[[[…` in its argv: json.loads
    # raised RecursionError, which emptied the whole holders section.
    root = writable_capture("sriov-nvme")
    cmdline = root / "proc/256/cmdline"
    clean = build(Root.of(root), now=NOW)["holders"]
    cmdline.write_bytes(cmdline.read_bytes() + b"-device\x00" + b"[" * 100_000 + b"\x00")
    holders = build(Root.of(root), now=NOW)["holders"]
    assert [(h["pid"], h["vm"], h["devices"]) for h in holders] == [(h["pid"], h["vm"], h["devices"]) for h in clean]
