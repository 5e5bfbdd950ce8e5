"""Settings, all from environment variables with embedded defaults.

Embedded default: SQLite under ./var and Celery tasks run in process, so the
demo needs no service. Production sets DATABASE_URL (PostgreSQL) and
FLEET_BROKER_URL / REDIS_URL (Redis) and runs separate worker and beat
processes; the code path is the same, only these settings differ.
"""
import logging
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FLEET_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("FLEET_DEBUG", False)
SECRET_KEY = os.environ.get("FLEET_SECRET_KEY") or os.environ.get("SECRET_KEY") or "insecure-embedded-default-change-me"
ALLOWED_HOSTS = [h for h in os.environ.get("FLEET_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("FLEET_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "fleet.inventory",
    "fleet.ingest",
    "fleet.policy",
    "fleet.web",
    "fleet.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fleet.urls"
WSGI_APPLICATION = "fleet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'fleet.sqlite3'}",
        conn_max_age=env_int("FLEET_DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite serialises writers; wait rather than fail under the demo's concurrent ingest.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("FLEET_STATIC_ROOT", BASE_DIR / "staticfiles"))
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("FLEET_BROKER_URL") or os.environ.get("REDIS_URL") or ""
# No broker configured: run tasks in process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("FLEET_BROKER_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULE = {
    "ingest-sweep": {
        "task": "fleet.ingest.tasks.sweep",
        "schedule": float(env_int("FLEET_SWEEP_INTERVAL", 60)),
    },
}

# --- Ingest limits ---------------------------------------------------------
FLEET_MAX_BODY_BYTES = env_int("FLEET_MAX_BODY_BYTES", 2 * 1024 * 1024)
FLEET_MAX_SNAPSHOT_BYTES = env_int("FLEET_MAX_SNAPSHOT_BYTES", 32 * 1024 * 1024)
FLEET_REPORT_INTERVAL = env_int("FLEET_REPORT_INTERVAL", 60)
FLEET_STALE_AFTER_INTERVALS = env_int("FLEET_STALE_AFTER_INTERVALS", 3)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLEET_MAX_BODY_BYTES + 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("FLEET_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if CELERY_TASK_ALWAYS_EAGER:
    logging.getLogger("fleet").info("no broker configured (FLEET_BROKER_URL/REDIS_URL): tasks run in process")
