"""`fleet-agent` (also `python -m agent`): collect one snapshot, show it to a person, or run the push loop."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from . import __version__
from .bdf import parse_bdf
from .files import write_atomic
from .http import DEFAULT_DEADLINE, Client, TokenFileError, proxy_from_environment, read_token, ssl_context
from .integers import parse_int
from .paths import Root
from .ownership import ownership
from .problems import as_json, critical_shown
from .push import Backoff, LoopConfig, Pusher, serve
from .selection import Selection
from .show import render
from .snapshot import build, to_json
from .spool import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, Spool, SpoolLocked

log = logging.getLogger("agent.run")

DEFAULT_SPOOL_DIR = "/var/lib/fleet-agent/spool"

EXIT_FAILED = 1
EXIT_BAD_ROOT = 2
EXIT_USAGE = 2
EXIT_CRITICAL = 3  # `show`: what it shows breaks isolation (a red "!" line)


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
    only = Selection.of(args.group, args.bdf)
    doc = build(check_root(args.root))
    model = ownership(doc)
    if args.json:
        sys.stdout.write(json.dumps(as_json(doc, model, only), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render(doc, color=_use_color(args.color, sys.stdout), only=only, model=model))
    return EXIT_CRITICAL if critical_shown(doc, model, only) else 0


def _bdf_arg(text: str) -> str:
    bdf = parse_bdf(text)
    if bdf is None:
        raise argparse.ArgumentTypeError(f"not a PCI address (dddd:bb:dd.f or bb:dd.f): {text!r}")
    return bdf


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_int(text: str) -> int:
    value = parse_int(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="collect periodically and push to the fleet server")
    run.add_argument("--server", required=True, help="base URL of the fleet server, e.g. https://fleet.example.net")
    run.add_argument("--token-file", required=True,
                     help="file holding this host's token (mode 0600; `manage.py host_token create HOST`)")
    run.add_argument("--interval", type=_positive_float, default=60.0, help="seconds between collections (60)")
    run.add_argument("--ca-file", help="PEM bundle to verify the server's certificate with (default: system CAs)")
    run.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate (unsafe)")
    run.add_argument("--client-cert", help="PEM client certificate for mutual TLS (optional; key inside or --client-key)")
    run.add_argument("--client-key", help="PEM private key of --client-cert")
    run.add_argument("--proxy", help="HTTP CONNECT proxy URL, http://[user:pass@]host:port "
                     "(default: https_proxy/http_proxy from the environment, honouring no_proxy)")
    run.add_argument("--root", default="/", help="filesystem root to read (/ on a live host, or a captured tree)")
    run.add_argument("--spool-dir", default=os.environ.get("FLEET_AGENT_SPOOL_DIR", DEFAULT_SPOOL_DIR),
                     help=f"where undelivered snapshots and the sequence counter live ({DEFAULT_SPOOL_DIR})")
    run.add_argument("--spool-max", type=_positive_int, default=DEFAULT_MAX_FILES,
                     help=f"most snapshots kept while the server is unreachable; the oldest go first ({DEFAULT_MAX_FILES})")
    run.add_argument("--spool-max-bytes", type=_positive_int, default=DEFAULT_MAX_BYTES,
                     help=f"most bytes kept in the spool ({DEFAULT_MAX_BYTES})")
    run.add_argument("--once", action="store_true", help="collect and deliver once, then exit (1 if left spooled)")
    run.add_argument("--max-iterations", type=_positive_int, help="stop after this many collections")
    run.add_argument("--drain-timeout", type=_non_negative_float, default=0.0,
                     help="with --once/--max-iterations: keep retrying the spool this many seconds before exiting")
    run.add_argument("--timeout", type=_positive_float, default=DEFAULT_DEADLINE,
                     help="overall deadline of one HTTP request, in seconds: connect, proxy, TLS, sending and the "
                          f"whole answer ({DEFAULT_DEADLINE:g})")
    run.add_argument("--backoff-base", type=_positive_float, default=1.0, help="first retry delay ceiling, seconds (1)")
    run.add_argument("--backoff-max", type=_positive_float, default=300.0, help="largest retry delay, seconds (300)")
    run.add_argument("--auth-retry", type=_positive_float, default=300.0,
                     help="seconds to wait after the server refused the token (300)")
    run.set_defaults(func=_run)


def _pusher(args) -> Pusher:
    """The loop `run`'s arguments describe; raises TokenFileError, ValueError, SpoolLocked or OSError."""
    read_token(args.token_file)  # refuse an unusable token file before touching anything else
    context = None
    if args.server.startswith("https:"):
        try:
            context = ssl_context(ca_file=args.ca_file, insecure=args.insecure,
                                  client_cert=args.client_cert, client_key=args.client_key)
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise ValueError(f"cannot load the TLS files (--ca-file/--client-cert/--client-key): "
                             f"{exc.strerror or exc}") from None
    client = Client(args.server, token_file=args.token_file, timeout=args.timeout, context=context,
                    proxy=args.proxy or proxy_from_environment(args.server))
    try:
        spool = Spool(args.spool_dir, max_files=args.spool_max, max_bytes=args.spool_max_bytes)
        spool.lock()
    except OSError as exc:
        raise OSError(f"cannot use spool directory {args.spool_dir}: {exc.strerror or exc}") from None
    config = LoopConfig(root=Root.of(args.root), interval=args.interval, once=args.once,
                        max_iterations=args.max_iterations, drain_timeout=args.drain_timeout,
                        auth_retry=args.auth_retry)
    return Pusher(config, spool=spool, client=client, backoff=Backoff(base=args.backoff_base, cap=args.backoff_max))


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=os.environ.get("FLEET_AGENT_LOG_LEVEL", "INFO"),
                            format="%(asctime)s %(levelname)s fleet-agent: %(message)s")


def _run(args) -> int:
    """`fleet-agent run`: 0 all delivered, 1 left spooled, 2 a configuration error (systemd does not restart)."""
    _configure_logging()
    try:
        pusher = _pusher(args)
    except (TokenFileError, ValueError, SpoolLocked, OSError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    return serve(pusher)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-agent", description="IOMMU Fleet host agent")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{collect,show,run}")

    collect = sub.add_parser("collect", help="print one snapshot (JSON)")
    collect.add_argument("--root", default="/", help="filesystem root to read (/ or a captured tree)")
    collect.add_argument("--pretty", action="store_true", help="indent the JSON")
    collect.add_argument("--output", metavar="FILE", help="write the snapshot to FILE (atomically) instead of stdout")
    collect.set_defaults(func=_collect)

    show = sub.add_parser("show", help="readable view of this host's IOMMU groups, owners and risks",
                          description="Exit status: 0 nothing shown breaks isolation (warnings may be shown), "
                                      "3 a critical problem is shown (a red '!' line), 2 bad root or usage, 1 failure.")
    show.add_argument("--root", default="/", help="filesystem root to read (/ or a captured tree)")
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colour: auto (on a terminal, unless NO_COLOR is set), always, never")
    show.add_argument("--group", type=int, action="append", metavar="N",
                      help="only IOMMU group N (repeatable)")
    show.add_argument("--bdf", action="append", metavar="BDF", type=_bdf_arg,
                      help="only the group of this device, e.g. 0000:02:00.0 or 02:00.0 (repeatable)")
    show.add_argument("--json", action="store_true", help="the same view as JSON, for scripts")
    show.set_defaults(func=_show)

    _add_run(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
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
