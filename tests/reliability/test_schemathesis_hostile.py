"""schemathesis's view of the schema, hostile bodies (issue 14, item 5).

The generated cases of test_schemathesis.py never nest deeply nor carry NUL characters.
Here every operation of the schema (loaded by schemathesis from the WSGI application)
that takes a JSON body gets, for each property its schema names: a 50,000-deep array
(a RecursionError, hence a 500, in a plain JSON parser), a NUL character inside a string,
and a 5,000-digit integer; anonymous, as the order's owner, and as staff. Every answer
must be a 4xx (or a success) in application/problem+json when it is an error: never 5xx.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from django.test import Client

from tests.reliability.test_schemathesis import fuzz_world  # noqa: F401  the same world

DEEP = "[" * 50_000 + "]" * 50_000
HOSTILE_VALUES = {
    "deep": DEEP,
    "nul": json.dumps("a\u0000b"),
    "huge": "9" * 5000,
}


def _resolve(schema: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target: dict = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _json_properties(raw: dict, operation: dict) -> list[str] | None:
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json")
    if body is None:
        return None
    definition = _resolve(raw, body.get("schema", {}))
    return sorted(definition.get("properties", {})) or ["x"]


def _path(template: str, number: str) -> str:
    path = template.replace("{number}", number)
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "1" + path[path.index("}") + 1 :]
    return path


@pytest.mark.django_db(transaction=True)
def test_schemathesis_hostile_bodies_never_5xx(fuzz_world, figure):  # noqa: F811
    """Attack: deep nesting, NUL and huge numbers in every JSON body of the schema."""
    from django.core.wsgi import get_wsgi_application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    raw = schema.raw_schema
    client = Client()
    callers = [
        ("anonymous", {}),
        ("owner", {"HTTP_X_ORDER_TOKEN": fuzz_world["token"]}),
        ("staff", {"HTTP_AUTHORIZATION": f"Token {fuzz_world['staff_token']}"}),
    ]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0
    for template, methods in raw["paths"].items():
        for method, operation in methods.items():
            if method not in ("post", "put", "patch"):
                continue
            properties = _json_properties(raw, operation)
            if properties is None:
                continue
            operations += 1
            path = _path(template, fuzz_world["number"])
            for kind, value in HOSTILE_VALUES.items():
                body = "{" + ", ".join(f'"{name}": {value}' for name in properties) + "}"
                for who, headers in callers:
                    cache.clear()
                    response = getattr(client, method)(
                        path, data=body, content_type="application/json", **headers
                    )
                    statuses[response.status_code] += 1
                    content_type = response.get("Content-Type", "")
                    if response.status_code >= 500 or (
                        response.status_code >= 400
                        and not content_type.startswith("application/problem+json")
                    ):
                        failures.append(
                            f"{method.upper()} {path} [{kind}, {who}] -> "
                            f"{response.status_code} {content_type}: {response.content[:200]!r}"
                        )
    figure(
        "schemathesis schema, hostile bodies (deep nesting, NUL, huge numbers)",
        f"{operations} operations, {sum(statuses.values())} requests: "
        f"{sum(n for s, n in statuses.items() if s >= 500)} responses 5xx; "
        f"statuses {dict(sorted(statuses.items()))}",
    )
    assert operations > 5
    assert failures == [], "\n".join(failures[:40])
