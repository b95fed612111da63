"""seed_demo, production settings and log redaction."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from legal.models import TermsVersion
from shop.logging import RedactPersonalDataFilter, redact
from shop.models import Product

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_seed_demo_is_idempotent(client):
    call_command("seed_demo")
    call_command("seed_demo")
    assert Product.objects.count() == 12
    assert Product.objects.filter(sealed_hygiene=True).exists()
    assert TermsVersion.objects.count() == 1
    assert client.get("/api/products/").json()["count"] == 12
    assert client.get("/api/terms/").json()["version"] == "2026-01"


def test_production_settings_pass_check_deploy():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "production-secret-from-the-environment-0123456789",
        "ALLOWED_HOSTS": "shop.example.lv",
        "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
        "EMAIL_URL": "smtp+tls://shop:password@mail.example.lv:587",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {"PATH": os.environ["PATH"], "DJANGO_DEBUG": "false"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail to anna.berzina@example.lv failed", "mail to [email] failed"),
        ("refund to LV80BANK0000435195001 sent", "refund to [iban] sent"),
        ("refund to LV80 BANK 0000 4351 9500 1 sent", "refund to [iban] sent"),
        ("call +371 20000000 now", "call [phone] now"),
        ("call 29123456 now", "call [phone] now"),
        ("order KEU-2026-000123 paid 24.20", "order KEU-2026-000123 paid 24.20"),
    ],
)
def test_personal_data_is_redacted_from_log_lines(text, expected):
    assert redact(text) == expected


def test_log_filter_redacts_arguments_too():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to %s", ("a@b.lv",), None)
    RedactPersonalDataFilter().filter(record)
    assert record.getMessage() == "sent to [email]"
