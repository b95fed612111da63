"""Settings of the minimal django-oscar project of `python -m bench oscar`.

Oscar's own recipe (docs "Building your own shop": `oscar.defaults`, oscar's
INSTALLED_APPS, the basket middleware, haystack's simple backend) with production
choices: DEBUG off, PostgreSQL with persistent connections, ATOMIC_REQUESTS as oscar's
docs recommend, and stock alerts sent by the `oscar_send_alerts` command rather than on
every stock-record save (OSCAR_EAGER_ALERTS, documented as the faster alternative).

The database comes from BENCH_OSCAR_DATABASE_URL (postgres://user:password@host:port/name).
Runs only in the benchmark's own virtualenv (var/bench-oscar-venv); the shop, its tests and
ruff never import it.
"""

import os
from urllib.parse import unquote, urlsplit

from oscar import INSTALLED_APPS as OSCAR_INSTALLED_APPS
from oscar.defaults import *  # noqa: F403  (oscar's documented way to start its settings)

_url = urlsplit(os.environ["BENCH_OSCAR_DATABASE_URL"])

DEBUG = False
SECRET_KEY = os.environ.get("BENCH_OSCAR_SECRET_KEY", "bench-oscar-only-not-a-production-key")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = list(OSCAR_INSTALLED_APPS)
SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]
ROOT_URLCONF = "bench.oscar.urls"
AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "ATOMIC_REQUESTS": True,
        "CONN_MAX_AGE": None,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LANGUAGE_CODE = "en"
TIME_ZONE = "Europe/Riga"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_URL = "/media/"

OSCAR_SHOP_NAME = "Bench"
OSCAR_DEFAULT_CURRENCY = "EUR"
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_EAGER_ALERTS = False
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Processed", "Cancelled"),
    "Cancelled": (),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
