"""System checks of the personal-data registry (R26, R28).

- legal.W001: a field whose name looks personal (name, email, phone, address, street, city,
  postal, IBAN, account holder, IP, payer, debtor, buyer) that no category of the retention
  policy declares (declare it in the app's `personal_data.py`, or exempt it there with
  `not_personal(..., reason=...)`).
- legal.W002: a declaration naming a model or field that does not exist (a warning, not
  an error, so a field renamed in another app never blocks `migrate`; the tests fail).
"""

from __future__ import annotations

from django.core import checks

from legal import registry


@checks.register(checks.Tags.models)
def personal_data_declared(app_configs=None, **kwargs):
    messages = []
    for name in registry.undeclared_personal_fields():
        messages.append(
            checks.Warning(
                f"{name} looks like personal data but no retention category declares it.",
                hint="Declare it in the app's personal_data.py (legal.registry.declare) "
                "or exempt it with legal.registry.not_personal(..., reason=...).",
                id="legal.W001",
            )
        )
    for problem in registry.broken_declarations():
        messages.append(checks.Warning(f"Personal-data declaration: {problem}.", id="legal.W002"))
    return messages
