"""Settings, read from the environment (12-factor, django-environ).

Every value has a safe development default so `make run` works with nothing set:
SQLite file, Celery eager, console email. Production sets DJANGO_DEBUG=false and
provides SECRET_KEY, DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL and ALLOWED_HOSTS.
"""

from decimal import Decimal
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
else:
    SECRET_KEY = env.str("SECRET_KEY")  # no default outside development

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL used in emailed links.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files
    "csp",
    "simple_history",
    "shop.apps.ShopConfig",
    "legal.apps.LegalConfig",
    "orders.apps.OrdersConfig",
    "delivery.apps.DeliveryConfig",
    "returns.apps.ReturnsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "shop.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the writer lock instead of failing at once; immediate transactions avoid
    # the lock-upgrade deadlock when two requests write at the same time.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Passwords, auth --------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation (R0.2: legal deadlines in Riga time, stored in UTC) -------------
LANGUAGE_CODE = "lv"
LANGUAGES = [("lv", _("Latvian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Riga"  # display time zone; timestamps are stored in UTC
USE_I18N = True
USE_TZ = env.bool("USE_TZ", default=True)

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# Bodies that are not multipart (JSON, forms) above DATA_UPLOAD_MAX_MEMORY_SIZE get 413
# before anything reads them (shop.middleware); multipart uploads up to this size.
MAX_UPLOAD_REQUEST_SIZE = env.int("MAX_UPLOAD_REQUEST_SIZE", default=110 * 1024 * 1024)
BANK_STATEMENT_MAX_BYTES = env.int("BANK_STATEMENT_MAX_BYTES", default=100 * 1024 * 1024)

# --- Email ------------------------------------------------------------------------------
_email_config = env.email_url("EMAIL_URL", default="consolemail://")
# The console backend prints every email, live links included, into the worker's log: it
# is for development only. Production (DJANGO_DEBUG off) refuses to start with it; set
# EMAIL_URL to a real backend (smtp+tls://user:password@host:587).
if not DEBUG and _email_config["EMAIL_BACKEND"].endswith(".console.EmailBackend"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "EMAIL_URL is the console backend (the default): it writes the emails' secret links "
        "into the log. Set EMAIL_URL to a real backend in production (DJANGO_DEBUG=false)."
    )
vars().update(_email_config)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Keune.lv <veikals@keune.lv>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (production values when DEBUG is off) --------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every answer (django-csp): API, admin, customer pages, API docs.
# Scripts only from our own origin (the admin and Swagger UI load theirs as files; the
# customer pages need none); nothing from another host. Styles may be inline: the customer
# pages carry their small stylesheet in the page and the admin uses style attributes; CSS
# cannot run script. `data:` images are Swagger UI's inline icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Cache (throttling state must be shared between web processes in production) ---------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- REST framework and OpenAPI -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["shop.api.parsers.BoundedJSONParser"],  # depth-limited
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "shop.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "shop.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_RATES": {
        "checkout": env.str("THROTTLE_CHECKOUT", default="60/min"),
        "token_guess": env.str("THROTTLE_TOKEN_GUESS", default="120/min"),
        "email_link": env.str("THROTTLE_EMAIL_LINK", default="30/hour"),
        "webhook": env.str("THROTTLE_WEBHOOK", default="6000/min"),
    },
}
# --- Limits that hold (issue 14): who the client is, and what one client may hold ---------
# The number of reverse proxies in front of the app that append the client's address to
# X-Forwarded-For (nginx `proxy_add_x_forwarded_for`, a load balancer). 0: REMOTE_ADDR
# only, the header is ignored. A wrong value lets clients pick their own identity.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT
# The customer web pages (order, withdrawal button, unsubscribe), per client.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["web_page"] = env.str(
    "THROTTLE_WEB_PAGE", default="60/min"
)
# One-time login-link emails per address (whoever asks); empty: no limit.
EMAIL_LINK_PER_ADDRESS_RATE = env.str("EMAIL_LINK_PER_ADDRESS_RATE", default="5/hour")
# The admin login: after this many wrong passwords in a row (per username and per client)
# it is locked for ADMIN_LOGIN_LOCKOUT_SECONDS, doubled for each further failure, at most
# ADMIN_LOGIN_LOCKOUT_MAX_SECONDS. A right password is refused while it is locked.
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_LOCKOUT_SECONDS = env.int("ADMIN_LOGIN_LOCKOUT_SECONDS", default=60)
ADMIN_LOGIN_LOCKOUT_MAX_SECONDS = env.int("ADMIN_LOGIN_LOCKOUT_MAX_SECONDS", default=3600)
# Checkout hoarding: units of one SKU in one order, and orders placed but not yet paid
# per email address and per client (user or IP address).
SHOP_MAX_QUANTITY_PER_SKU = env.int("SHOP_MAX_QUANTITY_PER_SKU", default=10)
SHOP_MAX_OPEN_UNPAID_ORDERS = env.int("SHOP_MAX_OPEN_UNPAID_ORDERS", default=3)

# Bad input never 500s (issue 14): JSON nesting limit checked before parsing
# (shop.api.parsers), problem+json for Django's own 403s under /api/, and the window of
# courier event times the webhook accepts.
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
CSRF_FAILURE_VIEW = "shop.api.errors.csrf_failure"
COURIER_EVENT_MAX_AGE_DAYS = env.int("COURIER_EVENT_MAX_AGE_DAYS", default=30)
COURIER_EVENT_MAX_AHEAD_DAYS = env.int("COURIER_EVENT_MAX_AHEAD_DAYS", default=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "Keune.lv back office API",
    "DESCRIPTION": (
        "Orders, invoices, delivery, the right of withdrawal, conformity claims and "
        "data-subject rights for a Latvian online shop. Errors are application/problem+json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN; no validator badge
    # (it would load an image from validator.swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.OrderStatus",
        "OrderLineStatusEnum": "orders.models.LineStatus",
        "RefundStatusEnum": "orders.models.RefundStatus",
        "CancelReasonEnum": "orders.models.CancelReason",
        "ShipmentStatusEnum": "delivery.models.ShipmentStatus",
        "ShipmentDirectionEnum": "delivery.models.ShipmentDirection",
        "CourierEventNameEnum": "delivery.models.CourierEventName",
        "DataSubjectRequestTypeEnum": "legal.models.RequestKind",
        "DataSubjectRequestStatusEnum": "legal.models.RequestStatus",
        "ConsentPurposeEnum": "legal.models.ConsentPurpose",
        "ConsentSourceEnum": "legal.models.ConsentSource",
        "StripeEventResultEnum": "orders.models.StripeEventResult",
        "ClaimStatusEnum": "returns.models.claims.ClaimStatus",
        "ClaimChannelEnum": "returns.models.claims.ClaimChannel",
        "ClaimRemedyEnum": "returns.models.claims.Remedy",
        "WithdrawalStatusEnum": "returns.models.withdrawals.WithdrawalStatus",
        "WithdrawalChannelEnum": "returns.models.withdrawals.WithdrawalChannel",
        "ClaimDecisionKindEnum": "returns.models.claims.DecisionKind",
    },
}

# --- Celery ---------------------------------------------------------------------------------
_broker = env.str("CELERY_BROKER_URL", default="")
# Without a broker, tasks run in-process right away ("eager"): the embedded default.
CELERY_BROKER_URL = _broker or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not _broker)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The beat schedule is in code: shop/celery.py.

# --- The shop (seller data printed on invoices, R9) ---------------------------------------
SHOP = {
    "SELLER_NAME": env.str("SHOP_SELLER_NAME", default="SIA “Orange Cosmetic”"),
    "SELLER_REG_NO": env.str("SHOP_SELLER_REG_NO", default="40103165580"),
    "SELLER_VAT_NO": env.str("SHOP_SELLER_VAT_NO", default="LV40103165580"),
    "SELLER_ADDRESS": env.str("SHOP_SELLER_ADDRESS", default="Ūnijas iela 6, Rīga, LV-1084"),
    "SELLER_EMAIL": env.str("SHOP_SELLER_EMAIL", default="veikals@keune.lv"),
    "SELLER_IBAN": env.str("SHOP_SELLER_IBAN", default="LV97HABA0012345678910"),
    "SELLER_BIC": env.str("SHOP_SELLER_BIC", default="HABALV22"),
    "INVOICE_SERIES": env.str("SHOP_INVOICE_SERIES", default="KEU"),
    "INVOICE_PAYMENT_WORKING_DAYS": env.int("SHOP_INVOICE_PAYMENT_WORKING_DAYS", default=5),
    "CONTACT_WORKING_DAYS": 3,
    # R10, R12: working days to wait after a deadline for the bank statements that can
    # still bring a payment booked by it, before cancelling.
    "STATEMENT_GRACE_WORKING_DAYS": env.int("SHOP_STATEMENT_GRACE_WORKING_DAYS", default=1),
    "CURRENCY": "EUR",
}
DEFAULT_DELIVERY_FEE = Decimal("2.00")
DEFAULT_FREE_DELIVERY_ABOVE = Decimal("50.00")

# `make bench` only: mount the bare baseline endpoints of shop/bench_views.py under /bench/.
BENCH_BASELINE = env.bool("BENCH_BASELINE", default=False)

# Default lifetime of shop.tokens.sign() links that name no max_age of their own (seconds).
SIGNED_LINK_MAX_AGE = env.int("SIGNED_LINK_MAX_AGE", default=60 * 60 * 24 * 30)
# Emailed order links (orders.links): the order page and invoice link lives this long;
# the withdrawal button link the whole withdrawal period once it is known (R18), and no
# link lives less than ORDER_LINK_MIN_AGE. Opening one gives a page session of at most
# ORDER_LINK_SESSION_MAX_AGE (seconds).
ORDER_LINK_MAX_AGE = env.int("ORDER_LINK_MAX_AGE", default=60 * 60 * 24 * 30)
ORDER_LINK_MIN_AGE = env.int("ORDER_LINK_MIN_AGE", default=60 * 60 * 24 * 7)
ORDER_LINK_SESSION_MAX_AGE = env.int("ORDER_LINK_SESSION_MAX_AGE", default=60 * 60 * 12)

# --- Delivery: the Omniva OMX client, the courier webhook and the tracking poller (R14) ------
# Read from django.conf.settings when used. Empty OMNIVA_API_URL: the client is off and
# staff record barcodes by hand. COURIER_ADAPTER: "off", a dotted path to an adapter class,
# or empty for "the Omniva client when OMNIVA_API_URL is set".
OMNIVA_API_URL = env.str("OMNIVA_API_URL", default="")
OMNIVA_USERNAME = env.str("OMNIVA_USERNAME", default="")
OMNIVA_PASSWORD = env.str("OMNIVA_PASSWORD", default="")
OMNIVA_CUSTOMER_CODE = env.str("OMNIVA_CUSTOMER_CODE", default="")
OMNIVA_TIMEOUT = env.float("OMNIVA_TIMEOUT", default=10.0)  # seconds per request
OMNIVA_POLL_PER_MINUTE = env.int("OMNIVA_POLL_PER_MINUTE", default=10)
OMNIVA_TRACKING_URL = env.str(
    "OMNIVA_TRACKING_URL",
    default="https://www.omniva.lv/privats/sutijuma-atrasanas-vieta?barcode={barcode}",
)
COURIER_ADAPTER = env.str("COURIER_ADAPTER", default="")
# Signs the courier webhook; a development default only in DEBUG (empty: every call is 401).
OMNIVA_WEBHOOK_SECRET = env.str(
    "OMNIVA_WEBHOOK_SECRET", default="dev-omniva-webhook-secret" if DEBUG else ""
)

# --- Card payments through Stripe (R11s): off while STRIPE_API_KEY is empty --------------
# Read where used (orders.payments), so tests can override them.
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # empty: Stripe's own API
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# The card payment adapter (STYLE.md: a setting picks an adapter).
CARD_PAYMENT_GATEWAY = "orders.payments.stripe_gateway.StripeGateway"

# --- Logging: never personal data (see shop.logging) ----------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_personal_data": {"()": "shop.logging.RedactPersonalDataFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_personal_data"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
