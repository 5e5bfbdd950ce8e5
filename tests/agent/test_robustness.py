"""Property: whatever files of a real capture are deleted, emptied, garbled, turned into dangling links
or replaced by directories, the agent returns a snapshot that validates against the schema, no
collector gives up, and damage to a file the agent must read shows up in `warnings`."""
import json
import os
import re
import shutil
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.paths import Root
from agent.snapshot import SCHEMA_PATH, build
from tests.agent.captures import CAPTURE_NAMES, tarball

DAMAGES = ("delete", "empty", "garble", "dangling", "directory", "rename")

# (path pattern, damages that must leave a warning). Left out on purpose, because the kernel itself
# produces that state legitimately: a missing machine-id, an fd that closed or now points elsewhere
# (delete/dangling of fd links). A group's `type` (5.2+) and `reserved_regions` (4.11+) are always
# there on the captures' 6.1 kernel.
MUST_WARN = [
    (r"sys/kernel/iommu_groups/\d+/(type|reserved_regions)$", ("delete", "empty", "garble", "directory")),
    (r"sys/devices/pci[^/]+/(.*/)?[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/"
     r"(driver_override|sriov_numvfs|sriov_totalvfs|sriov_drivers_autoprobe)$", ("delete", "garble", "directory")),
    (r"sys/kernel/iommu_groups/\d+/devices/[^/]+$", ("delete", "empty", "garble", "dangling", "directory")),
    (r"sys/devices/pci[^/]+/(.*/)?[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/"
     r"(vendor|device|class|revision|subsystem_vendor|subsystem_device)$", DAMAGES),
    (r"sys/class/iommu/[^/]+$", ("delete", "empty", "garble", "dangling", "directory")),
    (r"sys/devices/pci[^/]+/(.*/)?[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/config$", ("delete", "empty", "directory")),
    (r"sys/devices/pci[^/]+/(.*/)?[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/iommu_group$", DAMAGES),
    (r"sys/class/iommu/[^/]+/intel-iommu/(cap|ecap)$", DAMAGES),
    (r"proc/cmdline$", DAMAGES),
    (r"proc/\d+/(cmdline|status)$", DAMAGES),
    (r"proc/\d+/fd/\d+$", ("garble", "directory")),
    (r"dev-nodes\.tsv$", DAMAGES),
]


@lru_cache(maxsize=None)
def tree_paths(name: str) -> tuple[str, ...]:
    """Every file, link and directory of the capture except ground-truth/ (which the agent never reads)."""
    with tarfile.open(tarball(name)) as tar:
        names = {os.path.normpath(m.name) for m in tar.getmembers()}
    return tuple(sorted(n for n in names if n not in (".", "") and not n.startswith("ground-truth")))


def must_warn(rel: str, damage: str) -> bool:
    return any(re.match(pattern, rel) and damage in kinds for pattern, kinds in MUST_WARN)


@lru_cache(maxsize=1)
def validator():
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def extract(name: str, dest: Path) -> Path:
    with tarfile.open(tarball(name)) as tar:
        tar.extractall(dest, filter="fully_trusted")
    return dest


def apply(root: Path, rel: str, damage: str, payload: bytes) -> None:
    p = root / rel
    if not os.path.lexists(p):
        return  # an earlier damage removed its directory
    if damage == "rename":  # the entry keeps its content under a name that is not UTF-8
        os.rename(bytes(p), bytes(p) + b"\xff")
        return
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()
    if damage == "empty":
        p.write_bytes(b"")
    elif damage == "garble":
        p.write_bytes(payload)
    elif damage == "dangling":
        p.symlink_to("../no/such/target")
    elif damage == "directory":
        p.mkdir()


# Garbage a kernel never writes: not UTF-8, or longer than any sysfs attribute.
garbage = st.one_of(
    st.binary(min_size=1, max_size=300).map(lambda b: b"\xff" + b),
    st.binary(min_size=1, max_size=8).map(lambda b: b"\xfe" + b * 9000 + b"x" * 70000),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_capture_still_gives_a_valid_snapshot_with_warnings(data):
    name = data.draw(st.sampled_from(CAPTURE_NAMES), label="capture")
    paths = tree_paths(name)
    targets = [p for p in paths if any(re.match(pat, p) for pat, _ in MUST_WARN)]
    pick_from = data.draw(st.sampled_from(["anywhere", "read-by-agent"]), label="where")
    pool = paths if pick_from == "anywhere" else targets
    damages = data.draw(st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(DAMAGES), garbage),
                                 min_size=1, max_size=4, unique_by=lambda t: t[0]), label="damages")
    with tempfile.TemporaryDirectory() as tmp:
        root = extract(name, Path(tmp))
        for rel, damage, payload in damages:
            apply(root, rel, damage, payload)
        doc = build(Root.of(root))

    json.dumps(doc, ensure_ascii=False).encode("utf-8")  # what goes on the wire must be UTF-8
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.path))
    assert errors == [], [(list(e.path), e.message[:200]) for e in errors[:3]]
    assert not [w for w in doc["warnings"] if w.startswith("collector ")], doc["warnings"]
    if any(must_warn(rel, damage) for rel, damage, _ in damages):
        assert doc["warnings"], damages
