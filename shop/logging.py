"""Keep personal data and bearer secrets out of every log line: emails, phone numbers,
IBANs, and the values of `token=` parameters and token headers (request lines of the
access log included: shop.tokens.redact_query_tokens)."""

from __future__ import annotations

import logging
import re

from shop.tokens import redact_query_tokens

_PATTERNS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), "[iban]"),
    (re.compile(r"\+\d[\d ]{6,16}\d"), "[phone]"),
    (re.compile(r"(?<![\w-])(?:00371)?[26]\d{7}(?![\w-])"), "[phone]"),
]


def redact(text: str) -> str:
    text = redact_query_tokens(text)
    for pattern, marker in _PATTERNS:
        text = pattern.sub(marker, text)
    return text


class RedactPersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True
