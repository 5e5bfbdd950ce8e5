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
    "fleet.decisions",
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
                "fleet.web.navigation.navigation",
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
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (fleet.accounts.throttle): this many failed logins for one user name from one address
# within the window refuse further attempts from there (429) until the oldest leaves the window.
FLEET_LOGIN_MAX_FAILURES = env_int("FLEET_LOGIN_MAX_FAILURES", 5)
FLEET_LOGIN_LOCKOUT_SECONDS = env_int("FLEET_LOGIN_LOCKOUT_SECONDS", 900)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("FLEET_STATIC_ROOT", BASE_DIR / "staticfiles"))
# WhiteNoise warns "No directory at" on every start (and test run) until collectstatic has made it: an empty one is fine.
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only root without the directory: WhiteNoise's warning is then the right message
    pass
# Serve static/ straight from the finders when collectstatic has not run (the embedded default, runserver with DEBUG off).
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("FLEET_BROKER_URL") or os.environ.get("REDIS_URL") or ""
# No broker configured: run tasks in process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Eager .delay() still takes a producer from the pool; without a URL kombu warns "No hostname was supplied" each time.
CELERY_BROKER_WRITE_URL = "memory://localhost/" if CELERY_TASK_ALWAYS_EAGER else None
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup otherwise closes every database connection before and after each task (a new
# PostgreSQL session per task); fleet.ingest.tasks closes them Django's way instead (CONN_MAX_AGE, broken ones).
CELERY_DB_REUSE_MAX = env_int("FLEET_CELERY_DB_REUSE_MAX", 1_000_000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("FLEET_BROKER_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULE = {
    "ingest-sweep": {
        "task": "fleet.ingest.tasks.sweep",
        "schedule": float(env_int("FLEET_SWEEP_INTERVAL", 60)),
    },
    "policy-tick": {"task": "fleet.policy.tasks.policy_tick", "schedule": float(env_int("FLEET_POLICY_TICK_INTERVAL", 60))},
    "alerts-requeue": {"task": "fleet.alerts.tasks.alert_requeue_task", "schedule": 300.0},
}

# --- Ingest limits ---------------------------------------------------------
FLEET_MAX_BODY_BYTES = env_int("FLEET_MAX_BODY_BYTES", 2 * 1024 * 1024)
FLEET_MAX_SNAPSHOT_BYTES = env_int("FLEET_MAX_SNAPSHOT_BYTES", 32 * 1024 * 1024)
FLEET_REPORT_INTERVAL = env_int("FLEET_REPORT_INTERVAL", 60)
FLEET_STALE_AFTER_INTERVALS = env_int("FLEET_STALE_AFTER_INTERVALS", 3)
# Snapshots still `received` this long after arrival are queued again by the sweeper (lost task).
FLEET_REQUEUE_AFTER = env_int("FLEET_REQUEUE_AFTER", 120)
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

# --- Operating it for real (accounts, read API, metrics, hardening) -----------------------
# Additive on purpose: the apps and middleware of issue 6, and FLEET_PRODUCTION=1 for a real deployment.
INSTALLED_APPS += ["django_filters", "drf_spectacular", "drf_spectacular_sidecar", "fleet.accounts", "fleet.api", "fleet.metrics", "fleet.alerts"]  # noqa: F405
# Agent requests are counted and admitted before sessions or auth are touched; the CSP goes on every response.
MIDDLEWARE.insert(1, "fleet.ingest.admission.IngestAdmissionMiddleware")
MIDDLEWARE.insert(1, "fleet.metrics.middleware.IngestMetricsMiddleware")
MIDDLEWARE.insert(1, "fleet.security.csp.ContentSecurityPolicyMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, "fleet.accounts.context.AuditContextMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("fleet.accounts.context.AuditContextMiddleware") + 1, "fleet.accounts.throttle.LoginThrottleMiddleware")

REST_FRAMEWORK = {**globals().get("REST_FRAMEWORK", {}), "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "IOMMU Fleet read API",
    "DESCRIPTION": "Hosts, devices, IOMMU groups, holders, violations and changes across the fleet. "
    "Authenticate with a session or a user API token (`Authorization: Bearer fleet_…`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["fleet.api.permissions.FleetReader"],
    "SERVE_AUTHENTICATION": ["fleet.api.authentication.ApiTokenAuthentication", "rest_framework.authentication.SessionAuthentication"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "fleet.api.schema.add_error_responses"],
}

# Dashboard and read-API requests only (not agents, not workers): a backstop for any query that escapes its bounds.
FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS = env_int("FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS", 5000)
MIDDLEWARE.append("fleet.web.middleware.DashboardLimitsMiddleware")  # noqa: F405
FLEET_METRICS_TOKEN = os.environ.get("FLEET_METRICS_TOKEN", "")
# Agent requests handled at once per web process: below the web threads (FLEET_WEB_THREADS, read by
# deploy/gunicorn.conf.py too), so however many agents (or slow clients) come, some threads are left
# for the dashboard. A larger value is lowered to threads - 1.
FLEET_WEB_THREADS = env_int("FLEET_WEB_THREADS", 8)
FLEET_INGEST_MAX_INFLIGHT = max(1, min(env_int("FLEET_INGEST_MAX_INFLIGHT", FLEET_WEB_THREADS - 2), FLEET_WEB_THREADS - 1))
# Seconds an agent has to send its whole request body (a heartbeat, or a snapshot of up to FLEET_MAX_BODY_BYTES
# gzip); a slower one gets 408. The agent's own deadline for the whole exchange is 30 s.
FLEET_INGEST_BODY_DEADLINE = env_int("FLEET_INGEST_BODY_DEADLINE", 20)
# One snapshot's apply (state and policy): a 480-device host takes well under a second (bench/ingest.py).
# Past the soft limit the snapshot is marked failed; the hard limit kills a worker that did not stop.
FLEET_APPLY_SOFT_TIME_LIMIT = env_int("FLEET_APPLY_SOFT_TIME_LIMIT", 60)
FLEET_APPLY_TIME_LIMIT = env_int("FLEET_APPLY_TIME_LIMIT", FLEET_APPLY_SOFT_TIME_LIMIT + 30)
# Attempts (retries after database trouble, redeliveries after a killed worker) before a snapshot is marked failed.
FLEET_APPLY_MAX_ATTEMPTS = env_int("FLEET_APPLY_MAX_ATTEMPTS", 5)
# Above this many hosts /metrics leaves out the per-host fleet_host_* families (9 series a host).
FLEET_METRICS_MAX_HOSTS = env_int("FLEET_METRICS_MAX_HOSTS", 2000)
# Outbound webhooks (fleet.alerts, docs/deploy.md): links in payloads start with FLEET_PUBLIC_URL.
FLEET_PUBLIC_URL = os.environ.get("FLEET_PUBLIC_URL", "")
FLEET_ALERT_MAX_ATTEMPTS = env_int("FLEET_ALERT_MAX_ATTEMPTS", 8)
FLEET_ALERT_RETRY_BASE = env_int("FLEET_ALERT_RETRY_BASE", 30)  # seconds, doubled after each failure
FLEET_ALERT_RETRY_MAX = env_int("FLEET_ALERT_RETRY_MAX", 1800)  # under the broker visibility timeout: no duplicate
FLEET_ALERT_TIMEOUT = env_int("FLEET_ALERT_TIMEOUT", 10)
FLEET_ALERT_BATCH = env_int("FLEET_ALERT_BATCH", 100)  # violations per delivery
FLEET_ALERT_FIRING_HOLD = env_int("FLEET_ALERT_FIRING_HOLD", 7 * 86400)  # Alertmanager endsAt of an open violation
FLEET_ALERT_REQUEUE_AFTER = env_int("FLEET_ALERT_REQUEUE_AFTER", 600)  # a pending delivery this overdue lost its task
FLEET_INGEST_MAX_QUEUE = env_int("FLEET_INGEST_MAX_QUEUE", 20000)
FLEET_INGEST_RETRY_AFTER = env_int("FLEET_INGEST_RETRY_AFTER", 5)
FLEET_CSP_REPORT_ONLY = env_bool("FLEET_CSP_REPORT_ONLY", False)
if "FLEET_CSP" in os.environ:
    FLEET_CSP = os.environ["FLEET_CSP"]

FLEET_PRODUCTION = env_bool("FLEET_PRODUCTION", False)
if FLEET_PRODUCTION:
    if SECRET_KEY.startswith("insecure-"):
        raise RuntimeError("FLEET_PRODUCTION=1 needs FLEET_SECRET_KEY")
    # TLS ends at the reverse proxy (docs/deploy.md), which must set X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("FLEET_SSL_REDIRECT", True)
    # The agents and Prometheus may talk to the app directly on the internal network (plain HTTP).
    SECURE_REDIRECT_EXEMPT = [r"^metrics$", r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("FLEET_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FLEET_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("FLEET_HSTS_PRELOAD", False)
    # Subdomains and the preload list bind every other site of the domain: an operator's choice (env), not ours.
    SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "security.W005", "security.W021"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
if env_bool("FLEET_LOG_JSON", FLEET_PRODUCTION):
    LOGGING["formatters"]["json"] = {  # noqa: F405
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }
    LOGGING["handlers"]["console"]["formatter"] = "json"  # noqa: F405
