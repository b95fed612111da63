"""schemathesis over the whole OpenAPI schema (DESIGN.md section 12; issue 9, part 3).

The schema is loaded from the WSGI application itself (`/api/schema/`), and every
operation gets schemathesis-generated requests, bounded and seeded (hypothesis
`derandomize`): valid ones (positive) and invalid ones (negative), anonymous, with a real
order's number and access token, and as a staff user with every permission. Each
response must pass two checks: `not_a_server_error` (no 5xx) and
`response_schema_conformance` (the body matches the schema for its status). Goal: 0 and 0.

Bounds: FUZZ_EXAMPLES per operation, mode and caller (env, default 20), so the test stays within
a few minutes on a 2-core machine; raise it locally for a longer run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.factories import place_test_order

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, response_schema_conformance]
# Operations whose examples would only exercise our own fakes or a paid third party.
SKIPPED_OPERATIONS: set[str] = set()


@pytest.fixture
def fuzz_world(transactional_db, settings):
    """The demo catalogue, one placed order (its number and token used in half the
    cases), and a staff user with every permission (its API token used for staff ops)."""
    from delivery.models import DeliveryTariff
    from shop.models import VatRate

    for category, rate, effective_from in [
        ("standard", Decimal("21.00"), date(2012, 7, 1)),
        ("reduced", Decimal("12.00"), date(2011, 1, 1)),
    ]:
        VatRate.objects.get_or_create(
            category=category, effective_from=effective_from, defaults={"rate": rate}
        )
    if not DeliveryTariff.objects.exists():
        DeliveryTariff.objects.create(
            fee=Decimal("2.00"),
            free_above=Decimal("50.00"),
            effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        )
    call_command("seed_demo", verbosity=0)
    placed = place_test_order([("KEU-FUZZ", 2)])
    staff = User.objects.create_superuser("fuzz-staff", "staff@example.lv", "pw-for-tests")
    # Log-in and sign-up calls hash passwords: a fast hasher keeps the run short.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STRIPE_WEBHOOK_SECRET = "whsec_fuzz"
    settings.OMNIVA_WEBHOOK_SECRET = "omniva-fuzz"
    return {
        "number": placed.order.number,
        "token": placed.access_token,
        "staff_token": Token.objects.create(user=staff).key,
    }


def label(case) -> str:
    return f"{case.method} {case.formatted_path}"


def runner(strategy, who: str, headers: dict, mode, statuses: Counter, failures: list[str]):
    """A hypothesis test over `strategy`: every case called and checked, every failure
    recorded (not raised, so one failing operation does not hide the others)."""

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the seed: the same cases on every run
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        cache.clear()  # throttling is tested elsewhere; here every call counts
        response = case.call(headers=headers or None)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures.append(
                f"{label(case)} [{mode.value}, {who}] -> {response.status_code}: "
                f"{str(exc).strip().splitlines()[0][:300]}\n"
                f"    query: {case.query} headers: {case.headers}\n"
                f"    body sent: {str(case.body)[:300]}\n"
                f"    answer: {response.text[:300]}"
            )

    return run


@pytest.mark.django_db(transaction=True)
def test_schemathesis_no_5xx_and_no_schema_violations(fuzz_world, figure):
    """Section 12: schemathesis over the whole schema: 0 responses 5xx, 0 responses that
    break the schema."""
    from django.core.wsgi import get_wsgi_application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    timings: Counter[str] = Counter()

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIPPED_OPERATIONS:
            continue
        operations += 1
        has_number = any(p.name == "number" for p in operation.path_parameters)
        is_staff = operation.path.startswith("/api/staff/")
        variants = [("anonymous", {}, {})]
        if has_number:
            variants.append(
                (
                    "owner",
                    {"number": fuzz_world["number"]},
                    {"X-Order-Token": fuzz_world["token"]},
                )
            )
        if is_staff:
            variants.append(("staff", {}, {"Authorization": f"Token {fuzz_world['staff_token']}"}))
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for who, path_parameters, headers in variants:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters or None
                )

                started = time.monotonic()
                try:
                    runner(strategy, who, headers, mode, statuses, failures)()
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): no negative cases.
                    assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                timings[operation.label] += time.monotonic() - started

    total = sum(statuses.values())
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    figure(
        "schemathesis over the whole schema",
        f"{operations} operations, {total} requests ({EXAMPLES} examples per operation, mode "
        f"and caller, derandomized): {server_errors} responses 5xx, {len(failures)} failed "
        f"checks; statuses {dict(sorted(statuses.items()))}",
    )
    slowest = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.most_common(3))
    figure("schemathesis, slowest operations", slowest)
    assert failures == [], "\n".join(failures[:40])
    assert server_errors == 0
