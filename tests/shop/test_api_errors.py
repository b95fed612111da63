"""DESIGN.md section 10: every API error is application/problem+json."""

import pytest

pytestmark = pytest.mark.django_db

PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status
    return body


def test_404_unknown_api_path_is_problem_json(client):
    assert_problem(client.get("/api/no-such-thing/"), 404)


def test_404_unknown_product_is_problem_json(client):
    assert_problem(client.get("/api/products/NOPE-999/"), 404)


def test_405_is_problem_json(client):
    body = assert_problem(client.post("/api/products/", {}, content_type="application/json"), 405)
    assert "POST" in body["detail"]


def test_400_validation_error_lists_fields(client):
    body = assert_problem(client.get("/api/products/", {"min_price": "abc"}), 400)
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "min_price"
    assert {"field", "code", "message"} <= body["errors"][0].keys()


def test_flatten_nested_errors_into_dotted_paths():
    from rest_framework.exceptions import ErrorDetail

    from shop.api.errors import flatten_errors

    errors = flatten_errors(
        {
            "customer": {"email": [ErrorDetail("Enter a valid email address.", code="invalid")]},
            "lines": [{}, {"quantity": [ErrorDetail("Too many.", code="max_value")]}],
            "non_field_errors": [ErrorDetail("Something.", code="x")],
        }
    )
    assert {
        "field": "customer.email",
        "code": "invalid",
        "message": "Enter a valid email address.",
    } in errors
    assert {"field": "lines.1.quantity", "code": "max_value", "message": "Too many."} in errors
    assert {"field": "__all__", "code": "x", "message": "Something."} in errors


def test_422_business_rule_violation_carries_code_and_facts():
    from datetime import date

    from rest_framework.test import APIRequestFactory

    from shop.api.errors import BusinessRuleViolation, problem_exception_handler

    request = APIRequestFactory().get("/api/x/")
    exc = BusinessRuleViolation(
        "withdrawal_period_expired", "The withdrawal period has ended.", deadline=date(2026, 11, 19)
    )
    response = problem_exception_handler(exc, {"request": request, "view": None})
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.data["code"] == "withdrawal_period_expired"
    assert response.data["deadline"] == "2026-11-19"
