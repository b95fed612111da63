"""JSON in, bounded (issue 14, item 5): no request body can make the server answer 500.

`loads_bounded()` refuses, with `JSONRefused` (a 400 through `BoundedJSONParser`):

- nesting deeper than `settings.API_JSON_MAX_DEPTH`, measured on the raw text BEFORE
  parsing (Python's parser recurses, so a deep document is a RecursionError, a 500);
- numbers outside I-JSON's safe range (RFC 7493 section 2.2: integers within +-(2**53 - 1),
  finite doubles; `NaN`/`Infinity` are not JSON at all), and number literals longer than
  `MAX_NUMBER_CHARS` (Python refuses ints of more than 4,300 digits with a ValueError);
- strings (keys and values) holding a NUL character or an unpaired surrogate: PostgreSQL
  cannot store either in text or jsonb (RFC 7493 section 2.1 forbids the surrogates).

`BoundedJSONParser` is the default parser of every API view (REST_FRAMEWORK settings);
the webhooks, which read the raw signed body themselves, call `loads_bounded()`.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_SAFE_INTEGER = 2**53 - 1  # RFC 7493 section 2.2
MAX_NUMBER_CHARS = 40
DEFAULT_MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JSONRefused(ValueError):
    """The body is not JSON this API accepts; the message says why."""


def max_depth() -> int:
    return int(getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH))


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text`, counted without parsing it (brackets
    inside strings do not count)."""
    brackets = _BRACKETS.findall(_STRING.sub("", text))
    if not brackets:
        return 0
    steps = (1 if b in "[{" else -1 for b in brackets)
    return max(accumulate(steps))


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number.")


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JSONRefused("A number in the body is too large.")
    value = int(literal)
    if abs(value) > MAX_SAFE_INTEGER:
        raise JSONRefused("A number in the body is too large.")
    return value


def _bounded_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JSONRefused("A number in the body is too large.")
    value = float(literal)
    if value in (float("inf"), float("-inf")) or value != value:
        raise JSONRefused("A number in the body is too large.")
    return value


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise JSONRefused("The body contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONRefused("The body contains an unpaired surrogate.") from exc


def _check_strings(value: Any) -> None:
    # Depth is bounded before parsing, so this recursion is bounded too.
    if isinstance(value, str):
        _check_string(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def loads_bounded(text: str | bytes, *, depth: int | None = None) -> Any:
    """Parse JSON text within the limits above; `JSONRefused` otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused("The body is not UTF-8.") from exc
    limit = max_depth() if depth is None else depth
    if nesting_depth(text) > limit:
        raise JSONRefused(f"The body nests deeper than {limit} levels.")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except JSONRefused:
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONRefused("The body is not valid JSON.") from exc
    _check_strings(value)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the limits of `loads_bounded()` (400 problem+json)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError("The body is not valid text.") from exc
        try:
            return loads_bounded(text)
        except JSONRefused as exc:
            raise ParseError(f"JSON parse error: {exc}") from exc
