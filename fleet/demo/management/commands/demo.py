"""`python manage.py demo` (what `make demo` runs): migrate, a login, the demo fleet, then the web server."""
import logging
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from fleet.demo import services

DEFAULT_SYNTHETIC = 40
DEFAULT_LARGE = 1


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
        parser.add_argument("--password", default=None, help="the demo login's password (default: a new random one)")

    def handle(self, *args, addr, port, no_serve, reset, synthetic, large, seed, password, **options):
        if synthetic < 0 or large < 0:
            raise CommandError("--synthetic and --large must be 0 or more")
        fleet = {"synthetic": synthetic, "large": large, "seed": seed}
        self.stdout.write("preparing the database…")
        call_command("migrate", verbosity=0, interactive=False)
        password = services.demo_user_ensure(password=password)

        if reset:
            services.demo_fleet_remove(**fleet)
        if services.demo_fleet_present(**fleet):
            self.stdout.write("demo fleet already loaded (use --reset to load it again)")
        else:
            services.demo_intent_load()
            # One INFO line per applied task would bury the progress line.
            logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
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
