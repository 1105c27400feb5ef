"""Settings shared by every environment, read from the environment through config.env."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.circuit import CircuitPgConnection
from config.env import env_bool, env_float, env_int, env_list, env_optional_bool, env_optional_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

APP_ENV = env_str("APP_ENV", "local")
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-secret-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
LOG_LEVEL = (env_str("LOG_LEVEL", "INFO") or "INFO").upper()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "accounts",
    "providers",
    "budgets",
    "routing",
    "analytics",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

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
                "analytics.context_processors.budget_alerts",
            ],
        },
    }
]

# --- Database: PostgreSQL (psycopg 3 with its connection pool) when DATABASE_URL is set, else SQLite.
DATABASE_URL = env_str("DATABASE_URL")
# Seconds a request waits for a pooled connection; while the database is down, how long until its 503.
DB_POOL_TIMEOUT_S = env_float("DB_POOL_TIMEOUT_S", 10.0, minimum=0.1)
# A pool retries a lost connection with growing pauses; capping the retry run keeps the pause short, so a
# database that comes back is used within seconds (the next request starts a fresh attempt).
DB_RECONNECT_TIMEOUT_S = 5.0
DB_CONNECT_TIMEOUT_S = 5
if DATABASE_URL:
    # Health checks: a pooled connection is tested before use, so one cut by a database restart is replaced
    # instead of failing a request after the database is back.
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DB_POOL_MIN", 2, minimum=0),
            "max_size": env_int("DB_POOL_MAX", 20, minimum=1),
            "timeout": DB_POOL_TIMEOUT_S,
            "reconnect_timeout": DB_RECONNECT_TIMEOUT_S,
            # Its connects open and close the database circuit (config/circuit.py).
            "connection_class": CircuitPgConnection,
        }
        _db["OPTIONS"].setdefault("connect_timeout", DB_CONNECT_TIMEOUT_S)
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The gateway's own async pool for its per-request writes (see config/db.py), per web process. Each request
# holds a connection for two short scripts; more connections than that needs only add PostgreSQL backends
# contending for the same budget rows: at 64 concurrent requests on one core, 12 served 6% more than 20
# (PostgreSQL 2.05 vs 2.5 ms of CPU per request) and 32 served 17% fewer; below 10 the pool's own waits cost
# the web process more than PostgreSQL saves.
DB_ASYNC_POOL_MAX = env_int("DB_ASYNC_POOL_MAX", 12, minimum=1)

# --- Cache: Redis via django-redis when REDIS_URL is set, else local memory.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                # Redis down means the cache is bypassed, never an error.
                "IGNORE_EXCEPTIONS": False,
                # Connections that share the Redis circuit with the gateway's own clients (config/redis_clients.py).
                "CONNECTION_POOL_CLASS": "config.redis_clients.CircuitConnectionPool",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: Redis broker; without one, tasks run in-process (embedded default only).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE") or "celery"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # its lines go through the JSON logging above, once
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
# Short socket timeouts and one publish retry: a broker that is down or hung costs a web request about a
# second, then the dispatch circuit refuses at once (routing/services/dispatch.py). Above kombu's 1 s BRPOP.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_timeout": 2.0,
    "socket_connect_timeout": 1.0,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TIMEZONE = "UTC"

# --- Auth & API
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["config.rendering.MoneyJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.api_errors.drf_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Model Router API",
    "DESCRIPTION": "OpenAI-compatible LLM gateway with routing, budgets, caching and analytics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The async gateway views (not DRF) and the error envelope of every /v1 operation: routing/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "routing.api.schema.add_gateway_paths",
    ],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ROUTER_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)

# --- Providers: API keys and base URLs (an environment base URL overrides the provider row's).
PROVIDER_API_KEYS = {
    "openai": env_str("OPENAI_API_KEY"),
    "anthropic": env_str("ANTHROPIC_API_KEY"),
    "google": env_str("GOOGLE_API_KEY"),
    "deepseek": env_str("DEEPSEEK_API_KEY"),
}
PROVIDER_BASE_URLS = {
    "openai": env_str("OPENAI_BASE_URL"),
    "anthropic": env_str("ANTHROPIC_BASE_URL"),
    "google": env_str("GEMINI_BASE_URL"),
    "deepseek": env_str("DEEPSEEK_BASE_URL"),
}

# --- Router behaviour
ROUTER_MAX_ATTEMPTS = env_int("ROUTER_MAX_ATTEMPTS", 3, minimum=1)
ROUTER_UPSTREAM_TIMEOUT_S = env_float("ROUTER_UPSTREAM_TIMEOUT_S", 60.0, minimum=0.1)
# What carries the upstream calls beneath httpx: "aiohttp" (the default, measurably leaner) or "httpx" (httpcore).
ROUTER_UPSTREAM_TRANSPORT = env_str("ROUTER_UPSTREAM_TRANSPORT", "aiohttp")
if ROUTER_UPSTREAM_TRANSPORT not in ("aiohttp", "httpx"):
    raise ImproperlyConfigured("ROUTER_UPSTREAM_TRANSPORT must be aiohttp or httpx")
# The tokenizer vocabularies each web process builds as it starts, before Django loads the apps: built then, the
# parse's transient copy (~25 MiB for o200k) is freed before the modules that stay are imported, so it never
# adds to the process's peak (built on a first request, it did: 178 vs 149 MiB). "none": each on first use, in
# a worker thread (token_encodings.encodings_ready). Add cl100k_base when text-embedding-3-* or gpt-4 is served.
ROUTER_PRELOAD_ENCODINGS = [n for n in env_list("ROUTER_PRELOAD_ENCODINGS", ["o200k_base"]) if n != "none"]
# The web process's youngest-generation garbage collection threshold, set at start (config.asgi.settle_heap):
# at Python's 700 the collector walked the young objects of the requests in flight ~30 times a second under
# load (4% of the CPU); at 10,000 it does so a few times a minute: 3.6% less CPU per JSON request at c=64.
ROUTER_GC_GEN0_THRESHOLD = env_int("ROUTER_GC_GEN0_THRESHOLD", 10000, minimum=1)
ROUTER_CACHE_TTL_S = env_int("ROUTER_CACHE_TTL_S", 3600, minimum=0)
ROUTER_COMPARE_TIMEOUT_S = env_float("ROUTER_COMPARE_TIMEOUT_S", 120.0, minimum=1)
ROUTER_BATCH_WAIT_S = env_float("ROUTER_BATCH_WAIT_S", 120.0, minimum=0)
# Batch items in flight per provider, across all batches and workers (queued or running).
ROUTER_BATCH_CONCURRENCY = env_int("ROUTER_BATCH_CONCURRENCY", 8, minimum=1)
# A claimed batch item or compared model silent this long is presumed dead and run again; keep it above the
# item task's hard time limit (ROUTER_DEADLINE_S + 60).
ROUTER_FANOUT_LEASE_S = env_float("ROUTER_FANOUT_LEASE_S", 240.0, minimum=1)
# Deliveries of one item before it is given up as an error.
ROUTER_FANOUT_MAX_ATTEMPTS = env_int("ROUTER_FANOUT_MAX_ATTEMPTS", 3, minimum=1)
ROUTER_MAX_BODY_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
# Defaults for keys without limits of their own (sliding one-minute windows; teams have no default).
ROUTER_RATE_LIMIT_RPM = env_optional_int("ROUTER_RATE_LIMIT_RPM", minimum=1)
# With Redis unreachable, rate limits can't be counted: let traffic through (default; budgets still hold the
# money) or refuse it with 503.
ROUTER_RATE_LIMIT_FAIL_CLOSED = env_bool("ROUTER_RATE_LIMIT_FAIL_CLOSED", False)
ROUTER_RATE_LIMIT_TPM = env_optional_int("ROUTER_RATE_LIMIT_TPM", minimum=1)
ROUTER_LOG_RETENTION_DAYS = env_optional_int("ROUTER_LOG_RETENTION_DAYS", minimum=1)
# A request-log search counts its matches up to this many, then reports the total as "at least" (an exact
# count of a broad search over millions of rows takes seconds).
ROUTER_SEARCH_COUNT_CAP = env_int("ROUTER_SEARCH_COUNT_CAP", 10_000, minimum=1)
ROUTER_DEMO = env_optional_bool("ROUTER_DEMO")
ROUTER_DEADLINE_S = env_float("ROUTER_DEADLINE_S", 120.0, minimum=1)
ROUTER_RETRY_BASE_S = env_float("ROUTER_RETRY_BASE_S", 0.25, minimum=0)
ROUTER_RETRY_MAX_S = env_float("ROUTER_RETRY_MAX_S", 8.0, minimum=0)
# A Retry-After longer than this sends the request to the next candidate instead of waiting.
ROUTER_RETRY_AFTER_MAX_S = env_float("ROUTER_RETRY_AFTER_MAX_S", 20.0, minimum=0)
ROUTER_COOLDOWN_FAILURES = env_int("ROUTER_COOLDOWN_FAILURES", 5, minimum=1)
ROUTER_COOLDOWN_S = env_int("ROUTER_COOLDOWN_S", 30, minimum=1)
ROUTER_RESERVATION_TTL_S = env_int("ROUTER_RESERVATION_TTL_S", 900, minimum=10)
# A process renews the holds of its calls in flight this often, so only a dead process's holds expire.
ROUTER_LEASE_RENEW_S = env_float("ROUTER_LEASE_RENEW_S", 60.0, minimum=0.1)
ROUTER_KEY_CACHE_S = env_float("ROUTER_KEY_CACHE_S", 3.0, minimum=0)
# Bad API keys one address may present per minute before it gets 429 (0 = no slow-down).
ROUTER_AUTH_FAILURES_PER_MINUTE = env_int("ROUTER_AUTH_FAILURES_PER_MINUTE", 20, minimum=0)
# Wait for the disk on every log-and-settle commit (about 1.3 ms here). Off, a crash of PostgreSQL itself
# (not of the gateway) can lose the last fraction of a second of rows and their settlements, together.
ROUTER_LOG_DURABLE_COMMIT = env_bool("ROUTER_LOG_DURABLE_COMMIT", True)
ROUTER_CATALOG_TTL_S = env_float("ROUTER_CATALOG_TTL_S", 5.0, minimum=0)
# Where a call's outcome goes (one fsync'd line each) when the database can't take it; replayed once it can.
ROUTER_JOURNAL_DIR = Path(env_str("ROUTER_JOURNAL_DIR") or BASE_DIR / "var" / "journal")
# Local state kept across `make run`s: the demo key and the admin password it printed (mode 0600).
ROUTER_STATE_DIR = Path(env_str("ROUTER_STATE_DIR") or BASE_DIR / "var")
ROUTER_JOURNAL_RETRY_S = env_float("ROUTER_JOURNAL_RETRY_S", 2.0, minimum=0.05)
# A request row still pending this long after its hold expired is closed as unsettled (its process died).
ROUTER_PENDING_GRACE_S = env_int("ROUTER_PENDING_GRACE_S", 60, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only) printed a plain-text copy of every django.* line: JSON only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # One line per request that reaches a door (routing/access.py), whatever LOG_LEVEL says; off with
        # ROUTER_ACCESS_LOG=false.
        "router.access": {"level": "INFO" if env_bool("ROUTER_ACCESS_LOG", True) else "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
