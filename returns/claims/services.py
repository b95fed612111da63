"""Use cases of conformity claims (R23-R25), one module per area; import them from here.

- `receiving`: receive_claim, through the API or entered by staff (R23, R25, T6.9)
- `decisions`: the staff decisions that move no money, the decision log, the overdue
  flag of unanswered claims (R25)
- `money`: price reduction and termination, the hierarchy and the caps (R24)
"""

from returns.claims.decisions import (
    EMAILED_DECISIONS,
    decide_repair,
    decide_replacement,
    flag_overdue_claims,
    record_obstacle,
    reject_claim,
    resolve_claim,
    set_minor_defect,
    start_review,
)
from returns.claims.money import decide_price_reduction, decide_termination
from returns.claims.receiving import (
    MAX_DESCRIPTION,
    MAX_LINES,
    ClaimLineRequest,
    receive_claim,
)

__all__ = [
    "EMAILED_DECISIONS",
    "MAX_DESCRIPTION",
    "MAX_LINES",
    "ClaimLineRequest",
    "decide_price_reduction",
    "decide_repair",
    "decide_replacement",
    "decide_termination",
    "flag_overdue_claims",
    "receive_claim",
    "record_obstacle",
    "reject_claim",
    "resolve_claim",
    "set_minor_defect",
    "start_review",
]
