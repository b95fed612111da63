"""Domain errors raised by services; the API turns them into problem+json."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """A business action the rules refuse (422 in the API): a `code` and the facts."""

    status_code = 422

    def __init__(self, code: str, detail: str, **facts: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.facts = facts


class Conflict(Refused):
    """The request conflicts with an earlier one (409 in the API)."""

    status_code = 409


class InvalidInput(Exception):
    """Input the service found invalid (400 in the API), field by field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def single(cls, field: str, code: str, message: str) -> InvalidInput:
        return cls([{"field": field, "code": code, "message": message}])
