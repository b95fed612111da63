"""Use cases of the legal app, one module per area:

- `ledger`: the per-order personal-data ledger (R26), recomputed when the facts change
- `erasure`: erasing categories of personal data in bulk, with erasure records (R29)
- `retention`: the daily sweep, `enforce_retention` (R28, R29)
- `disclosures`: the disclosure log (R27)
- `consents`: giving and withdrawing consents, unsubscribe links (R31)
- `accounts`: customer accounts and one-time email links (R30: identity)
- `requests`: data-subject requests (R30)
- `holds`: legal holds placed by staff (R28)
"""
