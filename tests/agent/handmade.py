"""Building small hand-made sysfs/procfs trees in a test's tmp_path, for kernel states no capture shows."""
from pathlib import Path


def write(root: Path, rel: str, text: str) -> Path:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def link(root: Path, rel: str, target: str) -> Path:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to(target)
    return p
