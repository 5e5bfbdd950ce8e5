"""Readers with explicit fallbacks. Every failure becomes a warning naming the path; nothing raises.

Reading is separated from parsing: these functions return raw text/bytes (or the
fallback) and record why a read failed; collectors parse the result with pure functions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from .integers import parse_int
from .paths import Root

T = TypeVar("T")

# A sysfs attribute is a few bytes; this bounds a garbled or hostile file.
MAX_TEXT = 64 * 1024
MAX_WARNING = 4096


class Warnings:
    """Collects one line per unreadable or unparsable path, in the order met, without duplicates."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._seen: set[str] = set()

    def add(self, path: str, why: str) -> None:
        # Paths may hold non-UTF-8 names (lone surrogates from os.listdir): keep the line serialisable.
        line = f"{path}: {why}".encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if len(line) > MAX_WARNING:
            # A warning quoting hostile input must not outgrow the schema's bound on one line.
            line = line[: MAX_WARNING - 1] + "…"
        if line not in self._seen:
            self._seen.add(line)
            self._items.append(line)

    def as_list(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _why(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


class Reader:
    """Reads files under a Root, turning every failure into a warning and a fallback."""

    def __init__(self, root: Root, warnings: Warnings | None = None) -> None:
        self.root = root
        self.warnings = warnings if warnings is not None else Warnings()

    def warn(self, kernel_path: str, why: str) -> None:
        self.warnings.add(kernel_path, why)

    def exists(self, kernel_path: str) -> bool:
        return os.path.lexists(self.root.fspath(kernel_path))

    def text(self, kernel_path: str, fallback: T = None, *, missing_ok: bool = False) -> str | T:
        """Stripped text of a small file. Not UTF-8 is decoded with replacement and warned about;
        empty is returned as the fallback with a warning."""
        p = self.root.fspath(kernel_path)
        try:
            with open(p, "rb") as f:
                raw = f.read(MAX_TEXT + 1)
        except FileNotFoundError:
            if not missing_ok:
                self.warn(kernel_path, "missing")
            return fallback
        except IsADirectoryError:
            self.warn(kernel_path, "is a directory, expected a file")
            return fallback
        except OSError as exc:
            self.warn(kernel_path, f"unreadable ({_why(exc)})")
            return fallback
        if len(raw) > MAX_TEXT:
            self.warn(kernel_path, f"longer than {MAX_TEXT} bytes, truncated")
            raw = raw[:MAX_TEXT]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.warn(kernel_path, "not UTF-8 (decoded with replacement)")
            text = raw.decode("utf-8", errors="replace")
        text = text.strip().replace("\x00", "")
        if text == "":
            self.warn(kernel_path, "empty")
            return fallback
        return text

    def integer(self, kernel_path: str, text: str | None, *, what: str = "an integer", **form: Any) -> int | None:
        """`text`, read from `kernel_path`, as an integer in the file's format (`integers.parse_int`
        arguments); None with a warning naming the file when it is not one."""
        value = parse_int(text, **form)
        if text is not None and value is None:
            self.warn(kernel_path, f"not {what} ({text[:40]!r})")
        return value

    def read_int(self, kernel_path: str, *, missing_ok: bool = False, what: str = "an integer",
                 **form: Any) -> int | None:
        return self.integer(kernel_path, self.text(kernel_path, missing_ok=missing_ok), what=what, **form)

    def isolated(self, label: str, lost: str, fallback: T, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, or `fallback` with a warning when it raises: a bug met on one item costs that
        item (`lost` says what), never its section. Parsers do not raise on bad input; this is the
        guard for what nobody foresaw."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.warn(label, f"failed ({exc.__class__.__name__}: {exc}); {lost}")
            return fallback

    def binary(self, kernel_path: str, limit: int = 4096, *, missing_ok: bool = False) -> bytes | None:
        p = self.root.fspath(kernel_path)
        try:
            with open(p, "rb") as f:
                return f.read(limit)
        except FileNotFoundError:
            if not missing_ok:
                self.warn(kernel_path, "missing")
        except OSError as exc:
            self.warn(kernel_path, f"unreadable ({_why(exc)})")
        return None

    def listdir(self, kernel_path: str, *, missing_ok: bool = False) -> list[str]:
        """Sorted entry names; [] with a warning when missing or unreadable."""
        p = self.root.fspath(kernel_path)
        try:
            return sorted(os.listdir(p))
        except FileNotFoundError:
            if not missing_ok:
                self.warn(kernel_path, "missing")
        except NotADirectoryError:
            self.warn(kernel_path, "not a directory")
        except OSError as exc:
            self.warn(kernel_path, f"unreadable ({_why(exc)})")
        return []

    def readlink(self, kernel_path: str, *, missing_ok: bool = False) -> str | None:
        """The raw link target (as `readlink` prints it)."""
        p = self.root.fspath(kernel_path)
        try:
            return os.readlink(p)
        except FileNotFoundError:
            if not missing_ok:
                self.warn(kernel_path, "missing")
        except OSError as exc:
            self.warn(kernel_path, f"not a readable link ({_why(exc)})")
        return None

    def link_name(self, kernel_path: str, *, missing_ok: bool = True) -> str | None:
        """Last component of a link's target (`driver` -> `vfio-pci`, `iommu_group` -> `14`)."""
        target = self.readlink(kernel_path, missing_ok=missing_ok)
        if target is None:
            return None
        name = target.rstrip("/").rsplit("/", 1)[-1]
        return self.printable(kernel_path, name) or None

    def printable(self, kernel_path: str, name: str) -> str:
        """A file or link name made safe to serialise: os functions hand back non-UTF-8 bytes as
        lone surrogates, which json.dumps keeps and the UTF-8 encoder then refuses. Use it for names
        that go into the snapshot, never for names used to open files."""
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:
            self.warn(kernel_path, "name is not UTF-8 (decoded with replacement)")
            return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

    def resolve(self, kernel_path: str) -> Path | None:
        """Resolved path inside the root; a dangling link is warned about."""
        real = self.root.resolve(kernel_path)
        if real is None and os.path.islink(self.root.fspath(kernel_path)):
            self.warn(kernel_path, "dangling link")
        return real


def kernel_relative(root: Root, path: Path, below: str) -> str | None:
    """The part of a resolved path below a kernel directory (e.g. below /sys/devices)."""
    try:
        return str(Path(path).relative_to(root.path(below)))
    except ValueError:
        return None
