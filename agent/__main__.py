"""`fleet-agent` (also `python -m agent`): collect one snapshot, show it to a person, or run the push loop."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .files import write_atomic
from .paths import Root
from .show import render
from .snapshot import build, to_json

EXIT_FAILED = 1
EXIT_BAD_ROOT = 2


# What sysfs or procfs of any Linux since 2.6 holds; a partial capture keeps at least one.
LINUX_MARKERS = ("sys/bus", "sys/devices", "sys/kernel", "sys/class", "proc/version", "proc/cmdline")


class BadRoot(Exception):
    pass


def check_root(path: str) -> Root:
    """The root as a Root, or BadRoot when it cannot be a Linux tree (not a directory, or neither sys nor proc)."""
    p = Path(path)
    if not os.path.lexists(p):
        raise BadRoot(f"{path} does not exist")
    if not p.is_dir():
        raise BadRoot(f"{path} is not a directory")
    if not (p / "sys").is_dir() and not (p / "proc").is_dir():
        raise BadRoot(f"{path} is not a Linux root: it has neither sys/ nor proc/")
    if not any(os.path.lexists(p / marker) for marker in LINUX_MARKERS):
        # FreeBSD's /sys is a link to the kernel sources and its /proc is often empty.
        raise BadRoot(f"{path} is not a Linux root: its sys/ and proc/ hold none of "
                      f"{', '.join(LINUX_MARKERS)}")
    return Root.of(p)


def _use_color(choice: str, stream) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _collect(args) -> int:
    text = to_json(build(check_root(args.root)), pretty=args.pretty) + "\n"
    if args.output:
        write_atomic(args.output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def _show(args) -> int:
    doc = build(check_root(args.root))
    sys.stdout.write(render(doc, color=_use_color(args.color, sys.stdout)))
    return 0


def _run(args) -> int:
    from . import transport

    return transport.run_command(args)


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="collect periodically and push to the fleet server")
    try:
        from . import transport
    except ImportError as exc:
        run.set_defaults(func=lambda _args: _missing_transport(exc))
        return
    transport.add_run_arguments(run)
    run.set_defaults(func=_run)


def _missing_transport(exc: ImportError) -> int:
    print(f"fleet-agent: run is not available in this install (agent.transport: {exc})", file=sys.stderr)
    return EXIT_FAILED


def build_parser(*, with_run_arguments: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-agent", description="IOMMU Fleet host agent")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{collect,show,run}")

    collect = sub.add_parser("collect", help="print one snapshot (JSON)")
    collect.add_argument("--root", default="/", help="filesystem root to read (/ or a captured tree)")
    collect.add_argument("--pretty", action="store_true", help="indent the JSON")
    collect.add_argument("--output", metavar="FILE", help="write the snapshot to FILE (atomically) instead of stdout")
    collect.set_defaults(func=_collect)

    show = sub.add_parser("show", help="readable view of this host's IOMMU groups, owners and risks")
    show.add_argument("--root", default="/", help="filesystem root to read (/ or a captured tree)")
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colour: auto (on a terminal, unless NO_COLOR is set), always, never")
    show.set_defaults(func=_show)

    if with_run_arguments:
        _add_run(sub)
    else:
        sub.add_parser("run", help="collect periodically and push to the fleet server")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The transport is imported only when `run` is asked for: collect/show work without it.
    args = build_parser(with_run_arguments=argv[:1] == ["run"]).parse_args(argv)
    try:
        return args.func(args)
    except BadRoot as exc:
        print(f"fleet-agent: {exc}", file=sys.stderr)
        return EXIT_BAD_ROOT
    except BrokenPipeError:
        # `fleet-agent show | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" {exc.filename}:" if isinstance(exc, OSError) and exc.filename else ""
        print(f"fleet-agent:{where} {why}".replace("\n", " "), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
