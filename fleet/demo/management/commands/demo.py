"""`python manage.py demo` (what `make demo` runs): migrate, a login, the demo fleet, then the web server."""
import logging
import socket
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from fleet.demo import services

DEFAULT_SYNTHETIC = 40
DEFAULT_LARGE = 1


def port_problem(addr: str, port: int) -> str | None:
    """Why `addr:port` cannot be served on now (taken, not an address here), or None."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            # SO_REUSEADDR as runserver sets it: a port left in TIME_WAIT by the last run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((addr, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


class Command(BaseCommand):
    help = ("Set up the embedded demo: migrate, create the `demo` login, load the real captures and synthetic "
            "hosts through the ingest path (skipped when already loaded), then serve the dashboard.")

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
        parser.add_argument("--no-serve", action="store_true", help="set everything up, print the login and exit")
        parser.add_argument("--reset", action="store_true", help="delete the demo hosts and load them again")
        parser.add_argument("--synthetic", type=int, default=DEFAULT_SYNTHETIC,
                            help=f"synthetic hosts besides the captures (default {DEFAULT_SYNTHETIC})")
        parser.add_argument("--large", type=int, default=DEFAULT_LARGE,
                            help=f"hosts of 480+ devices (the DGX-2H replicated) besides those (default {DEFAULT_LARGE})")
        parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic fleet (default 0)")
        parser.add_argument("--password", default=None,
                            help="the demo login's password (default: the one of the last run, else a new random one)")

    def handle(self, *args, addr, port, no_serve, reset, synthetic, large, seed, password, **options):
        if synthetic < 0 or large < 0:
            raise CommandError("--synthetic and --large must be 0 or more")
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port (1-65535)")
        fleet = {"synthetic": synthetic, "large": large, "seed": seed}
        # Tasks run in process here: one INFO line per task would bury the progress line and the login.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        if not no_serve:
            # Before minutes of loading, not after: a taken port would only be found when serving.
            problem = port_problem(addr, port)
            if problem:
                raise CommandError(f"cannot serve on {addr} port {port}: {problem}. "
                                   f"Choose another with `make demo PORT={port + 1}` (or --addr/--port).")
        self.stdout.write("preparing the database…")
        call_command("migrate", verbosity=0, interactive=False)
        password = services.demo_user_ensure(password=services.demo_password(Path(settings.VAR_DIR), password))

        if reset:
            services.demo_fleet_remove(**fleet)
        if services.demo_fleet_present(**fleet):
            self.stdout.write("demo fleet already loaded (use --reset to load it again)")
        else:
            services.demo_intent_load()
            try:
                loaded = services.demo_fleet_load(**fleet, progress=self._progress)
            except services.DemoLoadError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"\nloaded {loaded} hosts")

        url = f"http://{addr if ':' not in addr else f'[{addr}]'}:{port}/"
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"IOMMU Fleet demo: {url}"))
        self.stdout.write(self.style.SUCCESS(f"login: {services.DEMO_USERNAME}  password: {password}"))
        self.stdout.flush()
        if no_serve:
            return
        # Static files come from the finders (WHITENOISE_USE_FINDERS); an absent STATIC_ROOT only makes whitenoise warn.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        call_command("runserver", f"{addr}:{port}" if ":" not in addr else f"[{addr}]:{port}", use_reloader=False)

    def _progress(self, done: int, total: int, hostname: str) -> None:
        line = f"loading demo fleet: {done}/{total} hosts"
        if sys.stdout.isatty():
            self.stdout.write(f"\r{line}", ending="")
            self.stdout.flush()
        elif done == total or done % 10 == 0:
            self.stdout.write(line)
